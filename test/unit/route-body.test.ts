/**
 * POST /v1/route takes its body as strictly as POST /v1/events takes events: an unknown field, a
 * wrong type or a lone surrogate is a 400 naming the field, never coerced or dropped (a typo in a
 * hard filter such as `required_complaince` would otherwise route to a candidate it should exclude).
 */
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { compileSnapshot, type RoutingCandidate } from '../../domain/routing.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';

const KEY = 'route-key-0123456789abcdef';
const CANDIDATES: RoutingCandidate[] = [
  { id: 'a', provider: 'openai', model: 'm1', capabilities: ['tools'], compliance: [], price: { input_per_1m: 1, output_per_1m: 2 } },
  { id: 'b', provider: 'anthropic', model: 'm2', capabilities: [], compliance: ['gdpr'], price: { input_per_1m: 3, output_per_1m: 4 } },
];
const snapshot = compileSnapshot(CANDIDATES, new Map());
const app = buildApp({
  logger: false,
  bodyLimitBytes: 65_536,
  readiness: {},
  api: {
    clickhouse: {} as ClickHouseClient,
    keys: [{ key: KEY, tenant: 't1' }],
    routing: { current: () => snapshot, remaining: () => [] },
  },
});
const post = (payload: string) =>
  app.inject({ method: 'POST', url: '/v1/route', headers: { 'x-api-key': KEY, 'content-type': 'application/json' }, payload });

describe('POST /v1/route body', () => {
  it.each([
    ['an unknown field (a typo in a hard filter)', '{"required_complaince":["gdpr"]}', 'required_complaince'],
    ['a number as a string', '{"estimated_input_tokens":"100"}', 'estimated_input_tokens'],
    ['a number as user_id', '{"user_id":123}', 'user_id'],
    ['a string where a list is due', '{"required_capabilities":"tools"}', 'required_capabilities'],
    ['a lone surrogate', '{"user_id":"\\ud800"}', 'user_id'],
    ['a value outside the choices', '{"priority":"urgent"}', 'priority'],
    ['null instead of an object', 'null', 'body'],
  ])('refuses %s with 400 naming the field', async (_what, payload, field) => {
    const res = await post(payload);
    expect(res.statusCode).toBe(400);
    const body = res.json<{ error: { code: string; message: string } }>();
    expect(body.error.code).toBe('bad_request');
    expect(body.error.message).toContain(field);
  });

  it('checks the key before the body: a bad body without a key, or with a wrong one, is 401', async () => {
    const json = { 'content-type': 'application/json' };
    const payload = '{"explain":"x"}';
    for (const headers of [json, { ...json, 'x-api-key': 'wrong-key-0123456789abcd' }, { ...json, authorization: 'Bearer wrong' }]) {
      const res = await app.inject({ method: 'POST', url: '/v1/route', headers, payload });
      expect(res.statusCode).toBe(401);
      expect(res.json()).toEqual({
        error: { code: 'unauthorized', message: 'missing or unknown API key: send "Authorization: Bearer <key>" or "X-API-Key: <key>"' },
      });
    }
    // With the key, the same body is refused for what it is.
    const keyed = await post(payload);
    expect(keyed.statusCode).toBe(400);
    expect(keyed.json()).toEqual({ error: { code: 'bad_request', message: 'body.explain: Expected boolean' } });
  });

  it('takes a correct body, and no body at all as no hints', async () => {
    const ok = await post('{"required_compliance":["gdpr"],"estimated_input_tokens":100,"priority":"low","task_class":"simple"}');
    expect(ok.statusCode).toBe(200);
    expect(ok.json<{ chosen: { id: string } }>().chosen.id).toBe('b');
    const none = await app.inject({ method: 'POST', url: '/v1/route', headers: { 'x-api-key': KEY } });
    expect(none.statusCode).toBe(200);
  });
});

describe('fallbacks in the answer', () => {
  const many: RoutingCandidate[] = Array.from({ length: 8 }, (_, i) => ({
    id: `c${i}`,
    provider: 'openai',
    model: `m${i}`,
    capabilities: [],
    compliance: [],
    price: { input_per_1m: 1 + i, output_per_1m: 2 + i },
  }));
  const big = compileSnapshot(many, new Map());
  const app8 = buildApp({
    logger: false,
    bodyLimitBytes: 65_536,
    readiness: {},
    api: { clickhouse: {} as ClickHouseClient, keys: [{ key: KEY, tenant: 't1' }], routing: { current: () => big, remaining: () => [] } },
  });
  const ask = async (payload: string) =>
    (
      await app8.inject({ method: 'POST', url: '/v1/route', headers: { 'x-api-key': KEY, 'content-type': 'application/json' }, payload })
    ).json<{ chosen: { id: string }; fallbacks: { id: string }[] }>();

  it('lists the best five by default, and as many as asked', async () => {
    const d = await ask('{}');
    expect(d.chosen.id).toBe('c0'); // cheapest, all else equal
    expect(d.fallbacks.map((f) => f.id)).toEqual(['c1', 'c2', 'c3', 'c4', 'c5']);
    expect((await ask('{"max_fallbacks":0}')).fallbacks).toEqual([]);
    expect((await ask('{"max_fallbacks":100}')).fallbacks).toHaveLength(7);
  });
});
