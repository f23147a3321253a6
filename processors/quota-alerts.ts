/**
 * Quota alert evaluator (issue 4): every `intervalMs`, measure each measurable quota
 * (storage/quota-measure.ts), run the alert state machine (domain/quota-alerts.ts), store the new
 * alerts in `quota_alerts` (schemas/clickhouse/0004), log each (`quota.alert`) and hand it to the
 * webhook sender (processors/webhook.ts), which delivers in the background.
 *
 * Guarantees:
 * - Store first, then log and send: an alert whose insert failed is neither logged nor sent, and
 *   the quota's state does not advance, so the next pass computes the same alert (same id) again.
 * - No re-fire after a restart: before its first pass the evaluator rebuilds each quota's state
 *   from the latest stored period (`alertStateFromLog`).
 * - Several processors: before storing, the state of the quotas about to fire is re-read from the
 *   table, so an alert another processor already stored is not stored or sent again. Two passes at
 *   the same instant can still both send; they send the same alert id, and the rows collapse
 *   (ReplacingMergeTree on alert_id, insert_deduplication_token). Receivers dedupe on the id.
 * - Delivery never blocks evaluation and never throws into it (bounded queue in the sender).
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { QuotaStatus } from '../domain/quota.ts';
import { alertStateFromLog, evaluateQuotaAlerts, type QuotaAlert, type QuotaAlertState } from '../domain/quota-alerts.ts';
import { parseRfc3339 } from '../domain/usage-event-validation.ts';
import type { QuotaMetrics } from '../observability/metrics.ts';
import type { AlertsConfig } from '../schemas/alerts.ts';
import type { QuotaSpec } from '../schemas/quota.ts';
import type { ClickHouseClient } from '../storage/clickhouse.ts';
import { type LatestAlertRow, latestAlertPeriods } from '../storage/queries/quota-alerts.ts';
import { type MeasureOptions, measurableWith, measureQuota } from '../storage/quota-measure.ts';
import { type WebhookSender, webhookFromAlertsConfig } from './webhook.ts';

/** The `type` of the webhook body: `{ "type": "quota.alert", "alert": QuotaAlert }`. */
export const QUOTA_ALERT_EVENT = 'quota.alert';

export interface QuotaAlertEvaluatorOptions {
  clickhouse: ClickHouseClient;
  /** Quotas from config; those `measurableWith(teams)` rejects (a team quota whose team is not in `teams`) are skipped. */
  quotas: readonly QuotaSpec[];
  /** Config `teams`: the members a team quota counts. */
  teams?: MeasureOptions['teams'];
  logger: Logger;
  /** Evaluation period, ms (config alerts.interval_ms). */
  intervalMs: number;
  /** Where alerts are sent; none = stored and logged only. */
  webhook?: WebhookSender;
  /** Current time, epoch ms. Default Date.now. */
  now?: () => number;
  /** Each measurement's used / limit, by quota id (observability/metrics.ts). Default none. */
  metrics?: QuotaMetrics;
}

export interface QuotaAlertEvaluator {
  /**
   * One pass over every measurable quota at now(). Resolves with the alerts stored by this pass.
   * Never rejects: failures are logged and retried by the next pass. Concurrent calls share one pass.
   */
  evaluate(): Promise<QuotaAlert[]>;
  /** Run a pass now and then every intervalMs (a pass still running makes the next tick a no-op). */
  start(): void;
  /** Stop the timer, wait for the pass in flight, then stop the webhook sender. Idempotent. */
  stop(): Promise<void>;
}

/** A row of `quota_alerts`: the alert with times as epoch ms and absent scope fields as ''. */
function toRow(a: QuotaAlert): Record<string, unknown> {
  const ms = (text: string) => parseRfc3339(text) as number; // the state machine wrote these with toISOString
  return {
    ...a,
    user_id: a.user_id ?? '',
    team: a.team ?? '',
    provider: a.provider ?? '',
    used: String(a.used),
    limit: String(a.limit),
    window_start: ms(a.window_start),
    window_end: ms(a.window_end),
    episode_start: ms(a.episode_start),
    fired_at: ms(a.fired_at),
  };
}

/** `tenant \0 quota id`: quota ids are unique in config, the tenant guards against a reused id. */
const quotaKey = (tenant: string, quotaId: string) => `${tenant}\u0000${quotaId}`;

/** Build an evaluator; nothing runs until `evaluate()` or `start()`. */
export function createQuotaAlertEvaluator(o: QuotaAlertEvaluatorOptions): QuotaAlertEvaluator {
  const now = o.now ?? Date.now;
  const measure: MeasureOptions = o.teams ? { teams: o.teams } : {};
  const quotas = o.quotas.filter(measurableWith(measure));
  const states = new Map<string, QuotaAlertState | undefined>();
  let seeded = false;
  let inFlight: Promise<QuotaAlert[]> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | null = null;

  /** The state each spec's stored alerts imply, by quota id. @throws what the ClickHouse client throws. */
  async function loadStates(specs: readonly QuotaSpec[]): Promise<Map<string, QuotaAlertState | undefined>> {
    const built = latestAlertPeriods({
      tenants: [...new Set(specs.map((q) => q.scope.tenant.normalize('NFC')))],
      quotaIds: specs.map((q) => q.id),
    });
    const rows = await (await o.clickhouse.query({ ...built, format: 'JSONEachRow' })).json<LatestAlertRow>();
    const byQuota = new Map<string, LatestAlertRow[]>();
    for (const r of rows) {
      const k = quotaKey(r.tenant, r.quota_id);
      byQuota.set(k, [...(byQuota.get(k) ?? []), r]);
    }
    const out = new Map<string, QuotaAlertState | undefined>();
    for (const q of specs) {
      const log = byQuota.get(quotaKey(q.scope.tenant.normalize('NFC'), q.id)) ?? [];
      const stored = log.map((r) => ({ kind: r.kind, episode_start_ms: Number(r.episode_start_ms), fired_at_ms: Number(r.fired_at_ms) }));
      out.set(q.id, alertStateFromLog(stored));
    }
    return out;
  }

  /** One insert per quota and pass; the token is the alert ids, so a retried insert is a no-op. */
  async function store(alerts: readonly QuotaAlert[]): Promise<void> {
    const ids = alerts.map((a) => a.alert_id);
    await o.clickhouse.insert({
      table: 'quota_alerts',
      values: alerts.map(toRow),
      format: 'JSONEachRow',
      // https://clickhouse.com/docs/operations/settings/settings#insert_deduplication_token
      clickhouse_settings: {
        insert_deduplication_token: ids.length === 1 ? ids[0] : createHash('sha256').update(ids.join('\n')).digest('hex'),
      },
    });
  }

  function announce(a: QuotaAlert): void {
    const level = a.kind === 'recovered' ? 'info' : 'warn';
    o.logger[level]({ event: 'quota.alert', ...a }, `quota ${a.quota_id}: ${a.kind} (${a.percent}% of ${a.limit} ${a.metric})`);
    o.webhook?.send({ id: a.alert_id, body: { type: QUOTA_ALERT_EVENT, alert: a } });
  }

  async function pass(): Promise<QuotaAlert[]> {
    const nowMs = now();
    if (!seeded) {
      try {
        for (const [id, s] of await loadStates(quotas)) states.set(id, s);
        seeded = true;
      } catch (err) {
        // Never evaluate without the stored state: that could re-fire alerts of the current window.
        o.logger.warn({ event: 'quota.alert.seed_failed', err }, 'reading stored quota alerts failed; retrying next pass');
        return [];
      }
    }
    const measured = await Promise.allSettled(quotas.map((q) => measureQuota(o.clickhouse, q, nowMs, false, measure)));
    const firing: Array<{ spec: QuotaSpec; status: QuotaStatus }> = [];
    measured.forEach((r, i) => {
      const spec = quotas[i] as QuotaSpec;
      if (r.status === 'rejected') {
        o.logger.warn({ event: 'quota.alert.measure_failed', quota_id: spec.id, err: r.reason }, 'measuring a quota failed');
        return;
      }
      o.metrics?.utilisation(spec.id, r.value.percent / 100); // percent: used / limit x 100, truncated to 2 decimals
      if (evaluateQuotaAlerts(spec, states.get(spec.id), r.value, nowMs).alerts.length > 0) firing.push({ spec, status: r.value });
    });
    if (firing.length === 0) return [];

    // Re-read the state of the quotas about to fire: another processor may have stored these alerts.
    let fresh: Map<string, QuotaAlertState | undefined>;
    try {
      fresh = await loadStates(firing.map((f) => f.spec));
    } catch (err) {
      o.logger.warn({ event: 'quota.alert.seed_failed', err }, 'reading stored quota alerts failed; retrying next pass');
      return [];
    }
    const stored: QuotaAlert[] = [];
    for (const { spec, status } of firing) {
      const before = fresh.get(spec.id);
      const { alerts, state } = evaluateQuotaAlerts(spec, before, status, nowMs);
      states.set(spec.id, before);
      if (alerts.length === 0) continue;
      try {
        await store(alerts);
      } catch (err) {
        o.logger.error(
          { event: 'quota.alert.store_failed', quota_id: spec.id, alert_ids: alerts.map((a) => a.alert_id), err },
          'storing quota alerts failed; retrying next pass',
        );
        continue;
      }
      states.set(spec.id, state);
      for (const a of alerts) announce(a);
      stored.push(...alerts);
    }
    return stored;
  }

  const evaluate = (): Promise<QuotaAlert[]> => {
    inFlight ??= pass()
      .catch((err: unknown) => {
        o.logger.error({ event: 'quota.alert.pass_failed', err }, 'quota alert pass failed');
        return [];
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };

  return {
    evaluate,
    start() {
      if (timer || stopping) return;
      void evaluate();
      timer = setInterval(() => void evaluate(), o.intervalMs);
      timer.unref();
    },
    stop() {
      stopping ??= (async () => {
        clearInterval(timer);
        await inFlight;
        await o.webhook?.stop();
      })();
      return stopping;
    },
  };
}

export interface QuotaAlertsDeps {
  clickhouse: ClickHouseClient;
  quotas: readonly QuotaSpec[];
  teams?: MeasureOptions['teams'];
  /** Config `alerts` (schemas/alerts.ts). */
  alerts: Readonly<AlertsConfig>;
  logger: Logger;
  metrics?: QuotaMetrics;
}

/**
 * Start the evaluator for the processor role, with a webhook sender when `alerts.webhook_url` is
 * set (config guarantees a secret with it). Undefined when no quota is measurable: nothing to do.
 */
export function startQuotaAlerts(d: QuotaAlertsDeps): QuotaAlertEvaluator | undefined {
  if (!d.quotas.some(measurableWith({ teams: d.teams ?? [] }))) return undefined;
  const webhook = webhookFromAlertsConfig(d.alerts, d.logger);
  const evaluator = createQuotaAlertEvaluator({
    clickhouse: d.clickhouse,
    quotas: d.quotas,
    ...(d.teams ? { teams: d.teams } : {}),
    logger: d.logger,
    intervalMs: d.alerts.interval_ms,
    ...(webhook ? { webhook } : {}),
    ...(d.metrics ? { metrics: d.metrics } : {}),
  });
  evaluator.start();
  return evaluator;
}
