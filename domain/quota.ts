/**
 * Quota windows and quota status (SPEC.md sections 3 and 4, issue 4). Pure: no I/O, and the
 * current time is always passed in (epoch ms), so the same inputs give the same answer.
 *
 * Windows are half-open intervals [start, end) of epoch ms: usage in a window is the usage whose
 * event time t satisfies start <= t < end. Calendar windows are aligned in the quota's IANA time
 * zone: a day runs from local midnight to the next local midnight (23 or 25 hours on a DST change),
 * a week from Monday 00:00 local (ISO 8601), a month from the 1st 00:00 local. Rolling windows are
 * the last N minutes before now.
 *
 * Amounts are in the quota's metric: tokens, requests (both whole numbers) or USD (exact decimals,
 * compared with decimal.js so 80% of $12.50 is exactly $10 and never 9.999999).
 */
import { Decimal as DecimalJs } from 'decimal.js';
import { DateTime, type DurationLikeObject } from 'luxon';
import {
  type CalendarUnit,
  DEFAULT_SOFT_THRESHOLD,
  DEFAULT_TIME_ZONE,
  type QuotaMetric,
  type QuotaScope,
  type QuotaSpec,
  type QuotaWindowSpec,
} from '../schemas/quota.ts';
import { HOUR_MS, MINUTE_MS, windowStart } from './windows.ts';

// 40 significant digits: a USD amount up to 1e15 with 12 decimals needs 27; sums and products never round.
const Decimal = DecimalJs.clone({ precision: 40 });
type Decimal = InstanceType<typeof Decimal>;

/** Default look-back for the burn rate when the caller gives usage over a recent window: 15 minutes. */
export const DEFAULT_BURN_WINDOW_MS = 15 * MINUTE_MS;

/** A half-open interval [startMs, endMs) of epoch ms (UTC). */
export interface QuotaInterval {
  startMs: number;
  endMs: number;
}

const ONE: Record<CalendarUnit, DurationLikeObject> = {
  minute: { minutes: 1 },
  hour: { hours: 1 },
  day: { days: 1 },
  week: { weeks: 1 },
  month: { months: 1 },
};
const UTC_FIXED_MS: Partial<Record<CalendarUnit, number>> = { minute: MINUTE_MS, hour: HOUR_MS, day: 24 * HOUR_MS };

/**
 * The window of `window` that holds `nowMs`.
 *
 * - calendar: [start of the current unit, start of the next unit) in the window's time zone
 *   (default UTC). Day = local midnight to the next local midnight, so a DST day is 23 or 25 hours
 *   long; where a DST change skips midnight itself (America/Santiago) the day starts at the first
 *   local instant of that date. Week = ISO week, Monday 00:00 local. Month = 1st 00:00 local.
 *   Hours follow local hours, so in Asia/Kolkata (+05:30) they start at :30 UTC.
 * - rolling: [nowMs - minutes, nowMs): the last N minutes, ending now.
 *
 * A calendar result stays valid for every now in [startMs, endMs), so callers may cache it until endMs.
 * @throws RangeError when nowMs is not finite or the time zone is unknown.
 */
export function quotaWindow(window: QuotaWindowSpec, nowMs: number): QuotaInterval {
  if (!Number.isFinite(nowMs)) throw new RangeError(`now must be finite epoch ms, got ${nowMs}`);
  if (window.kind === 'rolling') {
    if (!Number.isInteger(window.minutes) || window.minutes < 1) {
      throw new RangeError(`rolling window must be a positive whole number of minutes, got ${window.minutes}`);
    }
    return { startMs: nowMs - window.minutes * MINUTE_MS, endMs: nowMs };
  }
  const zone = window.time_zone ?? DEFAULT_TIME_ZONE;
  const fixed = UTC_FIXED_MS[window.unit];
  if (fixed !== undefined && (zone === 'UTC' || zone === 'Etc/UTC')) {
    // Fast path: UTC minutes, hours and days are fixed-length and aligned to the Unix epoch.
    const startMs = windowStart(Math.floor(nowMs), fixed);
    return { startMs, endMs: startMs + fixed };
  }
  const now = DateTime.fromMillis(nowMs, { zone });
  if (!now.isValid) throw new RangeError(`unknown time zone: ${JSON.stringify(zone)} (${now.invalidExplanation ?? now.invalidReason})`);
  const unit = window.unit;
  // TRICKY: the end is the start of the *next* unit, not start + 1 unit: when DST skipped the
  // start's local time (a day starting at 01:00), start + 1 day would end the window at 01:00 too.
  // And where the clock falls back by less than the unit (Australia/Lord_Howe, 30 min), start + 1 hour
  // is still inside the same local hour: step on until the next unit's start is past ours.
  let probe = now.startOf(unit, { useLocaleWeeks: false });
  const startMs = probe.toMillis();
  let endMs = startMs;
  while (endMs <= startMs) {
    probe = probe.plus(ONE[unit]);
    endMs = probe.startOf(unit, { useLocaleWeeks: false }).toMillis();
  }
  return { startMs, endMs };
}

export type QuotaState = 'ok' | 'soft' | 'exhausted';

export interface QuotaUsageInput {
  /**
   * Usage inside the current window [window start, window end) in the quota's metric: tokens,
   * requests, or USD. A string is read as an exact decimal (ClickHouse returns UInt64 and Decimal
   * as strings); pass USD as a string to keep it exact.
   */
  usedInWindow: number | string;
  /** Current time, epoch ms. */
  nowMs: number;
  /** Length of the recent look-back that `usedInBurnWindow` covers, ms. Default 15 minutes. */
  burnWindowMs?: number;
  /**
   * Usage in [nowMs - burnWindowMs, nowMs), same unit as `usedInWindow`. When absent the burn rate
   * is the average since the calendar window started (used / elapsed), or for a rolling window
   * the window's average (used / N minutes).
   */
  usedInBurnWindow?: number | string;
}

interface QuotaStatusCommon {
  id: string;
  /** used / limit x 100, truncated (not rounded) to 2 decimals: 100 is shown only when exhausted. May exceed 100. */
  percent: number;
  /** exhausted: used >= limit; soft: used >= soft_threshold x limit; else ok. Exact comparisons. */
  state: QuotaState;
  /** Window start, RFC 3339 UTC (inclusive). */
  window_start: string;
  /** Window end, RFC 3339 UTC (exclusive); for a rolling window, now. */
  window_end: string;
  /**
   * When the limit will be reached at the current burn rate, RFC 3339 UTC, or null when the burn
   * rate is 0, the quota is already exhausted, or it would happen at or after the window resets.
   * Calendar: now + remaining / burn rate (rounded up to the ms), before window_end.
   * Rolling: usage leaving the window is taken as spread evenly over it (used / N per minute), so
   * usage grows at burn rate - used / N; exhaustion is now + remaining / that net rate, within N minutes.
   */
  projected_exhaustion_at: string | null;
  /**
   * When exhausted, seconds (rounded up, >= 1) until usage may be allowed again, else null.
   * Calendar: until window_end. Rolling: an estimate, with the same evenly-spread assumption, of
   * when enough usage has aged out to fall below the limit if no more is added: (used - limit) / (used / N).
   */
  retry_after_s: number | null;
}

/**
 * The status of one quota at one instant. For `usd` the amounts are exact decimal strings in USD
 * (no exponent, no trailing zeros); for `tokens` and `requests` they are numbers.
 * remaining = max(0, limit - used). `burn_rate_per_hour` is recent consumption in metric units
 * per hour (see QuotaUsageInput.usedInBurnWindow), in the same form as the other amounts: for
 * `usd` a decimal string rounded (half up) to 12 decimals, pico-USD, the precision of stored
 * costs; for tokens and requests a number rounded to 6 decimals.
 */
export type QuotaStatus = QuotaStatusCommon &
  (
    | { metric: 'usd'; used: string; limit: string; remaining: string; burn_rate_per_hour: string }
    | { metric: 'tokens' | 'requests'; used: number; limit: number; remaining: number; burn_rate_per_hour: number }
  );

const DECIMAL_TEXT = /^[0-9]+(\.[0-9]+)?$/;

/** A non-negative amount as an exact decimal. @throws RangeError on a negative, non-finite or malformed amount. */
function amount(name: string, v: number | string): Decimal {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`${name} must be a finite number >= 0, got ${v}`);
    return new Decimal(v);
  }
  if (typeof v !== 'string' || !DECIMAL_TEXT.test(v))
    throw new RangeError(`${name} must be a decimal string >= 0, got ${JSON.stringify(v)}`);
  return new Decimal(v);
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Status of `spec` at `input.nowMs`, given the usage the caller counted in the current window
 * (see `quotaWindow`) and, optionally, in a recent burn window. Formulas (all exact decimals):
 *
 * - remaining = max(0, limit - used); percent = trunc2(used / limit x 100)
 * - burn rate (units/hour) = usedInBurnWindow / burnWindowMs x 3,600,000
 * - projected_exhaustion_at = now + remaining / burn rate (calendar; see QuotaStatus for rolling)
 * - retry_after_s = ceil((window_end - now) / 1000) when exhausted (calendar)
 *
 * @throws RangeError on a negative or malformed amount, a non-positive burn window or a bad limit.
 */
export function quotaStatus(spec: QuotaSpec, input: QuotaUsageInput): QuotaStatus {
  const { nowMs } = input;
  const { startMs, endMs } = quotaWindow(spec.window, nowMs);
  const used = amount('usedInWindow', input.usedInWindow);
  const limit = amount(`quota ${spec.id} limit`, spec.limit);
  if (limit.lte(0)) throw new RangeError(`quota ${spec.id} limit must be > 0, got ${spec.limit}`);
  const soft = new Decimal(spec.soft_threshold ?? DEFAULT_SOFT_THRESHOLD);

  const state: QuotaState = used.gte(limit) ? 'exhausted' : used.gte(limit.mul(soft)) ? 'soft' : 'ok';
  const remaining = Decimal.max(limit.sub(used), 0);
  const percent = used.mul(100).div(limit).toDecimalPlaces(2, Decimal.ROUND_DOWN).toNumber();

  // The burn rate as (amount consumed, over this many ms), kept exact for the projection.
  let burnUsed: Decimal;
  let burnMs: number;
  if (input.usedInBurnWindow !== undefined) {
    burnUsed = amount('usedInBurnWindow', input.usedInBurnWindow);
    burnMs = input.burnWindowMs ?? DEFAULT_BURN_WINDOW_MS;
    if (!Number.isFinite(burnMs) || burnMs <= 0) throw new RangeError(`burnWindowMs must be > 0, got ${burnMs}`);
  } else {
    burnUsed = used;
    burnMs = spec.window.kind === 'rolling' ? endMs - startMs : nowMs - startMs;
  }
  const ratePerMs = burnMs > 0 ? burnUsed.div(burnMs) : new Decimal(0);

  let projectedMs: number | null = null;
  let retryAfterS: number | null = null;
  if (spec.window.kind === 'calendar') {
    if (state === 'exhausted') retryAfterS = Math.max(1, Math.ceil((endMs - nowMs) / 1000));
    else if (ratePerMs.gt(0)) {
      const at = nowMs + remaining.div(ratePerMs).ceil().toNumber();
      projectedMs = at < endMs ? at : null;
    }
  } else {
    const lengthMs = endMs - startMs;
    const agingPerMs = used.div(lengthMs); // usage leaving the window per ms, if spread evenly
    if (state === 'exhausted') {
      retryAfterS = Math.max(1, Math.ceil(used.sub(limit).div(agingPerMs).div(1000).toNumber()));
    } else {
      const netPerMs = ratePerMs.sub(agingPerMs);
      if (netPerMs.gt(0)) {
        const afterMs = remaining.div(netPerMs).ceil().toNumber();
        projectedMs = afterMs <= lengthMs ? nowMs + afterMs : null;
      }
    }
  }

  const burnPerHour = ratePerMs.mul(HOUR_MS);
  const rest = {
    percent,
    state,
    window_start: iso(startMs),
    window_end: iso(endMs),
    projected_exhaustion_at: projectedMs === null ? null : iso(projectedMs),
    retry_after_s: retryAfterS,
  } satisfies Omit<QuotaStatusCommon, 'id'>;
  const metric: QuotaMetric = spec.metric;
  // Key order as documented: id, metric, used, limit, remaining, then the rest (burn rate first).
  if (metric === 'usd') {
    const burn_rate_per_hour = burnPerHour.toDecimalPlaces(12).toFixed();
    return {
      id: spec.id,
      metric,
      used: used.toFixed(),
      limit: limit.toFixed(),
      remaining: remaining.toFixed(),
      burn_rate_per_hour,
      ...rest,
    };
  }
  const burn_rate_per_hour = burnPerHour.toDecimalPlaces(6).toNumber();
  return {
    id: spec.id,
    metric,
    used: used.toNumber(),
    limit: limit.toNumber(),
    remaining: remaining.toNumber(),
    burn_rate_per_hour,
    ...rest,
  };
}

/** The identity of one usage row (or one routing request), as far as quota scopes care. */
export interface ScopedUsage {
  tenant: string;
  /** Empty string or null: no user. */
  user_id?: string | null;
  provider?: string | null;
  /** The teams the row's user belongs to, resolved by the caller from the team allocation config. */
  teams?: readonly string[];
}

/**
 * Whether a quota with `scope` counts `row`: every field the scope sets must match, an absent
 * field matches anything. Tenant, user and team are compared after NFC normalisation (ingest
 * stores ids in NFC; config files may not be), provider case-insensitively (ingest lower-cases it).
 * A team scope matches only rows whose `teams` list holds that team.
 */
export function matchesScope(scope: QuotaScope, row: ScopedUsage): boolean {
  if (row.tenant !== scope.tenant.normalize('NFC')) return false;
  if (scope.user_id !== undefined && row.user_id !== scope.user_id.normalize('NFC')) return false;
  if (scope.provider !== undefined && row.provider?.toLowerCase() !== scope.provider.toLowerCase()) return false;
  if (scope.team !== undefined && !(row.teams ?? []).includes(scope.team.normalize('NFC'))) return false;
  return true;
}
