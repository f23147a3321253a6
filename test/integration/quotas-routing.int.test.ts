/**
 * Quotas and routing on the real engine (chDB): usage written through the processor path
 * (decode -> transform -> ClickHouse writer), then GET /v1/quotas and POST /v1/route through the
 * app factory with app.inject(). The clock is fixed, so windows and retry times are exact.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { createRoutingSnapshot, type RoutingSnapshots } from '../../api/routing-snapshot.ts';
import { loadConfig } from '../../config/load.ts';
import type { QuotaStatus } from '../../domain/quota.ts';
import type { RoutingCandidate, RoutingDecision } from '../../domain/routing.ts';
import { createUsageStore } from '../../processors/clickhouse-writer.ts';
import { decodeBatch, transform } from '../../processors/usage.processor.ts';
import type { QuotaSpec } from '../../schemas/quota.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import { openTestStore, type TestStore } from '../helpers/store.ts';

const NOW = Date.UTC(2026, 10, 29, 10, 30, 0);
const A = 'key-a-0123456789abcdef';
const B = 'key-b-0123456789abcdef';
const C = 'key-c-0123456789abcdef';
const D = 'key-d-0123456789abcdef';
const KEYS = [
  { key: A, tenant: 'tenant-a' },
  { key: B, tenant: 'tenant-b' },
  { key: C, tenant: 'tenant-c' },
  { key: D, tenant: 'tenant-d' },
];
const SONNET = 'claude-sonnet-4-20250514';

const QUOTAS: QuotaSpec[] = [
  { id: 'a-tokens-day', scope: { tenant: 'tenant-a' }, metric: 'tokens', limit: 10_000, window: { kind: 'calendar', unit: 'day' } },
  {
    id: 'a-openai-usd-hour',
    scope: { tenant: 'tenant-a', provider: 'OpenAI' },
    metric: 'usd',
    limit: '0.01',
    window: { kind: 'calendar', unit: 'hour' },
  },
  { id: 'b-requests-rolling', scope: { tenant: 'tenant-b' }, metric: 'requests', limit: 100, window: { kind: 'rolling', minutes: 60 } },
  {
    id: 'c-openai-hour',
    scope: { tenant: 'tenant-c', provider: 'openai' },
    metric: 'requests',
    limit: 2,
    window: { kind: 'calendar', unit: 'hour' },
  },
  {
    id: 'c-anthropic-day',
    scope: { tenant: 'tenant-c', provider: 'anthropic' },
    metric: 'requests',
    limit: 2,
    window: { kind: 'calendar', unit: 'day' },
  },
];

const CANDIDATES: RoutingCandidate[] = [
  {
    id: 'gpt',
    provider: 'openai',
    model: 'gpt-4o',
    capabilities: ['tools', 'vision'],
    compliance: ['soc2'],
    price: { input_per_1m: 2.5, output_per_1m: 10 },
  },
  {
    id: 'sonnet',
    provider: 'anthropic',
    model: SONNET,
    capabilities: ['tools'],
    compliance: ['soc2', 'gdpr'],
    price: { input_per_1m: 3, output_per_1m: 15 },
  },
];

let store: TestStore;
let app: FastifyInstance;
let routing: RoutingSnapshots;
let queries = 0;

function event(tenant: string, i: number, provider: string, model: string, minute: number, output_tokens: number, latency_ms: number) {
  return JSON.stringify({
    event_id: `${tenant}-${i}`,
    timestamp: new Date(Date.UTC(2026, 10, 29, 10, minute, 0)).toISOString(),
    tenant,
    provider,
    model,
    input_tokens: 1_000,
    output_tokens,
    latency_ms,
  });
}

beforeAll(async () => {
  store = await openTestStore();
  const payloads = [
    // tenant-a: 5 x gpt-4o (1,000 in + 100 out = $0.0035 each), 3 x sonnet (1,000 in = $0.003 each).
    ...[0, 1, 2, 3, 4].map((i) => event('tenant-a', i, 'openai', 'gpt-4o', 20 + i, 100, 800)),
    ...[5, 6, 7].map((i) => event('tenant-a', i, 'anthropic', SONNET, 20 + i, 0, 1_200)),
    ...[0, 1].map((i) => event('tenant-b', i, 'openai', 'gpt-4o', 25, 100, 800)),
    ...[0, 1].map((i) => event('tenant-c', i, 'openai', 'gpt-4o', 26, 100, 800)),
    ...[2, 3].map((i) => event('tenant-c', i, 'anthropic', SONNET, 26, 0, 1_200)),
  ];
  // The processor path: decode -> transform (validate, de-duplicate, price, window) -> one insert.
  const decoded = decodeBatch(
    payloads.map((value, i) => ({ value, source: `test:${i}` })),
    { nowMs: NOW },
  );
  const outcome = transform(decoded, { nowMs: NOW, prices: loadConfig(undefined, {}).prices, seen: new Map() });
  expect(outcome.deadLetters).toEqual([]);
  expect(outcome.events).toHaveLength(payloads.length);
  await createUsageStore(store.client).write(outcome);

  // Count the routing snapshot's queries: a lookup must not add any.
  const counting = new Proxy(store.client, {
    get(target, prop, receiver) {
      if (prop === 'query')
        return (...args: Parameters<ClickHouseClient['query']>) => {
          queries++;
          return target.query(...args);
        };
      return Reflect.get(target, prop, receiver);
    },
  });
  routing = createRoutingSnapshot({ clickhouse: counting, candidates: CANDIDATES, quotas: QUOTAS, refreshMs: 0, now: () => NOW });
  await routing.refresh();
  app = buildApp({
    logger: false,
    bodyLimitBytes: 1_048_576,
    readiness: {},
    api: { clickhouse: store.client, keys: KEYS, quotas: QUOTAS, routing, now: () => NOW },
  });
  await app.ready();
});
afterAll(async () => {
  routing?.stop();
  await app?.close();
  await store?.close();
});

const get = async (key?: string) =>
  app.inject({ method: 'GET', url: '/v1/quotas', headers: key ? { authorization: `Bearer ${key}` } : {} });
const route = async (key: string, body: Record<string, unknown> = {}) =>
  app.inject({ method: 'POST', url: '/v1/route', headers: { 'x-api-key': key }, payload: body });

describe('GET /v1/quotas', () => {
  it('shows used, percent and state: a tokens quota past 80% is soft, a usd quota over its limit is exhausted', async () => {
    const res = await get(A);
    expect(res.statusCode).toBe(200);
    const body = res.json<{ tenant: string; quotas: QuotaStatus[] }>();
    expect(body.tenant).toBe('tenant-a');
    expect(body.quotas).toEqual([
      {
        id: 'a-tokens-day',
        metric: 'tokens',
        used: 8_500, // 5 x 1,100 + 3 x 1,000
        limit: 10_000,
        remaining: 1_500,
        percent: 85,
        state: 'soft',
        window_start: '2026-11-29T00:00:00.000Z',
        window_end: '2026-11-30T00:00:00.000Z',
        burn_rate_per_hour: 34_000, // all 8,500 in the last 15 minutes
        projected_exhaustion_at: '2026-11-29T10:32:38.824Z', // 1,500 / 34,000 h = 158,823.5 ms, rounded up
        retry_after_s: null,
      },
      {
        id: 'a-openai-usd-hour',
        metric: 'usd',
        used: '0.0175', // 5 x (1,000 x $2.50 + 100 x $10) / 1M, exact
        limit: '0.01',
        remaining: '0',
        percent: 175,
        state: 'exhausted',
        window_start: '2026-11-29T10:00:00.000Z',
        window_end: '2026-11-29T11:00:00.000Z',
        burn_rate_per_hour: '0.07', // $0.0175 in the last 15 minutes, a decimal string like used
        projected_exhaustion_at: null,
        retry_after_s: 1_800,
      },
    ]);
  });

  it("another tenant's key sees only its own quotas", async () => {
    const b = (await get(B)).json<{ tenant: string; quotas: QuotaStatus[] }>();
    expect(b.tenant).toBe('tenant-b');
    expect(b.quotas.map((q) => [q.id, q.used, q.state])).toEqual([['b-requests-rolling', 2, 'ok']]);
    expect((await get(D)).json()).toEqual({ tenant: 'tenant-d', quotas: [] });
  });

  it('answers 401 without a key or with an unknown one', async () => {
    expect((await get()).statusCode).toBe(401);
    expect((await get('not-a-key-0123456789')).statusCode).toBe(401);
  });
});

describe('POST /v1/route', () => {
  it('excludes the candidate whose provider quota is exhausted and picks the other', async () => {
    const before = queries;
    const res = await route(A, { estimated_input_tokens: 1_000, required_capabilities: ['tools'] });
    expect(res.statusCode).toBe(200);
    const d = res.json<RoutingDecision & { tenant: string }>();
    expect(d.tenant).toBe('tenant-a');
    expect(d.excluded).toEqual([{ id: 'gpt', reason: 'quota_exhausted', detail: 'quota exhausted; retry after 1800 s' }]);
    expect(d.chosen).toMatchObject({ id: 'sonnet', provider: 'anthropic', model: SONNET, quota_remaining_ratio: 0.15 });
    expect(d.fallbacks).toEqual([]);
    expect(d.retry_after_s).toBeNull();
    expect(queries).toBe(before); // served from the snapshot
  });

  it('returns chosen null and the earliest retry_after_s when every candidate is exhausted', async () => {
    const d = (await route(C)).json<RoutingDecision & { tenant: string }>();
    expect(d.tenant).toBe('tenant-c');
    expect(d.chosen).toBeNull();
    expect(d.fallbacks).toEqual([]);
    expect(d.excluded.map((e) => [e.id, e.reason])).toEqual([
      ['gpt', 'quota_exhausted'],
      ['sonnet', 'quota_exhausted'],
    ]);
    expect(d.retry_after_s).toBe(1_800); // openai resets at 11:00; anthropic's daily quota at midnight
  });

  it('a tenant without exhausted quotas gets every candidate, ranked', async () => {
    for (const key of [B, D]) {
      const d = (await route(key, { explain: true })).json<RoutingDecision>();
      expect(d.excluded).toEqual([]);
      expect(d.chosen).not.toBeNull();
      expect(d.fallbacks).toHaveLength(1);
      // Live p95 from the aggregates: gpt-4o ~800 ms, sonnet ~1,200 ms (bfloat16, within 0.4%).
      const perf = Object.fromEntries([d.chosen!, ...d.fallbacks].map((c) => [c.id, c.breakdown.performance]));
      expect(perf.gpt).toBe(1);
      expect(perf.sonnet).toBeGreaterThan(0.65);
      expect(perf.sonnet).toBeLessThan(0.68);
    }
  });

  it('the tenant comes from the key; a bad body is 400 and no key is 401', async () => {
    const d = (await route(C, { tenant: 'tenant-b' } as Record<string, unknown>)).json<RoutingDecision & { tenant: string }>();
    expect(d.tenant).toBe('tenant-c');
    expect(d.chosen).toBeNull();
    expect((await route(A, { estimated_input_tokens: -1 })).statusCode).toBe(400);
    const noBody = await app.inject({ method: 'POST', url: '/v1/route', headers: { 'x-api-key': A } });
    expect(noBody.statusCode).toBe(200);
    expect(noBody.json<RoutingDecision>().chosen).toMatchObject({ id: 'sonnet' });
    expect((await app.inject({ method: 'POST', url: '/v1/route', payload: {} })).statusCode).toBe(401);
  });
});
