/**
 * The recommendation engine's pure parts: ids, monthly scaling, the confidence rule, thresholds,
 * the query builders' parameters (input bound, never interpolated), rules evaluated on hand-built
 * rows, and the prefix-chain tag. The queries on the real engine: test/integration/recommendations.int.test.ts.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PriceTable } from '../../domain/pricing.ts';
import { prefixChainTag } from '../../domain/prompt-prefix.ts';
import {
  confidenceOf,
  DAY_MS,
  DEFAULT_THRESHOLDS,
  Decimal,
  perMonth,
  RULES,
  type RuleContext,
  recommendationId,
  resolveThresholds,
  subjectFilter,
  WEEK_MS,
} from '../../processors/recommendations/index.ts';

const prices = new PriceTable([
  { provider: 'acme', model: 'big', effective_from: '2026-01-01', input_per_1m: 10, cached_input_per_1m: 2, output_per_1m: 30 },
  { provider: 'acme', model: 'small', effective_from: '2026-01-01', input_per_1m: 1, output_per_1m: 3 },
]);
const FROM = Date.UTC(2026, 10, 1);
const TO = Date.UTC(2026, 10, 2);
const ctx = (over: Partial<RuleContext> = {}): RuleContext => ({
  tenant: "o'brien",
  fromMs: FROM,
  toMs: TO,
  prices,
  candidates: [],
  thresholds: resolveThresholds(),
  ...over,
});

describe('recommendationId', () => {
  it('is sha256 hex of [tenant, kind, [[field, value]...]] with the subject fields in a fixed order', () => {
    const expected = createHash('sha256').update('["t","cap_max_tokens",[["provider","p"],["model","m"],["task_id",""]]]').digest('hex');
    expect(recommendationId('t', 'cap_max_tokens', { task_id: '', model: 'm', provider: 'p' })).toBe(expected);
    expect(recommendationId('t', 'cap_max_tokens', { provider: 'p', model: 'm', task_id: '' })).toBe(expected);
  });

  it('changes with the tenant, the kind and any subject field', () => {
    const base = recommendationId('t', 'trim_prompts', { provider: 'p', model: 'm', user_id: 'u' });
    expect(recommendationId('t2', 'trim_prompts', { provider: 'p', model: 'm', user_id: 'u' })).not.toBe(base);
    expect(recommendationId('t', 'batch_small_calls', { provider: 'p', model: 'm', user_id: 'u' })).not.toBe(base);
    expect(recommendationId('t', 'trim_prompts', { provider: 'p', model: 'm', task_id: 'u' })).not.toBe(base);
  });
});

describe('perMonth', () => {
  const s = (tokens: string, usd: string | null) => ({ tokens: new Decimal(tokens), usd: usd === null ? null : new Decimal(usd) });

  it.each<[string, ReturnType<typeof s>, number, { tokens: number; usd: string; priced: boolean }]>([
    ['one day x 30', s('7', '0.0001234567'), DAY_MS, { tokens: 210, usd: '0.003704', priced: true }], // 0.003703701 -> 6 decimals, half up
    ['one week x 30/7, exact', s('8400', '0.084'), WEEK_MS, { tokens: 36_000, usd: '0.36', priced: true }],
    ['tokens rounded half up: 1 token in 60 days = 0.5', s('1', '0'), 60 * DAY_MS, { tokens: 1, usd: '0', priced: true }],
    ['4.2857 tokens round down', s('1', '0.000001'), WEEK_MS, { tokens: 4, usd: '0.000004', priced: true }],
    ['unpriced: usd "0" and priced false', s('100', null), DAY_MS, { tokens: 3000, usd: '0', priced: false }],
  ])('%s', (_label, saving, ms, expected) => {
    expect(perMonth(saving, ms)).toEqual(expected);
  });

  it('rejects a non-positive measured period, naming it', () => {
    expect(() => perMonth(s('1', '1'), 0)).toThrow(/measuredMs: must be > 0/);
  });
});

describe('confidenceOf', () => {
  it.each<[number, number, 'low' | 'medium' | 'high', string]>([
    [1_000, 5, 'high', 'high'],
    [1_000, 4, 'high', 'medium'], // calls on fewer than 5 days: no weekly cycle seen
    [999, 30, 'high', 'medium'],
    [100, 1, 'high', 'medium'],
    [99, 30, 'high', 'low'],
    [50_000, 30, 'medium', 'medium'], // capped by the kind
    [5, 1, 'medium', 'low'],
  ])('%i calls on %i days, kind max %s -> %s', (calls, days, max, expected) => {
    expect(confidenceOf(calls, days, max)).toBe(expected);
  });
});

describe('resolveThresholds', () => {
  it('applies overrides per rule and keeps the other defaults', () => {
    const t = resolveThresholds({ cache: { ttlShortMs: 60_000 } });
    expect(t.cache).toEqual({ ...DEFAULT_THRESHOLDS.cache, ttlShortMs: 60_000 });
    expect(t.batch).toEqual(DEFAULT_THRESHOLDS.batch);
  });

  it('names a bad threshold', () => {
    expect(() => resolveThresholds({ cache: { minHitCalls: -1 } })).toThrow(
      'thresholds.cache.minHitCalls: must be a finite number >= 0, got -1',
    );
  });
});

describe('query builders', () => {
  it('bind the tenant, range and subject as parameters; the input never appears in the SQL', () => {
    for (const rule of Object.values(RULES)) {
      const q = rule.query(ctx(), { provider: 'acme', model: "x'; DROP TABLE usage_events --", task_id: 't1', user_id: 'u1' });
      expect(q.query, rule.kind).not.toContain("o'brien");
      expect(q.query, rule.kind).not.toContain('DROP TABLE');
      expect(q.query_params.tenant, rule.kind).toBe("o'brien");
      expect(q.query_params.s_model, rule.kind).toBe("x'; DROP TABLE usage_events --");
      expect(q.query, rule.kind).toContain('{s_model:String}');
    }
  });

  it('the time parameters of each rule', () => {
    expect(RULES.cache_repeated_prompts.query(ctx()).query_params).toEqual({
      tenant: "o'brien",
      from_ms: FROM,
      to_ms: TO,
      ttl_short_ms: 300_000,
      ttl_long_ms: 3_600_000,
    });
    // trim_prompts: the two weeks before toMs, split at toMs - 7 d, whatever fromMs is.
    expect(RULES.trim_prompts.query(ctx()).query_params).toEqual({
      tenant: "o'brien",
      from_ms: TO - 2 * WEEK_MS,
      mid_ms: TO - WEEK_MS,
      to_ms: TO,
    });
    // Measuring a later range of a week or less reads it all as the "last" week.
    expect(RULES.trim_prompts.timeParams(TO, TO + DAY_MS)).toEqual({ from_ms: TO, mid_ms: TO, to_ms: TO + DAY_MS });
    expect(RULES.trim_prompts.measuredMs(TO - 2 * WEEK_MS, TO)).toBe(WEEK_MS);
    expect(RULES.batch_small_calls.query(ctx()).query_params).toMatchObject({
      small_input_tokens: 1_000,
      burst_gap_ms: 5_000,
      min_burst_calls: 5,
    });
  });

  it('spread_load gets the routing candidates as two parallel arrays, providers in lower case', () => {
    const candidates = [
      { id: 'a', provider: 'OpenAI', model: 'gpt-4o', capabilities: [], compliance: [], price: { input_per_1m: 1, output_per_1m: 1 } },
    ];
    expect(RULES.spread_load.query(ctx({ candidates })).query_params).toMatchObject({
      pool_providers: ['openai'],
      pool_models: ['gpt-4o'],
    });
  });

  it('subjectFilter adds one bound equality per subject field the rule keys on', () => {
    expect(subjectFilter({ provider: 'p', model: 'm', user_id: 'u' }, { provider: 'p.provider', model: 'p.model' })).toEqual({
      sql: ' AND p.provider = {s_provider:String} AND p.model = {s_model:String}',
      params: { s_provider: 'p', s_model: 'm' },
    });
    expect(subjectFilter(undefined, { provider: 'provider' })).toEqual({ sql: '', params: {} });
  });
});

describe('rules on hand-built rows', () => {
  const cacheRow = (over: Record<string, unknown>) => ({
    provider: 'acme',
    model: 'big',
    calls: '20',
    input_total: '20000',
    cached_input_total: '0',
    hit_calls_short: '10',
    hit_calls_long: '10',
    new_cached_short: '10000',
    new_cached_long: '10000',
    exact_calls_short: '10',
    exact_uncached_input_short: '10000',
    exact_cached_input_short: '0',
    exact_output_short: '1000',
    exact_calls_long: '10',
    exact_uncached_input_long: '10000',
    exact_cached_input_long: '0',
    exact_output_long: '1000',
    ...over,
  });

  it('cache: the response cache is the headline when it saves more USD', () => {
    // prompt cache: 10,000 x (10 - 2) / 1M = $0.08; response cache: (10,000 x 10 + 1,000 x 30) / 1M = $0.13.
    const [f] = RULES.cache_repeated_prompts.evaluate([cacheRow({})], ctx());
    expect(f?.figures.variant).toBe('response_cache');
    expect(f?.saving.usd?.toFixed()).toBe('0.13');
    expect(f?.saving.tokens.toFixed()).toBe('11000');
  });

  it('cache: an unpriced model picks by tokens and has no USD', () => {
    const [f] = RULES.cache_repeated_prompts.evaluate(
      [cacheRow({ model: 'unknown', exact_calls_short: '0', exact_uncached_input_short: '0', exact_output_short: '0' })],
      ctx(),
    );
    expect(f?.figures.variant).toBe('prompt_cache');
    expect(f?.saving.usd).toBeNull();
    expect(f?.saving.tokens.toFixed()).toBe('10000');
  });

  it('cache: silent below the share or the count of hits', () => {
    // 4 hits of 20: below 5 hits; 5 hits of 101 calls: 4.95% < 5%.
    expect(RULES.cache_repeated_prompts.evaluate([cacheRow({ hit_calls_short: '4' })], ctx())).toEqual([]);
    expect(RULES.cache_repeated_prompts.evaluate([cacheRow({ calls: '101', hit_calls_short: '5' })], ctx())).toEqual([]);
  });

  it('right_size_model: silent for a model without a price (it cannot be shown to be expensive)', () => {
    const row = {
      provider: 'acme',
      model: 'unknown',
      task_id: 't',
      calls: '50',
      failed_calls: '0',
      uncached_input: '50000',
      cached_input: '0',
      output: '2000',
      output_p95: '40',
    };
    expect(RULES.right_size_model.evaluate([row], ctx())).toEqual([]);
    // The same row on acme/big: acme/small costs 50,000 x 1 + 2,000 x 3 = $0.056 vs 50,000 x 10 + 2,000 x 30 = $0.56.
    const [f] = RULES.right_size_model.evaluate([{ ...row, model: 'big' }], ctx());
    expect(f?.saving.usd?.toFixed()).toBe('0.504');
  });
});

describe('PriceTable.models (the price-table alternatives of right_size_model)', () => {
  it('lists the (provider, model) pairs priced at that time, sorted; an entry not yet in force is left out', () => {
    const table = new PriceTable([
      { provider: 'Zeta', model: 'z1', effective_from: '2026-01-01', input_per_1m: 1, output_per_1m: 1 },
      { provider: 'acme', model: 'small', effective_from: '2026-01-01', input_per_1m: 1, output_per_1m: 1 },
      { provider: 'acme', model: 'big', effective_from: '2026-06-01', input_per_1m: 1, output_per_1m: 1 },
    ]);
    expect(table.models(Date.UTC(2026, 6, 1))).toEqual([
      { provider: 'acme', model: 'big' },
      { provider: 'acme', model: 'small' },
      { provider: 'zeta', model: 'z1' },
    ]);
    expect(table.models(Date.UTC(2026, 2, 1))).toEqual([
      { provider: 'acme', model: 'small' },
      { provider: 'zeta', model: 'z1' },
    ]);
  });
});

describe('prefixChainTag', () => {
  it('writes every checkpoint when they fit', () => {
    expect(
      prefixChainTag([
        { tokens: 512, hash: 'a' },
        { tokens: 1024, hash: 'b' },
      ]),
    ).toBe('512:a 1024:b');
  });

  it('keeps the first, the power-of-two positions and the last, then fills from the end', () => {
    // 20 checkpoints "tokens:h000000000" (13 or 14 characters) do not fit in 100 characters.
    const cps = Array.from({ length: 20 }, (_, i) => ({ tokens: (i + 1) * 10, hash: `h${String(i).padStart(9, '0')}` }));
    const tag = prefixChainTag(cps, 100);
    // Positions 1, 2, 4, 8, 16 and 20 (tokens 10, 20, 40, 80, 160, 200): 4 x 13 + 2 x 14 + 5 spaces
    // = 85 characters; position 19 (190) adds 15 -> 100, position 18 would make 115.
    expect(tag).toBe('10:h000000000 20:h000000001 40:h000000003 80:h000000007 160:h000000015 190:h000000018 200:h000000019');
    expect(tag.length).toBe(100);
  });

  it('names a bad checkpoint', () => {
    expect(() => prefixChainTag([{ tokens: 0, hash: 'a' }])).toThrow('checkpoints[0].tokens: must be a whole number > 0, got 0');
    expect(() => prefixChainTag([{ tokens: 5, hash: 'a b' }])).toThrow(/checkpoints\[0\].hash/);
    expect(() =>
      prefixChainTag([
        { tokens: 5, hash: 'a' },
        { tokens: 5, hash: 'b' },
      ]),
    ).toThrow(/checkpoints\[1\].tokens: must be greater/);
  });
});
