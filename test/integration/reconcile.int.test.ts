/**
 * Reconciliation on the real engine (chDB): events generated from the real OpenAI cookbook usage
 * export (data/usage-formats), one event per model request of each daily bucket, written through
 * the processor path, with a few deliberate differences. The comparison must flag exactly those
 * past the 1% tolerance, with the differences computed by hand below.
 *
 * Each bucket's counts are split over its num_model_requests events: with V tokens over n events,
 * each event gets floor(V / n) and the first (V mod n) events one more; event j is timed at
 * start + j x (end - start) / n. Even events are gpt-4o-mini-2024-07-18, odd ones gpt-4o (the
 * export has no model: the comparison sums all models per day).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/load.ts';
import { createUsageStore } from '../../processors/clickhouse-writer.ts';
import { parseUsageExport, type ReconcileResult, reconcile } from '../../processors/reconcile/index.ts';
import { decodeBatch, transform } from '../../processors/usage.processor.ts';
import { openTestStore, type TestStore } from '../helpers/store.ts';

const FILE = join(import.meta.dirname, '..', '..', 'data', 'usage-formats', 'openai_usage_completions_1d_cookbook.json');
const raw = JSON.parse(readFileSync(FILE, 'utf8')) as Array<{
  start_time: number;
  end_time: number;
  results: Array<{ input_tokens: number; output_tokens: number; input_cached_tokens: number; num_model_requests: number }>;
}>;
const TENANT = 'cookbook';
const day = (text: string) => Date.parse(`${text}T00:00:00Z`) / 1000;

/** The share of `total` that event j of n carries. */
const share = (total: number, n: number, j: number) => Math.floor(total / n) + (j < total % n ? 1 : 0);

interface Ev {
  t: number;
  model: string;
  input: number;
  output: number;
  cached: number;
  tenant?: string;
  provider?: string;
  status?: string;
}
const events: Ev[] = [];
for (const b of raw) {
  for (const r of b.results) {
    const n = r.num_model_requests;
    // Deliberate differences (the rest of the days match the export exactly):
    // - 2025-01-13: the last 100 of its 3,053 events are missing;
    // - 2025-01-18: the last of its 6,335 events is missing (within the tolerance);
    // - 2025-01-30: its first call has 500 more input tokens.
    const keep = b.start_time === day('2025-01-13') ? n - 100 : b.start_time === day('2025-01-18') ? n - 1 : n;
    for (let j = 0; j < keep; j++) {
      events.push({
        t: b.start_time * 1000 + Math.floor((j * (b.end_time - b.start_time) * 1000) / n),
        model: j % 2 === 0 ? 'gpt-4o-mini-2024-07-18' : 'gpt-4o',
        input: share(r.input_tokens, n, j) + (b.start_time === day('2025-01-30') && j === 0 ? 500 : 0),
        output: share(r.output_tokens, n, j),
        cached: share(r.input_cached_tokens, n, j),
      });
    }
  }
}
// - 2025-01-20, a day the export has no usage: 5 calls of 100 input and 10 output tokens.
for (let j = 0; j < 5; j++) events.push({ t: Date.UTC(2025, 0, 20, 12, j), model: 'gpt-4o', input: 100, output: 10, cached: 0 });
// Not counted: before the export's first instant (2025-01-11T17:31Z), a rate-limited call, another
// provider, another tenant.
events.push({ t: Date.UTC(2025, 0, 11, 10), model: 'gpt-4o', input: 1_000_000, output: 1, cached: 0 });
events.push({ t: Date.UTC(2025, 0, 12, 9), model: 'gpt-4o', input: 50, output: 0, cached: 0, status: 'rate_limited' });
events.push({ t: Date.UTC(2025, 0, 12, 9), model: 'claude-sonnet-4-20250514', input: 5_000, output: 50, cached: 0, provider: 'anthropic' });
events.push({ t: Date.UTC(2025, 0, 12, 9), model: 'gpt-4o', input: 5_000, output: 50, cached: 0, tenant: 'someone-else' });

let store: TestStore;
let result: ReconcileResult;

beforeAll(async () => {
  store = await openTestStore();
  const nowMs = Date.UTC(2025, 1, 11);
  const prices = loadConfig(undefined, {}).prices;
  const writer = createUsageStore(store.client);
  for (let i = 0; i < events.length; i += 5_000) {
    const batch = events.slice(i, i + 5_000).map((e, k) => ({
      value: JSON.stringify({
        event_id: `cookbook-${i + k}`,
        timestamp: e.t,
        tenant: e.tenant ?? TENANT,
        provider: e.provider ?? 'openai',
        model: e.model,
        input_tokens: e.input,
        output_tokens: e.output,
        cached_input_tokens: e.cached,
        ...(e.status ? { status: e.status } : {}),
      }),
      source: `test:${i + k}`,
    }));
    const outcome = transform(decodeBatch(batch, { nowMs }), { nowMs, prices, seen: new Map() });
    expect(outcome.deadLetters).toEqual([]);
    await writer.write(outcome);
  }
  result = await reconcile(store.client, { tenant: TENANT, exported: parseUsageExport(raw), tolerance: 0.01 });
});
afterAll(async () => {
  await store?.close();
});

describe('reconcile: the real cookbook export against generated events', () => {
  it('covers the export range, one row per day, all models summed', () => {
    expect(result).toMatchObject({
      tenant: TENANT,
      provider: 'openai',
      format: 'openai.usage.completions',
      range: { from: '2025-01-11T17:31:00.000Z', to: '2025-02-10T17:31:03.000Z' },
      by_model: false,
      partial_export: false,
      tolerance: 0.01,
    });
    expect(result.rows).toHaveLength(31);
    expect(result.rows.every((r) => r.model === '*')).toBe(true);
  });

  it('flags exactly the three days changed past 1%', () => {
    expect(result.flagged).toBe(3);
    expect(result.rows.filter((r) => r.flagged).map((r) => [r.day, r.reasons])).toEqual([
      ['2025-01-13', ['requests', 'input_tokens', 'output_tokens', 'cached_input_tokens']],
      ['2025-01-20', ['requests', 'input_tokens', 'output_tokens']],
      ['2025-01-30', ['input_tokens']],
    ]);
  });

  it('2025-01-13: the missing 100 calls, computed by hand', () => {
    // input 3,718,360 over 3,053 calls = 1,217 each + 2,859 calls with one more: the last 100 carry
    // 1,217 -> -121,700 (-3.273%). Output 97,756 = 3,053 x 32 + 60: -3,200. Cached 76,544 = 3,053 x 25 + 219: -2,500.
    const r = result.rows.find((x) => x.day === '2025-01-13');
    expect(r).toMatchObject({
      provider_requests: 3_053,
      ours_requests: 2_953,
      diff_requests: -100,
      provider_tokens_in: 3_718_360,
      ours_in: 3_596_660,
      diff: -121_700,
      diff_out: -3_200,
      diff_cached_in: -2_500,
      provider_audio_in: 5_776,
    });
    expect(r?.diff_pct).toBeCloseTo((-121_700 / 3_718_360) * 100, 10);
  });

  it('2025-01-18: one missing call is within the tolerance and shown, not flagged', () => {
    // 8,117,824 = 6,335 x 1,281 + 2,689: the last call carries 1,281 input; output 105,662 = 6,335 x 16 + 4,302: 16;
    // cached 46,464 = 6,335 x 7 + 2,119: 7. -1 of 6,335 requests = -0.016%.
    expect(result.rows.find((x) => x.day === '2025-01-18')).toMatchObject({
      diff_requests: -1,
      diff: -1_281,
      diff_out: -16,
      diff_cached_in: -7,
      flagged: false,
      reasons: [],
    });
  });

  it('2025-01-20 (no usage in the export) and 2025-01-30 (+500 input on one call)', () => {
    expect(result.rows.find((x) => x.day === '2025-01-20')).toMatchObject({
      provider_requests: 0,
      ours_requests: 5,
      provider_tokens_in: 0,
      ours_in: 500,
      diff_pct: null,
      ours_out: 50,
    });
    // 18,481 + 500 = 18,981: +2.7055%.
    const r = result.rows.find((x) => x.day === '2025-01-30');
    expect(r).toMatchObject({ provider_tokens_in: 18_481, ours_in: 18_981, diff: 500, diff_requests: 0, diff_out: 0 });
    expect(r?.diff_pct).toBeCloseTo((500 / 18_481) * 100, 10);
  });

  it('every other day matches exactly: the partial first day, rate-limited, other-provider and other-tenant calls are left out', () => {
    const others = result.rows.filter((r) => !['2025-01-13', '2025-01-18', '2025-01-20', '2025-01-30'].includes(r.day));
    expect(others).toHaveLength(27);
    for (const r of others) expect([r.day, r.diff, r.diff_out, r.diff_cached_in, r.diff_requests]).toEqual([r.day, 0, 0, 0, 0]);
  });

  it('a tolerance of 0 also flags the one-call difference of 2025-01-18', async () => {
    const strict = await reconcile(store.client, { tenant: TENANT, exported: parseUsageExport(raw), tolerance: 0 });
    expect(strict.rows.filter((r) => r.flagged).map((r) => r.day)).toEqual(['2025-01-13', '2025-01-18', '2025-01-20', '2025-01-30']);
  });
});
