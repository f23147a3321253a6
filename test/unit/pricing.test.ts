import { Decimal as DecimalJs } from 'decimal.js';
import { describe, expect, it } from 'vitest';
import { type PriceableUsage, type PriceEntry, PriceTable, PriceTableError } from '../../domain/pricing.ts';

const Decimal = DecimalJs.clone({ precision: 40 });

const JAN_2025 = Date.UTC(2025, 0, 15, 12);

/** A usage record with zero tokens; tests set what they need. */
function usage(patch: Partial<PriceableUsage>): PriceableUsage {
  return {
    provider: 'openai',
    model: 'gpt-4o',
    timestamp_ms: JAN_2025,
    input_tokens: 0,
    cached_input_tokens: 0,
    output_tokens: 0,
    reasoning_tokens: 0,
    ...patch,
  };
}

function entry(patch: Partial<PriceEntry>): PriceEntry {
  return { provider: 'openai', model: 'gpt-4o', effective_from: '2024-01-01', input_per_1m: 1, output_per_1m: 2, ...patch };
}

/** The problems a table is rejected with (fails the test if it is accepted). */
function problemsOf(entries: PriceEntry[]): string[] {
  try {
    new PriceTable(entries);
  } catch (err) {
    expect(err).toBeInstanceOf(PriceTableError);
    return (err as PriceTableError).problems;
  }
  throw new Error('expected the price table to be rejected');
}

describe('PriceTable.cost: arithmetic', () => {
  it('prices cached input and reasoning output with their own rates (hand-computed)', () => {
    const table = new PriceTable([
      entry({ input_per_1m: 2.5, cached_input_per_1m: 1.25, output_per_1m: 10 }), // reasoning defaults to output (10)
      entry({ model: 'o-reasoner', input_per_1m: 3, cached_input_per_1m: 0.3, output_per_1m: 15, reasoning_per_1m: 20 }),
    ]);
    // gpt-4o: (12,345 - 2,000) x 2.5 = 25,862.5
    //       +  2,000 x 1.25          =  2,500
    //       + (678 - 100) x 10       =  5,780
    //       +  100 x 10              =  1,000
    //                                 = 35,142.5 USD per 1M tokens  -> / 1,000,000 = 0.0351425 USD
    expect(table.cost(usage({ input_tokens: 12_345, cached_input_tokens: 2_000, output_tokens: 678, reasoning_tokens: 100 }))).toBe(
      '0.0351425',
    );
    // o-reasoner: (100,000 - 40,000) x 3 = 180,000
    //           +  40,000 x 0.3          =  12,000
    //           + (5,000 - 3,000) x 15   =  30,000
    //           +  3,000 x 20            =  60,000
    //                                     = 282,000 -> / 1,000,000 = 0.282 USD
    expect(
      table.cost(
        usage({ model: 'o-reasoner', input_tokens: 100_000, cached_input_tokens: 40_000, output_tokens: 5_000, reasoning_tokens: 3_000 }),
      ),
    ).toBe('0.282');
  });

  it.each<[string, Partial<PriceableUsage>, string]>([
    // input 1 (no cache discount configured -> cached = input), output 2 per 1M
    ['zero tokens', {}, '0'],
    ['one input token', { input_tokens: 1 }, '0.000001'], // 1 x 1 / 1e6
    ['one output token', { output_tokens: 1 }, '0.000002'], // 1 x 2 / 1e6
    ['1M in + 1M out', { input_tokens: 1_000_000, output_tokens: 1_000_000 }, '3'], // 1 + 2
    ['7 in + 3 out', { input_tokens: 7, output_tokens: 3 }, '0.000013'], // (7 x 1 + 3 x 2) / 1e6 = 13 / 1e6
  ])('%s', (_label, patch, expected) => {
    expect(new PriceTable([entry({})]).cost(usage(patch))).toBe(expected);
  });

  it('is exact at the extremes: 10M tokens at 999.999999 USD/1M, and 1 token at 0.005001 USD/1M', () => {
    const table = new PriceTable([
      entry({ model: 'dear', input_per_1m: 999.999999, output_per_1m: 0 }),
      entry({ model: 'cheap', input_per_1m: '0.005001', output_per_1m: 0 }),
    ]);
    // 10,000,000 x 999.999999 / 1,000,000 = 10 x 999.999999 = 9,999.99999
    expect(table.cost(usage({ model: 'dear', input_tokens: 10_000_000 }))).toBe('9999.99999');
    // 1 x 0.005001 / 1,000,000 = 5.001e-9, written out in plain notation (the last digit is 1e-12)
    expect(table.cost(usage({ model: 'cheap', input_tokens: 1 }))).toBe('0.000000005001');
  });

  it('is exact where binary floating point is not: 0.1 + 0.2 style prices', () => {
    const table = new PriceTable([entry({ input_per_1m: 0.1, output_per_1m: 0.2 })]);
    // (1 x 0.1 + 1 x 0.2) / 1e6 = 0.3 / 1e6 = 0.0000003 exactly; floats give 3.0000000000000004e-7.
    expect(0.1 / 1e6 + 0.2 / 1e6).not.toBe(3e-7);
    expect(table.cost(usage({ input_tokens: 1, output_tokens: 1 }))).toBe('0.0000003');
    // (3 x 0.1) / 1e6: 0.1 * 3 is 0.30000000000000004 in floats
    expect(table.cost(usage({ input_tokens: 3 }))).toBe('0.0000003');
  });

  it('sums 200,000 small costs exactly with decimal.js, where a float sum drifts by more than 1e-9 USD', () => {
    const table = new PriceTable([entry({ input_per_1m: 1, output_per_1m: 0.2 })]);
    // Each call: 100,000 x 1 / 1e6 = 0.1 USD; 200,000 calls = 20,000 USD exactly.
    let exact = new Decimal(0);
    let float = 0;
    for (let i = 0; i < 200_000; i++) {
      const c = table.cost(usage({ input_tokens: 100_000 })) as string;
      exact = exact.add(c);
      float += Number(c);
    }
    expect(exact.toFixed()).toBe('20000');
    expect(Math.abs(float - 20_000)).toBeGreaterThan(1e-9); // why the arithmetic must be decimal
  });

  it('sums many different small costs exactly', () => {
    const table = new PriceTable([entry({ input_per_1m: 0.15, cached_input_per_1m: 0.075, output_per_1m: 0.6 })]);
    // Per call: (7 - 2) x 0.15 + 2 x 0.075 + 3 x 0.6 = 0.75 + 0.15 + 1.8 = 2.7 per 1M -> 0.0000027 USD
    // 100,000 calls: 0.27 USD
    let exact = new Decimal(0);
    for (let i = 0; i < 100_000; i++) {
      exact = exact.add(table.cost(usage({ input_tokens: 7, cached_input_tokens: 2, output_tokens: 3 })) as string);
    }
    expect(exact.toFixed()).toBe('0.27');
  });
});

describe('PriceTable.cost: defaults', () => {
  const table = new PriceTable([entry({ input_per_1m: 2, output_per_1m: 8 })]);

  it('prices cached input at the input price when no cached price is given', () => {
    // 1,000 x 2 / 1e6 = 0.002 whether 0 or 400 of the tokens were cached
    expect(table.cost(usage({ input_tokens: 1_000, cached_input_tokens: 400 }))).toBe('0.002');
    expect(table.cost(usage({ input_tokens: 1_000 }))).toBe('0.002');
  });

  it('prices reasoning output at the output price when no reasoning price is given', () => {
    // 1,000 x 8 / 1e6 = 0.008 whether 0 or 600 of the tokens were reasoning
    expect(table.cost(usage({ output_tokens: 1_000, reasoning_tokens: 600 }))).toBe('0.008');
    expect(table.cost(usage({ output_tokens: 1_000 }))).toBe('0.008');
  });

  it('a cached price of 0 is a real price, not "absent"', () => {
    const free = new PriceTable([entry({ input_per_1m: 2, cached_input_per_1m: 0, output_per_1m: 8 })]);
    // (1,000 - 1,000) x 2 + 1,000 x 0 = 0
    expect(free.cost(usage({ input_tokens: 1_000, cached_input_tokens: 1_000 }))).toBe('0');
  });
});

describe('PriceTable.cost: unknown models', () => {
  const table = new PriceTable([entry({ effective_from: '2024-05-13', input_per_1m: 5, output_per_1m: 15 })]);

  it.each<[string, Partial<PriceableUsage>]>([
    ['unknown model', { model: 'gpt-9' }],
    ['known model under another provider', { provider: 'azure' }],
    ['model differing only by case', { model: 'GPT-4O' }],
    ['known model before its first effective_from', { timestamp_ms: Date.UTC(2024, 4, 12, 23, 59, 59, 999) }],
    ['known model long before', { timestamp_ms: Date.UTC(2020, 0, 1) }],
  ])('%s -> null (unpriced), never "0"', (_label, patch) => {
    const u = usage({ input_tokens: 1_000, output_tokens: 1_000, ...patch });
    expect(table.cost(u)).toBeNull();
    expect(table.has(u.provider, u.model, u.timestamp_ms)).toBe(false);
  });

  it('an empty table prices nothing', () => {
    expect(new PriceTable([]).cost(usage({ input_tokens: 1 }))).toBeNull();
  });
});

describe('PriceTable.cost: effective_from versioning', () => {
  const v1 = entry({ effective_from: '2024-01-01', input_per_1m: 10, output_per_1m: 30 });
  const v2 = entry({ effective_from: '2024-06-01', input_per_1m: 5, output_per_1m: 15 });
  const u = (timestamp_ms: number) => usage({ timestamp_ms, input_tokens: 1_000, output_tokens: 1_000 });
  // v1: 1,000 x 10 + 1,000 x 30 = 40,000 -> 0.04 ; v2: 1,000 x 5 + 1,000 x 15 = 20,000 -> 0.02
  const V1_COST = '0.04';
  const V2_COST = '0.02';

  it.each<[string, number, string | null]>([
    ['1 ms before v1', Date.UTC(2023, 11, 31, 23, 59, 59, 999), null],
    ['exactly at v1', Date.UTC(2024, 0, 1), V1_COST],
    ['between', Date.UTC(2024, 2, 15), V1_COST],
    ['1 ms before v2', Date.UTC(2024, 4, 31, 23, 59, 59, 999), V1_COST],
    ['exactly at v2 (boundary uses the new price)', Date.UTC(2024, 5, 1), V2_COST],
    ['after v2', Date.UTC(2025, 0, 1), V2_COST],
  ])('%s', (_label, ts, expected) => {
    expect(new PriceTable([v1, v2]).cost(u(ts))).toBe(expected);
    expect(new PriceTable([v2, v1]).cost(u(ts))).toBe(expected); // order in config does not matter
  });

  it('a later price change never reprices earlier events', () => {
    const before = [Date.UTC(2024, 0, 1), Date.UTC(2024, 2, 15), Date.UTC(2024, 4, 31, 23, 59, 59, 999)];
    const costsWithV1Only = before.map((ts) => new PriceTable([v1]).cost(u(ts)));
    const costsAfterChange = before.map((ts) => new PriceTable([v1, v2]).cost(u(ts)));
    expect(costsAfterChange).toEqual(costsWithV1Only);
    expect(costsAfterChange).toEqual([V1_COST, V1_COST, V1_COST]);
  });

  it.each<[string, string, number]>([
    ['a date-time with an offset (10:00Z)', '2024-06-01T12:00:00+02:00', Date.UTC(2024, 5, 1, 10)],
    ['a date-time with Z', '2024-06-01T10:00:00Z', Date.UTC(2024, 5, 1, 10)],
    ['a date-time without a zone (UTC)', '2024-06-01T10:00:00', Date.UTC(2024, 5, 1, 10)],
    ['a date-time with a negative offset across midnight', '2024-05-31T20:00:00-08:00', Date.UTC(2024, 5, 1, 4)],
  ])('boundary given as %s: %s', (_label, from, boundary) => {
    const table = new PriceTable([v1, { ...v2, effective_from: from }]);
    expect(table.cost(u(boundary - 1))).toBe(V1_COST);
    expect(table.cost(u(boundary))).toBe(V2_COST);
  });
});

describe('PriceTable: provider lookup', () => {
  it.each(['openai', 'OpenAI', 'OPENAI'])('finds a price configured as "OpenAI" for provider %s', (provider) => {
    const table = new PriceTable([entry({ provider: 'OpenAI', input_per_1m: 1, output_per_1m: 2 })]);
    expect(table.cost(usage({ provider, input_tokens: 1_000_000 }))).toBe('1');
    expect(table.has(provider, 'gpt-4o', JAN_2025)).toBe(true);
  });
});

describe('PriceTable: table validation', () => {
  it.each<[string, Partial<PriceEntry>]>([
    ['zero prices', { input_per_1m: 0, output_per_1m: 0 }],
    ['6 decimals', { input_per_1m: 0.123456, output_per_1m: '123.456789' }],
    ['the 1000 USD/1M ceiling', { input_per_1m: 1_000, output_per_1m: '1000.000000' }],
    ['string prices', { input_per_1m: '2.5', cached_input_per_1m: '1.25', output_per_1m: '10' }],
    ['a leap day', { effective_from: '2024-02-29' }],
    ['a date-time with fraction and offset', { effective_from: '2024-02-29T23:30:00.5-08:00' }],
  ])('accepts %s', (_label, patch) => {
    expect(() => new PriceTable([entry(patch)])).not.toThrow();
  });

  it.each<[string, Partial<PriceEntry>, string]>([
    ['a negative input price', { input_per_1m: -1 }, 'prices[0] (openai/gpt-4o).input_per_1m: must be a finite number >= 0, got -1'],
    [
      'a negative cached price',
      { cached_input_per_1m: '-0.5' },
      'prices[0] (openai/gpt-4o).cached_input_per_1m: must be a finite number >= 0, got -0.5',
    ],
    [
      'a non-finite output price',
      { output_per_1m: Number.POSITIVE_INFINITY },
      'prices[0] (openai/gpt-4o).output_per_1m: must be a finite number >= 0, got Infinity',
    ],
    ['NaN', { output_per_1m: Number.NaN }, 'prices[0] (openai/gpt-4o).output_per_1m: must be a finite number >= 0, got NaN'],
    ['not a number', { output_per_1m: 'cheap' }, 'prices[0] (openai/gpt-4o).output_per_1m: not a number: cheap'],
    ['7 decimals', { input_per_1m: 0.1234567 }, 'prices[0] (openai/gpt-4o).input_per_1m: more than 6 decimals (0.1234567)'],
    ['a float artefact', { input_per_1m: 0.1 + 0.2 }, 'prices[0] (openai/gpt-4o).input_per_1m: more than 6 decimals (0.30000000000000004)'],
    [
      'an absurd price',
      { reasoning_per_1m: 1_000.000001 },
      'prices[0] (openai/gpt-4o).reasoning_per_1m: 1000.000001 USD per 1M tokens is absurd',
    ],
    [
      'a per-token price given per 1M',
      { output_per_1m: 15_000 },
      'prices[0] (openai/gpt-4o).output_per_1m: 15000 USD per 1M tokens is absurd',
    ],
    ['garbage date', { effective_from: 'soon' }, 'prices[0] (openai/gpt-4o).effective_from: not an RFC 3339 date or date-time: soon'],
    ['month 13', { effective_from: '2024-13-01' }, 'effective_from: not an RFC 3339 date or date-time: 2024-13-01'],
    ['impossible date 2024-02-30', { effective_from: '2024-02-30' }, 'effective_from: not an RFC 3339 date or date-time: 2024-02-30'],
    ['impossible date 2023-02-29', { effective_from: '2023-02-29' }, 'effective_from: not an RFC 3339 date or date-time: 2023-02-29'],
    ['impossible date-time 2024-06-31T00:00:00Z', { effective_from: '2024-06-31T00:00:00Z' }, 'effective_from: not an RFC 3339'],
    ['hour 25', { effective_from: '2024-01-01T25:00:00Z' }, 'effective_from: not an RFC 3339'],
    ['a prose date', { effective_from: 'March 1, 2024' }, 'effective_from: not an RFC 3339 date or date-time: March 1, 2024'],
    ['a year only', { effective_from: '2024' }, 'effective_from: not an RFC 3339'],
    ['one-digit month and day', { effective_from: '2024-1-1' }, 'effective_from: not an RFC 3339'],
  ])('rejects %s', (_label, patch, problem) => {
    const problems = problemsOf([entry(patch)]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(problem);
  });

  it.each<[string, PriceEntry]>([
    ['the same date', entry({ effective_from: '2024-01-01', input_per_1m: 3 })],
    ['the same instant written differently', entry({ effective_from: '2024-01-01T01:00:00+01:00', input_per_1m: 3 })],
    ['the same model under a differently-cased provider', entry({ provider: 'OPENAI', input_per_1m: 3 })],
  ])('rejects two prices for one model at %s', (_label, second) => {
    expect(problemsOf([entry({}), second])).toEqual([
      `prices[1] (${second.provider}/gpt-4o): two prices with effective_from ${second.effective_from} (prices[0] has the same)`,
    ]);
  });

  it('lists every problem of a bad table at once', () => {
    const err = (() => {
      try {
        new PriceTable([
          entry({ input_per_1m: -1, output_per_1m: 0.1234567, cached_input_per_1m: 1_001, reasoning_per_1m: 'abc' }),
          entry({ model: 'other', effective_from: '2024-02-30' }),
          entry({ effective_from: '2024-01-01' }), // duplicate of prices[0]
          entry({ model: 'fine', effective_from: '2024-03-01' }), // no problem
        ]);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(PriceTableError);
    const { problems, message } = err as PriceTableError;
    expect(problems).toEqual([
      'prices[0] (openai/gpt-4o).input_per_1m: must be a finite number >= 0, got -1',
      'prices[0] (openai/gpt-4o).output_per_1m: more than 6 decimals (0.1234567)',
      'prices[0] (openai/gpt-4o).cached_input_per_1m: 1001 USD per 1M tokens is absurd (over 1000): a unit error? ' +
        'Prices are USD per 1M tokens, or per 1K tokens with unit: per_1k',
      'prices[0] (openai/gpt-4o).reasoning_per_1m: not a number: abc',
      'prices[1] (openai/other).effective_from: not an RFC 3339 date or date-time: 2024-02-30',
      'prices[2] (openai/gpt-4o): two prices with effective_from 2024-01-01 (prices[0] has the same)',
    ]);
    for (const p of problems) expect(message).toContain(p);
  });
});

describe('integer fast path agrees with decimal arithmetic', () => {
  // Reference: the SPEC formula computed with decimal.js only.
  const reference = (p: { i: string; c: string; o: string; r: string }, t: { in: number; ca: number; out: number; re: number }) =>
    new Decimal(p.i)
      .mul(t.in - t.ca)
      .add(new Decimal(p.c).mul(t.ca))
      .add(new Decimal(p.o).mul(t.out - t.re))
      .add(new Decimal(p.r).mul(t.re))
      .div(1_000_000)
      .toFixed();

  it('on 2,000 pseudo-random calls and prices, including ones past 2^53 pico-USD and long-context tiers', () => {
    let seed = 42;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) & 0x7fffffff;
      return seed % n;
    };
    const price = () => `${rnd(1000)}.${String(rnd(1_000_000)).padStart(6, '0')}`;
    let tierCalls = 0;
    for (let k = 0; k < 2_000; k++) {
      const p = { i: price(), c: price(), o: price(), r: price() };
      const lc = { i: price(), c: price(), o: price(), r: price() };
      const above = 1 + rnd(200_000);
      const big = k % 10 === 0; // every 10th call near the 10M-token cap: exceeds 2^53 pico-USD
      const inTok = big ? 10_000_000 - rnd(10) : rnd(200_000);
      const outTok = big ? 10_000_000 - rnd(10) : rnd(50_000);
      const t = { in: inTok, ca: rnd(inTok + 1), out: outTok, re: rnd(outTok + 1) };
      const table = new PriceTable([
        {
          provider: 'x',
          model: 'm',
          effective_from: '2024-01-01',
          input_per_1m: p.i,
          cached_input_per_1m: p.c,
          output_per_1m: p.o,
          reasoning_per_1m: p.r,
          long_context: {
            above_input_tokens: above,
            input_per_1m: lc.i,
            cached_input_per_1m: lc.c,
            output_per_1m: lc.o,
            reasoning_per_1m: lc.r,
          },
        },
      ]);
      const got = table.cost({
        provider: 'x',
        model: 'm',
        timestamp_ms: Date.UTC(2025, 0, 1),
        input_tokens: t.in,
        cached_input_tokens: t.ca,
        output_tokens: t.out,
        reasoning_tokens: t.re,
      });
      if (t.in > above) tierCalls++;
      expect(got, JSON.stringify({ p, lc, above, t })).toBe(reference(t.in > above ? lc : p, t));
    }
    // Both sides of the boundary were exercised: 200 big calls are all above it, and about half of the rest.
    expect(tierCalls).toBeGreaterThan(500);
    expect(tierCalls).toBeLessThan(1_500);
  });
});

describe('dated model snapshots', () => {
  const table = new PriceTable([
    { provider: 'openai', model: 'gpt-4o', effective_from: '2024-10-02', input_per_1m: 2.5, output_per_1m: 10 },
    { provider: 'openai', model: 'gpt-4o-2024-05-13', effective_from: '2024-05-13', input_per_1m: 5, output_per_1m: 15 },
  ]);
  const usage = (model: string) => ({
    provider: 'openai',
    model,
    timestamp_ms: Date.UTC(2025, 0, 1),
    input_tokens: 1_000_000,
    cached_input_tokens: 0,
    output_tokens: 0,
    reasoning_tokens: 0,
  });
  it('a dated name without its own entry is priced as its alias (gpt-4o-2024-08-06 -> gpt-4o)', () => {
    expect(table.cost(usage('gpt-4o-2024-08-06'))).toBe('2.5');
    expect(table.cost(usage('claude-x-20250514'))).toBeNull();
  });
  it('a dated name with its own entry uses it', () => {
    expect(table.cost(usage('gpt-4o-2024-05-13'))).toBe('5');
  });
  it('a name that only looks dated elsewhere is not stripped', () => {
    expect(table.cost(usage('gpt-4o-mini'))).toBeNull();
  });
});

describe('long-context tier', () => {
  // Base: in 1, cached 0.5, out 2, reasoning 4. Tier above 1,000 input tokens: in 3, cached 1.5, out 6, reasoning 8.
  const table = new PriceTable([
    entry({
      input_per_1m: 1,
      cached_input_per_1m: 0.5,
      output_per_1m: 2,
      reasoning_per_1m: 4,
      long_context: { above_input_tokens: 1_000, input_per_1m: 3, cached_input_per_1m: 1.5, output_per_1m: 6, reasoning_per_1m: 8 },
    }),
  ]);
  const call = (input_tokens: number) => usage({ input_tokens, cached_input_tokens: 400, output_tokens: 100, reasoning_tokens: 30 });

  it('input_tokens == boundary pays the base price', () => {
    // (1,000 - 400) x 1 + 400 x 0.5 + (100 - 30) x 2 + 30 x 4 = 600 + 200 + 140 + 120 = 1,060 -> 0.00106
    expect(table.cost(call(1_000))).toBe('0.00106');
  });

  it('boundary + 1 prices the whole call (input, cached, output, reasoning) at the tier', () => {
    // (1,001 - 400) x 3 + 400 x 1.5 + (100 - 30) x 6 + 30 x 8 = 1,803 + 600 + 420 + 240 = 3,063 -> 0.003063
    expect(table.cost(call(1_001))).toBe('0.003063');
  });

  it('output tokens alone never cross the boundary (it counts input tokens only)', () => {
    // 10 x 1 + 5,000 x 2 = 10,010 -> 0.01001 (base, though input + output > 1,000)
    expect(table.cost(usage({ input_tokens: 10, output_tokens: 5_000 }))).toBe('0.01001');
  });

  it("missing tier cached / reasoning prices default to the tier's input / output, not the base ones", () => {
    const t = new PriceTable([
      entry({
        input_per_1m: 1,
        cached_input_per_1m: 0.1,
        output_per_1m: 2,
        reasoning_per_1m: 3,
        long_context: { above_input_tokens: 100, input_per_1m: 10, output_per_1m: 20 },
      }),
    ]);
    // (101 - 50) x 10 + 50 x 10 + (10 - 5) x 20 + 5 x 20 = 510 + 500 + 100 + 100 = 1,210 -> 0.00121
    expect(t.cost(usage({ input_tokens: 101, cached_input_tokens: 50, output_tokens: 10, reasoning_tokens: 5 }))).toBe('0.00121');
  });

  it('takes the exact decimal path past 2^53 pico-USD, at the tier price', () => {
    const t = new PriceTable([
      entry({
        input_per_1m: 1,
        output_per_1m: 1,
        long_context: { above_input_tokens: 1_000_000, input_per_1m: 999.999999, output_per_1m: 0.5 },
      }),
    ]);
    // 10,000,000 x 999,999,999 micro-USD = 9.99999999e15 pico-USD > 2^53 (9.007e15): decimal path.
    // (10,000,000 x 999.999999 + 3 x 0.5) / 1e6 = (9,999,999,990 + 1.5) / 1e6 = 9,999.9999915
    expect(10_000_000 * 999_999_999).toBeGreaterThan(Number.MAX_SAFE_INTEGER);
    expect(t.cost(usage({ input_tokens: 10_000_000, output_tokens: 3 }))).toBe('9999.9999915');
    // At the boundary, still the base: (1,000,000 x 1 + 3 x 1) / 1e6 = 1.000003
    expect(t.cost(usage({ input_tokens: 1_000_000, output_tokens: 3 }))).toBe('1.000003');
  });

  it('follows price changes: effective_from exactly at the event time uses the new tier, 1 ms before the old', () => {
    const change = Date.UTC(2025, 5, 1);
    const t = new PriceTable([
      entry({ effective_from: '2025-01-01', long_context: { above_input_tokens: 100, input_per_1m: 3, output_per_1m: 6 } }),
      entry({ effective_from: '2025-06-01T00:00:00Z', long_context: { above_input_tokens: 100, input_per_1m: 5, output_per_1m: 10 } }),
    ]);
    const at = (timestamp_ms: number) => t.cost(usage({ timestamp_ms, input_tokens: 101, output_tokens: 1 }));
    expect(at(change - 1)).toBe('0.000309'); // 101 x 3 + 1 x 6 = 309
    expect(at(change)).toBe('0.000515'); // 101 x 5 + 1 x 10 = 515
  });

  it.each<[string, Partial<PriceEntry>, string]>([
    [
      'a zero boundary',
      { long_context: { above_input_tokens: 0, input_per_1m: 2, output_per_1m: 4 } },
      'prices[0] (openai/gpt-4o).long_context.above_input_tokens: must be a whole number of tokens > 0, got 0',
    ],
    [
      'a fractional boundary',
      { long_context: { above_input_tokens: 128_000.5, input_per_1m: 2, output_per_1m: 4 } },
      'prices[0] (openai/gpt-4o).long_context.above_input_tokens: must be a whole number of tokens > 0, got 128000.5',
    ],
    [
      'an unsafe boundary',
      { long_context: { above_input_tokens: 2 ** 53, input_per_1m: 2, output_per_1m: 4 } },
      'prices[0] (openai/gpt-4o).long_context.above_input_tokens: must be a whole number of tokens > 0, got 9007199254740992',
    ],
    [
      'a negative tier price',
      { long_context: { above_input_tokens: 10, input_per_1m: -2, output_per_1m: 4 } },
      'prices[0] (openai/gpt-4o).long_context.input_per_1m: must be a finite number >= 0, got -2',
    ],
    [
      'a tier price with 7 decimals',
      { long_context: { above_input_tokens: 10, input_per_1m: 2, cached_input_per_1m: '0.1234567', output_per_1m: 4 } },
      'prices[0] (openai/gpt-4o).long_context.cached_input_per_1m: more than 6 decimals (0.1234567)',
    ],
    [
      'an absurd tier price',
      { long_context: { above_input_tokens: 10, input_per_1m: 2, output_per_1m: 4, reasoning_per_1m: 1_500 } },
      'prices[0] (openai/gpt-4o).long_context.reasoning_per_1m: 1500 USD per 1M tokens is absurd',
    ],
    [
      'a tier without an output price',
      { long_context: { above_input_tokens: 10, input_per_1m: 2 } as PriceEntry['long_context'] },
      'prices[0] (openai/gpt-4o).long_context.output_per_1m: missing',
    ],
  ])('rejects %s, naming the field', (_label, patch, problem) => {
    const problems = problemsOf([entry(patch)]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(problem);
  });
});

describe('unit: per_1k', () => {
  it('0.002 per 1K is 2 per 1M: identical costs, tier included (hand-computed)', () => {
    const per1k = new PriceTable([
      entry({
        unit: 'per_1k',
        input_per_1m: 0.002,
        cached_input_per_1m: '0.0005',
        output_per_1m: 0.008,
        long_context: { above_input_tokens: 1_000, input_per_1m: 0.004, output_per_1m: '0.016' },
      }),
    ]);
    const per1m = new PriceTable([
      entry({
        input_per_1m: 2,
        cached_input_per_1m: 0.5,
        output_per_1m: 8,
        long_context: { above_input_tokens: 1_000, input_per_1m: 4, output_per_1m: 16 },
      }),
    ]);
    // base: (1,000 - 200) x 2 + 200 x 0.5 + 50 x 8 = 1,600 + 100 + 400 = 2,100 -> 0.0021
    const base = usage({ input_tokens: 1_000, cached_input_tokens: 200, output_tokens: 50 });
    expect(per1k.cost(base)).toBe('0.0021');
    // tier: (1,001 - 200) x 4 + 200 x 4 + 50 x 16 = 3,204 + 800 + 800 = 4,804 -> 0.004804
    const tier = usage({ input_tokens: 1_001, cached_input_tokens: 200, output_tokens: 50 });
    expect(per1k.cost(tier)).toBe('0.004804');
    for (const input_tokens of [0, 1, 7, 999, 1_000, 1_001, 123_456, 10_000_000]) {
      const u = usage({ input_tokens, cached_input_tokens: Math.floor(input_tokens / 3), output_tokens: 777, reasoning_tokens: 11 });
      expect(per1k.cost(u), `input_tokens ${input_tokens}`).toBe(per1m.cost(u));
    }
    expect(per1k.listPrice('openai', 'gpt-4o', JAN_2025)).toEqual(per1m.listPrice('openai', 'gpt-4o', JAN_2025));
  });

  it.each<[string, Partial<PriceEntry>]>([
    ['1 per 1K = the 1000 per 1M ceiling', { unit: 'per_1k', input_per_1m: 1, output_per_1m: '1.000000000' }],
    ['9 decimals per 1K = 6 per 1M', { unit: 'per_1k', input_per_1m: '0.000123457', output_per_1m: 0.000123456 }],
    ['an explicit per_1m', { unit: 'per_1m', input_per_1m: 1, output_per_1m: 2 }],
  ])('accepts %s', (_label, patch) => {
    expect(() => new PriceTable([entry(patch)])).not.toThrow();
  });

  it.each<[string, Partial<PriceEntry>, string]>([
    [
      'a per-1M price marked per_1k (absurd once converted)',
      { unit: 'per_1k', output_per_1m: 2 },
      'prices[0] (openai/gpt-4o).output_per_1m: 2 USD per 1K tokens = 2000 USD per 1M tokens is absurd (over 1000 per 1M): ' +
        'a unit error? unit: per_1k takes USD per 1K tokens; drop it for per-1M prices',
    ],
    [
      'an absurd per-1K tier price',
      {
        unit: 'per_1k',
        input_per_1m: 0.001,
        output_per_1m: 0.002,
        long_context: { above_input_tokens: 10, input_per_1m: 0.002, output_per_1m: 15 },
      },
      'prices[0] (openai/gpt-4o).long_context.output_per_1m: 15 USD per 1K tokens = 15000 USD per 1M tokens is absurd',
    ],
    [
      'a per-1K price finer than 1e-6 per 1M',
      { unit: 'per_1k', input_per_1m: '0.0001234567', output_per_1m: 0.002 },
      'prices[0] (openai/gpt-4o).input_per_1m: more than 6 decimals once converted to USD per 1M (0.0001234567 per 1K = 0.1234567 per 1M)',
    ],
    [
      'a per-1K price with more digits than the 40-digit arithmetic keeps',
      { unit: 'per_1k', input_per_1m: `1.${'0'.repeat(39)}1`, output_per_1m: 0.002 },
      'prices[0] (openai/gpt-4o).input_per_1m: more than 6 decimals once converted to USD per 1M',
    ],
    [
      'a negative per-1K price',
      { unit: 'per_1k', input_per_1m: -0.001, output_per_1m: 0.002 },
      'prices[0] (openai/gpt-4o).input_per_1m: must be a finite number >= 0, got -0.001',
    ],
    [
      'an unknown unit',
      { unit: 'per_token' },
      'prices[0] (openai/gpt-4o).unit: must be per_1m (USD per 1M tokens) or per_1k (USD per 1K tokens), got "per_token"',
    ],
    [
      'a unit in the wrong case',
      { unit: 'per_1K' },
      'prices[0] (openai/gpt-4o).unit: must be per_1m (USD per 1M tokens) or per_1k (USD per 1K tokens), got "per_1K"',
    ],
    ['an inherited property name as unit', { unit: 'toString' }, 'prices[0] (openai/gpt-4o).unit: must be per_1m'],
  ])('rejects %s', (_label, patch, problem) => {
    const problems = problemsOf([entry(patch)]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(problem);
  });
});

describe('PriceTable.listPrice', () => {
  const table = new PriceTable([
    entry({ effective_from: '2024-01-01', input_per_1m: 10, output_per_1m: 30 }),
    entry({
      effective_from: '2024-06-01',
      input_per_1m: '2.5',
      cached_input_per_1m: 1.25,
      output_per_1m: 10,
      long_context: { above_input_tokens: 100, input_per_1m: 5, output_per_1m: 20 },
    }),
  ]);

  it('gives the base prices (not the tier) in force at that time, USD per 1M as exact decimal strings', () => {
    expect(table.listPrice('openai', 'gpt-4o', Date.UTC(2024, 5, 1))).toEqual({
      input_per_1m: '2.5',
      cached_input_per_1m: '1.25',
      output_per_1m: '10',
      reasoning_per_1m: '10',
    });
    expect(table.listPrice('OpenAI', 'gpt-4o', Date.UTC(2024, 5, 1) - 1)).toEqual({
      input_per_1m: '10',
      cached_input_per_1m: '10',
      output_per_1m: '30',
      reasoning_per_1m: '30',
    });
  });

  it('falls back from a dated snapshot to its alias, like cost', () => {
    expect(table.listPrice('openai', 'gpt-4o-2024-08-06', JAN_2025)?.input_per_1m).toBe('2.5');
  });

  it('is undefined when unpriced', () => {
    expect(table.listPrice('openai', 'gpt-9', JAN_2025)).toBeUndefined();
    expect(table.listPrice('openai', 'gpt-4o', Date.UTC(2023, 11, 31))).toBeUndefined();
  });
});

describe('PriceTable: per-token prices written as per-1M or per-1K (the lower sanity bound)', () => {
  const FIELDS = ['input_per_1m', 'cached_input_per_1m', 'output_per_1m', 'reasoning_per_1m'] as const;

  it.each(FIELDS.flatMap((field) => ['', 'long_context.'].map((tier) => [`${tier}${field}`, field, tier] as const)))(
    'rejects a per-token price in %s, in either unit, with the per-1M price it stands for',
    (_label, field, tier) => {
      const cases: Array<[Partial<PriceEntry>, string]> = [
        // 3 USD per 1M = 0.000003 per token: 0.000003 x 1e6 = 3.
        [{}, '0.000003 USD per 1M tokens is implausibly low'],
        // 2.5 USD per 1M = 0.0000025 per token: 7 decimals, but the hint is the per-token one.
        [{}, '0.0000025 USD per 1M tokens is implausibly low'],
        // per_1k: 0.000003 x 1000 = 0.003 USD per 1M.
        [{ unit: 'per_1k' }, '0.000003 USD per 1K tokens = 0.003 USD per 1M tokens is implausibly low'],
      ];
      for (const [patch, said] of cases) {
        const price = said.split(' ')[0] as string;
        const perToken = { [field]: price };
        const written: Partial<PriceEntry> = {
          ...patch,
          // The other prices of the entry are fine in both units (0.002 per 1K = 2 per 1M).
          ...(patch.unit === 'per_1k' ? { input_per_1m: 0.002, output_per_1m: 0.002 } : {}),
          ...(tier === '' ? perToken : {}),
          ...(tier === ''
            ? {}
            : {
                long_context: {
                  above_input_tokens: 10,
                  input_per_1m: patch.unit === 'per_1k' ? 0.002 : 2,
                  output_per_1m: patch.unit === 'per_1k' ? 0.002 : 2,
                  ...perToken,
                },
              }),
        };
        const problems = problemsOf([entry(written)]);
        const per1m = new Decimal(price).mul(1_000_000).toFixed();
        expect(problems, JSON.stringify(written)).toEqual([
          `prices[0] (openai/gpt-4o).${tier}${field}: ${said} (under 0.005 per 1M; 0 is allowed for a free model): a per-token price? ` +
            `${price} USD per token is ${per1m} USD per 1M tokens${patch.unit === 'per_1k' ? ', written without unit: per_1k' : ''}`,
        ]);
      }
    },
  );

  it.each<[string, Partial<PriceEntry>]>([
    ['0 (a free model)', { input_per_1m: 0, output_per_1m: '0' }],
    ['exactly the bound, 0.005 per 1M', { input_per_1m: 0.005, output_per_1m: '0.005' }],
    ['0.005 per 1M written per 1K (0.000005)', { unit: 'per_1k', input_per_1m: '0.000005', output_per_1m: 0.002 }],
  ])('accepts %s', (_label, patch) => {
    expect(() => new PriceTable([entry(patch)])).not.toThrow();
  });
});

describe('PriceTable: entry labels', () => {
  it('names each entry as the label function says, in every problem', () => {
    const label = (i: number) => (i === 0 ? 'defaults[0]' : `prices[${i - 1}]`);
    expect(() => new PriceTable([entry({}), entry({ model: 'other', input_per_1m: -1 }), entry({ input_per_1m: 3 })], { label })).toThrow(
      new PriceTableError([
        'prices[0] (openai/other).input_per_1m: must be a finite number >= 0, got -1',
        'prices[1] (openai/gpt-4o): two prices with effective_from 2024-01-01 (defaults[0] has the same)',
      ]),
    );
  });

  it('skipInvalid keeps the valid entries, lists the problems and the entries left out', () => {
    const table = new PriceTable([entry({ model: 'bad', output_per_1m: -2 }), entry({}), entry({ input_per_1m: 9 })], {
      skipInvalid: true,
    });
    expect(table.problems).toEqual([
      'prices[0] (openai/bad).output_per_1m: must be a finite number >= 0, got -2',
      'prices[2] (openai/gpt-4o): two prices with effective_from 2024-01-01 (prices[1] has the same)',
    ]);
    expect([...table.skipped]).toEqual([0, 2]);
    expect(table.has('openai', 'bad', JAN_2025)).toBe(false);
    // The first of the two gpt-4o entries stands: 1M input tokens at 1 USD per 1M.
    expect(table.cost(usage({ input_tokens: 1_000_000 }))).toBe('1');
  });
});
