/**
 * Reconciliation with a provider's bill (issue 6, SPEC.md section 7): parse a usage export
 * (usage-export.ts), count the same range from quotaflow's raw events, and compare per UTC day and
 * model (compare.ts). Our side is read from usage_events (exact event times, so partial first and
 * last buckets compare like for like), for one tenant and the export's provider, leaving out calls
 * with status rate_limited (the provider did not serve them).
 */
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import type { BuiltQuery } from '../../storage/queries/usage-summary.ts';
import { queryRows } from '../recommendations/rules.ts';
import { compareUsage, type OursDay, type ReconcileRow } from './compare.ts';
import { modelAlias, type UsageExport } from './usage-export.ts';

export * from './compare.ts';
export * from './usage-export.ts';

/** Our counts per UTC day and model for one tenant and provider over [fromMs, toMs). */
export function oursByDayQuery(tenant: string, provider: string, fromMs: number, toMs: number): BuiltQuery {
  return {
    query: `SELECT toString(toDate(timestamp, 'UTC')) AS day, toString(model) AS model,
  count() AS requests,
  sum(input_tokens) AS input_tokens,
  sum(output_tokens) AS output_tokens,
  sum(cached_input_tokens) AS cached_input_tokens,
  toString(sum(cost_usd)) AS cost_usd
FROM usage_events
WHERE tenant = {tenant:String} AND provider = {provider:String} AND status != 'rate_limited'
  AND timestamp >= fromUnixTimestamp64Milli({from_ms:Int64}) AND timestamp < fromUnixTimestamp64Milli({to_ms:Int64})
GROUP BY day, model
ORDER BY day, model`,
    query_params: { tenant, provider, from_ms: fromMs, to_ms: toMs },
  };
}

export interface ReconcileResult {
  tenant: string;
  provider: string;
  format: UsageExport['format'];
  /** The export's range, RFC 3339 UTC, [from, to). */
  range: { from: string; to: string };
  tolerance: number;
  by_model: boolean;
  /** The export said more pages follow: days past its last page are not compared. */
  partial_export: boolean;
  rows: ReconcileRow[];
  flagged: number;
}

/**
 * Reconcile `exported` with the tenant's events. `provider` overrides the export's provider name
 * (e.g. `azure-openai`). `tolerance` is a share (0.01 = 1%).
 * @throws RangeError for a tolerance outside [0, 1]; ClickHouse errors as the client throws them.
 */
export async function reconcile(
  client: ClickHouseClient,
  opts: { tenant: string; exported: UsageExport; tolerance: number; provider?: string },
): Promise<ReconcileResult> {
  const provider = (opts.provider ?? opts.exported.provider).toLowerCase();
  const q = oursByDayQuery(opts.tenant, provider, opts.exported.fromMs, opts.exported.toMs);
  const ours: OursDay[] = (await queryRows(client, q)).map((r) => ({
    day: String(r.day),
    model: modelAlias(String(r.model)),
    requests: Number(r.requests),
    input_tokens: Number(r.input_tokens),
    output_tokens: Number(r.output_tokens),
    cached_input_tokens: Number(r.cached_input_tokens),
    cost_usd: String(r.cost_usd),
  }));
  const rows = compareUsage(opts.exported.days, ours, opts.exported.byModel, opts.tolerance);
  return {
    tenant: opts.tenant,
    provider,
    format: opts.exported.format,
    range: { from: new Date(opts.exported.fromMs).toISOString(), to: new Date(opts.exported.toMs).toISOString() },
    tolerance: opts.tolerance,
    by_model: opts.exported.byModel,
    partial_export: opts.exported.hasMore,
    rows,
    flagged: rows.filter((r) => r.flagged).length,
  };
}
