/**
 * POST /v1/route answers money and scores without binary floating-point noise: estimated_cost_usd
 * rounded to 12 decimals (pico-USD, the precision of stored costs), scores (0..1) to 12 decimals
 * too. Through the app factory with an in-memory routing snapshot (no ClickHouse).
 */
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { compileSnapshot, type RoutingCandidate } from '../../domain/routing.ts';

const KEY = 'read-key-a-0123456789ab';

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

function route(candidates: RoutingCandidate[]) {
  const snapshot = compileSnapshot(candidates, new Map());
  app = buildApp({
    logger: false,
    bodyLimitBytes: 65_536,
    readiness: {},
    api: {
      clickhouse: {} as never,
      keys: [{ key: KEY, tenant: 'tenant-a', role: 'read' }],
      routing: { current: () => snapshot, remaining: () => [] },
    },
  });
  const served = app;
  return async (body: Record<string, unknown>) => {
    const res = await served.inject({ method: 'POST', url: '/v1/route', headers: { 'x-api-key': KEY }, payload: body });
    expect(res.statusCode, res.body).toBe(200);
    const answer = res.json<{ chosen: Ranked | null; fallbacks: Ranked[] }>();
    return [answer.chosen, ...answer.fallbacks].filter((r): r is Ranked => r !== null);
  };
}

interface Ranked {
  id: string;
  score: number;
  breakdown: Record<string, number>;
  estimated_cost_usd: number;
}

const candidate = (id: string, input_per_1m: number, output_per_1m: number): RoutingCandidate => ({
  id,
  provider: 'openai',
  model: id,
  capabilities: [],
  compliance: [],
  price: { input_per_1m, output_per_1m },
});

describe('POST /v1/route: numbers without float noise', () => {
  it('estimated_cost_usd is the hand-computed cost (USD per 1M prices x tokens / 1M)', async () => {
    const ask = route([candidate('a', 2.5, 10), candidate('b', 0.15, 0.6), candidate('c', 3, 15)]);
    const ranked = await ask({ estimated_input_tokens: 1_800, estimated_output_tokens: 300 });
    const costs = Object.fromEntries(ranked.map((r) => [r.id, r.estimated_cost_usd]));
    expect(costs).toEqual({
      a: 0.0075, // 1,800 x 2.5 + 300 x 10 = 7,500 / 1M
      b: 0.00045, // 1,800 x 0.15 + 300 x 0.6 = 450 / 1M
      c: 0.0099, // 1,800 x 3 + 300 x 15 = 9,900 / 1M
    });
  });

  it('over a grid of prices and token counts: costs and scores have at most 12 decimals', async () => {
    const prices = [0.1, 0.15, 0.3, 0.7, 1.1, 2.5, 3, 0.075];
    const ask = route(prices.map((p, i) => candidate(`m${i}`, p, prices[(i + 3) % prices.length]! * 4)));
    let numbers = 0;
    for (const estimated_input_tokens of [1, 7, 333, 1_800, 30_000, 123_457]) {
      for (const estimated_output_tokens of [0, 3, 300, 4_097]) {
        for (const r of await ask({ estimated_input_tokens, estimated_output_tokens, max_fallbacks: 100, explain: true })) {
          const where = `${r.id} at ${estimated_input_tokens}/${estimated_output_tokens}`;
          expect(Number(r.estimated_cost_usd.toFixed(12)), `${where}: ${r.estimated_cost_usd}`).toBe(r.estimated_cost_usd);
          for (const s of [r.score, ...Object.values(r.breakdown)]) {
            expect(Number(s.toFixed(12)), `${where}: ${s}`).toBe(s);
            numbers++;
          }
        }
      }
    }
    expect(numbers).toBe(prices.length * 6 * 4 * 6);
  });
});

describe('POST /v1/route: breakdowns', () => {
  const cands = [candidate('a', 2.5, 10), candidate('b', 0.15, 0.6), candidate('c', 3, 15)];
  const keys = ['performance', 'cost', 'features', 'stability', 'compliance'];

  it('the chosen candidate always has its breakdown; fallbacks have only their score unless explain is true', async () => {
    const ask = route(cands);
    const [chosen, ...fallbacks] = await ask({ estimated_input_tokens: 1_000 });
    expect(Object.keys(chosen!.breakdown).sort()).toEqual([...keys].sort());
    expect(fallbacks).toHaveLength(2);
    for (const f of fallbacks) {
      expect(f).not.toHaveProperty('breakdown');
      expect(typeof f.score).toBe('number');
    }
  });

  it('with explain, every fallback has its breakdown, and the ranking and scores are the same', async () => {
    const ask = route(cands);
    const brief = await ask({ estimated_input_tokens: 1_000 });
    const explained = await ask({ estimated_input_tokens: 1_000, explain: true });
    expect(explained.map((r) => [r.id, r.score])).toEqual(brief.map((r) => [r.id, r.score]));
    for (const r of explained) expect(Object.keys(r.breakdown).sort()).toEqual([...keys].sort());
  });

  it('explain must be a boolean', async () => {
    route(cands);
    const res = await app!.inject({ method: 'POST', url: '/v1/route', headers: { 'x-api-key': KEY }, payload: { explain: 'yes' } });
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain('explain');
  });
});
