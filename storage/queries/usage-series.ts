/**
 * The read-query builder behind `GET /v1/usage`: one tenant's usage totals over [from, to), per
 * time bucket (minute, hour or local day) and per dimension, from the window aggregates
 * (schemas/clickhouse/0002). Returns `{ query, query_params }` with bound `{name:Type}`
 * placeholders; input is never interpolated (dimensions come from a closed list).
 *
 * Buckets are aligned in an IANA time zone: bucket = toStartOfMinute / toStartOfHour(ts, tz) /
 * toStartOfDay(ts, tz), so a day runs from local midnight to local midnight (23 or 25 hours on a
 * DST change) and an hour in Asia/Kolkata starts at :30 UTC. The bucket is the same expression
 * whatever table is read; the table only decides how much is pre-summed. Which table is read
 * (`sourceGranularity`) so that the answer is the same as from `usage_minute`:
 *
 * 1. Every row of the table must lie inside one bucket. usage_hour rows are UTC hours: inside one
 *    local hour or day only where the zone's UTC offset is a whole number of hours; usage_day rows
 *    are UTC days: inside one local day only where the offset is 0. So day buckets in
 *    America/New_York read usage_hour (UTC days do not align with New York days), hour or day
 *    buckets in Asia/Kolkata (+05:30) or Asia/Kathmandu (+05:45) read usage_minute, and day
 *    buckets in UTC read usage_day. Minute buckets always read usage_minute.
 * 2. `from` and `to` must fall on the table's row boundaries (whole UTC hours for usage_hour,
 *    whole UTC days for usage_day), or the first and last rows would straddle them. Rows are
 *    counted when their `window_start` lies in [from, to): at minute granularity a `from` of
 *    10:30:20 starts at the 10:31 minute, as before.
 * Without a bucket (totals) the coarsest table that meets rule 2 is read.
 *
 * The zone's offsets over [from, to] are sampled at from, to and every 7 days through each UTC
 * year the range touches (from 2000-01-01, the earliest event time, and up to now + 1 day, the
 * latest, when a bound is absent): a zone whose offset changed to a half hour and back within a
 * week would be missed; no zone in the tz database does that.
 */
import { IANAZone } from 'luxon';
import { MIN_TIMESTAMP_MS } from '../../domain/usage-event-validation.ts';
import { DAY_MS, HOUR_MS } from '../../domain/windows.ts';
import { type BuiltQuery, type Granularity, SUMS, TABLE, where } from './usage-summary.ts';

export const USAGE_BUCKETS = ['minute', 'hour', 'day'] as const;
export type UsageBucket = (typeof USAGE_BUCKETS)[number];
/** The dimensions every aggregate table has (0002: the grouping key after window_start and tenant). */
export const USAGE_DIMENSIONS = ['provider', 'model', 'user_id', 'task_id', 'status'] as const;
export type UsageDimension = (typeof USAGE_DIMENSIONS)[number];

/** Zone samples are this far apart, ms (see the module comment). */
const ZONE_SAMPLE_STEP_MS = 7 * DAY_MS;

export interface UsageSeriesRequest {
  /** Compared as stored: pass it NFC-normalised. */
  tenant: string;
  /** Epoch ms, inclusive; absent = from the first row. */
  fromMs?: number;
  /** Epoch ms, exclusive; absent = to the last row. */
  toMs?: number;
  /** Time bucket; absent = totals over the whole range. */
  bucket?: UsageBucket;
  /** Dimensions to group by, in answer order (no duplicates); may be empty. */
  groupBy: readonly UsageDimension[];
  /** IANA time zone of the buckets, as ClickHouse knows it (e.g. `America/New_York`, `UTC`). */
  timeZone: string;
  /** Most rows returned, >= 1. */
  limit: number;
  /** Current time, epoch ms: the end of the zone check when `toMs` is absent. */
  nowMs: number;
}

/** Per zone and UTC year, the offsets sampled over that year; zone rules do not change while the process runs. */
const yearOffsetCache = new Map<string, Map<number, ReadonlySet<number>>>();

function offsetsOfYear(zone: IANAZone, year: number): ReadonlySet<number> {
  const byYear = yearOffsetCache.get(zone.name) ?? new Map<number, ReadonlySet<number>>();
  yearOffsetCache.set(zone.name, byYear);
  const cached = byYear.get(year);
  if (cached !== undefined) return cached;
  const start = Date.UTC(year, 0, 1);
  const end = Date.UTC(year + 1, 0, 1) - 1;
  const found = new Set<number>([zone.offset(end)]);
  for (let t = start; t < end; t += ZONE_SAMPLE_STEP_MS) found.add(zone.offset(t));
  byYear.set(year, found);
  return found;
}

/**
 * The distinct UTC offsets (minutes) of `timeZone` at `fromMs`, at `toMs`, and sampled every 7
 * days over each UTC calendar year the range touches (a superset of the range: cached per zone and
 * year). @throws RangeError on an unknown zone.
 */
export function zoneOffsets(timeZone: string, fromMs: number, toMs: number): Set<number> {
  if (!IANAZone.isValidZone(timeZone)) throw new RangeError(`unknown time zone: ${JSON.stringify(timeZone)}`);
  const zone = IANAZone.create(timeZone);
  const offsets = new Set<number>([zone.offset(fromMs), zone.offset(toMs)]);
  const last = new Date(toMs).getUTCFullYear();
  for (let y = new Date(fromMs).getUTCFullYear(); y <= last; y++) for (const o of offsetsOfYear(zone, y)) offsets.add(o);
  return offsets;
}

const onBoundary = (ms: number | undefined, step: number) => ms === undefined || ms % step === 0;

/**
 * The aggregate table (by granularity) that answers `r` exactly as `usage_minute` would: the
 * coarsest one whose rows each lie in one bucket and whose row boundaries `fromMs` and `toMs`
 * fall on (see the module comment). @throws RangeError on an unknown zone.
 */
export function sourceGranularity(r: Pick<UsageSeriesRequest, 'fromMs' | 'toMs' | 'bucket' | 'timeZone' | 'nowMs'>): Granularity {
  if (r.bucket === 'minute') return 'minute';
  let wholeHours = true;
  let utc = true;
  if (r.bucket !== undefined) {
    const offsets = zoneOffsets(r.timeZone, r.fromMs ?? MIN_TIMESTAMP_MS, r.toMs ?? r.nowMs + DAY_MS);
    wholeHours = [...offsets].every((m) => m % 60 === 0);
    utc = [...offsets].every((m) => m === 0);
  }
  if (r.bucket !== 'hour' && utc && onBoundary(r.fromMs, DAY_MS) && onBoundary(r.toMs, DAY_MS)) return 'day';
  if (wholeHours && onBoundary(r.fromMs, HOUR_MS) && onBoundary(r.toMs, HOUR_MS)) return 'hour';
  return 'minute';
}

const BUCKET_EXPR: Record<UsageBucket, string> = {
  minute: 'toStartOfMinute(window_start)',
  hour: 'toStartOfHour(window_start, {time_zone:String})',
  day: 'toStartOfDay(window_start, {time_zone:String})',
};

/** One row of `usageSeries`: the dimensions asked for, the bucket when asked for, and the sums. */
export interface UsageSeriesRow {
  /** Bucket start, Unix seconds (UTC instant of the local bucket start); only with a bucket. */
  bucket_unix_s?: number;
  provider?: string;
  model?: string;
  user_id?: string;
  task_id?: string;
  status?: string;
  /** UInt64 sums: numbers, or strings in ClickHouse JSON formats that quote 64-bit integers. */
  requests: number | string;
  input_tokens: number | string;
  output_tokens: number | string;
  cached_input_tokens: number | string;
  reasoning_tokens: number | string;
  /** USD, exact decimal string. */
  cost_usd: string;
  unpriced_requests: number | string;
}

/**
 * Usage of one tenant over [fromMs, toMs) per bucket and dimension. Rows are ordered by bucket,
 * then most expensive first, then most tokens, then the dimensions; at most `limit + 1` rows are
 * returned, so the caller can tell that the answer was cut at `limit`. With neither bucket nor
 * dimensions one total row is returned (none when there is no usage). The result also names the
 * table read (`granularity`).
 * @throws RangeError on an unknown zone, a bad limit or a duplicate dimension.
 */
export function usageSeries(r: UsageSeriesRequest): BuiltQuery & { granularity: Granularity } {
  if (!Number.isSafeInteger(r.limit) || r.limit < 1) throw new RangeError(`limit must be a whole number >= 1, got ${r.limit}`);
  if (new Set(r.groupBy).size !== r.groupBy.length) throw new RangeError(`group_by lists a dimension twice: ${r.groupBy.join(',')}`);
  for (const d of r.groupBy) if (!USAGE_DIMENSIONS.includes(d)) throw new RangeError(`unknown dimension: ${JSON.stringify(d)}`);
  const granularity = sourceGranularity(r);
  const table = TABLE[granularity];
  const w = where({ tenant: r.tenant, fromMs: r.fromMs, toMs: r.toMs });
  const params: Record<string, unknown> = { ...w.params, limit: r.limit + 1 };
  const keys: string[] = [];
  const select: string[] = [];
  if (r.bucket !== undefined) {
    select.push(`toUnixTimestamp(${BUCKET_EXPR[r.bucket]}) AS bucket_unix_s`);
    keys.push('bucket_unix_s');
    if (r.bucket !== 'minute') params.time_zone = r.timeZone;
  }
  select.push(...r.groupBy);
  // TRICKY: the cost order uses the qualified column: the alias `cost_usd` is a string (toString).
  const order = [...(r.bucket ? ['bucket_unix_s'] : []), `sum(${table}.cost_usd) DESC`, 'input_tokens + output_tokens DESC', ...r.groupBy];
  const groupBy = [...keys, ...r.groupBy];
  return {
    query: `SELECT ${[...select, SUMS].join(', ')} FROM ${table} ${w.clause}
GROUP BY ${groupBy.length > 0 ? groupBy.join(', ') : 'tuple()'} ORDER BY ${order.join(', ')} LIMIT {limit:UInt32}`,
    query_params: params,
    granularity,
  };
}
