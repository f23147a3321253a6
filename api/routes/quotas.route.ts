/**
 * `GET /v1/quotas`: the status of every quota of the caller's tenant (config `quotas` whose
 * `scope.tenant` is the key's tenant). Authenticated like `/v1/usage` (`Authorization: Bearer <key>`
 * or `X-API-Key`); a key never sees another tenant's quotas.
 *
 * 200: `{ tenant, quotas: QuotaStatus[] }` (domain/quota.ts), in config order. Usage is summed
 * from `usage_minute` over the quota's current window (quotaWindow) and, for the burn rate, over
 * the last 15 minutes; both at minute granularity. 401 missing or unknown key.
 *
 * Team-scoped quotas are left out: team membership is not wired yet (issue 4).
 */
import type { FastifyPluginAsync } from 'fastify';
import { DEFAULT_BURN_WINDOW_MS, type QuotaStatus, quotaStatus, quotaWindow } from '../../domain/quota.ts';
import { type ApiKey, keyMatcher, presentedKey } from '../../ingest/http/api-keys.ts';
import type { QuotaSpec } from '../../schemas/quota.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import { quotaUsage } from '../queries/quota-usage.ts';

export interface QuotasRouteOptions {
  clickhouse: ClickHouseClient;
  keys: ReadonlyArray<ApiKey>;
  quotas: ReadonlyArray<QuotaSpec>;
  /** Current time, epoch ms. Default Date.now. */
  now?: () => number;
}

/** Whether `/v1/quotas` and routing can measure this quota (team membership is not wired yet). */
export function measurable(spec: QuotaSpec): boolean {
  return spec.scope.team === undefined;
}

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
 * The status of `spec` at `nowMs`, measured from ClickHouse: usage in the current window, and
 * with `burn` the usage of the last 15 minutes for the burn rate (else the window average).
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

export const quotasRoute: FastifyPluginAsync<QuotasRouteOptions> = async (app, opts) => {
  const tenantOfKey = keyMatcher(opts.keys);
  const now = opts.now ?? Date.now;
  app.get('/v1/quotas', async (req, reply) => {
    const key = presentedKey(req);
    const tenant = key === undefined ? undefined : tenantOfKey(key);
    if (tenant === undefined) return reply.code(401).send({ error: { code: 'unauthorized', message: 'missing or unknown API key' } });
    const nowMs = now();
    const mine = opts.quotas.filter((q) => q.scope.tenant.normalize('NFC') === tenant && measurable(q));
    const quotas = await Promise.all(mine.map((q) => measureQuota(opts.clickhouse, q, nowMs)));
    return { tenant, quotas };
  });
};
