/**
 * Read-query builders of the weekly report (processors/reports/weekly.ts) over the window
 * aggregates and `quota_alerts` (anomalies: storage/queries/anomalies.ts `listAnomalies`). Each returns `{ query, query_params }` with bound
 * `{name:Type}` placeholders; input is never interpolated (the table name comes from the closed
 * `TABLE` map). Times are epoch ms (UTC), half-open [from, to): an aggregate row counts when its
 * `window_start` lies in the range, so a range must start and end on the table's window boundaries
 * (whole hours for `usage_hour`, whole minutes for `usage_minute`) to be exact.
 */
import type { QuotaMetric } from '../../schemas/quota.ts';
import { appendScope, USED } from './quota-usage.ts';
import { type BuiltQuery, type Granularity, SUMS, TABLE, where } from './usage-summary.ts';

/** Tenant and range of one report query. */
export interface ReportRange {
  tenant: string;
  fromMs: number;
  toMs: number;
  /** `hour` (usage_hour) or `minute` (usage_minute); see the module comment. */
  granularity: Extract<Granularity, 'hour' | 'minute'>;
}

/**
 * Totals per local day: rows `{ day, ...Totals }` where `day` is 1..n, the number of `dayStartsMs`
 * at or before the row's window start (so day 1 starts at dayStartsMs[0]). Days without usage
 * have no row. `dayStartsMs` must be ascending, whole seconds.
 */
export function dailyTotals(r: ReportRange, dayStartsMs: readonly number[]): BuiltQuery {
  const w = where(r);
  return {
    query: `SELECT arrayCount(b -> b <= toUnixTimestamp(window_start), {day_starts_s:Array(Int64)}) AS day, ${SUMS}
FROM ${TABLE[r.granularity]} ${w.clause} GROUP BY day ORDER BY day`,
    query_params: { ...w.params, day_starts_s: dayStartsMs.map((ms) => Math.floor(ms / 1000)) },
  };
}

/** The grouping columns of each breakdown. */
export const BREAKDOWN_KEYS = { model: ['provider', 'model'], user: ['user_id'], task: ['task_id'] } as const;
export type BreakdownDimension = keyof typeof BREAKDOWN_KEYS;

/**
 * The `limit` groups of `dimension` with the highest cost, then the most tokens, then by key;
 * each row is `{ <key columns>, ...Totals, groups }` where `groups` is the number of groups in the
 * range before the limit (a window function over the grouped rows).
 */
export function breakdownTotals(r: ReportRange, dimension: BreakdownDimension, limit: number): BuiltQuery {
  const w = where(r);
  const table = TABLE[r.granularity];
  const keys = BREAKDOWN_KEYS[dimension].join(', ');
  // TRICKY: the table-qualified column in ORDER BY, since the alias cost_usd (a string) shadows it.
  return {
    query: `SELECT ${keys}, ${SUMS}, count() OVER () AS groups FROM ${table} ${w.clause}
GROUP BY ${keys} ORDER BY sum(${table}.cost_usd) DESC, input_tokens + output_tokens DESC, ${keys} LIMIT {limit:UInt32}`,
    query_params: { ...w.params, limit },
  };
}

/**
 * Completion per task (task_id not empty): rows `{ task_id, requests, ok, groups }`, most calls
 * first, then by task_id; `ok` counts calls with status 'ok', `groups` the tasks in the range.
 */
export function taskCompletion(r: ReportRange, limit: number): BuiltQuery {
  const w = where(r);
  const table = TABLE[r.granularity];
  return {
    query: `SELECT task_id, sum(requests) AS requests, sumIf(${table}.requests, status = 'ok') AS ok, count() OVER () AS groups
FROM ${table} ${w.clause} AND task_id != '' GROUP BY task_id ORDER BY requests DESC, task_id LIMIT {limit:UInt32}`,
    query_params: { ...w.params, limit },
  };
}

/**
 * Calls and ok calls of the whole range, and of the calls with a task: one row
 * `{ requests, ok, task_requests, task_ok }`.
 */
export function overallCompletion(r: ReportRange): BuiltQuery {
  const w = where(r);
  const t = TABLE[r.granularity];
  return {
    query: `SELECT sum(requests) AS requests, sumIf(${t}.requests, status = 'ok') AS ok,
  sumIf(${t}.requests, task_id != '') AS task_requests, sumIf(${t}.requests, status = 'ok' AND task_id != '') AS task_ok
FROM ${t} ${w.clause}`,
    query_params: w.params,
  };
}

/** A quota scope, compared as stored: ids NFC, provider lower-cased (storage/quota-measure.ts). */
export interface QuotaSeriesFilter extends ReportRange {
  user_id?: string;
  /** A team's members; an empty list matches no row. */
  users?: readonly string[];
  provider?: string;
  metric: QuotaMetric;
}

/**
 * Usage of a quota scope per aggregate window in the range: rows `{ t, used }`, `t` the window
 * start in epoch seconds (ascending), `used` in the metric (a count, or a USD decimal string).
 * Windows without usage have no row. The same scope rules as `quotaUsage` (storage/queries/quota-usage.ts).
 */
export function quotaUsageSeries(f: QuotaSeriesFilter): BuiltQuery {
  const w = where(f);
  const parts = [w.clause];
  const params: Record<string, unknown> = { ...w.params };
  appendScope(f, parts, params);
  return {
    query: `SELECT toUnixTimestamp(window_start) AS t, ${USED[f.metric]} AS used FROM ${TABLE[f.granularity]}
${parts.join(' AND ')} GROUP BY window_start ORDER BY window_start`,
    query_params: params,
  };
}

/**
 * Quota alerts of a tenant fired in [from, to), read with FINAL (one row per alert_id), oldest
 * first. Amounts as decimal strings, times as epoch ms.
 */
export function alertsFired(f: { tenant: string; fromMs: number; toMs: number }): BuiltQuery {
  return {
    query: `SELECT alert_id, quota_id, kind, metric, toString(used) AS used, toString(\`limit\`) AS limit_amount, percent,
  toUnixTimestamp64Milli(window_start) AS window_start_ms, toUnixTimestamp64Milli(window_end) AS window_end_ms,
  toUnixTimestamp64Milli(fired_at) AS fired_at_ms
FROM quota_alerts FINAL
WHERE tenant = {tenant:String} AND fired_at >= fromUnixTimestamp64Milli({from_ms:Int64}) AND fired_at < fromUnixTimestamp64Milli({to_ms:Int64})
ORDER BY fired_at_ms, quota_id, kind, alert_id`,
    query_params: { tenant: f.tenant, from_ms: f.fromMs, to_ms: f.toMs },
  };
}

/** Tenants with usage in [from, to) (usage_hour): rows `{ tenant }`, ordered. */
export function tenantsWithUsage(f: { fromMs: number; toMs: number }): BuiltQuery {
  const w = where(f);
  return { query: `SELECT DISTINCT tenant FROM usage_hour ${w.clause} ORDER BY tenant`, query_params: w.params };
}

/**
 * Whether `tenant` (compared as stored, NFC) has any usage row: one row `{ found: 1 }` or none.
 * Reads `usage_day`, the usage table kept longest (5 years, migration 0009), whose sorting key
 * starts with tenant, so this reads one granule.
 */
export function tenantHasUsage(tenant: string): BuiltQuery {
  return { query: 'SELECT 1 AS found FROM usage_day WHERE tenant = {tenant:String} LIMIT 1', query_params: { tenant } };
}

/** The latest event time per tenant (usage_events): rows `{ tenant, last_ms }`, ordered by tenant. */
export function latestEventByTenant(): BuiltQuery {
  return {
    query: 'SELECT tenant, toUnixTimestamp64Milli(max(timestamp)) AS last_ms FROM usage_events GROUP BY tenant ORDER BY tenant',
    query_params: {},
  };
}
