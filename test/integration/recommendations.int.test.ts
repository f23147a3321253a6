/**
 * Recommendations on the real engine (chDB). Each kind gets a tenant whose small hand-built data
 * set warrants it (the saving computed by hand in the comments and asserted exactly) and one whose
 * data does not (silent). Events go through the processor path (decode -> transform -> writer).
 * Then the feedback loop: save, adopt, dismiss, re-save, and the measured effect of adopted ones.
 *
 * Prices (USD per 1M tokens), a table of our own so the arithmetic is easy to follow:
 *   acme/big:   input 10, cached input 2, output 30
 *   acme/small: input 1, cached input 0.2, output 3
 * Range: FROM = 2026-11-01T00:00Z to TO = 2026-11-02T00:00Z, one day, so per 30 days = x 30.
 * trim_prompts reads the two weeks before TO whatever the range.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PriceTable } from '../../domain/pricing.ts';
import type { RoutingCandidate } from '../../domain/routing.ts';
import { createUsageStore } from '../../processors/clickhouse-writer.ts';
import {
  listRecommendations,
  measureAdopted,
  queryRows,
  type Recommendation,
  type RecommendationKind,
  recommend,
  saveRecommendations,
  setRecommendationState,
} from '../../processors/recommendations/index.ts';
import { decodeBatch, transform } from '../../processors/usage.processor.ts';
import { openTestStore, type TestStore } from '../helpers/store.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const FROM = Date.UTC(2026, 10, 1);
const TO = Date.UTC(2026, 10, 2);
const NOW = TO + 2 * DAY; // after every event, for validation
const prices = new PriceTable([
  { provider: 'acme', model: 'big', effective_from: '2026-01-01', input_per_1m: 10, cached_input_per_1m: 2, output_per_1m: 30 },
  { provider: 'acme', model: 'small', effective_from: '2026-01-01', input_per_1m: 1, cached_input_per_1m: '0.2', output_per_1m: 3 },
]);
const candidate = (id: string, provider: string, model: string, input: number, output: number): RoutingCandidate => ({
  id,
  provider,
  model,
  capabilities: [],
  compliance: [],
  price: { input_per_1m: input, output_per_1m: output },
});
const CANDIDATES = [
  candidate('big', 'acme', 'big', 10, 30),
  candidate('small', 'acme', 'small', 1, 3),
  candidate('mid', 'other', 'mid', 4, 12),
];

interface Ev {
  t: number;
  input: number;
  output: number;
  model?: string;
  cached?: number;
  task?: string;
  user?: string;
  status?: string;
  finish?: string;
  max?: number;
  hash?: string;
  chain?: string;
}
const events: string[] = [];
function add(tenant: string, list: Ev[]): void {
  for (const e of list) {
    events.push(
      JSON.stringify({
        event_id: `${tenant}-${events.length}`,
        timestamp: e.t,
        tenant,
        provider: 'acme',
        model: e.model ?? 'big',
        input_tokens: e.input,
        output_tokens: e.output,
        ...(e.cached === undefined ? {} : { cached_input_tokens: e.cached }),
        ...(e.task === undefined ? {} : { task_id: e.task }),
        ...(e.user === undefined ? {} : { user_id: e.user }),
        ...(e.status === undefined ? {} : { status: e.status }),
        ...(e.finish === undefined ? {} : { finish_reason: e.finish }),
        ...(e.max === undefined ? {} : { max_tokens: e.max }),
        ...(e.hash === undefined ? {} : { prompt_hash: e.hash }),
        ...(e.chain === undefined ? {} : { tags: { prefix_chain: e.chain } }),
      }),
    );
  }
}
const times = <T>(n: number, f: (k: number) => T): T[] => Array.from({ length: n }, (_, k) => f(k));

// --- cache_repeated_prompts ---------------------------------------------------------------
// cache-yes, all acme/big:
// - 10 calls, input 2000, output 50, 2 min apart from FROM+10h, each a new prompt (q0..q9) that
//   starts with the same 800-token system prompt (checkpoint 800:sys). Calls 2..10 hit within
//   5 min: 9 hits x 800 tokens, but call 6 (k=5) already reported 800 cached: 8 x 800 = 6,400 new.
// - prompt "dup" (input 500, output 20) at FROM+12h, +1 min (exact hit) and +31 min (gap 30 min:
//   a 1-hour hit, not a 5-minute one).
// 13 calls; 5-min hits: 9 + 1 = 10; 1-hour hits: 11.
// prompt cache, 5 min: 6,400 + 500 = 6,900 tokens x (10 - 2) / 1M = $0.0552  -> x30: 207,000 tokens, $1.656
// response cache, 5 min: the one exact repeat: (500 x 10 + 20 x 30) / 1M = $0.0056 (520 tokens): smaller.
// prompt cache, 1 h: 6,900 + 500 = 7,400 tokens.
add('cache-yes', [
  ...times(10, (k) => ({
    t: FROM + 10 * HOUR + k * 2 * MIN,
    input: 2000,
    output: 50,
    hash: `q${k}`,
    chain: `800:sys 2000:q${k}`,
    ...(k === 5 ? { cached: 800 } : {}),
  })),
  { t: FROM + 12 * HOUR, input: 500, output: 20, hash: 'dup' },
  { t: FROM + 12 * HOUR + MIN, input: 500, output: 20, hash: 'dup' },
  { t: FROM + 12 * HOUR + 31 * MIN, input: 500, output: 20, hash: 'dup' },
]);
// cache-no: 12 different prompts, and one prompt repeated 10 min later (past the 5-min TTL).
add('cache-no', [
  ...times(12, (k) => ({ t: FROM + HOUR + k * MIN, input: 1000, output: 10, hash: `x${k}` })),
  { t: FROM + 3 * HOUR, input: 1000, output: 10, hash: 'late' },
  { t: FROM + 3 * HOUR + 10 * MIN, input: 1000, output: 10, hash: 'late' },
]);

// --- cap_max_tokens -----------------------------------------------------------------------
// cap-trunc, task summarise: 20 calls, input 1000, max_tokens 256; 5 cut at 256 (finish length),
// 15 stop at 100. Truncated: 5 of 20 = 25% (>= 5 calls, >= 5%).
// Saving = the truncated calls: 5 x (1000 x 10 + 256 x 30) / 1M = 5 x 17,680 / 1M = $0.0884,
// 5 x 1,256 = 6,280 tokens -> x30: 188,400 tokens, $2.652.
add(
  'cap-trunc',
  times(20, (k) => ({
    t: FROM + HOUR + k * MIN,
    input: 1000,
    output: k < 5 ? 256 : 100,
    finish: k < 5 ? 'length' : 'stop',
    max: 256,
    task: 'summarise',
  })),
);
// cap-over, task classify: 40 calls, input 100, max_tokens 4000; 39 answer 80 tokens, one runs to 3000.
// p95 = quantileExact(0.95): rank floor(0.95 x 40) = 38 of the sorted outputs (0-based) = 80.
// 80 <= 0.5 x 4000. Proposed cap = ceil(80 x 1.25) = 100. Tail above it: 3000 - 100 = 2,900 tokens
// x 30 / 1M = $0.087 -> x30: 87,000 tokens, $2.61. Reserved and freed: 40 x (4000 - 100) = 156,000.
add(
  'cap-over',
  times(40, (k) => ({ t: FROM + 2 * HOUR + k * MIN, input: 100, output: k === 39 ? 3000 : 80, max: 4000, task: 'classify' })),
);
// cap-no: 20 calls, one truncated (1 < 5 calls), outputs 150 of max_tokens 200 (150 > 0.5 x 200).
add(
  'cap-no',
  times(20, (k) => ({
    t: FROM + HOUR + k * MIN,
    input: 100,
    output: k === 0 ? 200 : 150,
    finish: k === 0 ? 'length' : 'stop',
    max: 200,
    task: 'qa',
  })),
);

// --- right_size_model ---------------------------------------------------------------------
// rs-yes, task tag on acme/big: 50 calls, input 1000 each; 49 ok with output 40, 1 error with
// output 0. Failures 1/50 = 2% (<= 2%), output p95 of ok calls = 40 (<= 400).
// Tokens: input 50,000 (none cached), output 49 x 40 = 1,960.
// acme/big list: 50,000 x 10 + 1,960 x 30 = 558,800 / 1M = $0.5588
// candidates: acme/small 50,000 x 1 + 1,960 x 3 = $0.05588; other/mid 50,000 x 4 + 1,960 x 12 = $0.22352
// -> acme/small (10% of the cost, <= 50%). Saving 0.5588 - 0.05588 = $0.50292 -> x30: $15.0876, 0 tokens.
add(
  'rs-yes',
  times(50, (k) => ({
    t: FROM + HOUR + k * MIN,
    input: 1000,
    output: k === 0 ? 0 : 40,
    task: 'tag',
    ...(k === 0 ? { status: 'error' } : {}),
  })),
);
// rs-no: task essay answers long (p95 2000 > 400); task flaky fails 5 of 30 (17% > 2%).
add('rs-no', [
  ...times(30, (k) => ({ t: FROM + HOUR + k * MIN, input: 1000, output: 2000, task: 'essay' })),
  ...times(30, (k) => ({ t: FROM + 2 * HOUR + k * MIN, input: 1000, output: 40, task: 'flaky', ...(k < 5 ? { status: 'error' } : {}) })),
]);

// --- batch_small_calls --------------------------------------------------------------------
// batch-yes, task enrich on acme/big:
// - burst A: 12 calls 1 s apart from FROM+5h, input 300..311;
// - burst B: 10 calls 2 s apart from FROM+6h, input 320..329, with a big call (input 5000, not
//   small) in the middle that neither counts nor breaks it;
// - 3 calls 1 s apart at FROM+7h: too few for a burst.
// Calls in bursts 22 (>= 20); shared part = smallest input in bursts = 300;
// merged away (12 - 1) + (10 - 1) = 20 calls -> 20 x 300 = 6,000 input tokens x 10 / 1M = $0.06
// -> x30: 180,000 tokens, $1.80.
add('batch-yes', [
  ...times(12, (k) => ({ t: FROM + 5 * HOUR + k * 1000, input: 300 + k, output: 5, task: 'enrich' })),
  ...times(10, (k) => ({ t: FROM + 6 * HOUR + k * 2000, input: 320 + k, output: 5, task: 'enrich' })),
  { t: FROM + 6 * HOUR + 5000, input: 5000, output: 5, task: 'enrich' },
  ...times(3, (k) => ({ t: FROM + 7 * HOUR + k * 1000, input: 300, output: 5, task: 'enrich' })),
]);
// batch-no: task slow, 30 small calls 10 s apart (no burst); 30 calls 1 s apart without a task.
add('batch-no', [
  ...times(30, (k) => ({ t: FROM + 5 * HOUR + k * 10_000, input: 300, output: 5, task: 'slow' })),
  ...times(30, (k) => ({ t: FROM + 8 * HOUR + k * 1000, input: 300, output: 5 })),
]);

// --- trim_prompts -------------------------------------------------------------------------
// trim-yes, user alice on acme/big: previous week [TO-14d, TO-7d) 20 calls of 1,000 input tokens
// (mean 1,000); last week [TO-7d, TO) 21 calls of 1,400 (mean 1,400: +40% >= 20%).
// Saving in the last week: 21 x 1,400 - 21 x 1,000 = 8,400 tokens x 10 / 1M = $0.084;
// per 30 days (x 30/7): 36,000 tokens, $0.36.
add('trim-yes', [
  ...times(20, (k) => ({ t: TO - 14 * DAY + k * HOUR, input: 1000, output: 10, user: 'alice' })),
  ...times(21, (k) => ({ t: TO - 7 * DAY + k * HOUR, input: 1400, output: 10, user: 'alice' })),
]);
// trim-no: user bob +10% only; task grow doubles but has 10 calls in the last week (< 20).
add('trim-no', [
  ...times(20, (k) => ({ t: TO - 14 * DAY + k * HOUR, input: 1000, output: 10, user: 'bob' })),
  ...times(20, (k) => ({ t: TO - 7 * DAY + k * HOUR, input: 1100, output: 10, user: 'bob' })),
  ...times(20, (k) => ({ t: TO - 14 * DAY + k * HOUR + MIN, input: 1000, output: 10, task: 'grow' })),
  ...times(10, (k) => ({ t: TO - 7 * DAY + k * HOUR + MIN, input: 2000, output: 10, task: 'grow' })),
]);

// --- spread_load --------------------------------------------------------------------------
// spread-yes (pool = the models used with ok calls: acme/big and acme/small):
// - minute FROM+3h: 12 calls to acme/big rate_limited (input 100 each, as a gateway counted
//   them), while acme/small served 4 ok calls: room -> 12 recoverable.
// - minute FROM+4h: 3 calls to acme/big and 2 to acme/small rate_limited: no room anywhere.
// acme/big: 15 rejected, 12 recoverable (>= 10) in 1 minute. Billed for the recoverable ones:
// 12 x 100 = 1,200 tokens x 10 / 1M = $0.012 -> x30: 36,000 tokens, $0.36.
add('spread-yes', [
  ...times(12, (k) => ({ t: FROM + 3 * HOUR + k * 1000, input: 100, output: 0, status: 'rate_limited' })),
  ...times(4, (k) => ({ t: FROM + 3 * HOUR + k * 1000, input: 100, output: 10, model: 'small' })),
  ...times(3, (k) => ({ t: FROM + 4 * HOUR + k * 1000, input: 0, output: 0, status: 'rate_limited' })),
  ...times(2, (k) => ({ t: FROM + 4 * HOUR + k * 1000, input: 0, output: 0, status: 'rate_limited', model: 'small' })),
  { t: FROM + 5 * HOUR, input: 100, output: 10 },
]);
// spread-no: 12 rejections on acme/big, and no other model in use: nowhere to go.
add('spread-no', [
  ...times(12, (k) => ({ t: FROM + 3 * HOUR + k * 1000, input: 0, output: 0, status: 'rate_limited' })),
  { t: FROM + 5 * HOUR, input: 100, output: 10 },
]);

// --- after adoption (the feedback loop), in the week [TO, TO + 1 d) -------------------------
// batch-yes keeps one burst of 6 calls (input 300..305): merged away 5 x 300 = 1,500 tokens, $0.015 in the day.
add(
  'batch-yes',
  times(6, (k) => ({ t: TO + 5 * HOUR + k * 1000, input: 300 + k, output: 5, task: 'enrich' })),
);
// cap-over now asks max_tokens 100: 20 answers of 40 and one of exactly 100 (not above the cap of 100).
add(
  'cap-over',
  times(21, (k) => ({ t: TO + 2 * HOUR + k * MIN, input: 100, output: k === 20 ? 100 : 40, max: 100, task: 'classify' })),
);

let store: TestStore;

beforeAll(async () => {
  store = await openTestStore();
  const decoded = decodeBatch(
    events.map((value, i) => ({ value, source: `test:${i}` })),
    { nowMs: NOW },
  );
  const outcome = transform(decoded, { nowMs: NOW, prices, seen: new Map() });
  expect(outcome.deadLetters).toEqual([]);
  expect(outcome.events).toHaveLength(events.length);
  await createUsageStore(store.client).write(outcome);
});
afterAll(async () => {
  await store?.close();
});

const run = (tenant: string, kind: RecommendationKind, candidates: RoutingCandidate[] = []) =>
  recommend(store.client, { tenant, fromMs: FROM, toMs: TO, prices, candidates, kinds: [kind] });

/** The one recommendation of a run, after checking there is exactly one. */
function only(recs: Recommendation[]): Recommendation {
  expect(recs).toHaveLength(1);
  return recs[0] as Recommendation;
}

describe('cache_repeated_prompts', () => {
  it('finds repeated prompt prefixes and exact repeats, prices the prompt cache (headline) and the response cache', async () => {
    const r = only(await run('cache-yes', 'cache_repeated_prompts'));
    expect(r.subject).toEqual({ provider: 'acme', model: 'big' });
    expect(r.estimated_monthly_saving).toEqual({ tokens: 207_000, usd: '1.656', priced: true });
    expect(r.confidence).toBe('low');
    expect(r.window).toEqual({ from: '2026-11-01T00:00:00.000Z', to: '2026-11-02T00:00:00.000Z' });
    expect(r.evidence.figures).toMatchObject({
      variant: 'prompt_cache',
      calls: 13,
      hit_calls_5m: 10,
      hit_calls_1h: 11,
      new_cached_tokens_5m: 6_900,
      new_cached_tokens_1h: 7_400,
      exact_repeat_calls_5m: 1,
      exact_repeat_calls_1h: 2,
      prompt_cache_short_usd: '0.0552',
      response_cache_short_tokens: '520',
      response_cache_short_usd: '0.0056',
    });
    expect(r.rationale).toContain('10 of 13 calls (76.9%)');
    expect(r.rationale).toContain('207,000 tokens and $1.66 per 30 days');
  });

  it('evidence: the stored query with its parameters gives the same figures again', async () => {
    const r = only(await run('cache-yes', 'cache_repeated_prompts'));
    expect(r.evidence.params).toMatchObject({ tenant: 'cache-yes', s_provider: 'acme', s_model: 'big', from_ms: FROM, to_ms: TO });
    expect(r.evidence.query).not.toContain('cache-yes'); // bound, never interpolated
    const rows = await queryRows(store.client, { query: r.evidence.query, query_params: r.evidence.params });
    expect(rows).toHaveLength(1);
    expect(Number(rows[0]?.hit_calls_short)).toBe(10);
    expect(Number(rows[0]?.new_cached_short)).toBe(6_900);
  });

  it('is silent when no prompt repeats within the TTL', async () => {
    expect(await run('cache-no', 'cache_repeated_prompts')).toEqual([]);
  });
});

describe('cap_max_tokens', () => {
  it('truncated calls: the cost of the cut-off answers', async () => {
    const r = only(await run('cap-trunc', 'cap_max_tokens'));
    expect(r.subject).toEqual({ provider: 'acme', model: 'big', task_id: 'summarise' });
    expect(r.estimated_monthly_saving).toEqual({ tokens: 188_400, usd: '2.652', priced: true });
    expect(r.evidence.figures).toMatchObject({ variant: 'truncation', calls: 20, truncated_calls: 5, truncated_tokens: '6280' });
  });

  it('output p95 far below max_tokens: a cap at p95 + 25%, saving the runaway tail', async () => {
    const r = only(await run('cap-over', 'cap_max_tokens'));
    expect(r.subject).toEqual({ provider: 'acme', model: 'big', task_id: 'classify' });
    expect(r.estimated_monthly_saving).toEqual({ tokens: 87_000, usd: '2.61', priced: true });
    expect(r.evidence.figures).toMatchObject({
      variant: 'oversized_cap',
      output_p95: 80,
      max_tokens_p50: 4000,
      proposed_cap: 100,
      tail_calls: 1,
      tail_output_tokens: 2_900,
      reserved_tokens_freed: 156_000,
    });
    expect(r.title).toBe('Lower max_tokens on acme/big task classify from 4,000 to 100');
  });

  it('is silent with one truncation and outputs close to the cap', async () => {
    expect(await run('cap-no', 'cap_max_tokens')).toEqual([]);
  });
});

describe('right_size_model', () => {
  it('short answers and few failures on an expensive model: the cheapest routing candidate', async () => {
    const r = only(await run('rs-yes', 'right_size_model', CANDIDATES));
    expect(r.subject).toEqual({ provider: 'acme', model: 'big', task_id: 'tag' });
    expect(r.estimated_monthly_saving).toEqual({ tokens: 0, usd: '15.0876', priced: true });
    expect(r.confidence).toBe('low');
    expect(r.evidence.figures).toMatchObject({
      calls: 50,
      failed_calls: 1,
      output_p95: 40,
      current_usd: '0.5588',
      target_provider: 'acme',
      target_model: 'small',
      target_usd: '0.05588',
      target_source: 'routing_candidates',
    });
  });

  it('without routing candidates, the cheaper models of the same provider in the price table', async () => {
    const r = only(await run('rs-yes', 'right_size_model'));
    // acme/small in the table: 50,000 x 1 + 1,960 x 3 = $0.05588, the same as the candidate.
    expect(r.evidence.figures).toMatchObject({ target_model: 'small', target_source: 'price_table', target_usd: '0.05588' });
    expect(r.estimated_monthly_saving.usd).toBe('15.0876');
  });

  it('is silent for long answers and for a task that fails often', async () => {
    expect(await run('rs-no', 'right_size_model', CANDIDATES)).toEqual([]);
  });
});

describe('batch_small_calls', () => {
  it('bursts of small calls from one task: the shared prompt sent once per burst', async () => {
    const r = only(await run('batch-yes', 'batch_small_calls'));
    expect(r.subject).toEqual({ provider: 'acme', model: 'big', task_id: 'enrich' });
    expect(r.estimated_monthly_saving).toEqual({ tokens: 180_000, usd: '1.8', priced: true });
    expect(r.evidence.figures).toMatchObject({
      bursts: 2,
      calls_in_bursts: 22,
      overhead_tokens: 300,
      merged_away_calls: 20,
      largest_burst: 12,
    });
  });

  it('is silent for calls spread out in time, and for calls without a task', async () => {
    expect(await run('batch-no', 'batch_small_calls')).toEqual([]);
  });
});

describe('trim_prompts', () => {
  it('input per call growing week over week: the excess of the last week, x 30/7', async () => {
    const r = only(await run('trim-yes', 'trim_prompts'));
    expect(r.subject).toEqual({ provider: 'acme', model: 'big', user_id: 'alice' });
    expect(r.estimated_monthly_saving).toEqual({ tokens: 36_000, usd: '0.36', priced: true });
    expect(r.window).toEqual({ from: '2026-10-19T00:00:00.000Z', to: '2026-11-02T00:00:00.000Z' });
    expect(r.evidence.figures).toMatchObject({
      prev_calls: 20,
      prev_mean_input: '1000',
      last_calls: 21,
      last_mean_input: '1400',
      growth: 0.4,
    });
  });

  it('is silent for +10% and for a week with too few calls', async () => {
    expect(await run('trim-no', 'trim_prompts')).toEqual([]);
  });
});

describe('spread_load', () => {
  it('rejections in minutes when another model had room', async () => {
    const r = only(await run('spread-yes', 'spread_load'));
    expect(r.subject).toEqual({ provider: 'acme', model: 'big' });
    expect(r.estimated_monthly_saving).toEqual({ tokens: 36_000, usd: '0.36', priced: true });
    expect(r.evidence.figures).toMatchObject({
      rejected_calls: 15,
      rejected_minutes: 2,
      recoverable_calls: 12,
      minutes_with_room: 1,
      alternatives: 'acme/small',
      pool: 'models_used',
    });
  });

  it('is silent when no other candidate is in use', async () => {
    expect(await run('spread-no', 'spread_load')).toEqual([]);
  });
});

describe('recommend', () => {
  it('ranks by USD saving then tokens, with ids that depend on tenant, kind and subject only', async () => {
    const recs = await recommend(store.client, { tenant: 'cap-over', fromMs: FROM, toMs: TO, prices });
    const again = await recommend(store.client, { tenant: 'cap-over', fromMs: FROM - DAY, toMs: TO, prices });
    expect(recs.map((r) => r.kind)).toContain('cap_max_tokens');
    expect(again.find((r) => r.kind === 'cap_max_tokens')?.id).toBe(recs.find((r) => r.kind === 'cap_max_tokens')?.id);
    for (let i = 1; i < recs.length; i++) {
      const [a, b] = [recs[i - 1] as Recommendation, recs[i] as Recommendation];
      expect(Number(a.estimated_monthly_saving.usd)).toBeGreaterThanOrEqual(Number(b.estimated_monthly_saving.usd));
    }
  });

  it('names the bad field', async () => {
    await expect(recommend(store.client, { tenant: 't', fromMs: TO, toMs: FROM, prices })).rejects.toThrow(/fromMs: must be before toMs/);
    await expect(recommend(store.client, { tenant: '', fromMs: FROM, toMs: TO, prices })).rejects.toThrow(/tenant/);
  });
});

describe('feedback loop', () => {
  const SAVED = TO - MIN;
  it('saves open, adopts with a baseline, keeps adopted/dismissed on re-save, and measures the change', async () => {
    const batch = only(await run('batch-yes', 'batch_small_calls'));
    const cap = only(await run('cap-over', 'cap_max_tokens'));
    expect(await saveRecommendations(store.client, [batch], SAVED)).toEqual({ written: 1, kept: 0 });
    expect(await saveRecommendations(store.client, [batch], SAVED)).toEqual({ written: 1, kept: 0 }); // refreshed, still one row
    await saveRecommendations(store.client, [cap], SAVED);
    const listed = await listRecommendations(store.client, 'batch-yes');
    expect(listed.map((s) => [s.id, s.state, s.baseline])).toEqual([[batch.id, 'open', null]]);
    expect(listed[0]?.evidence).toEqual(batch.evidence);

    const adopted = await setRecommendationState(store.client, 'batch-yes', batch.id, 'adopted', TO);
    expect(adopted).toMatchObject({ state: 'adopted', adopted_at: '2026-11-02T00:00:00.000Z', baseline: { tokens: 180_000, usd: '1.8' } });
    await setRecommendationState(store.client, 'cap-over', cap.id, 'adopted', TO);
    // Re-computing later leaves an adopted recommendation as it was.
    expect(await saveRecommendations(store.client, [batch], TO + HOUR)).toEqual({ written: 0, kept: 1 });

    // Week [TO, TO + 1 d):
    // batch: 1,500 tokens / $0.015 of waste left in one day -> x30: 45,000 tokens, $0.45.
    //   actual = 1.8 - 0.45 = $1.35 per 30 days; ratio 1.35 / 1.8 = 0.75.
    // cap: no answer above the proposed cap of 100 (a new p95 would give a cap of 50 and a tail of
    //   50 tokens): nothing left; actual = the estimate, $2.61; ratio 1.
    const measured = await measureAdopted(store.client, 'batch-yes', TO, TO + DAY, prices);
    expect(measured).toEqual([
      {
        id: batch.id,
        kind: 'batch_small_calls',
        subject: batch.subject,
        adopted_at: '2026-11-02T00:00:00.000Z',
        measured: { from: '2026-11-02T00:00:00.000Z', to: '2026-11-03T00:00:00.000Z' },
        estimated_usd: '1.8',
        estimated_tokens: 180_000,
        remaining_usd: '0.45',
        remaining_tokens: 45_000,
        actual_usd: '1.35',
        actual_tokens: 135_000,
        ratio: 0.75,
      },
    ]);
    const [capMeasured] = await measureAdopted(store.client, 'cap-over', TO, TO + DAY, prices);
    expect(capMeasured).toMatchObject({ estimated_usd: '2.61', remaining_usd: '0', actual_usd: '2.61', ratio: 1 });
    // Nothing adopted before the week's end is measured in a week that ended before adoption.
    expect(await measureAdopted(store.client, 'batch-yes', FROM, TO, prices)).toEqual([]);
  });

  it('dismisses and re-opens; an unknown id is an error naming it', async () => {
    const trim = only(await run('trim-yes', 'trim_prompts'));
    await saveRecommendations(store.client, [trim], SAVED);
    expect((await setRecommendationState(store.client, 'trim-yes', trim.id, 'dismissed', TO)).state).toBe('dismissed');
    expect(await saveRecommendations(store.client, [trim], TO + HOUR)).toEqual({ written: 0, kept: 1 });
    expect((await listRecommendations(store.client, 'trim-yes'))[0]?.state).toBe('dismissed');
    expect((await setRecommendationState(store.client, 'trim-yes', trim.id, 'open', TO + 2 * HOUR)).state).toBe('open');
    await expect(setRecommendationState(store.client, 'trim-yes', 'nope', 'adopted', TO)).rejects.toThrow(
      /recommendation nope not found for tenant trim-yes/,
    );
  });
});
