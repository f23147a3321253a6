/**
 * Anomaly episodes (issue 5): turn per-minute findings into at most one open anomaly per series
 * and kind, so a spike that lasts 20 minutes is one anomaly (one webhook when it opens, one when it
 * resolves), not 20. Pure: no I/O; minutes are passed in, in order, per series.
 *
 * An episode opens at the first anomalous minute of a series and kind, grows while anomalous
 * minutes follow (quiet minutes in between are allowed), keeps the peak (highest score) with its
 * expected and actual values, and resolves after `resolveAfterMinutes` quiet minutes in a row
 * (default 5): `window_end` is then the end of its last anomalous minute. Its id hashes tenant,
 * kind, dimension, series key and the start minute, so replaying the same minutes (a restart)
 * gives the same id and the stored row is replaced, not duplicated (schemas/clickhouse/0005).
 */
import { createHash } from 'node:crypto';
import { MINUTE_MS } from '../../domain/windows.ts';

/** Kinds of anomaly, as stored in `anomalies.kind`. */
export const ANOMALY_KINDS = [
  'token_spike',
  'spend_spike',
  'short_request_burst',
  'runaway_loop',
  'error_spike',
  'rate_limit_spike',
  'quota_burn',
] as const;
export type AnomalyKind = (typeof ANOMALY_KINDS)[number];

/** Which series an anomaly belongs to: one (tenant, dimension, key). */
export interface SeriesRef {
  tenant: string;
  /** tenant | user | model | provider | task | prompt | quota */
  dimension: string;
  /** The key within the dimension: a user id, `provider/model`, a quota id ... (the tenant itself for `tenant`). */
  series_key: string;
  user_id?: string;
  provider?: string;
  model?: string;
}

/** One anomalous minute of one series, as a detector reports it. */
export interface Finding extends SeriesRef {
  kind: AnomalyKind;
  detector: string;
  /** Start of the minute, epoch ms (UTC). */
  minuteMs: number;
  /** 0..1. */
  score: number;
  /** Baseline of the metric at this minute, in `metric` units. */
  expected: number;
  actual: number;
  metric: string;
  details?: Record<string, unknown>;
}

/** One episode, shaped like a row of `anomalies` (times as epoch ms; the store formats them). */
export interface Anomaly extends SeriesRef {
  anomaly_id: string;
  kind: AnomalyKind;
  detector: string;
  window_start_ms: number;
  window_end_ms: number;
  score: number;
  expected: number;
  actual: number;
  metric: string;
  status: 'open' | 'resolved';
  details: Record<string, unknown>;
  detected_at_ms: number;
  updated_at_ms: number;
}

/** What changed at one minute: `opened` and `resolved` are notified (webhook), `updated` only stored. */
export interface EpisodeChange {
  change: 'opened' | 'updated' | 'resolved';
  anomaly: Anomaly;
}

/** sha256 hex of the episode's identity: the same minutes always give the same id. */
export function anomalyId(ref: SeriesRef, kind: AnomalyKind, startMs: number): string {
  return createHash('sha256')
    .update([ref.tenant, kind, ref.dimension, ref.series_key, String(startMs)].join('\u0000'), 'utf8')
    .digest('hex');
}

interface Open {
  anomaly: Anomaly;
  quiet: number;
}

const keyOf = (ref: SeriesRef, kind: AnomalyKind) => [ref.tenant, kind, ref.dimension, ref.series_key].join('\u0000');

export interface EpisodeTrackerOptions {
  /** Quiet minutes in a row that resolve an open episode. Default 5. */
  resolveAfterMinutes?: number;
  /** Wall-clock time for detected_at / updated_at, epoch ms. Default Date.now. */
  now?: () => number;
}

/**
 * Tracks open episodes across series. Call `anomalous(finding)` for each anomalous minute and
 * `quiet(ref, kind, minuteMs)` for each scored minute that was not, per series in time order.
 */
export class EpisodeTracker {
  private readonly open = new Map<string, Open>();
  private readonly resolveAfter: number;
  private readonly now: () => number;

  constructor(options: EpisodeTrackerOptions = {}) {
    this.resolveAfter = options.resolveAfterMinutes ?? 5;
    if (!Number.isInteger(this.resolveAfter) || this.resolveAfter < 1)
      throw new RangeError(`resolveAfterMinutes must be a whole number >= 1, got ${this.resolveAfter}`);
    this.now = options.now ?? Date.now;
  }

  /** Open episodes, for the `anomalies` gauge and for tests. */
  get openCount(): number {
    return this.open.size;
  }

  /**
   * Take over an episode stored as open by an earlier process (a restart): later findings of its
   * series and kind extend it (same id, no second `opened`) and quiet minutes resolve it. Ignored
   * when an episode of that series and kind is already open here.
   */
  restore(a: Anomaly): void {
    const key = keyOf(a, a.kind);
    if (!this.open.has(key)) this.open.set(key, { anomaly: { ...a, status: 'open' }, quiet: 0 });
  }

  /**
   * Resolve the open episodes whose last anomalous minute ended `resolveAfterMinutes` or more
   * before `nowMs`: series that are no longer scored at all (a series with no calls left in the
   * window of a restart's warm-up) would otherwise stay open forever.
   */
  resolveStale(nowMs: number): EpisodeChange[] {
    const out: EpisodeChange[] = [];
    for (const [key, o] of this.open) {
      if (o.anomaly.window_end_ms + this.resolveAfter * MINUTE_MS > nowMs) continue;
      this.open.delete(key);
      o.anomaly.status = 'resolved';
      o.anomaly.updated_at_ms = Math.max(this.now(), o.anomaly.updated_at_ms + 1);
      out.push({ change: 'resolved', anomaly: { ...o.anomaly } });
    }
    return out;
  }

  /** An anomalous minute: opens an episode, or extends the open one (and raises its peak). */
  anomalous(f: Finding): EpisodeChange {
    const key = keyOf(f, f.kind);
    const t = this.now();
    const current = this.open.get(key);
    if (!current) {
      const { kind, detector, minuteMs, score, expected, actual, metric, details, ...ref } = f;
      const anomaly: Anomaly = {
        ...ref,
        anomaly_id: anomalyId(f, kind, minuteMs),
        kind,
        detector,
        window_start_ms: minuteMs,
        window_end_ms: minuteMs + MINUTE_MS,
        score,
        expected,
        actual,
        metric,
        status: 'open',
        details: details ?? {},
        detected_at_ms: t,
        updated_at_ms: t,
      };
      this.open.set(key, { anomaly, quiet: 0 });
      return { change: 'opened', anomaly: { ...anomaly } };
    }
    const a = current.anomaly;
    current.quiet = 0;
    a.window_end_ms = Math.max(a.window_end_ms, f.minuteMs + MINUTE_MS);
    if (f.score > a.score) {
      a.score = f.score;
      a.expected = f.expected;
      a.actual = f.actual;
      a.details = f.details ?? a.details;
    }
    a.updated_at_ms = Math.max(t, a.updated_at_ms + 1); // a later version than the stored row
    return { change: 'updated', anomaly: { ...a } };
  }

  /** A scored minute that was not anomalous: counts towards resolving an open episode. */
  quiet(ref: SeriesRef, kind: AnomalyKind, _minuteMs: number): EpisodeChange | undefined {
    const key = keyOf(ref, kind);
    const current = this.open.get(key);
    if (!current) return undefined;
    current.quiet++;
    if (current.quiet < this.resolveAfter) return undefined;
    this.open.delete(key);
    const a = current.anomaly;
    a.status = 'resolved';
    a.updated_at_ms = Math.max(this.now(), a.updated_at_ms + 1);
    return { change: 'resolved', anomaly: { ...a } };
  }
}
