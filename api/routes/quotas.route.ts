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
import { type ApiKey, keyMatcher, presentedKey } from '../../ingest/http/api-keys.ts';
import type { QuotaSpec } from '../../schemas/quota.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import { measurable, measureQuota } from '../../storage/quota-measure.ts';

export interface QuotasRouteOptions {
  clickhouse: ClickHouseClient;
  keys: ReadonlyArray<ApiKey>;
  quotas: ReadonlyArray<QuotaSpec>;
  /** Current time, epoch ms. Default Date.now. */
  now?: () => number;
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
