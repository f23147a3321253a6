/**
 * The read API on the real engine (chDB): usage written through the processor path (decode ->
 * transform -> ClickHouse writer), config (teams, api_keys) through loadConfig, and the app built
 * as cli/roles.ts builds it, queried with app.inject(). Covers tenant isolation by key role, a
 * team quota measured from its members' usage only, a team allocation (weights, priority reserve,
 * re-lending, largest-remainder rounding), and usage per local day in America/New_York across the
 * 2026 DST start, per UTC day, and per Asia/Kolkata hour. The clock is fixed: every value is
 * hand-computed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { loadConfig } from '../../config/load.ts';
import { createUsageStore } from '../../processors/clickhouse-writer.ts';
import { decodeBatch, transform } from '../../processors/usage.processor.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import { openTestStore, type TestStore } from '../helpers/store.ts';

const NOW = Date.UTC(2026, 10, 29, 12, 0, 0);
const READ_A = 'read-key-a-0123456789ab';
const READ_B = 'read-key-b-0123456789ab';
const INGEST_NY = 'ingest-key-ny-0123456789';
const ADMIN = 'admin-key-0123456789abc';

const CONFIG = `
ingest_keys:
  - { key: ${INGEST_NY}, tenant: tenant-ny }
api_keys:
  - { key: ${READ_A}, role: read, tenant: tenant-a }
  - { key: ${READ_B}, role: read, tenant: tenant-b }
  - { key: ${ADMIN}, role: admin }
teams:
  - id: core
    tenant: tenant-a
    priority_reserve: 0.1
    members: [{ user_id: alice, weight: 2 }, { user_id: bob }, { user_id: carol, priority: true }]
quotas:
  - { id: a-tokens-day, scope: { tenant: tenant-a }, metric: tokens, limit: 10000, window: { kind: calendar, unit: day } }
  - { id: core-tokens-day, scope: { tenant: tenant-a, team: core }, metric: tokens, limit: 10000, window: { kind: calendar, unit: day } }
  - { id: core-requests-day, scope: { tenant: tenant-a, team: core }, metric: requests, limit: 10, window: { kind: calendar, unit: day } }
`;

/** [tenant, user, ISO time, input tokens, output tokens] */
const EVENTS: Array<[string, string, string, number, number]> = [
  // tenant-a on 2026-11-29; the burn window is [11:45, 12:00).
  ['tenant-a', 'alice', '2026-11-29T08:00:00Z', 2_850, 0],
  ['tenant-a', 'alice', '2026-11-29T11:50:00Z', 100, 50],
  ['tenant-a', 'bob', '2026-11-29T09:00:00Z', 400, 100],
  ['tenant-a', 'carol', '2026-11-29T10:00:00Z', 970, 0],
  ['tenant-a', 'carol', '2026-11-29T11:46:00Z', 30, 0],
  ['tenant-a', 'zed', '2026-11-29T11:55:00Z', 5_000, 0], // not a member of core
  ['tenant-b', 'alice', '2026-11-29T11:50:00Z', 9_999, 0], // another tenant's alice
  // tenant-ny around the New York DST start (2026-03-08 02:00 EST -> 03:00 EDT).
  ['tenant-ny', 'nyc', '2026-03-08T04:30:00Z', 1, 0], // E1: Mar 7 23:30 EST
  ['tenant-ny', 'nyc', '2026-03-08T05:30:00Z', 10, 0], // E2: Mar 8 00:30 EST
  ['tenant-ny', 'nyc', '2026-03-09T03:30:00Z', 100, 0], // E3: Mar 8 23:30 EDT; 09:00 IST Mar 9
  ['tenant-ny', 'nyc', '2026-03-09T04:30:00Z', 1_000, 0], // E4: Mar 9 00:30 EDT; 10:00 IST
  ['tenant-ny', 'nyc', '2026-03-09T04:20:00Z', 10_000, 0], // E5: Mar 9 00:20 EDT; 09:50 IST
];

let store: TestStore;
let app: FastifyInstance;
let dir: string;
const tables: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'qf-api-read-'));
  writeFileSync(join(dir, 'config.yaml'), CONFIG);
  const { config, prices } = loadConfig(join(dir, 'config.yaml'), {});
  store = await openTestStore();
  const payloads = EVENTS.map(([tenant, user_id, timestamp, input_tokens, output_tokens], i) =>
    JSON.stringify({ event_id: `e-${i}`, timestamp, tenant, user_id, provider: 'openai', model: 'gpt-4o', input_tokens, output_tokens }),
  );
  const decoded = decodeBatch(
    payloads.map((value, i) => ({ value, source: `test:${i}` })),
    { nowMs: NOW },
  );
  const outcome = transform(decoded, { nowMs: NOW, prices, seen: new Map() });
  expect(outcome.deadLetters).toEqual([]);
  await createUsageStore(store.client).write(outcome);

  // Record the table each usage query reads.
  const recording = new Proxy(store.client, {
    get(target, prop, receiver) {
      if (prop === 'query')
        return (...args: Parameters<ClickHouseClient['query']>) => {
          tables.push(/FROM (usage_\w+)/.exec(args[0].query)?.[1] ?? '');
          return target.query(...args);
        };
      return Reflect.get(target, prop, receiver);
    },
  });
  app = buildApp({
    logger: false,
    bodyLimitBytes: 1_048_576,
    readiness: {},
    // As cli/roles.ts wires it.
    api: {
      clickhouse: recording,
      keys: [...config.ingest_keys, ...config.api_keys],
      quotas: config.quotas,
      teams: config.teams,
      now: () => NOW,
    },
  });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const get = async (url: string, key: string) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${key}` } });

describe('tenant isolation by key role', () => {
  it('a read key gets 403 on another tenant; an admin key reads both', async () => {
    expect((await get('/v1/quotas/tenant-b', READ_A)).statusCode).toBe(403);
    expect((await get('/v1/usage?tenant=tenant-a', READ_B)).statusCode).toBe(403);
    expect((await get('/v1/usage?tenant=tenant-a', INGEST_NY)).statusCode).toBe(403);
    expect((await get('/v1/allocations/core', READ_B)).statusCode).toBe(403); // core is a team of tenant-a
    expect((await get('/v1/allocations/core', ADMIN)).json()).toMatchObject({ tenant: 'tenant-a', team: 'core' });

    const a = (await get('/v1/usage?tenant=tenant-a&group_by=', ADMIN)).json<{ rows: Array<{ input_tokens: number }> }>();
    const b = (await get('/v1/usage?tenant=tenant-b&group_by=', ADMIN)).json<{ rows: Array<{ input_tokens: number }> }>();
    expect(a.rows.map((r) => r.input_tokens)).toEqual([9_350]); // 2,850 + 100 + 400 + 970 + 30 + 5,000
    expect(b.rows.map((r) => r.input_tokens)).toEqual([9_999]);
    expect((await get('/v1/usage?group_by=user_id', READ_B)).json<{ rows: Array<{ user_id: string }> }>().rows).toEqual([
      expect.objectContaining({ user_id: 'alice', input_tokens: 9_999, requests: 1 }),
    ]);
  });
});

describe('team quotas', () => {
  it("measures a team quota from its members' usage only (not zed, not tenant-b's alice)", async () => {
    const res = await get('/v1/quotas/tenant-a', ADMIN);
    expect(res.statusCode).toBe(200);
    const { quotas } = res.json<{ quotas: Array<Record<string, unknown>> }>();
    expect(quotas.map((q) => [q.id, q.used, q.state])).toEqual([
      ['a-tokens-day', 9_500, 'soft'], // 4,500 of core + 5,000 of zed
      ['core-tokens-day', 4_500, 'ok'], // alice 3,000 + bob 500 + carol 1,000
      ['core-requests-day', 5, 'ok'],
    ]);
    expect(quotas[1]).toEqual({
      id: 'core-tokens-day',
      metric: 'tokens',
      used: 4_500,
      limit: 10_000,
      remaining: 5_500,
      percent: 45,
      state: 'ok',
      window_start: '2026-11-29T00:00:00.000Z',
      window_end: '2026-11-30T00:00:00.000Z',
      burn_rate_per_hour: 720, // alice 150 + carol 30 in the last 15 minutes
      projected_exhaustion_at: '2026-11-29T19:38:20.000Z', // 5,500 / 720 per hour = 7 h 38 min 20 s
      retry_after_s: null,
    });
  });

  it('splits the team quotas: weights, priority reserve, re-lending and largest-remainder rounding (hand-computed)', async () => {
    const res = await get('/v1/allocations/core', READ_A);
    expect(res.statusCode).toBe(200);
    const body = res.json<{ tenant: string; team: string; allocations: Array<Record<string, unknown>> }>();
    expect([body.tenant, body.team]).toEqual(['tenant-a', 'core']);
    const quotas = (await get('/v1/quotas', READ_A)).json<{ quotas: Array<{ id: string }> }>().quotas;
    // The per-member measurement agrees with the user_id IN (...) one of /v1/quotas.
    expect(body.allocations.map((a) => a.quota)).toEqual(quotas.filter((q) => q.id.startsWith('core-')));

    // Tokens: 12 h left = 48 burn windows. Demands: alice 3,000 + 150 x 48 = 10,200; bob 500;
    // carol 1,000 + 30 x 48 = 2,440. Reserve round(10,000 x 0.1) = 1,000 -> carol. Pool 9,000 over
    // alice (w2) 10,200, bob (w1) 500, carol (w1) 1,440: bob 500; carol 1,440; alice the 7,060 left.
    expect(body.allocations[0]).toMatchObject({
      total: 10_000,
      priority_reserve: 0.1,
      unallocated: 0,
      members: [
        { user_id: 'alice', weight: 2, priority: false, demand: 10_200, share: 7_060, reserved: 0, used: 3_000, remaining_share: 4_060 },
        { user_id: 'bob', weight: 1, priority: false, demand: 500, share: 500, reserved: 0, used: 500, remaining_share: 0 },
        { user_id: 'carol', weight: 1, priority: true, demand: 2_440, share: 2_440, reserved: 1_000, used: 1_000, remaining_share: 1_440 },
      ],
    });
    // Requests: used alice 2, bob 1, carol 2; in the burn window alice 1, carol 1. Demands: alice
    // 2 + 48 = 50, bob 1, carol 2 + 48 = 50. Reserve round(10 x 0.1) = 1 -> carol. Pool 9: bob 1;
    // the 8 left over alice (w2) and carol (w1): exact 5.33 and 2.67 -> 5 and 2, and the last unit
    // to the larger remainder (carol). Shares: alice 5, bob 1, carol 1 + 3 = 4.
    expect(body.allocations[1]).toMatchObject({
      quota: { id: 'core-requests-day', used: 5, burn_rate_per_hour: 8, projected_exhaustion_at: '2026-11-29T12:37:30.000Z' },
      total: 10,
      unallocated: 0,
      members: [
        { user_id: 'alice', demand: 50, share: 5, reserved: 0, used: 2, remaining_share: 3 },
        { user_id: 'bob', demand: 1, share: 1, reserved: 0, used: 1, remaining_share: 0 },
        { user_id: 'carol', demand: 50, share: 4, reserved: 1, used: 2, remaining_share: 2 },
      ],
    });
  });
});

describe('GET /v1/usage by time bucket and zone', () => {
  type Row = { window_start: string; requests: number; input_tokens: number };
  const series = async (query: string) => {
    tables.length = 0;
    const res = await get(`/v1/usage?group_by=&${query}`, INGEST_NY);
    expect(res.statusCode).toBe(200);
    const rows = res.json<{ rows: Row[] }>().rows.map((r) => [r.window_start, r.requests, r.input_tokens]);
    return { rows, table: tables[0] };
  };

  it('local days in America/New_York across the DST start: 24 h, 23 h and 24 h days, read from usage_hour', async () => {
    const ny = await series('window=day&time_zone=America/New_York&from=2026-03-07T00:00:00-05:00&to=2026-03-10T00:00:00-04:00');
    expect(ny.rows).toEqual([
      ['2026-03-07T00:00:00-05:00', 1, 1], // E1 (23:30 EST)
      ['2026-03-08T00:00:00-05:00', 2, 110], // E2 (00:30 EST) + E3 (23:30 EDT): the 23-hour day
      ['2026-03-09T00:00:00-04:00', 2, 11_000], // E5 (00:20 EDT) + E4 (00:30 EDT)
    ]);
    expect(ny.table).toBe('usage_hour');
  });

  it('UTC days split the same events differently, read from usage_day', async () => {
    const u = await series('window=day&from=2026-03-07T00:00:00Z&to=2026-03-10T00:00:00Z');
    expect(u.rows).toEqual([
      ['2026-03-08T00:00:00Z', 2, 11], // E1 + E2
      ['2026-03-09T00:00:00Z', 3, 11_100], // E3 + E5 + E4
    ]);
    expect(u.table).toBe('usage_day');
  });

  it('hours in Asia/Kolkata (+05:30) start at :30 UTC, read from usage_minute', async () => {
    const k = await series('window=hour&time_zone=Asia/Kolkata&from=2026-03-09T03:00:00Z&to=2026-03-09T05:00:00Z');
    expect(k.rows).toEqual([
      ['2026-03-09T09:00:00+05:30', 2, 10_100], // E3 (09:00 IST) + E5 (09:50 IST)
      ['2026-03-09T10:00:00+05:30', 1, 1_000], // E4 (10:00 IST)
    ]);
    expect(k.table).toBe('usage_minute');
    const utcHours = await series('window=hour&from=2026-03-09T03:00:00Z&to=2026-03-09T05:00:00Z');
    expect(utcHours.rows).toEqual([
      ['2026-03-09T03:00:00Z', 1, 100],
      ['2026-03-09T04:00:00Z', 2, 11_000],
    ]);
    expect(utcHours.table).toBe('usage_hour');
  });
});
