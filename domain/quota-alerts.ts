/**
 * Quota threshold alerts (issue 4): a per-quota state machine that turns successive quota
 * statuses (domain/quota.ts) into alerts that fire once, not on every evaluation. Pure: no I/O,
 * and the current time is passed in (epoch ms).
 *
 * Kinds:
 * - `soft`: usage reached the soft threshold (used >= soft_threshold x limit);
 * - `hard`: usage reached the hard limit (used >= limit);
 * - `recovered`: usage is back below the soft threshold after a soft or hard alert, including
 *   the first evaluation of a new calendar window after a window that ended soft or exhausted.
 * Jumping from ok to exhausted in one evaluation fires `soft` then `hard`.
 *
 * Each alert belongs to a period, and fires at most once per (quota, period, kind):
 * - calendar quota: the period is the calendar window (its start). A new window starts afresh:
 *   a quota that is still soft in the next window fires `soft` again, for that window.
 * - rolling quota: the window slides with now, so there is no window to key on. The period is an
 *   EPISODE: it opens at the first evaluation that finds the quota soft or exhausted while no
 *   episode is open, and closes with `recovered`. Its start is that evaluation's UTC minute
 *   (floored, the granularity of the usage aggregates, so processors evaluating in the same minute
 *   agree), moved to the minute after the previous episode's start when that minute is taken (a
 *   quota that recovers and re-crosses within one minute). So a rolling quota fires `soft` again
 *   only after it recovered.
 *
 * The state is exactly what the stored alerts say (`alertStateFromLog`): it changes only when an
 * alert fires, so a restarted evaluator rebuilt from the `quota_alerts` table resumes where it left.
 */
import { createHash } from 'node:crypto';
import { DEFAULT_SOFT_THRESHOLD, type QuotaSpec } from '../schemas/quota.ts';
import type { QuotaState, QuotaStatus } from './quota.ts';
import { parseRfc3339 } from './usage-event-validation.ts';
import { MINUTE_MS, windowStart } from './windows.ts';

export const ALERT_KINDS = ['soft', 'hard', 'recovered'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

/** The alert state of one quota: its current period and what fired in it. */
export interface QuotaAlertState {
  /** Start of the current period, epoch ms (UTC): calendar = window start, rolling = episode start. */
  window_start_ms: number;
  /** The level the last alert announced: soft after `soft`, exhausted after `hard`, ok after `recovered`. */
  level: QuotaState;
  /** The kinds already fired in this period, in firing order. */
  fired: readonly AlertKind[];
}

interface QuotaAlertCommon {
  /** sha256 hex of (tenant, quota id, period start ms, kind): the same alert always gets the same id. */
  alert_id: string;
  kind: AlertKind;
  quota_id: string;
  /** Scope of the quota, as the usage tables store ids: tenant, user and team in NFC, provider lower-cased; null = any. */
  tenant: string;
  user_id: string | null;
  team: string | null;
  provider: string | null;
  /** used / limit x 100, truncated to 2 decimals (QuotaStatus.percent). */
  percent: number;
  /** Share of the limit at which the quota turns soft, 0..1 (default 0.8). */
  soft_threshold: number;
  window_kind: 'calendar' | 'rolling';
  /** The measured window, RFC 3339 UTC, [start, end): for a rolling quota, the N minutes before fired_at. */
  window_start: string;
  window_end: string;
  /** Start of the alert's period, RFC 3339 UTC: calendar = window_start, rolling = the episode's start. */
  episode_start: string;
  /** When the evaluator fired the alert, RFC 3339 UTC. */
  fired_at: string;
}

/**
 * One alert. `used` and `limit` are in the quota's metric, typed as in QuotaStatus: whole numbers
 * for tokens and requests, exact decimal strings (USD) for usd.
 */
export type QuotaAlert = QuotaAlertCommon &
  ({ metric: 'usd'; used: string; limit: string } | { metric: 'tokens' | 'requests'; used: number; limit: number });

export interface AlertEvaluation {
  /** Alerts to fire, in order (soft before hard). Empty most of the time. */
  alerts: QuotaAlert[];
  /** The state after these alerts; the previous state (or undefined) when nothing fired. */
  state: QuotaAlertState | undefined;
}

const LEVEL_AFTER: Record<AlertKind, QuotaState> = { soft: 'soft', hard: 'exhausted', recovered: 'ok' };
const KIND_RANK: Record<AlertKind, number> = { soft: 0, hard: 1, recovered: 2 };
const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The deterministic id of an alert: lower-case hex sha256 of
 * `tenant \0 quota_id \0 period start (epoch ms, decimal) \0 kind`. A restarted or second
 * evaluator computing the same alert gets the same id, which the table and receivers dedupe on.
 */
export function alertId(tenant: string, quotaId: string, periodStartMs: number, kind: AlertKind): string {
  return createHash('sha256').update(`${tenant}\u0000${quotaId}\u0000${periodStartMs}\u0000${kind}`).digest('hex');
}

/**
 * Run the state machine for one quota: `prev` is its alert state (undefined: never alerted),
 * `status` its fresh status measured at `nowMs` (epoch ms). Rules, per period (see the module doc):
 * - status soft or exhausted: fire `soft` unless fired in this period; exhausted also fires
 *   `hard` unless fired in this period. A rolling quota with no open episode opens one.
 * - status ok: fire `recovered` when the last alert announced soft or exhausted (an open rolling
 *   episode, or a calendar quota whose last alert, in this or an earlier window, was soft or hard),
 *   unless `recovered` already fired in this calendar window.
 * @throws RangeError when the status is of another quota, nowMs is not finite, or a status time is not RFC 3339.
 */
export function evaluateQuotaAlerts(
  spec: QuotaSpec,
  prev: QuotaAlertState | undefined,
  status: QuotaStatus,
  nowMs: number,
): AlertEvaluation {
  if (status.id !== spec.id) throw new RangeError(`status of quota ${status.id} given for quota ${spec.id}`);
  if (!Number.isFinite(nowMs)) throw new RangeError(`now must be finite epoch ms, got ${nowMs}`);
  const open = prev !== undefined && prev.level !== 'ok';

  let periodStartMs: number;
  let fired: readonly AlertKind[];
  if (spec.window.kind === 'calendar') {
    periodStartMs = parseTime('status.window_start', status.window_start);
    fired = prev?.window_start_ms === periodStartMs ? prev.fired : [];
  } else if (open) {
    periodStartMs = prev.window_start_ms;
    fired = prev.fired;
  } else {
    const minute = windowStart(Math.floor(nowMs), MINUTE_MS);
    periodStartMs = prev === undefined ? minute : Math.max(minute, prev.window_start_ms + MINUTE_MS);
    fired = [];
  }

  const kinds: AlertKind[] = [];
  if (status.state === 'ok') {
    if (open && !fired.includes('recovered')) kinds.push('recovered');
  } else {
    if (!fired.includes('soft')) kinds.push('soft');
    if (status.state === 'exhausted' && !fired.includes('hard')) kinds.push('hard');
  }
  if (kinds.length === 0) return { alerts: [], state: prev };

  const tenant = spec.scope.tenant.normalize('NFC');
  const common = {
    quota_id: spec.id,
    tenant,
    user_id: spec.scope.user_id?.normalize('NFC') ?? null,
    team: spec.scope.team?.normalize('NFC') ?? null,
    provider: spec.scope.provider?.toLowerCase() ?? null,
    percent: status.percent,
    soft_threshold: spec.soft_threshold ?? DEFAULT_SOFT_THRESHOLD,
    window_kind: spec.window.kind,
    window_start: status.window_start,
    window_end: status.window_end,
    episode_start: iso(periodStartMs),
    fired_at: iso(nowMs),
  };
  const amounts =
    status.metric === 'usd'
      ? { metric: status.metric, used: status.used, limit: status.limit }
      : { metric: status.metric, used: status.used, limit: status.limit };
  const alerts: QuotaAlert[] = kinds.map((kind) => ({
    alert_id: alertId(tenant, spec.id, periodStartMs, kind),
    kind,
    ...common,
    ...amounts,
  }));
  return { alerts, state: { window_start_ms: periodStartMs, level: status.state, fired: [...fired, ...kinds] } };
}

/** One stored alert of a quota, as far as its state is concerned (a row of `quota_alerts`). */
export interface StoredAlert {
  kind: string;
  /** Period start, epoch ms. */
  episode_start_ms: number;
  /** Epoch ms. */
  fired_at_ms: number;
}

/**
 * The alert state that a quota's stored alerts imply (undefined when there are none): the latest
 * period, the kinds fired in it, and the level announced by its last alert (by fired_at; within
 * one evaluation soft comes before hard). Alerts of earlier periods are ignored.
 * @throws RangeError on an unknown kind or a non-finite time.
 */
export function alertStateFromLog(alerts: readonly StoredAlert[]): QuotaAlertState | undefined {
  let latest = Number.NEGATIVE_INFINITY;
  for (const a of alerts) {
    if (!(ALERT_KINDS as readonly string[]).includes(a.kind)) throw new RangeError(`unknown alert kind ${JSON.stringify(a.kind)}`);
    if (!Number.isFinite(a.episode_start_ms) || !Number.isFinite(a.fired_at_ms)) {
      throw new RangeError(`alert times must be finite epoch ms, got ${a.episode_start_ms} and ${a.fired_at_ms}`);
    }
    latest = Math.max(latest, a.episode_start_ms);
  }
  const period = alerts
    .filter((a) => a.episode_start_ms === latest)
    .map((a) => ({ ...a, kind: a.kind as AlertKind }))
    .sort((x, y) => x.fired_at_ms - y.fired_at_ms || KIND_RANK[x.kind] - KIND_RANK[y.kind]);
  const last = period.at(-1);
  if (last === undefined) return undefined;
  return { window_start_ms: latest, level: LEVEL_AFTER[last.kind], fired: [...new Set(period.map((a) => a.kind))] };
}

function parseTime(name: string, text: string): number {
  const ms = parseRfc3339(text);
  if (ms === null) throw new RangeError(`${name} must be an RFC 3339 date-time, got ${JSON.stringify(text)}`);
  return ms;
}
