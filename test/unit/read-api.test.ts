/**
 * The read API through the app factory with app.inject() and a fake ClickHouse client that
 * records each query and answers canned rows: key roles and tenant isolation, /v1/usage
 * parameters and formatting, /v1/allocations/:team (hand-computed split), and the OpenAPI
 * document at /docs. The SQL itself is covered by the query-builder tests and on chDB by
 * test/integration/api-read.int.test.ts.
 */
import type { FastifyInstance, FastifyRequest, LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { compileSnapshot } from '../../domain/routing.ts';
import type { TeamMembership } from '../../domain/team-allocation.ts';
import { readAuth } from '../../ingest/http/api-keys.ts';
import type { Producer } from '../../ingest/transport/transport.ts';
import type { QuotaSpec } from '../../schemas/quota.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';

/** Every string text hashed with node:crypto createHash, in order (the key lookup hashes the presented key). */
const hashed = vi.hoisted((): string[] => []);
vi.mock('node:crypto', async (importOriginal) => {
  const crypto = await importOriginal<typeof import('node:crypto')>();
  const createHash: typeof crypto.createHash = (algorithm, options) => {
    const hash = crypto.createHash(algorithm, options);
    const update = hash.update.bind(hash) as (data: unknown, encoding?: unknown) => typeof hash;
    hash.update = ((data: unknown, encoding?: unknown) => {
      if (typeof data === 'string') hashed.push(data);
      return update(data, encoding);
    }) as typeof hash.update;
    return hash;
  };
  return { ...crypto, default: { ...crypto, createHash }, createHash };
});

const NOON = Date.UTC(2026, 10, 29, 12, 0, 0);
const BURN_FROM = NOON - 15 * 60_000;
const INGEST_A = 'ingest-key-a-0123456789';
const READ_A = 'read-key-a-0123456789ab';
const READ_B = 'read-key-b-0123456789ab';
const ADMIN = 'admin-key-0123456789abc';
const KEYS = [
  { key: INGEST_A, tenant: 'tenant-a' },
  { key: READ_A, tenant: 'tenant-a', role: 'read' as const },
  { key: READ_B, tenant: 'tenant-b', role: 'read' as const },
  { key: ADMIN, role: 'admin' as const },
];
const TEAMS: TeamMembership[] = [
  {
    id: 'core',
    tenant: 'tenant-a',
    priority_reserve: 0.1,
    members: [{ user_id: 'alice', weight: 2 }, { user_id: 'bob' }, { user_id: 'carol', priority: true }],
  },
  { id: 'ops', tenant: 'tenant-b', members: [{ user_id: 'dan' }] },
  { id: 'shared', tenant: 'tenant-a', members: [{ user_id: 'x' }] },
  { id: 'shared', tenant: 'tenant-b', members: [{ user_id: 'y' }] },
];
const DAY = { kind: 'calendar' as const, unit: 'day' as const };
const QUOTAS: QuotaSpec[] = [
  { id: 'a-day', scope: { tenant: 'tenant-a' }, metric: 'requests', limit: 100, window: DAY },
  { id: 'core-day', scope: { tenant: 'tenant-a', team: 'core' }, metric: 'tokens', limit: 10_000, window: DAY },
  { id: 'b-day', scope: { tenant: 'tenant-b' }, metric: 'requests', limit: 100, window: DAY },
];

interface Query {
  query: string;
  query_params: Record<string, unknown>;
}

/** A ClickHouse client whose `query` records the call and answers `answer(call)`. */
function fakeClickHouse(answer: (q: Query) => unknown[]): { client: ClickHouseClient; calls: Query[] } {
  const calls: Query[] = [];
  const client = {
    query: async (q: Query) => {
      calls.push(q);
      return { json: async () => answer(q) };
    },
  } as unknown as ClickHouseClient;
  return { client, calls };
}

/** Canned answers: members' usage per window (hand-computed allocation), 7 per quota sum, usage rows. */
function answer(q: Query): unknown[] {
  if (q.query.includes('GROUP BY user_id')) {
    return q.query_params.from_ms === BURN_FROM
      ? [
          { user_id: 'alice', used: 150 },
          { user_id: 'carol', used: '30' },
        ]
      : [
          { user_id: 'alice', used: 3_000 },
          { user_id: 'bob', used: 500 },
          { user_id: 'carol', used: '1000' },
        ];
  }
  if (q.query.includes(' AS used ')) return [{ used: 7 }];
  return [];
}

const noProducer: Producer = { send: async () => {}, close: async () => {} };

let apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.map((a) => a.close()));
  apps = [];
});

function setup(rows: (q: Query) => unknown[] = answer) {
  const ch = fakeClickHouse(rows);
  const routedFor: string[] = [];
  const snapshot = compileSnapshot([], new Map());
  const app = buildApp({
    logger: false,
    bodyLimitBytes: 65_536,
    readiness: {},
    ingest: {
      usageProducer: noProducer,
      dlqProducer: noProducer,
      keys: [{ key: INGEST_A, tenant: 'tenant-a' }],
      maxEventsPerRequest: 10,
      produceTimeoutMs: 1_000,
    },
    api: {
      clickhouse: ch.client,
      keys: KEYS,
      quotas: QUOTAS,
      teams: TEAMS,
      now: () => NOON,
      routing: {
        current: (tenant) => {
          routedFor.push(tenant);
          return snapshot;
        },
        remaining: () => [],
      },
    },
  });
  apps.push(app);
  const get = (url: string, key?: string) => app.inject({ method: 'GET', url, headers: key ? { authorization: `Bearer ${key}` } : {} });
  return { app, get, calls: ch.calls, routedFor };
}

function expectError(res: LightMyRequestResponse, status: number, code: string): string {
  expect(res.statusCode).toBe(status);
  const body = res.json<{ error: { code: string; message: string } }>();
  expect(body.error.code).toBe(code);
  return body.error.message;
}

describe('read API keys: roles and tenant isolation', () => {
  it('401 without a key or with an unknown one, on every read route', async () => {
    const { get, app } = setup();
    for (const url of ['/v1/quotas', '/v1/quotas/tenant-a', '/v1/usage', '/v1/allocations/core']) {
      expectError(await get(url), 401, 'unauthorized');
      expectError(await get(url, 'not-a-key-0123456789'), 401, 'unauthorized');
    }
    expectError(await app.inject({ method: 'POST', url: '/v1/route', payload: {} }), 401, 'unauthorized');
  });

  it('looks the key up once per request (one SHA-256 of it), on every kind of read route', async () => {
    const { app, get } = setup();
    await app.ready(); // the configured keys are hashed when the routes are built
    const requests: Array<[string, () => Promise<LightMyRequestResponse>]> = [
      ['/v1/usage?tenant=tenant-a', () => get('/v1/usage?tenant=tenant-a', READ_A)],
      ['/v1/quotas/tenant-a', () => get('/v1/quotas/tenant-a', READ_A)],
      ['/v1/allocations/core', () => get('/v1/allocations/core', READ_A)],
      ['/v1/allocations/core?tenant=tenant-a', () => get('/v1/allocations/core?tenant=tenant-a', READ_A)],
      ['/v1/anomalies', () => get('/v1/anomalies', READ_A)],
      ['POST /v1/route', () => app.inject({ method: 'POST', url: '/v1/route', headers: { 'x-api-key': READ_A }, payload: {} })],
    ];
    for (const [what, send] of requests) {
      hashed.length = 0;
      expect((await send()).statusCode, what).toBe(200);
      expect(
        hashed.filter((t) => t === READ_A),
        what,
      ).toEqual([READ_A]);
    }
  });

  it("a route whose plugin did not install readAuth's onRequest hook fails loudly instead of reading without a caller", () => {
    const auth = readAuth([{ key: READ_A, tenant: 'tenant-a', role: 'read' }]);
    const request = { method: 'GET', routeOptions: { url: '/v1/x' }, headers: { 'x-api-key': READ_A } } as unknown as FastifyRequest;
    expect(() => auth.caller(request)).toThrow('readAuth: the onRequest hook did not run for GET /v1/x');
    expect(() => auth.tenant(request, 'tenant-a', '')).toThrow('readAuth: the onRequest hook did not run for GET /v1/x');
  });

  it('a read key reads its own tenant only; an ingest key reads its tenant too; an admin reads any tenant', async () => {
    const { get } = setup();
    for (const key of [READ_A, INGEST_A]) {
      expect((await get('/v1/quotas', key)).json<{ tenant: string }>().tenant).toBe('tenant-a');
      expect((await get('/v1/quotas/tenant-a', key)).statusCode).toBe(200);
      const msg = expectError(await get('/v1/quotas/tenant-b', key), 403, 'forbidden');
      expect(msg).toBe('this API key may not read tenant "tenant-b": a read key reads its own tenant only');
    }
    expectError(await get('/v1/quotas/tenant-a', READ_B), 403, 'forbidden');
    const b = await get('/v1/quotas/tenant-b', ADMIN);
    expect(b.json()).toMatchObject({ tenant: 'tenant-b', quotas: [{ id: 'b-day', used: 7, remaining: 93, state: 'ok' }] });
    expect(expectError(await get('/v1/quotas', ADMIN), 400, 'tenant_required')).toBe(
      'an admin API key reads any tenant, so it must name one: use GET /v1/quotas/:tenant',
    );
  });

  it('/v1/quotas lists team quotas too, measured over the members (user_id IN members)', async () => {
    const { get, calls } = setup();
    const body = (await get('/v1/quotas', READ_A)).json<{ quotas: Array<{ id: string }> }>();
    expect(body.quotas.map((q) => q.id)).toEqual(['a-day', 'core-day']);
    const team = calls.filter((c) => c.query.includes('user_id IN {users:Array(String)}'));
    expect(team).toHaveLength(2); // window and burn window
    expect(team[0]!.query_params.users).toEqual(['alice', 'bob', 'carol']);
  });

  it('/v1/usage: ?tenant= follows the same rule; an admin must give it', async () => {
    const { get, calls } = setup();
    expectError(await get('/v1/usage?tenant=tenant-b', READ_A), 403, 'forbidden');
    expect((await get('/v1/usage?tenant=tenant-a', READ_A)).statusCode).toBe(200);
    expect(expectError(await get('/v1/usage', ADMIN), 400, 'tenant_required')).toContain('add ?tenant=<tenant>');
    const res = await get('/v1/usage?tenant=tenant-b', ADMIN);
    expect(res.json()).toMatchObject({ tenant: 'tenant-b', rows: [] });
    expect(calls.at(-1)!.query_params.tenant).toBe('tenant-b');
  });

  it('POST /v1/route: a tenant key routes for its tenant (body tenant ignored); an admin key must name it', async () => {
    const { app, routedFor } = setup();
    const post = (key: string, payload: Record<string, unknown>) =>
      app.inject({ method: 'POST', url: '/v1/route', headers: { 'x-api-key': key }, payload });
    expect((await post(READ_A, { tenant: 'tenant-b' })).json<{ tenant: string }>().tenant).toBe('tenant-a');
    expectError(await post(ADMIN, {}), 400, 'tenant_required');
    expect((await post(ADMIN, { tenant: 'tenant-b' })).json<{ tenant: string }>().tenant).toBe('tenant-b');
    expect(routedFor).toEqual(['tenant-a', 'tenant-b']);
  });
});

describe('GET /v1/usage parameters', () => {
  it.each([
    ['window=week', 'querystring/window'],
    ['group_by=prompt', 'querystring/group_by'],
    ['group_by=model,,user_id', 'querystring/group_by'],
    ['group_by=model,model', 'group_by: a dimension is listed twice'],
    ['time_zone=Mars/Olympus', 'time_zone: not an IANA time zone: "Mars/Olympus" (e.g. Europe/Berlin, UTC)'],
    ['from=yesterday', 'from/to must be RFC 3339 date-times with a zone'],
    ['from=2026-11-30T00:00:00Z&to=2026-11-29T00:00:00Z', 'from must not be after to'],
    ['limit=0', 'querystring/limit'],
    ['limit=100001', 'querystring/limit'],
  ])('%s -> 400 bad_request naming it', async (query, message) => {
    const { get, calls } = setup();
    expect(expectError(await get(`/v1/usage?${query}`, READ_A), 400, 'bad_request')).toContain(message);
    expect(calls).toHaveLength(0);
  });

  it('formats buckets in the zone, turns counts into numbers, reads the table the builder chose, and flags truncation', async () => {
    // Two local days of New York around the DST start (2026-03-08): midnights at 05:00Z (EST) and 04:00Z (EDT).
    const rows = [
      {
        bucket_unix_s: Date.UTC(2026, 2, 8, 5) / 1000,
        user_id: 'alice',
        requests: '2',
        input_tokens: '10',
        output_tokens: 1,
        cached_input_tokens: 0,
        reasoning_tokens: 0,
        cost_usd: '0.5',
        unpriced_requests: 0,
      },
      {
        bucket_unix_s: Date.UTC(2026, 2, 9, 4) / 1000,
        user_id: 'alice',
        requests: 1,
        input_tokens: 5,
        output_tokens: 0,
        cached_input_tokens: 0,
        reasoning_tokens: 0,
        cost_usd: '0',
        unpriced_requests: '1',
      },
      {
        bucket_unix_s: Date.UTC(2026, 2, 9, 4) / 1000,
        user_id: 'bob',
        requests: 1,
        input_tokens: 5,
        output_tokens: 0,
        cached_input_tokens: 0,
        reasoning_tokens: 0,
        cost_usd: '0',
        unpriced_requests: 0,
      },
    ];
    const { get, calls } = setup(() => rows);
    const res = await get(
      '/v1/usage?window=day&time_zone=america/new_york&group_by=user_id&from=2026-03-08T00:00:00-05:00&to=2026-03-10T00:00:00-04:00&limit=2',
      READ_A,
    );
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      tenant: 'tenant-a',
      from: '2026-03-08T00:00:00-05:00',
      to: '2026-03-10T00:00:00-04:00',
      window: 'day',
      time_zone: 'america/new_york', // as sent; the query gets the canonical name
      group_by: ['user_id'],
      truncated: true,
      rows: [
        {
          window_start: '2026-03-08T00:00:00-05:00',
          user_id: 'alice',
          requests: 2,
          input_tokens: 10,
          output_tokens: 1,
          cached_input_tokens: 0,
          reasoning_tokens: 0,
          cost_usd: '0.5',
          unpriced_requests: 0,
        },
        {
          window_start: '2026-03-09T00:00:00-04:00',
          user_id: 'alice',
          requests: 1,
          input_tokens: 5,
          output_tokens: 0,
          cached_input_tokens: 0,
          reasoning_tokens: 0,
          cost_usd: '0',
          unpriced_requests: 1,
        },
      ],
    });
    expect(calls[0]!.query).toContain('FROM usage_hour');
    expect(calls[0]!.query_params).toMatchObject({ time_zone: 'America/New_York', limit: 3, from_ms: Date.UTC(2026, 2, 8, 5) });
  });

  it('without parameters: per provider and model over everything, the first version of the answer', async () => {
    const { get, calls } = setup();
    expect((await get('/v1/usage', READ_A)).json()).toEqual({
      tenant: 'tenant-a',
      from: null,
      to: null,
      window: null,
      time_zone: 'UTC',
      group_by: ['provider', 'model'],
      truncated: false,
      rows: [],
    });
    expect(calls[0]!.query).toMatch(/^SELECT provider, model, sum\(requests\) AS requests,/);
  });
});

describe('GET /v1/quotas: amounts', () => {
  it('a usd quota answers every amount as a decimal string, the burn rate too; a tokens quota numbers', async () => {
    const quotas: QuotaSpec[] = [
      { id: 'usd-day', scope: { tenant: 'tenant-a' }, metric: 'usd', limit: '0.01', window: DAY },
      { id: 'tok-day', scope: { tenant: 'tenant-a' }, metric: 'tokens', limit: 1_000, window: DAY },
    ];
    // Every sum (window and last 15 minutes) answers 0.0175 for usd, 100 for tokens.
    const ch = fakeClickHouse((q) => [{ used: q.query.includes('cost_usd') ? '0.0175' : 100 }]);
    const app = buildApp({
      logger: false,
      bodyLimitBytes: 65_536,
      readiness: {},
      api: { clickhouse: ch.client, keys: KEYS, quotas, now: () => NOON },
    });
    apps.push(app);
    const res = await app.inject({ method: 'GET', url: '/v1/quotas', headers: { authorization: `Bearer ${READ_A}` } });
    const [usd, tokens] = res.json<{ quotas: Array<Record<string, unknown>> }>().quotas;
    // $0.0175 in 15 minutes = $0.07 per hour; 100 tokens in 15 minutes = 400 per hour.
    expect(usd).toMatchObject({ used: '0.0175', limit: '0.01', remaining: '0', burn_rate_per_hour: '0.07' });
    expect(tokens).toMatchObject({ used: 100, limit: 1_000, remaining: 900, burn_rate_per_hour: 400 });
  });
});

describe('GET /v1/allocations/:team', () => {
  it('splits each team quota among the members (hand-computed: see test/unit/team-allocation.test.ts)', async () => {
    const { get } = setup();
    const res = await get('/v1/allocations/core', READ_A);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      tenant: 'tenant-a',
      team: 'core',
      allocations: [
        {
          quota: {
            id: 'core-day',
            metric: 'tokens',
            used: 4_500, // 3,000 + 500 + 1,000
            limit: 10_000,
            remaining: 5_500,
            percent: 45,
            state: 'ok',
            window_start: '2026-11-29T00:00:00.000Z',
            window_end: '2026-11-30T00:00:00.000Z',
            burn_rate_per_hour: 720, // (150 + 30) per 15 min
            projected_exhaustion_at: '2026-11-29T19:38:20.000Z', // 5,500 / 720 h = 7 h 38 min 20 s
            retry_after_s: null,
          },
          total: 10_000,
          priority_reserve: 0.1,
          unallocated: 0,
          members: [
            {
              user_id: 'alice',
              weight: 2,
              priority: false,
              demand: 10_200,
              share: 7_060,
              reserved: 0,
              used: 3_000,
              remaining_share: 4_060,
            },
            { user_id: 'bob', weight: 1, priority: false, demand: 500, share: 500, reserved: 0, used: 500, remaining_share: 0 },
            {
              user_id: 'carol',
              weight: 1,
              priority: true,
              demand: 2_440,
              share: 2_440,
              reserved: 1_000,
              used: 1_000,
              remaining_share: 1_440,
            },
          ],
        },
      ],
    });
  });

  it("resolves the team's tenant: a read key's own team, 403 for another tenant's, 404 for none; an admin names the tenant when ambiguous", async () => {
    const { get } = setup();
    expect((await get('/v1/allocations/shared', READ_B)).json()).toEqual({ tenant: 'tenant-b', team: 'shared', allocations: [] });
    expect(expectError(await get('/v1/allocations/ops', READ_A), 403, 'forbidden')).toBe(`team "ops" is not a team of this key's tenant`);
    expectError(await get('/v1/allocations/core?tenant=tenant-b', READ_A), 403, 'forbidden');
    expectError(await get('/v1/allocations/nope', READ_A), 404, 'not_found');
    expectError(await get('/v1/allocations/shared', ADMIN), 400, 'tenant_required');
    expect((await get('/v1/allocations/shared?tenant=tenant-a', ADMIN)).json()).toMatchObject({ tenant: 'tenant-a' });
    expect((await get('/v1/allocations/ops', ADMIN)).json()).toMatchObject({ tenant: 'tenant-b', team: 'ops' });
    expectError(await get('/v1/allocations/ops?tenant=tenant-a', ADMIN), 404, 'not_found');
  });
});

describe('OpenAPI at /docs', () => {
  it('documents every route the app serves, with its schemas and the API-key schemes', async () => {
    const { app } = setup();
    const served: string[] = [];
    app.addHook('onRoute', (r) => {
      if (!r.url.startsWith('/docs') && r.method !== 'HEAD') served.push(r.url.replace(/:(\w+)/g, '{$1}'));
    });
    await app.ready();
    const res = await app.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json<{
      openapi: string;
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
      components: Record<string, unknown>;
    }>();
    expect(doc.openapi).toBe('3.1.0');
    const paths = Object.keys(doc.paths).sort();
    expect(paths).toEqual(
      [
        '/healthz',
        '/readyz',
        '/v1/allocations/{team}',
        '/v1/anomalies',
        '/v1/contexts/{user}',
        '/v1/contexts/{user}/export',
        '/v1/events',
        '/v1/quotas',
        '/v1/quotas/{tenant}',
        '/v1/route',
        '/v1/usage',
      ].sort(),
    );
    expect([...new Set(served)].sort()).toEqual(paths);
    expect(Object.keys(doc.paths['/v1/usage']!.get!.responses)).toEqual(['200', '400', '401', '403']);
    expect(doc.components).toMatchObject({ securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } });
    const page = await app.inject({ method: 'GET', url: '/docs' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
  });
});
