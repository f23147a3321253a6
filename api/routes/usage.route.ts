/**
 * `GET /v1/usage`: the caller's tenant's usage totals by provider/model over a time range, from
 * the window aggregates. Authenticated by an API key (`Authorization: Bearer <key>` or `X-API-Key`), which
 * fixes the tenant: a key never reads another tenant's data.
 *
 * Query: `from`, `to` (RFC 3339, UTC; half-open [from, to)), both optional.
 * 200: `{ tenant, from, to, rows: [{ provider, model, requests, input_tokens, output_tokens,
 *   cached_input_tokens, reasoning_tokens, cost_usd (decimal string, USD), unpriced_requests }] }`.
 * 400 bad time; 401 missing or unknown key.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { parseRfc3339 } from '../../domain/usage-event-validation.ts';
import { type ApiKey, keyMatcher, presentedKey } from '../../ingest/http/api-keys.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import { totalsByModel } from '../../storage/queries/usage-summary.ts';

export interface UsageRouteOptions {
  clickhouse: ClickHouseClient;
  keys: ReadonlyArray<ApiKey>;
}

const Query = Type.Object({ from: Type.Optional(Type.String()), to: Type.Optional(Type.String()) }, { additionalProperties: false });

export const usageRoute: FastifyPluginAsync<UsageRouteOptions> = async (app, opts) => {
  const tenantOfKey = keyMatcher(opts.keys);
  app.get('/v1/usage', { schema: { querystring: Query } }, async (req, reply) => {
    const key = presentedKey(req);
    const tenant = key === undefined ? undefined : tenantOfKey(key);
    if (tenant === undefined) return reply.code(401).send({ error: { code: 'unauthorized', message: 'missing or unknown API key' } });
    const q = req.query as { from?: string; to?: string };
    const fromMs = q.from === undefined ? undefined : parseRfc3339(q.from);
    const toMs = q.to === undefined ? undefined : parseRfc3339(q.to);
    if (fromMs === null || toMs === null) {
      return reply.code(400).send({ error: { code: 'bad_request', message: 'from/to must be RFC 3339 date-times with a zone' } });
    }
    const built = totalsByModel({ tenant, fromMs, toMs });
    const rs = await opts.clickhouse.query({ ...built, format: 'JSONEachRow' });
    const rows = await rs.json<Record<string, string | number>>();
    return { tenant, from: q.from ?? null, to: q.to ?? null, rows };
  });
};
