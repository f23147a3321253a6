/**
 * Measure a quota's status from the aggregates: the one way every role (read API, routing
 * snapshot, alert evaluator) turns a `QuotaSpec` into a `QuotaStatus` (domain/quota.ts).
 */
import { DEFAULT_BURN_WINDOW_MS, type QuotaStatus, quotaStatus, quotaWindow } from '../domain/quota.ts';
import type { QuotaSpec } from '../schemas/quota.ts';
import type { ClickHouseClient } from './clickhouse.ts';
import { quotaUsage } from './queries/quota-usage.ts';

/** Whether the quota can be measured (team membership is not wired yet, issue 4). */
export function measurable(spec: QuotaSpec): boolean {
  return spec.scope.team === undefined;
}

/** Usage of `spec`'s scope in [fromMs, toMs) from `usage_minute`, in its metric, as a decimal string. */
async function used(clickhouse: ClickHouseClient, spec: QuotaSpec, fromMs: number, toMs: number): Promise<string> {
  const built = quotaUsage({
    tenant: spec.scope.tenant.normalize('NFC'),
    user_id: spec.scope.user_id?.normalize('NFC'),
    provider: spec.scope.provider?.toLowerCase(),
    metric: spec.metric,
    fromMs,
    toMs,
  });
  const rs = await clickhouse.query({ ...built, format: 'JSONEachRow' });
  const [row] = await rs.json<{ used: string | number }>();
  return String(row?.used ?? 0);
}

/**
 * The status of `spec` at `nowMs` (epoch ms), measured from `usage_minute`: usage in the current
 * window (quotaWindow) and, with `burn`, the usage of the last 15 minutes for the burn rate (else
 * the window average). Both at minute granularity.
 * @throws whatever the ClickHouse client throws; RangeError from quotaStatus on a bad spec.
 */
export async function measureQuota(clickhouse: ClickHouseClient, spec: QuotaSpec, nowMs: number, burn = true): Promise<QuotaStatus> {
  const w = quotaWindow(spec.window, nowMs);
  const [inWindow, inBurn] = await Promise.all([
    used(clickhouse, spec, w.startMs, w.endMs),
    burn ? used(clickhouse, spec, nowMs - DEFAULT_BURN_WINDOW_MS, nowMs) : undefined,
  ]);
  return quotaStatus(spec, {
    usedInWindow: inWindow,
    nowMs,
    ...(inBurn === undefined ? {} : { usedInBurnWindow: inBurn, burnWindowMs: DEFAULT_BURN_WINDOW_MS }),
  });
}
