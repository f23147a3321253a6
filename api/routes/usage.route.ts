/**
 * `GET /v1/usage`: the caller's tenant's usage totals by provider/model over a time range, from
 * the window aggregates. Authenticated by an API key (`Authorization: Bearer <key>`), which
 * fixes the tenant: a key never reads another tenant's data.
 *
 * Query: `from`, `to` (RFC 3339, UTC; half-open [from, to)), both optional.
 * 200: `{ tenant, from, to, rows: [{ provider, model, requests, input_tokens, output_tokens,
 *   cached_input_tokens, reasoning_tokens, cost_usd (decimal string, USD), unpriced_requests }] }`.
 * 400 bad time; 401 missing or unknown key.
 */
import { timingSafeEqual } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { parseRfc3339 } from '../../domain/usage-event-validation.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import { totalsByModel } from '../queries/usage-summary.ts';

export interface UsageRouteOptions {
  clickhouse: ClickHouseClient;
  keys: ReadonlyArray<{ key: string; tenant: string }>;
}

/** The tenant of a bearer key, compared in constant time; undefined when unknown. */
export function tenantOfKey(keys: UsageRouteOptions['keys'], header: string | undefined): string | undefined {
  const presented = Buffer.from(/^Bearer\s+(.+)$/i.exec(header ?? '')?.[1] ?? '');
  if (presented.length === 0) return undefined;
  let tenant: string | undefined;
  for (const k of keys) {
    const candidate = Buffer.from(k.key);
    if (candidate.length === presented.length && timingSafeEqual(candidate, presented)) tenant = k.tenant;
  }
  return tenant;
}

const Query = Type.Object({ from: Type.Optional(Type.String()), to: Type.Optional(Type.String()) }, { additionalProperties: false });

export const usageRoute: FastifyPluginAsync<UsageRouteOptions> = async (app, opts) => {
  app.get('/v1/usage', { schema: { querystring: Query } }, async (req, reply) => {
    const tenant = tenantOfKey(opts.keys, req.headers.authorization);
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
