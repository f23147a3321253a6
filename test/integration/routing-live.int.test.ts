/**
 * Routing on live aggregates (issue 4 acceptance), on the real engine (chDB): usage is written
 * through the processor path, the snapshot is refreshed from ClickHouse, and POST /v1/route is
 * called through the app factory. The clock is fixed at 2026-11-29 10:30 UTC.
 *
 * - the brief's TOKEN_THRESHOLD switch: the primary flips to the secondary when its remaining
 *   daily tokens drop below `min_remaining_tokens`;
 * - the breaker: a daily budget past its soft threshold stops low-priority traffic only;
 * - a user's own quota applies when the request names the user;
 * - an event 3 hours late lands in its event-time window and updates the quota state;
 * - `nudge()` refreshes the snapshot after the process writes usage.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { createRoutingSnapshot, type RoutingSnapshots } from '../../api/routing-snapshot.ts';
import { loadConfig } from '../../config/load.ts';
import type { QuotaStatus } from '../../domain/quota.ts';
import type { RoutingCandidate, RoutingDecision } from '../../domain/routing.ts';
import { createUsageStore } from '../../processors/clickhouse-writer.ts';
import { decodeBatch, transform } from '../../processors/usage.processor.ts';
import type { QuotaSpec } from '../../schemas/quota.ts';
import { openTestStore, type TestStore } from '../helpers/store.ts';

const NOW = Date.UTC(2026, 10, 29, 10, 30, 0);
const KEYS = ['e', 'f', 'g', 'h', 'u'].map((t) => ({ key: `key-${t}-0123456789abcdef`, tenant: `tenant-${t}` }));
const keyOf = (tenant: string) => `key-${tenant.replace('tenant-', '')}-0123456789abcdef`;
const SONNET = 'claude-sonnet-4-20250514';
const day = { kind: 'calendar', unit: 'day' } as const;

const QUOTAS: QuotaSpec[] = [
  // TOKEN_THRESHOLD: 20,000 daily openai tokens; the primary switches below 8,000 left.
  { id: 'e-openai-day', scope: { tenant: 'tenant-e', provider: 'openai' }, metric: 'tokens', limit: 20_000, window: day },
  { id: 'f-openai-day', scope: { tenant: 'tenant-f', provider: 'openai' }, metric: 'tokens', limit: 20_000, window: day },
  // Breaker: 5 requests of 10 used = 50%, soft threshold 0.5 -> soft.
  { id: 'g-requests-day', scope: { tenant: 'tenant-g' }, metric: 'requests', limit: 10, window: day, soft_threshold: 0.5 },
  // Late event: one hourly and one daily quota on the same usage.
  { id: 'h-tokens-hour', scope: { tenant: 'tenant-h' }, metric: 'tokens', limit: 100_000, window: { kind: 'calendar', unit: 'hour' } },
  { id: 'h-tokens-day', scope: { tenant: 'tenant-h' }, metric: 'tokens', limit: 100_000, window: day },
  // A user's own quota: alice has used her 2 requests this hour.
  {
    id: 'u-alice-hour',
    scope: { tenant: 'tenant-u', user_id: 'alice' },
    metric: 'requests',
    limit: 2,
    window: { kind: 'calendar', unit: 'hour' },
  },
];

const CANDIDATES: RoutingCandidate[] = [
  {
    id: 'primary',
    provider: 'openai',
    model: 'gpt-4o',
    capabilities: ['tools', 'vision'],
    compliance: ['soc2'],
    price: { input_per_1m: 2.5, output_per_1m: 10 },
    min_remaining_tokens: 8_000,
  },
  {
    id: 'secondary',
    provider: 'anthropic',
    model: SONNET,
    capabilities: ['tools'],
    compliance: ['soc2'],
    price: { input_per_1m: 3, output_per_1m: 15 },
  },
];

let store: TestStore;
let app: FastifyInstance;
let routing: RoutingSnapshots;
let seq = 0;

interface Call {
  tenant: string;
  provider?: string;
  model?: string;
  at?: number;
  input?: number;
  output?: number;
  user?: string;
  latency?: number;
}

async function write(calls: Call[]): Promise<void> {
  const payloads = calls.map((c) =>
    JSON.stringify({
      event_id: `ev-${seq++}`,
      timestamp: new Date(c.at ?? NOW - 5 * 60_000).toISOString(),
      tenant: c.tenant,
      ...(c.user ? { user_id: c.user } : {}),
      provider: c.provider ?? 'openai',
      model: c.model ?? 'gpt-4o',
      input_tokens: c.input ?? 1_000,
      output_tokens: c.output ?? 100,
      latency_ms: c.latency ?? (c.provider === 'anthropic' ? 1_200 : 800),
    }),
  );
  const decoded = decodeBatch(
    payloads.map((value, i) => ({ value, source: `test:${seq}:${i}` })),
    { nowMs: NOW },
  );
  const outcome = transform(decoded, { nowMs: NOW, prices: loadConfig(undefined, {}).prices, seen: new Map() });
  expect(outcome.deadLetters).toEqual([]);
  await createUsageStore(store.client).write(outcome);
}

const times = (n: number, c: Call): Call[] => Array.from({ length: n }, () => c);

type RouteAnswer = RoutingDecision & { tenant: string; quotas: { id: string; remaining: number | string; state: string }[] };
async function route(tenant: string, body: Record<string, unknown> = {}): Promise<RouteAnswer> {
  const res = await app.inject({ method: 'POST', url: '/v1/route', headers: { 'x-api-key': keyOf(tenant) }, payload: body });
  expect(res.statusCode).toBe(200);
  return res.json<RouteAnswer>();
}
async function quotas(tenant: string): Promise<QuotaStatus[]> {
  const res = await app.inject({ method: 'GET', url: '/v1/quotas', headers: { 'x-api-key': keyOf(tenant) } });
  return res.json<{ quotas: QuotaStatus[] }>().quotas;
}

beforeAll(async () => {
  store = await openTestStore();
  await write([
    ...times(11, { tenant: 'tenant-e' }), // 11 x 1,100 = 12,100 used, 7,900 left: below 8,000
    ...times(10, { tenant: 'tenant-f' }), // 10 x 1,100 = 11,000 used, 9,000 left
    ...times(5, { tenant: 'tenant-g', provider: 'anthropic', model: SONNET }),
    ...times(2, { tenant: 'tenant-h' }), // 2,200 tokens at 10:25
    ...times(2, { tenant: 'tenant-u', user: 'alice' }),
  ]);
  routing = createRoutingSnapshot({ clickhouse: store.client, candidates: CANDIDATES, quotas: QUOTAS, refreshMs: 0, now: () => NOW });
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

describe("the brief's TOKEN_THRESHOLD switch", () => {
  it('keeps the primary while 9,000 daily tokens are left (threshold 8,000)', async () => {
    const d = await route('tenant-f');
    expect(d.chosen).toMatchObject({ id: 'primary', remaining_tokens: 9_000, below_min_remaining: false });
    expect(d.fallbacks.map((f) => f.id)).toEqual(['secondary']);
    expect(d.quotas).toEqual([
      { id: 'f-openai-day', metric: 'tokens', state: 'ok', remaining: 9_000, limit: 20_000, window_end: '2026-11-30T00:00:00.000Z' },
    ]);
  });

  it('flips to the secondary at 7,900 left, the primary kept as the last fallback', async () => {
    const d = await route('tenant-e');
    expect(d.chosen).toMatchObject({ id: 'secondary', remaining_tokens: null, below_min_remaining: false });
    expect(d.fallbacks).toHaveLength(1);
    expect(d.fallbacks[0]).toMatchObject({ id: 'primary', remaining_tokens: 7_900, below_min_remaining: true });
    expect(d.excluded).toEqual([]);
  });
});

describe('the breaker on a daily budget past its soft threshold', () => {
  it('stops low-priority traffic until local midnight, with the reason', async () => {
    const d = await route('tenant-g', { priority: 'low' });
    expect(d.chosen).toBeNull();
    expect(d.excluded.map((e) => [e.id, e.reason])).toEqual([
      ['primary', 'breaker_open'],
      ['secondary', 'breaker_open'],
    ]);
    expect(d.retry_after_s).toBe(48_600); // 10:30 -> 24:00 UTC = 13.5 h
    expect(d.quotas).toMatchObject([{ id: 'g-requests-day', state: 'soft', remaining: 5 }]);
  });

  it('lets normal and high priority through', async () => {
    for (const priority of ['normal', 'high']) {
      const d = await route('tenant-g', { priority });
      expect(d.excluded).toEqual([]);
      expect(d.chosen).not.toBeNull();
    }
  });
});

describe("a user's own quota", () => {
  it('excludes every candidate for the user who used it up, not for the rest of the tenant', async () => {
    const alice = await route('tenant-u', { user_id: 'alice' });
    expect(alice.chosen).toBeNull();
    expect(alice.excluded.map((e) => e.reason)).toEqual(['quota_exhausted', 'quota_exhausted']);
    expect(alice.retry_after_s).toBe(1_800); // the hour resets at 11:00
    expect(alice.quotas).toMatchObject([{ id: 'u-alice-hour', state: 'exhausted', remaining: 0 }]);
    const bob = await route('tenant-u', { user_id: 'bob' });
    expect(bob.chosen).not.toBeNull();
    expect(bob.quotas).toEqual([]);
    expect((await route('tenant-u')).chosen).not.toBeNull();
  });
});

describe('an event 3 hours late', () => {
  it('lands in its event-time window: the day quota and the routing state change, the current hour does not', async () => {
    const before = await quotas('tenant-h');
    expect(before.map((q) => [q.id, q.used])).toEqual([
      ['h-tokens-hour', 2_200],
      ['h-tokens-day', 2_200],
    ]);
    await write([{ tenant: 'tenant-h', at: NOW - 3 * 3_600_000, input: 40_000, output: 0 }]); // event time 07:30, processed 10:30
    const after = await quotas('tenant-h');
    expect(after.map((q) => [q.id, q.used, q.window_start])).toEqual([
      ['h-tokens-hour', 2_200, '2026-11-29T10:00:00.000Z'],
      ['h-tokens-day', 42_200, '2026-11-29T00:00:00.000Z'],
    ]);
    await routing.refresh();
    expect((await route('tenant-h')).quotas.map((q) => [q.id, q.remaining])).toEqual([
      ['h-tokens-hour', 97_800],
      ['h-tokens-day', 57_800],
    ]);
  });
});

describe('nudge', () => {
  it('refreshes the snapshot soon after the process writes usage, without a timer', async () => {
    // tenant-f has 9,000 left; 2 more calls leave 6,800: below the primary's 8,000 threshold.
    expect((await route('tenant-f')).chosen?.id).toBe('primary');
    await write(times(2, { tenant: 'tenant-f' }));
    expect((await route('tenant-f')).chosen?.id).toBe('primary'); // not refreshed yet
    routing.nudge();
    routing.nudge(); // a burst of nudges costs one refresh
    await vi.waitFor(async () => expect((await route('tenant-f')).chosen?.id).toBe('secondary'), { timeout: 10_000, interval: 100 });
  });
});
