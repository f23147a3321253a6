/**
 * `GET /v1/quotas` and `GET /v1/quotas/:tenant`: the status of every quota of a tenant (config
 * `quotas` whose `scope.tenant` is that tenant), team-scoped ones included (measured over their
 * members' usage). Authenticated by an API key (`Authorization: Bearer <key>` or `X-API-Key`,
 * ingest/http/api-keys.ts): `/v1/quotas` reads the key's own tenant; `/v1/quotas/:tenant` reads the
 * tenant in the path, which a read key may only do for its own tenant and an admin key for any.
 *
 * 200: `{ tenant, quotas: QuotaStatus[] }` (domain/quota.ts), in config order. Usage is summed
 * from `usage_minute` over the quota's current window (quotaWindow) and, for the burn rate, over
 * the last 15 minutes; both at minute granularity. 401 missing or unknown key; 403 `forbidden` a
 * read key asking for another tenant; 400 `tenant_required` an admin key on `/v1/quotas`.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { type ReadApiKey, readAuth } from '../../ingest/http/api-keys.ts';
import type { QuotaSpec } from '../../schemas/quota.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import { type MeasureOptions, measurableWith, measureQuota } from '../../storage/quota-measure.ts';
import { useReadErrorHandler } from '../read-errors.ts';
import { QuotasResponse, READ_ERRORS, READ_SECURITY } from '../schemas.ts';

export interface QuotasRouteOptions {
  clickhouse: ClickHouseClient;
  /** Read-API keys (ingest keys read their own tenant). */
  keys: ReadonlyArray<ReadApiKey>;
  quotas: ReadonlyArray<QuotaSpec>;
  /** Config `teams`: team-scoped quotas are measured over their members. Default none. */
  teams?: MeasureOptions['teams'];
  /** Current time, epoch ms. Default Date.now. */
  now?: () => number;
}

const TenantParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false });

export const quotasRoute: FastifyPluginAsync<QuotasRouteOptions> = async (app, opts) => {
  useReadErrorHandler(app);
  const auth = readAuth(opts.keys);
  // 401 for a missing or unknown key before the body is parsed or anything validated.
  app.addHook('onRequest', auth.onRequest);
  const now = opts.now ?? Date.now;
  const measure = { teams: opts.teams ?? [] };
  const ok = measurableWith(measure);
  const statuses = async (tenant: string) => {
    const nowMs = now();
    const mine = opts.quotas.filter((q) => q.scope.tenant.normalize('NFC') === tenant && ok(q));
    return { tenant, quotas: await Promise.all(mine.map((q) => measureQuota(opts.clickhouse, q, nowMs, true, measure))) };
  };
  const common = { tags: ['quotas'], security: READ_SECURITY };

  app.get(
    '/v1/quotas',
    {
      schema: { ...common, summary: "Status of every quota of the key's tenant", response: { 200: QuotasResponse, ...READ_ERRORS } },
    },
    async (req, reply) => {
      const access = auth.tenant(req, undefined, 'use GET /v1/quotas/:tenant');
      if (!access.ok) return reply.code(access.statusCode).send(access.body);
      return statuses(access.tenant);
    },
  );

  app.get(
    '/v1/quotas/:tenant',
    {
      schema: {
        ...common,
        summary: 'Status of every quota of a tenant (a read key: its own tenant only)',
        params: TenantParams,
        response: { 200: QuotasResponse, ...READ_ERRORS },
      },
    },
    async (req, reply) => {
      const access = auth.tenant(req, (req.params as { tenant: string }).tenant, 'in the path');
      if (!access.ok) return reply.code(access.statusCode).send(access.body);
      return statuses(access.tenant);
    },
  );
};
