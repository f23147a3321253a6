/**
 * Read-query builders over `quota_alerts` (schemas/clickhouse/0004). Each returns
 * `{ query, query_params }` with bound `{name:Type}` placeholders; input is never interpolated.
 */
import type { BuiltQuery } from './usage-summary.ts';

/** One row of `latestAlertPeriods`. Int64 columns arrive as strings in JSON formats. */
export interface LatestAlertRow {
  tenant: string;
  quota_id: string;
  kind: string;
  episode_start_ms: string | number;
  fired_at_ms: string | number;
}

/**
 * The alerts of the latest period (max episode_start) of each (tenant, quota_id) among the given
 * tenants and quota ids, read with FINAL (one row per alert_id), ordered by tenant, quota, fired_at.
 * The tenant and quota filters lead the sort key (tenant, quota_id, alert_id).
 */
export function latestAlertPeriods(f: { tenants: readonly string[]; quotaIds: readonly string[] }): BuiltQuery {
  const filter = 'tenant IN {tenants:Array(String)} AND quota_id IN {quota_ids:Array(String)}';
  return {
    query: `SELECT tenant, quota_id, kind,
  toUnixTimestamp64Milli(episode_start) AS episode_start_ms, toUnixTimestamp64Milli(fired_at) AS fired_at_ms
FROM quota_alerts FINAL
WHERE ${filter} AND (tenant, quota_id, episode_start) IN (
  SELECT tenant, quota_id, max(episode_start) FROM quota_alerts WHERE ${filter} GROUP BY tenant, quota_id)
ORDER BY tenant, quota_id, fired_at_ms, kind`,
    query_params: { tenants: [...f.tenants], quota_ids: [...f.quotaIds] },
  };
}
