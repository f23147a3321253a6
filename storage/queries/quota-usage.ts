/**
 * Read-query builders for quotas and routing over `usage_minute` (schemas/clickhouse/0002).
 * Each returns `{ query, query_params }` with bound `{name:Type}` placeholders; input is never
 * interpolated. Times are epoch ms (UTC), half-open [from, to), at minute granularity: a minute
 * row counts when its `window_start` lies in the range.
 */
import type { QuotaMetric } from '../../schemas/quota.ts';
import type { BuiltQuery } from './usage-summary.ts';

export interface QuotaUsageFilter {
  /** Compared as stored: pass it NFC-normalised (ingest stores ids in NFC). */
  tenant: string;
  user_id?: string;
  /**
   * Only these users (a team's members, NFC): `user_id IN {users:Array(String)}`. An empty list
   * matches no row.
   */
  users?: readonly string[];
  /** Compared as stored: pass it lower-cased (ingest lower-cases providers). */
  provider?: string;
  metric: QuotaMetric;
  fromMs: number;
  toMs: number;
}

/** The `used` column per metric: tokens = input + output, requests = calls, usd = exact decimal string. */
export const USED: Record<QuotaMetric, string> = {
  tokens: 'sum(input_tokens) + sum(output_tokens)',
  requests: 'sum(requests)',
  usd: 'toString(sum(cost_usd))',
};

/**
 * The conditions of a quota scope beyond tenant and time (one user, a team's users, a provider),
 * appended to `parts` with their bound parameters in `params`. Every quota query uses this one.
 */
export function appendScope(
  f: Pick<QuotaUsageFilter, 'user_id' | 'users' | 'provider'>,
  parts: string[],
  params: Record<string, unknown>,
): void {
  if (f.user_id !== undefined) {
    parts.push('user_id = {user_id:String}');
    params.user_id = f.user_id;
  }
  if (f.users !== undefined) {
    parts.push('user_id IN {users:Array(String)}');
    params.users = [...f.users];
  }
  if (f.provider !== undefined) {
    parts.push('provider = {provider:String}');
    params.provider = f.provider;
  }
}

/** The WHERE conditions and parameters of a quota scope over [fromMs, toMs). */
function scopeWhere(f: QuotaUsageFilter): { clause: string; params: Record<string, unknown> } {
  const parts = [
    'tenant = {tenant:String}',
    'window_start >= fromUnixTimestamp64Milli({from_ms:Int64})',
    'window_start < fromUnixTimestamp64Milli({to_ms:Int64})',
  ];
  const params: Record<string, unknown> = { tenant: f.tenant, from_ms: f.fromMs, to_ms: f.toMs };
  appendScope(f, parts, params);
  return { clause: parts.join(' AND '), params };
}

/**
 * Usage of one quota scope in [fromMs, toMs): one row `{ used }` (tokens and requests as UInt64,
 * returned as strings by JSON formats; usd as a decimal string). No matching rows give 0.
 */
export function quotaUsage(f: QuotaUsageFilter): BuiltQuery {
  const w = scopeWhere(f);
  return { query: `SELECT ${USED[f.metric]} AS used FROM usage_minute WHERE ${w.clause}`, query_params: w.params };
}

/** One row of `quotaUsageByUser`. */
export interface UserUsageRow {
  user_id: string;
  /** As `quotaUsage`'s `used`: a count (number or string) or, for usd, a decimal string. */
  used: string | number;
}

/**
 * Usage of one quota scope in [fromMs, toMs) per user: rows `{ user_id, used }` for the users
 * that have usage (ordered by user_id); a user without usage has no row. Used with `users` to
 * split a team quota among its members.
 */
export function quotaUsageByUser(f: QuotaUsageFilter): BuiltQuery {
  const w = scopeWhere(f);
  return {
    query: `SELECT user_id, ${USED[f.metric]} AS used FROM usage_minute WHERE ${w.clause} GROUP BY user_id ORDER BY user_id`,
    query_params: w.params,
  };
}

/** One row of `candidateLive`. */
export interface CandidateLiveRow {
  provider: string;
  model: string;
  /** UInt64: a string in JSON formats. */
  requests: string | number;
  /** Share of calls whose status is not `ok`, 0..1. */
  error_rate: number;
  /** null when no call had a latency. */
  p95_latency_ms: number | null;
}

/**
 * Live health per (provider, model) over all tenants since `fromMs`: calls, error rate (share of
 * status != 'ok') and p95 latency from the bfloat16 quantile states. TRICKY: the column is
 * qualified inside sumIf, since the alias `requests` (an aggregate) would shadow it.
 */
export function candidateLive(f: { fromMs: number }): BuiltQuery {
  return {
    query: `SELECT provider, model, sum(requests) AS requests,
  sumIf(usage_minute.requests, status != 'ok') / requests AS error_rate,
  quantilesBFloat16Merge(0.5, 0.95, 0.99)(latency_ms_q)[2] AS p95_latency_ms
FROM usage_minute WHERE window_start >= fromUnixTimestamp64Milli({from_ms:Int64})
GROUP BY provider, model ORDER BY provider, model`,
    query_params: { from_ms: f.fromMs },
  };
}
