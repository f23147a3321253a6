/**
 * Continuous anomaly detection over the aggregates (issue 5), for the processor role and the
 * `quotaflow detect` command: read closed minutes from ClickHouse, score them with the usage
 * detectors (usage-detectors.ts), group findings into episodes (episodes.ts), store each episode
 * in `anomalies` and send a webhook when one opens and when it resolves.
 *
 * Timing: a minute is scored once `graceMs` (default 2 min) has passed since it ended, so batches
 * still in flight have landed. Usage that arrives later than that is counted in the aggregates but
 * not re-scored (the detectors never look back). The first run trains the detectors on the last
 * `warmupMs` (default 24 h) of history without notifying: episodes still open at its end are
 * stored (same id as before a restart: the row is replaced) but not sent again.
 *
 * Quota burn: each run also measures the quotas; a quota whose projected exhaustion
 * (domain/quota.ts) falls before its window ends is a `quota_burn` finding for the current minute,
 * score = 1 - (time to exhaustion / time to window end), so 0.9 means "runs out in the first tenth
 * of the time left".
 */
import type { Logger } from 'pino';
import type { QuotaStatus } from '../../domain/quota.ts';
import { MINUTE_MS } from '../../domain/windows.ts';
import type { AnomalyMetrics } from '../../observability/metrics.ts';
import type { QuotaSpec } from '../../schemas/quota.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import {
  type OpenAnomalyRow,
  openAnomalies,
  type PromptMinuteRow,
  promptMinutes,
  type SeriesMinuteRow,
  seriesMinutes,
} from '../../storage/queries/anomalies.ts';
import type { WebhookSender } from '../webhook.ts';
import { createDetector, type DetectorOptions } from './detector.ts';
import {
  ANOMALY_KINDS,
  type Anomaly,
  type AnomalyKind,
  type EpisodeChange,
  EpisodeTracker,
  type Finding,
  type SeriesRef,
} from './episodes.ts';
import { type DetectorFactory, LoopDetector, type MinutePoint, SeriesMonitor } from './usage-detectors.ts';

/** Webhook event type of anomaly notifications (docs/alerts.md). */
export const ANOMALY_EVENT = 'anomaly';
/** Name stored with anomalies scored by the core detector (bump the version when its tuning changes). */
export const CORE_DETECTOR_NAME = 'robust-seasonal@2';

/**
 * The core's tuning for minute usage series (its NAB defaults are for 5-minute machine metrics):
 * - memory: 4 hours of level baseline (240 points), 8 hours of baseline errors (480), a day of
 *   calibration (1,440) and 14 values per seasonal slot, instead of 1,000, 2,000, 6,000 and 84:
 *   there is one detector per series, metric and kind, and a user series with two kinds then
 *   holds about 0.56 MB instead of 2.3 MB (heap + array buffers over 200 series fed 3,000
 *   minutes; about 30 µs per series-minute);
 * - no damping of repeated scores (`cooldownPoints` 0): a second incident an hour after the first
 *   must alert again; the episode tracker already merges the minutes of one incident;
 * - a level shift only after 30 minutes (a runaway lasting a quarter of an hour must not become
 *   the new normal);
 * - alert score 0.4: the usage rules add their own conditions (twice the baseline, a floor in
 *   tokens, requests or USD), so the core may be more sensitive;
 * - hourly seasonal slots and no novelty feature (0.26 MB and 8 us per series-minute per core
 *   detector instead of 0.49 MB and 22 us), and no refractory period: the episode tracker merges
 *   the minutes of one incident, and with it bench:inject found 11 false token-spike episodes.
 * Chosen by measurement with `npm run bench:inject` (figures in docs/anomaly-detection.md): with
 * the NAB defaults, repeated bursts and storms were found once in two; with these, every injection.
 */
export const USAGE_DETECTOR_OPTIONS: Readonly<Partial<DetectorOptions>> = Object.freeze({
  baselinePoints: 240,
  errorPoints: 480,
  calibrationPoints: 1_440,
  slotValues: 14,
  cooldownPoints: 0,
  slotMinutes: 60,
  noveltyPoints: 0,
  refractoryPoints: 0,
  shiftPoints: 30,
  alertScore: 0.4,
});

/**
 * Streaming detectors for the usage series from the detector core (processors/anomaly/detector.ts,
 * tuned on NAB): label = the core's label; expected = the core's baseline (the value itself while
 * it is still learning, so nothing looks "above expected" then).
 */
export function coreDetectorFactory(options: Partial<DetectorOptions> = USAGE_DETECTOR_OPTIONS): DetectorFactory {
  return () => {
    const core = createDetector(options);
    return {
      update(t, v) {
        const r = core.update(t, v);
        return { score: r.score, anomalous: r.label, expected: Number.isNaN(r.expected) ? v : r.expected };
      },
    };
  };
}

export interface DetectionOptions {
  clickhouse: ClickHouseClient;
  /** Builds one streaming detector per series and metric. */
  detectorFactory: DetectorFactory;
  /** Stored with each anomaly, e.g. `robust-seasonal@1`. */
  detectorName: string;
  logger: Logger;
  webhook?: WebhookSender;
  /** Quotas to forecast, with the way to measure one (storage/quota-measure.ts). */
  quotas?: readonly QuotaSpec[];
  measure?: (spec: QuotaSpec, nowMs: number) => Promise<QuotaStatus>;
  /** Only this tenant (the CLI's --tenant). */
  tenant?: string;
  graceMs?: number;
  warmupMs?: number;
  resolveAfterMinutes?: number;
  loopThreshold?: number;
  loopWindowMinutes?: number;
  now?: () => number;
  /** Episodes opened and resolved, by kind, counted where they are notified (observability/metrics.ts). Default none. */
  metrics?: AnomalyMetrics;
}

export interface DetectionRun {
  /** Minutes scored, [fromMs, toMs). */
  fromMs: number;
  toMs: number;
  /** Episode changes of this run (opened, updated, resolved), in minute order. */
  changes: EpisodeChange[];
}

const num = (v: string | number) => (typeof v === 'number' ? v : Number(v));
const seriesId = (r: SeriesRef) => [r.tenant, r.dimension, r.series_key].join('\u0000');
const iso = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');

/** The `anomalies` row of an episode (JSONEachRow; DateTime64 as 'YYYY-MM-DD hh:mm:ss.sss' UTC). */
function row(a: Anomaly): Record<string, unknown> {
  return {
    anomaly_id: a.anomaly_id,
    tenant: a.tenant,
    kind: a.kind,
    detector: a.detector,
    dimension: a.dimension,
    series_key: a.series_key,
    user_id: a.user_id ?? '',
    provider: a.provider ?? '',
    model: a.model ?? '',
    window_start: iso(a.window_start_ms),
    window_end: iso(a.window_end_ms),
    score: a.score,
    expected: a.expected,
    actual: a.actual,
    metric: a.metric,
    status: a.status,
    details: JSON.stringify(a.details),
    detected_at: iso(a.detected_at_ms),
    updated_at: iso(a.updated_at_ms),
  };
}

/** The anomaly as the API and webhooks show it: times in RFC 3339 UTC. */
export function anomalyView(a: Anomaly) {
  const { window_start_ms, window_end_ms, detected_at_ms, updated_at_ms, ...rest } = a;
  return {
    ...rest,
    window_start: new Date(window_start_ms).toISOString(),
    window_end: new Date(window_end_ms).toISOString(),
    detected_at: new Date(detected_at_ms).toISOString(),
    updated_at: new Date(updated_at_ms).toISOString(),
  };
}

/** Detection state across runs (series monitors, loop windows, open episodes). */
export interface AnomalyDetection {
  /** Score every closed minute since the last run (the first run warms up); store and notify. */
  runOnce(): Promise<DetectionRun>;
  /** Score [fromMs, toMs) offline, training on the `warmupMs` before it; store, never notify. */
  scan(fromMs: number, toMs: number): Promise<DetectionRun>;
}

/** @throws RangeError on bad options (see EpisodeTracker, LoopDetector). */
export function createAnomalyDetection(o: DetectionOptions): AnomalyDetection {
  const now = o.now ?? Date.now;
  const graceMs = o.graceMs ?? 2 * MINUTE_MS;
  const warmupMs = o.warmupMs ?? 24 * 60 * MINUTE_MS;
  const tracker = new EpisodeTracker({ resolveAfterMinutes: o.resolveAfterMinutes ?? 5, now });
  const loops = new LoopDetector({
    detector: 'prompt-repeat@1',
    threshold: o.loopThreshold ?? 20,
    windowMinutes: o.loopWindowMinutes ?? 10,
  });
  const monitors = new Map<string, { monitor: SeriesMonitor; nextMinute: number }>();
  const loopSeries = new Map<string, SeriesRef>(); // (user, task) series with a loop episode open
  let scoredUpTo: number | undefined;
  o.metrics?.declareKinds(ANOMALY_KINDS);

  function monitorFor(r: SeriesMinuteRow, firstMinute: number) {
    const ref: SeriesRef = {
      tenant: r.tenant,
      dimension: r.dimension,
      series_key: r.series_key,
      ...(r.user_id ? { user_id: r.user_id } : {}),
      ...(r.provider ? { provider: r.provider } : {}),
      ...(r.model ? { model: r.model } : {}),
    };
    const id = seriesId(ref);
    let m = monitors.get(id);
    if (!m) {
      // Spend on tenants (USD is what budgets are in); failures on providers and models; tokens and bursts everywhere.
      const kinds =
        r.dimension === 'tenant'
          ? (['token_spike', 'spend_spike', 'short_request_burst'] as const)
          : r.dimension === 'provider' || r.dimension === 'model'
            ? (['token_spike', 'error_spike', 'rate_limit_spike'] as const)
            : (['token_spike', 'short_request_burst'] as const);
      m = { monitor: new SeriesMonitor(ref, o.detectorFactory, { detector: o.detectorName, kinds }), nextMinute: firstMinute };
      monitors.set(id, m);
    }
    return m;
  }

  async function rows<T>(built: { query: string; query_params: Record<string, unknown> }): Promise<T[]> {
    const rs = await o.clickhouse.query({ ...built, format: 'JSONEachRow' });
    return rs.json<T>();
  }

  /** Feed minutes [fromMs, toMs) to every series (gaps as zeros) and loops; returns the changes. */
  async function score(fromMs: number, toMs: number): Promise<EpisodeChange[]> {
    const filter = { fromMs, toMs, ...(o.tenant === undefined ? {} : { tenant: o.tenant }) };
    const [series, prompts] = await Promise.all([
      rows<SeriesMinuteRow>(seriesMinutes(filter)),
      rows<PromptMinuteRow>(promptMinutes(filter)),
    ]);
    const changes: EpisodeChange[] = [];
    const byMinute = new Map<number, SeriesMinuteRow[]>();
    for (const r of series) {
      const t = num(r.minute_ms);
      monitorFor(r, t);
      byMinute.set(t, [...(byMinute.get(t) ?? []), r]);
    }
    const promptsByMinute = new Map<number, PromptMinuteRow[]>();
    for (const p of prompts) {
      const t = num(p.minute_ms);
      promptsByMinute.set(t, [...(promptsByMinute.get(t) ?? []), p]);
    }
    const zero = (t: number): MinutePoint => ({ minuteMs: t, requests: 0, tokens: 0, costUsd: 0, failed: 0, rateLimited: 0 });
    for (let t = Math.floor(fromMs / MINUTE_MS) * MINUTE_MS; t < toMs; t += MINUTE_MS) {
      const present = new Map((byMinute.get(t) ?? []).map((r) => [seriesId(r as unknown as SeriesRef), r]));
      for (const [id, m] of monitors) {
        if (m.nextMinute > t) continue; // the series starts later
        const r = present.get(id);
        const p = r
          ? {
              minuteMs: t,
              requests: num(r.requests),
              tokens: num(r.tokens),
              costUsd: r.cost_usd,
              failed: num(r.failed),
              rateLimited: num(r.rate_limited),
            }
          : zero(t);
        m.nextMinute = t + MINUTE_MS;
        const { findings, quiet } = m.monitor.update(p);
        for (const f of findings) changes.push(tracker.anomalous(f));
        for (const kind of quiet) {
          const c = tracker.quiet(m.monitor.ref, kind, t);
          if (c) changes.push(c);
        }
      }
      // Loops: one finding per (user, task) per minute at most; quiet for open loop series otherwise.
      const looping = new Map<string, Finding>();
      for (const p of promptsByMinute.get(t) ?? []) {
        const f = loops.update({ ...p, minuteMs: t, calls: num(p.calls) });
        if (f && (looping.get(seriesId(f))?.score ?? -1) < f.score) looping.set(seriesId(f), f);
      }
      for (const [k, f] of looping) {
        loopSeries.set(k, f);
        changes.push(tracker.anomalous(f));
      }
      for (const [k, ref] of loopSeries) {
        if (looping.has(k)) continue;
        const c = tracker.quiet(ref, 'runaway_loop', t);
        if (c) {
          changes.push(c);
          loopSeries.delete(k);
        }
      }
      loops.prune(t);
    }
    return changes;
  }

  async function quotaBurn(nowMs: number): Promise<EpisodeChange[]> {
    if (!o.quotas?.length || !o.measure) return [];
    const minute = Math.floor(nowMs / MINUTE_MS) * MINUTE_MS;
    const out: EpisodeChange[] = [];
    for (const q of o.quotas) {
      if (o.tenant !== undefined && q.scope.tenant.normalize('NFC') !== o.tenant) continue;
      let s: QuotaStatus;
      try {
        s = await o.measure(q, nowMs);
      } catch (err) {
        o.logger.warn({ event: 'anomaly.quota_measure_failed', quota: q.id, err }, 'could not measure quota for the burn forecast');
        continue;
      }
      const ref: SeriesRef = { tenant: q.scope.tenant.normalize('NFC'), dimension: 'quota', series_key: q.id };
      const endMs = Date.parse(s.window_end);
      const atMs = s.projected_exhaustion_at === null ? null : Date.parse(s.projected_exhaustion_at);
      if (atMs !== null && s.state !== 'exhausted' && endMs > nowMs) {
        const toExhaustion = (atMs - nowMs) / MINUTE_MS;
        const toEnd = (endMs - nowMs) / MINUTE_MS;
        out.push(
          tracker.anomalous({
            ...ref,
            kind: 'quota_burn',
            detector: 'burn-forecast@1',
            minuteMs: minute,
            score: Math.max(0, Math.min(1, 1 - toExhaustion / toEnd)),
            expected: toEnd,
            actual: toExhaustion,
            metric: 'minutes_to_exhaustion',
            details: { quota_id: q.id, projected_exhaustion_at: s.projected_exhaustion_at, window_end: s.window_end, percent: s.percent },
          }),
        );
      } else {
        const c = tracker.quiet(ref, 'quota_burn', minute);
        if (c) out.push(c);
      }
    }
    return out;
  }

  /** Restore the stored open episodes into the tracker; returns their ids. */
  async function restoreOpen(): Promise<Set<string>> {
    const open = await rows<OpenAnomalyRow>(openAnomalies(o.tenant === undefined ? {} : { tenant: o.tenant }));
    for (const r of open) {
      const a: Anomaly = {
        anomaly_id: r.anomaly_id,
        tenant: r.tenant,
        kind: r.kind as AnomalyKind,
        detector: r.detector,
        dimension: r.dimension,
        series_key: r.series_key,
        ...(r.user_id ? { user_id: r.user_id } : {}),
        ...(r.provider ? { provider: r.provider } : {}),
        ...(r.model ? { model: r.model } : {}),
        window_start_ms: num(r.window_start_ms),
        window_end_ms: num(r.window_end_ms),
        score: r.score,
        expected: r.expected,
        actual: r.actual,
        metric: r.metric,
        status: 'open',
        details: JSON.parse(r.details) as Record<string, unknown>,
        detected_at_ms: num(r.detected_at_ms),
        updated_at_ms: num(r.updated_at_ms),
      };
      tracker.restore(a);
      if (a.kind === 'runaway_loop') loopSeries.set(seriesId(a), a);
    }
    return new Set(open.map((r) => r.anomaly_id));
  }

  async function store(changes: EpisodeChange[]): Promise<void> {
    if (changes.length === 0) return;
    // The latest version of each episode is enough: one row per anomaly_id per run.
    const latest = new Map<string, Anomaly>();
    for (const c of changes) latest.set(c.anomaly.anomaly_id, c.anomaly);
    const values = [...latest.values()].map(row);
    await o.clickhouse.insert({
      table: 'anomalies',
      values,
      format: 'JSONEachRow',
      clickhouse_settings: {
        insert_deduplication_token: [...latest.values()].map((a) => `${a.anomaly_id}:${a.updated_at_ms}`).join(','),
      },
    });
  }

  function notify(changes: EpisodeChange[]): void {
    for (const c of changes) {
      if (c.change === 'updated') continue;
      o.metrics?.changed(c.anomaly.kind, c.change);
      const view = anomalyView(c.anomaly);
      o.logger.warn({ event: `anomaly.${c.change}`, anomaly: view }, `anomaly ${c.change}: ${c.anomaly.kind} on ${c.anomaly.series_key}`);
      o.webhook?.send({ id: `${c.anomaly.anomaly_id}:${c.change}`, body: { type: ANOMALY_EVENT, change: c.change, anomaly: view } });
    }
  }

  return {
    async runOnce() {
      const nowMs = now();
      const toMs = Math.floor((nowMs - graceMs) / MINUTE_MS) * MINUTE_MS;
      if (scoredUpTo === undefined) {
        const fromMs = toMs - warmupMs;
        // Take over what an earlier process left open, so a restart never opens it again.
        const restored = await restoreOpen();
        const warm = await score(fromMs, toMs);
        warm.push(...tracker.resolveStale(toMs));
        scoredUpTo = toMs;
        const burn = await quotaBurn(nowMs);
        // Warm-up: store the episodes still open at its end (same ids: idempotent), notify only
        // the quota forecasts of now; what opened and resolved in the past stays quiet.
        // Restored episodes that resolved during the warm-up were announced as opened: announce the end.
        const last = new Map<string, EpisodeChange>();
        for (const c of warm) last.set(c.anomaly.anomaly_id, c);
        const stillOpen = [...last.values()].filter((c) => c.anomaly.status === 'open');
        const endedRestored = [...last.values()].filter((c) => c.change === 'resolved' && restored.has(c.anomaly.anomaly_id));
        await store([...stillOpen, ...endedRestored, ...burn]);
        notify([...endedRestored, ...burn]);
        return { fromMs, toMs, changes: [...stillOpen, ...endedRestored, ...burn] };
      }
      const fromMs = scoredUpTo;
      const changes = toMs > fromMs ? await score(fromMs, toMs) : [];
      scoredUpTo = Math.max(scoredUpTo, toMs);
      changes.push(...tracker.resolveStale(toMs));
      changes.push(...(await quotaBurn(nowMs)));
      await store(changes);
      notify(changes);
      return { fromMs, toMs, changes };
    },
    async scan(fromMs, toMs) {
      await score(fromMs - warmupMs, fromMs);
      const changes = await score(fromMs, toMs);
      scoredUpTo = toMs;
      await store(changes);
      return { fromMs, toMs, changes };
    },
  };
}
