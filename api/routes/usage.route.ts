/**
 * `GET /v1/usage`: a tenant's usage totals over a time range, per time bucket and per dimension,
 * from the window aggregates (storage/queries/usage-series.ts says which table is read and why).
 * Authenticated by an API key (`Authorization: Bearer <key>` or `X-API-Key`,
 * ingest/http/api-keys.ts): a read key reads its own tenant only (`?tenant=` may name it; another
 * tenant is 403 `forbidden`), an admin key must name the tenant with `?tenant=`.
 *
 * Query (all optional):
 * - `from`, `to`: RFC 3339 with a zone, half-open [from, to); a minute counts when its start lies
 *   in the range (minute granularity).
 * - `window`: `minute`, `hour` or `day` buckets; absent = totals over the range.
 * - `time_zone`: IANA zone the buckets are aligned in (default UTC): `day` runs from local midnight
 *   to local midnight (23 or 25 hours across a DST change), `hour` follows local hours (Asia/Kolkata
 *   hours start at :30 UTC).
 * - `group_by`: comma list of provider, model, user_id, task_id, status (default `provider,model`;
 *   empty = no dimension).
 * - `tenant`: see above. `limit`: most rows (default 10,000, at most 100,000).
 *
 * 200: `{ tenant, from, to, window, time_zone, group_by, truncated, rows }` (`from`, `to` and
 * `time_zone` as sent: `Asia/Kolkata` stays `Asia/Kolkata`, not its link target); each row holds
 * `window_start` (with a window: the bucket start in RFC 3339 with the zone's offset, e.g.
 * `2026-03-08T00:00:00-05:00`), the `group_by` dimensions, and `requests, input_tokens,
 * output_tokens, cached_input_tokens, reasoning_tokens` (counts), `cost_usd` (exact decimal string,
 * USD, priced events only), `unpriced_requests`. Rows are ordered by bucket, then cost (highest
 * first), then tokens. Without `window` and `group_by` the rows are those of the first version
 * (per provider and model, most expensive first). `truncated` is true when more than `limit` rows
 * matched (the first `limit` are returned).
 * 400 bad parameter (`bad_request`, naming it) or an admin key without `tenant` (`tenant_required`);
 * 401 missing or unknown key; 403 `forbidden`.
 */
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { DateTime, IANAZone } from 'luxon';
import { type ReadApiKey, readAuth } from '../../ingest/http/api-keys.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import {
  USAGE_BUCKETS,
  USAGE_DIMENSIONS,
  type UsageDimension,
  type UsageSeriesRow,
  usageSeries,
} from '../../storage/queries/usage-series.ts';
import { useReadErrorHandler } from '../read-errors.ts';
import { READ_ERRORS, READ_SECURITY } from '../schemas.ts';
import { readTimeRange } from '../time-range.ts';

export interface UsageRouteOptions {
  clickhouse: ClickHouseClient;
  /** Read-API keys (ingest keys read their own tenant). */
  keys: ReadonlyArray<ReadApiKey>;
  /** Current time, epoch ms (bounds the time-zone check of an open range). Default Date.now. */
  now?: () => number;
}

export const DEFAULT_USAGE_LIMIT = 10_000;
export const MAX_USAGE_LIMIT = 100_000;
const DEFAULT_GROUP_BY: readonly UsageDimension[] = ['provider', 'model'];
const DIMENSION = `(${USAGE_DIMENSIONS.join('|')})`;

export const UsageQuery = Type.Object(
  {
    from: Type.Optional(Type.String({ description: 'RFC 3339 with a zone, inclusive.' })),
    to: Type.Optional(Type.String({ description: 'RFC 3339 with a zone, exclusive.' })),
    window: Type.Optional(
      Type.Union(
        USAGE_BUCKETS.map((b) => Type.Literal(b)),
        { description: 'Bucket size; absent = totals over the range.' },
      ),
    ),
    time_zone: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, description: 'IANA zone the hour and day buckets are aligned in. Default UTC.' }),
    ),
    group_by: Type.Optional(
      Type.String({
        pattern: `^(${DIMENSION}(,${DIMENSION})*)?$`,
        description: `Comma list of ${USAGE_DIMENSIONS.join(', ')}. Default provider,model; empty = none.`,
      }),
    ),
    tenant: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Required with an admin key.' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_USAGE_LIMIT, description: `Most rows. Default ${DEFAULT_USAGE_LIMIT}.` })),
  },
  { additionalProperties: false },
);
export type UsageQuery = Static<typeof UsageQuery>;

const Count = Type.Integer({ minimum: 0 });
export const UsageRowSchema = Type.Object(
  {
    window_start: Type.Optional(Type.String({ description: 'Bucket start, RFC 3339 with the offset of time_zone.' })),
    ...Object.fromEntries(USAGE_DIMENSIONS.map((d) => [d, Type.Optional(Type.String())])),
    requests: Count,
    input_tokens: Count,
    output_tokens: Count,
    cached_input_tokens: Count,
    reasoning_tokens: Count,
    cost_usd: Type.String({ description: 'USD, exact decimal; priced events only.' }),
    unpriced_requests: Count,
  },
  { additionalProperties: false },
);

export const UsageResponse = Type.Object(
  {
    tenant: Type.String(),
    from: Type.Union([Type.String(), Type.Null()]),
    to: Type.Union([Type.String(), Type.Null()]),
    window: Type.Union([...USAGE_BUCKETS.map((b) => Type.Literal(b)), Type.Null()]),
    time_zone: Type.String({ description: 'As sent (default UTC).' }),
    group_by: Type.Array(Type.String()),
    truncated: Type.Boolean(),
    rows: Type.Array(UsageRowSchema),
  },
  { additionalProperties: false },
);

const badRequest = (message: string) => ({ error: { code: 'bad_request', message } });

/** The zone's canonical name (`america/new_york` -> `America/New_York`, `Etc/UTC` -> `UTC`), or undefined if unknown. */
function canonicalZone(name: string): string | undefined {
  if (!IANAZone.isValidZone(name)) return undefined;
  return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
}

export const usageRoute: FastifyPluginAsync<UsageRouteOptions> = async (app, opts) => {
  useReadErrorHandler(app);
  const auth = readAuth(opts.keys);
  // 401 for a missing or unknown key before the body is parsed or anything validated.
  app.addHook('onRequest', auth.onRequest);
  const now = opts.now ?? Date.now;
  app.get(
    '/v1/usage',
    {
      schema: {
        tags: ['usage'],
        summary: 'Usage totals per time bucket and dimension',
        security: READ_SECURITY,
        querystring: UsageQuery,
        response: { 200: UsageResponse, ...READ_ERRORS },
      },
    },
    async (req, reply) => {
      const q = req.query as UsageQuery;
      const access = auth.tenant(req, q.tenant, 'add ?tenant=<tenant>');
      if (!access.ok) return reply.code(access.statusCode).send(access.body);
      const range = readTimeRange(q);
      if (!range.ok) return reply.code(400).send(badRequest(range.message));
      const { fromMs, toMs } = range;
      // The canonical name for ClickHouse (it knows every canonical zone); the answer repeats the zone as sent.
      const timeZone = canonicalZone(q.time_zone ?? 'UTC');
      if (timeZone === undefined) {
        return reply
          .code(400)
          .send(badRequest(`time_zone: not an IANA time zone: ${JSON.stringify(q.time_zone)} (e.g. Europe/Berlin, UTC)`));
      }
      const groupBy = q.group_by === undefined ? DEFAULT_GROUP_BY : q.group_by === '' ? [] : (q.group_by.split(',') as UsageDimension[]);
      if (new Set(groupBy).size !== groupBy.length) return reply.code(400).send(badRequest('group_by: a dimension is listed twice'));
      const limit = q.limit ?? DEFAULT_USAGE_LIMIT;

      const built = usageSeries({
        tenant: access.tenant,
        ...(fromMs === undefined ? {} : { fromMs }),
        ...(toMs === undefined ? {} : { toMs }),
        ...(q.window === undefined ? {} : { bucket: q.window }),
        groupBy,
        timeZone,
        limit,
        nowMs: now(),
      });
      const rs = await opts.clickhouse.query({ query: built.query, query_params: built.query_params, format: 'JSONEachRow' });
      const found = await rs.json<UsageSeriesRow>();
      const rows = found.slice(0, limit).map(({ bucket_unix_s, ...r }) => ({
        ...(bucket_unix_s === undefined
          ? {}
          : { window_start: DateTime.fromSeconds(Number(bucket_unix_s), { zone: timeZone }).toISO({ suppressMilliseconds: true }) }),
        ...r,
        requests: Number(r.requests),
        input_tokens: Number(r.input_tokens),
        output_tokens: Number(r.output_tokens),
        cached_input_tokens: Number(r.cached_input_tokens),
        reasoning_tokens: Number(r.reasoning_tokens),
        unpriced_requests: Number(r.unpriced_requests),
      }));
      return {
        tenant: access.tenant,
        from: q.from ?? null,
        to: q.to ?? null,
        window: q.window ?? null,
        time_zone: q.time_zone ?? 'UTC',
        group_by: [...groupBy],
        truncated: found.length > limit,
        rows,
      };
    },
  );
};
