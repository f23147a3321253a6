/**
 * LLM usage detectors (issue 5): what quota-burning failure looks like in the minute aggregates,
 * built on a streaming detector core (`StreamDetector`, processors/anomaly/detector.ts) that scores
 * one series point by point without look-ahead. Pure: minutes are fed in time order, per series;
 * the caller fills minutes with no calls as zeros (a quiet minute is data).
 *
 * Per series (one tenant, user, provider or model), each minute:
 * - `token_spike`: tokens (input + output) per minute anomalous, at least `minSpikeRatio` (default 2)
 *   times the baseline and at least `minTokens` (default 10,000) tokens.
 * - `spend_spike`: USD per minute anomalous, `minSpikeRatio` times the baseline and at least
 *   `minUsd` (default 0.05 USD) (series with priced calls).
 * - `short_request_burst` (the brief's "短时间内大量短请求"): requests per minute anomalous,
 *   `minSpikeRatio` times the baseline and at least `minBurstRequests` (default 20), while tokens
 *   per request fall below `burstTokensRatio` (default 0.5) of their rolling median: many more
 *   calls, each much smaller.
 * The floors keep sparse series (a user who calls twice an hour) from alarming on every call: a
 * spike must matter for a quota, not only be unusual.
 * - `error_spike` / `rate_limit_spike` (provider series): failed (error, timeout) or rate-limited
 *   calls per minute anomalous and above the baseline, with at least `minFailures` (default 5) of
 *   them and a failure share of at least `minFailureShare` (default 0.1) in that minute.
 * Separately, `LoopDetector` finds runaway loops: the same prompt_hash sent by one (user, task)
 * at least `threshold` times (default 20) within `windowMinutes` (default 10), or at least
 * `minuteThreshold` times (default 5) within one minute.
 *
 * Findings are per minute; processors/anomaly/episodes.ts groups them into one open anomaly per
 * series and kind.
 */
import { MINUTE_MS } from '../../domain/windows.ts';
import type { Finding, SeriesRef } from './episodes.ts';
import { RollingWindow } from './rolling-window.ts';

/** What a streaming detector says about one point. */
export interface PointScore {
  /** Anomaly score, 0..1. */
  score: number;
  /** Whether the point is labelled anomalous (the detector's threshold on the score). */
  anomalous: boolean;
  /** The detector's baseline for this point (e.g. the seasonal median), in the series' units. */
  expected: number;
}

/** A streaming detector over one series: points in time order, no look-ahead. */
export interface StreamDetector {
  update(timestampMs: number, value: number): PointScore;
}

export type DetectorFactory = () => StreamDetector;

/** One minute of one series, from `usage_minute` (summed over the series' rows). */
export interface MinutePoint {
  /** Start of the minute, epoch ms (UTC). */
  minuteMs: number;
  requests: number;
  /** input + output tokens. */
  tokens: number;
  /** USD, as a float: fine for scoring (exact sums stay in ClickHouse). */
  costUsd: number;
  /** Calls with status error or timeout. */
  failed: number;
  /** Calls with status rate_limited. */
  rateLimited: number;
}

export interface UsageDetectorOptions {
  /** Detector name stored with each anomaly, e.g. `robust-seasonal@1`. */
  detector: string;
  /** Tokens per request below this share of the rolling median, with a request surge: a burst. Default 0.5. */
  burstTokensRatio?: number;
  /** Minutes of tokens-per-request history behind the median. Default 1,440 (one day of busy minutes). */
  burstHistoryMinutes?: number;
  /** A spike is at least this many times the baseline (a baseline under 1 counts as 1). Default 2. */
  minSpikeRatio?: number;
  /**
   * A minute at least this many times the core's baseline is a spike (or a burst) even when the
   * core does not label it: an incident in bursty traffic is obvious in size before it is
   * unusual against the swings the core was calibrated on. Default 5; Infinity disables it.
   */
  hardRatio?: number;
  /** Fewest tokens in a minute for a token spike. Default 10,000. */
  minTokens?: number;
  /** Least USD in a minute for a spend spike. Default 0.05. */
  minUsd?: number;
  /** Fewest requests in a minute for a burst. Default 20. */
  minBurstRequests?: number;
  /** Fewest failed (or rate-limited) calls in a minute for a failure spike. Default 5. */
  minFailures?: number;
  /** Smallest failed share of the minute's calls for a failure spike. Default 0.1. */
  minFailureShare?: number;
  /** Which kinds this series watches. Default all minute kinds. */
  kinds?: ReadonlyArray<'token_spike' | 'spend_spike' | 'short_request_burst' | 'error_spike' | 'rate_limit_spike'>;
}

const MINUTE_KINDS = ['token_spike', 'spend_spike', 'short_request_burst', 'error_spike', 'rate_limit_spike'] as const;
type MinuteKind = (typeof MINUTE_KINDS)[number];

/** The minute detectors of one series. */
export class SeriesMonitor {
  private readonly tokens?: StreamDetector;
  private readonly spend?: StreamDetector;
  private readonly requests?: StreamDetector;
  private readonly failed?: StreamDetector;
  private readonly limited?: StreamDetector;
  private readonly perRequest: RollingWindow;
  private readonly o: Required<Omit<UsageDetectorOptions, 'kinds'>>;
  readonly kinds: ReadonlySet<MinuteKind>;
  private lastMinute = Number.NEGATIVE_INFINITY;

  constructor(
    readonly ref: SeriesRef,
    factory: DetectorFactory,
    options: UsageDetectorOptions,
  ) {
    this.o = {
      detector: options.detector,
      burstTokensRatio: options.burstTokensRatio ?? 0.5,
      burstHistoryMinutes: options.burstHistoryMinutes ?? 1_440,
      minSpikeRatio: options.minSpikeRatio ?? 2,
      hardRatio: options.hardRatio ?? 5,
      minTokens: options.minTokens ?? 10_000,
      minUsd: options.minUsd ?? 0.05,
      minBurstRequests: options.minBurstRequests ?? 20,
      minFailures: options.minFailures ?? 5,
      minFailureShare: options.minFailureShare ?? 0.1,
    };
    this.kinds = new Set(options.kinds ?? MINUTE_KINDS);
    if (this.kinds.has('token_spike')) this.tokens = factory();
    if (this.kinds.has('spend_spike')) this.spend = factory();
    if (this.kinds.has('short_request_burst')) this.requests = factory();
    if (this.kinds.has('error_spike')) this.failed = factory();
    if (this.kinds.has('rate_limit_spike')) this.limited = factory();
    this.perRequest = new RollingWindow(this.o.burstHistoryMinutes);
  }

  /**
   * Score one minute. Returns the findings of this minute and the kinds that were scored but not
   * anomalous (for episode resolution).
   * @throws RangeError when minutes go backwards.
   */
  update(p: MinutePoint): { findings: Finding[]; quiet: MinuteKind[] } {
    if (p.minuteMs <= this.lastMinute) throw new RangeError(`minutes must increase: ${p.minuteMs} after ${this.lastMinute}`);
    this.lastMinute = p.minuteMs;
    const findings: Finding[] = [];
    const quiet: MinuteKind[] = [];
    const found = (kind: MinuteKind, s: PointScore, actual: number, metric: string, details?: Record<string, unknown>) =>
      findings.push({
        ...this.ref,
        kind,
        detector: this.o.detector,
        minuteMs: p.minuteMs,
        score: s.score,
        expected: s.expected,
        actual,
        metric,
        ...(details ? { details } : {}),
      });
    const above = (s: PointScore, v: number) => s.anomalous && v > s.expected;
    const spike = (s: PointScore, v: number, floor: number, unit = 1) => {
      if (v < floor) return false;
      const base = Math.max(s.expected, unit);
      return (above(s, v) && v >= this.o.minSpikeRatio * base) || v >= this.o.hardRatio * base;
    };

    if (this.tokens) {
      const s = this.tokens.update(p.minuteMs, p.tokens);
      if (spike(s, p.tokens, this.o.minTokens)) found('token_spike', s, p.tokens, 'tokens_per_min');
      else quiet.push('token_spike');
    }
    if (this.spend) {
      const s = this.spend.update(p.minuteMs, p.costUsd);
      if (spike(s, p.costUsd, this.o.minUsd, 0.01)) found('spend_spike', s, p.costUsd, 'usd_per_min');
      else quiet.push('spend_spike');
    }
    if (this.requests) {
      const s = this.requests.update(p.minuteMs, p.requests);
      const tpr = p.requests > 0 ? p.tokens / p.requests : Number.NaN;
      const median = this.perRequest.size > 0 ? this.perRequest.median() : Number.NaN;
      const shorter = Number.isFinite(tpr) && Number.isFinite(median) && tpr < this.o.burstTokensRatio * median;
      if (spike(s, p.requests, this.o.minBurstRequests) && shorter)
        found('short_request_burst', s, p.requests, 'requests_per_min', {
          tokens_per_request: tpr,
          median_tokens_per_request: median,
        });
      else quiet.push('short_request_burst');
      // Only normal minutes feed the median, so a long burst does not become its own baseline.
      if (Number.isFinite(tpr) && !shorter) this.perRequest.push(tpr);
    }
    const failure = (det: StreamDetector | undefined, kind: 'error_spike' | 'rate_limit_spike', count: number) => {
      if (!det) return;
      const s = det.update(p.minuteMs, count);
      const share = p.requests > 0 ? count / p.requests : 0;
      if (above(s, count) && count >= this.o.minFailures && share >= this.o.minFailureShare)
        found(kind, s, count, kind === 'error_spike' ? 'failed_per_min' : 'rate_limited_per_min', { share });
      else quiet.push(kind);
    };
    failure(this.failed, 'error_spike', p.failed);
    failure(this.limited, 'rate_limit_spike', p.rateLimited);
    return { findings, quiet };
  }
}

/** Calls of one prompt by one (user, task) in one minute (usage_events grouped by prompt_hash). */
export interface PromptMinute {
  tenant: string;
  user_id: string;
  task_id: string;
  prompt_hash: string;
  minuteMs: number;
  calls: number;
}

export interface LoopDetectorOptions {
  detector: string;
  /** Calls of the same prompt within the window that make a loop. Default 20. */
  threshold?: number;
  /** Window length, minutes. Default 10. */
  windowMinutes?: number;
  /** Calls of the same prompt within one minute that make a loop on their own. Default 5. */
  minuteThreshold?: number;
}

/**
 * Runaway loops: the same prompt_hash from one (tenant, user, task) at least `threshold` times
 * within the last `windowMinutes` minutes (sliding), or at least `minuteThreshold` times in one
 * minute (an agent re-sending as fast as it gets answers is caught in its first minute). Score =
 * min(1, 0.5 + 0.5 x (r - 1)) with r the larger of n / threshold and m / minuteThreshold (n calls
 * in the window, m in this minute): 0.5 at a threshold, 1 at twice it. `expected` is the threshold
 * that was crossed, `actual` the count behind it.
 * Feed minutes in time order; the series is the (user, task) pair, so one loop is one episode
 * even when it cycles through several prompts.
 */
export class LoopDetector {
  private readonly threshold: number;
  private readonly windowMs: number;
  private readonly minuteThreshold: number;
  private readonly recent = new Map<string, PromptMinute[]>(); // prompt key -> minutes in the window

  constructor(private readonly options: LoopDetectorOptions) {
    this.threshold = options.threshold ?? 20;
    this.windowMs = (options.windowMinutes ?? 10) * MINUTE_MS;
    this.minuteThreshold = options.minuteThreshold ?? 5;
    if (!(this.threshold >= 2)) throw new RangeError(`threshold must be >= 2, got ${this.threshold}`);
    if (!(this.minuteThreshold >= 2)) throw new RangeError(`minuteThreshold must be >= 2, got ${this.minuteThreshold}`);
  }

  /** Series of a (user, task) pair. */
  static ref(m: Pick<PromptMinute, 'tenant' | 'user_id' | 'task_id'>): SeriesRef {
    return {
      tenant: m.tenant,
      dimension: 'task',
      series_key: `${m.user_id}/${m.task_id}`,
      ...(m.user_id ? { user_id: m.user_id } : {}),
    };
  }

  /** Add one prompt-minute; returns a finding when its prompt reaches the threshold in the window. */
  update(m: PromptMinute): Finding | undefined {
    if (!m.prompt_hash) return undefined; // calls without a prompt hash cannot be compared
    const key = [m.tenant, m.user_id, m.task_id, m.prompt_hash].join('\u0000');
    const list = (this.recent.get(key) ?? []).filter((x) => x.minuteMs > m.minuteMs - this.windowMs);
    list.push(m);
    this.recent.set(key, list);
    const n = list.reduce((sum, x) => sum + x.calls, 0);
    const rWindow = n / this.threshold;
    const rMinute = m.calls / this.minuteThreshold;
    if (rWindow < 1 && rMinute < 1) return undefined;
    const byWindow = rWindow >= rMinute;
    return {
      ...LoopDetector.ref(m),
      kind: 'runaway_loop',
      detector: this.options.detector,
      minuteMs: m.minuteMs,
      score: Math.min(1, 0.5 + 0.5 * (Math.max(rWindow, rMinute) - 1)),
      expected: byWindow ? this.threshold : this.minuteThreshold,
      actual: byWindow ? n : m.calls,
      metric: 'repeats',
      details: { prompt_hash: m.prompt_hash, window_minutes: this.windowMs / MINUTE_MS },
    };
  }

  /** Forget prompts with no call in the window before `nowMs` (bounded memory). */
  prune(nowMs: number): void {
    for (const [key, list] of this.recent) {
      if (list.every((x) => x.minuteMs <= nowMs - this.windowMs)) this.recent.delete(key);
    }
  }
}
