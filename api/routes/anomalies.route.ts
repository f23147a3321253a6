/**
 * `GET /v1/anomalies`: anomalies found over the usage aggregates (issue 5; processors/anomaly/),
 * newest first, one entry per episode (the latest version of its row in `anomalies`).
 *
 * Query: `tenant` (an admin key must give it; a read key reads its own), `from`, `to` (RFC 3339;
 * episodes overlapping [from, to); from after to is 400, as on /v1/usage), `kind` (one of ANOMALY_KINDS), `min_score` (0..1), `limit`
 * (1..1000, default 100).
 * 200: `{ tenant, anomalies: [{ anomaly_id, kind, detector, dimension, series_key, user_id,
 *   provider, model, window_start, window_end (RFC 3339 UTC), score (0..1), expected, actual (in
 *   `metric` units), metric, status (open | resolved), details (object), detected_at, updated_at }] }`.
 * 400 bad query; 401 missing or unknown key; 403 a read key naming another tenant.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { type ReadApiKey, readAuth } from '../../ingest/http/api-keys.ts';
import { ANOMALY_KINDS } from '../../processors/anomaly/episodes.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import { listAnomalies } from '../../storage/queries/anomalies.ts';
import { useReadErrorHandler } from '../read-errors.ts';
import { READ_ERRORS, READ_SECURITY } from '../schemas.ts';
import { readTimeRange } from '../time-range.ts';

export interface AnomaliesRouteOptions {
  clickhouse: ClickHouseClient;
  keys: ReadonlyArray<ReadApiKey>;
}

const Query = Type.Object(
  {
    tenant: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    from: Type.Optional(Type.String({ description: 'RFC 3339 with a zone.' })),
    to: Type.Optional(Type.String({ description: 'RFC 3339 with a zone.' })),
    kind: Type.Optional(Type.Union(ANOMALY_KINDS.map((k) => Type.Literal(k)))),
    min_score: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    limit: Type.Integer({ minimum: 1, maximum: 1_000, default: 100 }),
  },
  { additionalProperties: false },
);

const AnomalySchema = Type.Object(
  {
    anomaly_id: Type.String(),
    kind: Type.String(),
    detector: Type.String(),
    dimension: Type.String({ description: 'tenant | user | provider | model | task | quota' }),
    series_key: Type.String(),
    user_id: Type.String(),
    provider: Type.String(),
    model: Type.String(),
    window_start: Type.String({ description: 'RFC 3339 UTC, inclusive.' }),
    window_end: Type.String({ description: 'RFC 3339 UTC, exclusive.' }),
    score: Type.Number({ description: '0..1' }),
    expected: Type.Number(),
    actual: Type.Number(),
    metric: Type.String(),
    status: Type.Union([Type.Literal('open'), Type.Literal('resolved')]),
    details: Type.Record(Type.String(), Type.Unknown()),
    detected_at: Type.String(),
    updated_at: Type.String(),
  },
  { additionalProperties: false },
);
const Response = Type.Object({ tenant: Type.String(), anomalies: Type.Array(AnomalySchema) }, { additionalProperties: false });

interface Row {
  [k: string]: unknown;
  details: string;
  window_start_ms: string;
  window_end_ms: string;
  detected_at_ms: string;
  updated_at_ms: string;
}

const iso = (ms: string) => new Date(Number(ms)).toISOString();

export const anomaliesRoute: FastifyPluginAsync<AnomaliesRouteOptions> = async (app, opts) => {
  useReadErrorHandler(app);
  const auth = readAuth(opts.keys);
  // 401 for a missing or unknown key before the body is parsed or anything validated.
  app.addHook('onRequest', auth.onRequest);
  app.get(
    '/v1/anomalies',
    {
      schema: {
        tags: ['anomalies'],
        security: READ_SECURITY,
        summary: 'Anomalies of a tenant, newest first',
        querystring: Query,
        response: { 200: Response, ...READ_ERRORS },
      },
    },
    async (req, reply) => {
      const q = req.query as { tenant?: string; from?: string; to?: string; kind?: string; min_score?: number; limit: number };
      const access = auth.tenant(req, q.tenant, 'add ?tenant=<tenant>');
      if (!access.ok) return reply.code(access.statusCode).send(access.body);
      const range = readTimeRange(q);
      if (!range.ok) return reply.code(400).send({ error: { code: 'bad_request', message: range.message } });
      const built = listAnomalies({
        tenant: access.tenant,
        limit: q.limit,
        ...(range.fromMs === undefined ? {} : { fromMs: range.fromMs }),
        ...(range.toMs === undefined ? {} : { toMs: range.toMs }),
        ...(q.kind === undefined ? {} : { kind: q.kind }),
        ...(q.min_score === undefined ? {} : { minScore: q.min_score }),
      });
      const rs = await opts.clickhouse.query({ ...built, format: 'JSONEachRow' });
      const rows = await rs.json<Row>();
      const anomalies = rows.map(({ window_start_ms, window_end_ms, detected_at_ms, updated_at_ms, details, ...rest }) => ({
        ...rest,
        window_start: iso(window_start_ms),
        window_end: iso(window_end_ms),
        detected_at: iso(detected_at_ms),
        updated_at: iso(updated_at_ms),
        details: JSON.parse(details) as Record<string, unknown>,
      }));
      return { tenant: access.tenant, anomalies };
    },
  );
};
