/**
 * Read-query builders over the window aggregates (schemas/clickhouse/0002). Each returns
 * `{ query, query_params }` with bound `{name:Type}` placeholders; input is never interpolated.
 * Costs are returned as decimal strings (`toString`) so they stay exact in JSON.
 */
export interface BuiltQuery {
  query: string;
  query_params: Record<string, unknown>;
}

/** Optional filters shared by the summary queries. Times are epoch ms, UTC, half-open [from, to). */
export interface SummaryFilter {
  tenant?: string;
  fromMs?: number;
  toMs?: number;
}

export type Granularity = 'minute' | 'hour' | 'day';
/** The aggregate table of each granularity (schemas/clickhouse/0002). */
export const TABLE: Record<Granularity, string> = { minute: 'usage_minute', hour: 'usage_hour', day: 'usage_day' };

/** The WHERE clause (or '') and parameters of a summary filter. */
export function where(f: SummaryFilter): { clause: string; params: Record<string, unknown> } {
  const parts: string[] = [];
  const params: Record<string, unknown> = {};
  if (f.tenant !== undefined) {
    parts.push('tenant = {tenant:String}');
    params.tenant = f.tenant;
  }
  if (f.fromMs !== undefined) {
    parts.push('window_start >= fromUnixTimestamp64Milli({from_ms:Int64})');
    params.from_ms = f.fromMs;
  }
  if (f.toMs !== undefined) {
    parts.push('window_start < fromUnixTimestamp64Milli({to_ms:Int64})');
    params.to_ms = f.toMs;
  }
  return { clause: parts.length ? `WHERE ${parts.join(' AND ')}` : '', params };
}

/** The summed columns of every summary row (see `Totals`). */
export const SUMS = `sum(requests) AS requests,
  sum(input_tokens) AS input_tokens,
  sum(output_tokens) AS output_tokens,
  sum(cached_input_tokens) AS cached_input_tokens,
  sum(reasoning_tokens) AS reasoning_tokens,
  toString(sum(cost_usd)) AS cost_usd,
  sum(unpriced_requests) AS unpriced_requests`;

/** One row of totals: tokens and requests are counts, `cost_usd` a decimal string (USD). */
export interface Totals {
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
  reasoning_tokens: number;
  cost_usd: string;
  unpriced_requests: number;
}

/** Totals per tenant. */
export function totalsByTenant(f: SummaryFilter = {}, granularity: Granularity = 'minute'): BuiltQuery {
  const w = where(f);
  return {
    query: `SELECT tenant, ${SUMS} FROM ${TABLE[granularity]} ${w.clause} GROUP BY tenant ORDER BY tenant`,
    query_params: w.params,
  };
}

/** Totals per (provider, model), most expensive first, then most tokens. */
export function totalsByModel(f: SummaryFilter = {}): BuiltQuery {
  const w = where(f);
  return {
    query: `SELECT provider, model, ${SUMS} FROM usage_minute ${w.clause}
GROUP BY provider, model ORDER BY sum(usage_minute.cost_usd) DESC, input_tokens + output_tokens DESC, provider, model`,
    query_params: w.params,
  };
}

/** The `limit` minutes with the most requests (all tenants unless filtered). */
export function busiestMinutes(limit: number, f: SummaryFilter = {}): BuiltQuery {
  const w = where(f);
  return {
    query: `SELECT window_start, ${SUMS} FROM usage_minute ${w.clause}
GROUP BY window_start ORDER BY requests DESC, window_start LIMIT {limit:UInt32}`,
    query_params: { ...w.params, limit },
  };
}

/** The `limit` (tenant, user, task) triples with the most tokens; rows without user and task are left out. */
export function topUsersAndTasks(limit: number, f: SummaryFilter = {}): BuiltQuery {
  const w = where(f);
  const clause = w.clause ? `${w.clause} AND (user_id != '' OR task_id != '')` : "WHERE user_id != '' OR task_id != ''";
  return {
    query: `SELECT tenant, user_id, task_id, ${SUMS} FROM usage_minute ${clause}
GROUP BY tenant, user_id, task_id ORDER BY input_tokens + output_tokens DESC, tenant, user_id, task_id LIMIT {limit:UInt32}`,
    query_params: { ...w.params, limit },
  };
}

/** Dead letters per reason (FINAL: a replayed batch rewrites, not adds). */
export function deadLettersByReason(f: Pick<SummaryFilter, 'tenant'> = {}): BuiltQuery {
  const tenant = f.tenant !== undefined;
  return {
    query: `SELECT reason, count() AS count FROM dead_letters FINAL ${tenant ? 'WHERE tenant = {tenant:String}' : ''} GROUP BY reason ORDER BY reason`,
    query_params: tenant ? { tenant: f.tenant } : {},
  };
}
