import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config/load.ts';
import { PriceTable } from '../../domain/pricing.ts';

const dir = mkdtempSync(join(tmpdir(), 'quotaflow-config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** Write a config file into the temp folder and return its path. */
function file(ext: 'yaml' | 'yml' | 'json', text: string): string {
  const path = join(dir, `config-${n++}.${ext}`);
  writeFileSync(path, text);
  return path;
}

/** The problems a config is rejected with (fails the test if it loads). */
function problemsOf(path: string | undefined, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    loadConfig(path, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected the configuration to be rejected');
}

const GPT4O_CALL = {
  provider: 'openai',
  model: 'gpt-4o',
  timestamp_ms: Date.UTC(2025, 0, 15),
  input_tokens: 1_000_000,
  cached_input_tokens: 0,
  output_tokens: 1_000_000,
  reasoning_tokens: 0,
};

describe('loadConfig: defaults', () => {
  it('loads defaults with no file and no env', () => {
    const { config, prices } = loadConfig(undefined, {});
    expect(config.clickhouse).toEqual({
      mode: 'embedded',
      path: '.quotaflow/data',
      url: 'http://127.0.0.1:8123',
      username: 'default',
      password: '',
      database: 'default',
    });
    expect(config.pipeline).toEqual({
      batch_max_messages: 25_000,
      batch_max_wait_ms: 500,
      transport_capacity: 50_000,
      max_future_skew_ms: 600_000,
    });
    expect(config.prices).toEqual([]);
    expect(config.use_default_prices).toBe(true);
    expect(prices).toBeInstanceOf(PriceTable);
    // The shipped table prices gpt-4o (2.5 in + 10 out per 1M since 2024-10-02).
    expect(prices.cost(GPT4O_CALL)).toBe('12.5');
    expect(prices.has('anthropic', 'claude-sonnet-4-20250514', Date.UTC(2025, 6, 1))).toBe(true);
    expect(prices.cost({ ...GPT4O_CALL, model: 'no-such-model' })).toBeNull();
  });

  it('does not read process.env when an env is passed', () => {
    const saved = process.env.CLICKHOUSE_PATH;
    process.env.CLICKHOUSE_PATH = '/from/process/env';
    try {
      expect(loadConfig(undefined, {}).config.clickhouse.path).toBe('.quotaflow/data');
    } finally {
      if (saved === undefined) delete process.env.CLICKHOUSE_PATH;
      else process.env.CLICKHOUSE_PATH = saved;
    }
  });

  it('use_default_prices: false starts from an empty table', () => {
    const path = file('yaml', 'use_default_prices: false\n');
    expect(loadConfig(path, {}).prices.has('openai', 'gpt-4o', GPT4O_CALL.timestamp_ms)).toBe(false);
  });
});

describe('loadConfig: files', () => {
  it('loads a YAML file, merged with defaults', () => {
    const path = file(
      'yaml',
      `# a comment
clickhouse:
  path: /var/lib/quotaflow
pipeline:
  batch_max_messages: 2000
prices:
  - { provider: acme-ai, model: rocket-1, effective_from: 2025-01-01, input_per_1m: "0.5", output_per_1m: 1.5 }
`,
    );
    const { config, prices } = loadConfig(path, {});
    expect(config.clickhouse.path).toBe('/var/lib/quotaflow');
    expect(config.clickhouse.mode).toBe('embedded');
    expect(config.pipeline.batch_max_messages).toBe(2000);
    expect(config.pipeline.batch_max_wait_ms).toBe(500);
    expect(prices.cost({ ...GPT4O_CALL, provider: 'acme-ai', model: 'rocket-1' })).toBe('2');
    expect(prices.has('openai', 'gpt-4o', GPT4O_CALL.timestamp_ms)).toBe(true); // defaults kept
  });

  it('loads a .yml file', () => {
    expect(loadConfig(file('yml', 'pipeline: { batch_max_wait_ms: 250 }\n'), {}).config.pipeline.batch_max_wait_ms).toBe(250);
  });

  it('loads a JSON file', () => {
    const path = file(
      'json',
      JSON.stringify({ clickhouse: { mode: 'server', url: 'https://ch.example:8443', database: 'qf' }, use_default_prices: false }),
    );
    const { config } = loadConfig(path, {});
    expect(config.clickhouse).toMatchObject({ mode: 'server', url: 'https://ch.example:8443', database: 'qf', path: '.quotaflow/data' });
    expect(config.use_default_prices).toBe(false);
  });

  it('an empty YAML file is the defaults', () => {
    expect(loadConfig(file('yaml', ''), {}).config).toEqual(loadConfig(undefined, {}).config);
  });

  it('an unreadable or unparsable file is a ConfigError', () => {
    expect(problemsOf(join(dir, 'missing.yaml'))[0]).toMatch(/^cannot read: /);
    expect(problemsOf(file('json', '{"clickhouse": '))[0]).toMatch(/^cannot read: /);
    expect(problemsOf(file('yaml', 'a: [1, 2\n'))[0]).toMatch(/^cannot read: /);
  });

  it('a top level that is not a mapping is a ConfigError', () => {
    expect(problemsOf(file('yaml', '- a\n- b\n'))).toEqual(['top level must be a mapping']);
    expect(problemsOf(file('json', '42'))).toEqual(['top level must be a mapping']);
  });

  it('the ConfigError names the source file', () => {
    const path = file('yaml', 'bogus: 1\n');
    try {
      loadConfig(path, {});
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).source).toBe(path);
      expect((err as ConfigError).message).toContain(path);
    }
  });

  it('without a file, the ConfigError says the problem came from the defaults and the environment', () => {
    try {
      loadConfig(undefined, { HTTP_PORT: 'eighty' });
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).message.split('\n')[0]).toBe('invalid configuration (no config file: defaults and environment):');
    }
  });
});

describe('loadConfig: env overrides', () => {
  it('env overrides the file and the defaults; numbers are coerced', () => {
    const path = file('yaml', 'clickhouse: { path: /from/file }\npipeline: { batch_max_messages: 5 }\n');
    const { config } = loadConfig(path, {
      CLICKHOUSE_PATH: '/from/env',
      PIPELINE_BATCH_MAX_MESSAGES: '1234',
      PIPELINE_BATCH_MAX_WAIT_MS: '75',
      UNRELATED: 'x',
    });
    expect(config.clickhouse.path).toBe('/from/env');
    expect(config.pipeline.batch_max_messages).toBe(1234);
    expect(typeof config.pipeline.batch_max_messages).toBe('number');
    expect(config.pipeline.batch_max_wait_ms).toBe(75);
  });

  it('an empty env value is ignored', () => {
    expect(loadConfig(undefined, { CLICKHOUSE_PATH: '' }).config.clickhouse.path).toBe('.quotaflow/data');
  });

  it.each([
    ['CLICKHOUSE_PATH', 'path', '2024'],
    ['CLICKHOUSE_PASSWORD', 'password', '123456'],
    ['CLICKHOUSE_USER', 'username', '1001'],
    ['CLICKHOUSE_DATABASE', 'database', '2025'],
  ] as const)('a numeric-looking %s stays a string', (name, key, value) => {
    expect(loadConfig(undefined, { [name]: value }).config.clickhouse[key]).toBe(value);
  });

  it('a non-numeric value for a number is reported, not coerced to NaN', () => {
    expect(problemsOf(undefined, { PIPELINE_BATCH_MAX_MESSAGES: 'lots' })).toEqual([
      expect.stringMatching(/^PIPELINE_BATCH_MAX_MESSAGES \(pipeline\.batch_max_messages\): /),
    ]);
    expect(problemsOf(undefined, { PIPELINE_BATCH_MAX_MESSAGES: '1.5' })).toEqual([
      expect.stringMatching(/^PIPELINE_BATCH_MAX_MESSAGES \(pipeline\.batch_max_messages\): /),
    ]);
  });

  it('an env override on a section that is not a mapping is a ConfigError, not a crash', () => {
    const path = file('yaml', 'clickhouse: embedded\n');
    expect(problemsOf(path, { CLICKHOUSE_PATH: '/x' })).toEqual([expect.stringMatching(/^clickhouse: /)]);
  });
});

describe('loadConfig: every problem at once', () => {
  it('lists unknown key, wrong type, bad mode, negative batch size and negative price together', () => {
    const path = file(
      'yaml',
      `bogus: true
clickhouse:
  mode: cluster
  path: 7
pipeline:
  batch_max_messages: -5
prices:
  - { provider: acme-ai, model: rocket-1, effective_from: 2025-01-01, input_per_1m: -1, output_per_1m: 1 }
`,
    );
    const problems = problemsOf(path);
    expect(problems).toHaveLength(5);
    for (const prefix of ['bogus:', 'clickhouse.mode:', 'clickhouse.path:', 'pipeline.batch_max_messages:', 'prices.0.input_per_1m:']) {
      expect(
        problems.some((p) => p.startsWith(prefix)),
        `${prefix} in ${JSON.stringify(problems)}`,
      ).toBe(true);
    }
    expect(problems.find((p) => p.startsWith('bogus:'))).toMatch(/unexpected property/i);
  });

  it('lists the price-table and cross-field problems beside the schema problems', () => {
    // A date the schema accepts but the price table does not, and a server URL that is not http(s),
    // next to an unknown key: all three must be reported in one go.
    const path = file(
      'yaml',
      `bogus: true
clickhouse: { mode: server, url: "ch.example:8123" }
prices:
  - { provider: acme-ai, model: rocket-1, effective_from: 2025-02-30, input_per_1m: 1, output_per_1m: 1 }
`,
    );
    const problems = problemsOf(path);
    expect(problems).toHaveLength(3);
    expect(problems.some((p) => p.startsWith('bogus:'))).toBe(true);
    expect(problems.some((p) => p.startsWith('clickhouse.url:'))).toBe(true);
    expect(problems.some((p) => /effective_from.*2025-02-30/.test(p))).toBe(true);
  });

  it('lists every bad price entry, including those only the price table catches', () => {
    const path = file(
      'yaml',
      `use_default_prices: false
prices:
  - { provider: a, model: m1, effective_from: 2025-01-01, input_per_1m: "0.1234567", output_per_1m: 1 }
  - { provider: a, model: m2, effective_from: 2025-01-01, input_per_1m: 1, output_per_1m: 5000 }
  - { provider: a, model: m3, effective_from: 2025-01-01, input_per_1m: 1, output_per_1m: 1 }
  - { provider: a, model: m3, effective_from: 2025-01-01, input_per_1m: 2, output_per_1m: 2 }
`,
    );
    const problems = problemsOf(path);
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/a\/m1.*input_per_1m: more than 6 decimals/);
    expect(problems[1]).toMatch(/a\/m2.*output_per_1m: .*absurd/);
    expect(problems[2]).toMatch(/a\/m3.*two prices with effective_from 2025-01-01/);
  });

  it('a server URL that is not http(s) is rejected', () => {
    expect(problemsOf(undefined, { CLICKHOUSE_MODE: 'server', CLICKHOUSE_URL: 'tcp://ch:9000' })).toEqual([
      expect.stringMatching(/^CLICKHOUSE_URL \(clickhouse\.url\): must be an http\(s\) URL/),
    ]);
  });
});

describe('loadConfig: quotas and routing', () => {
  it('defaults to no quotas and no routing candidates', () => {
    const { config } = loadConfig(undefined, {});
    expect(config.quotas).toEqual([]);
    expect(config.routing).toEqual({ candidates: [], refresh_ms: 5_000, max_error_rate: 0.2 });
  });

  it('loads quotas and routing candidates, with defaults filled in', () => {
    const path = file(
      'yaml',
      `quotas:
  - { id: a-day, scope: { tenant: a }, metric: tokens, limit: 1000000, window: { kind: calendar, unit: day, time_zone: Europe/Berlin } }
  - { id: a-usd, scope: { tenant: a, provider: openai }, metric: usd, limit: "12.50", window: { kind: rolling, minutes: 60 } }
routing:
  candidates:
    - { id: gpt, provider: openai, model: gpt-4o, capabilities: [tools], price: { input_per_1m: 2.5, output_per_1m: 10 } }
  weights: { performance: 1, cost: 1, features: 0, stability: 0, compliance: 0 }
  refresh_ms: 1000
`,
    );
    const { config } = loadConfig(path, {});
    expect(config.quotas.map((q) => [q.id, q.soft_threshold])).toEqual([
      ['a-day', 0.8],
      ['a-usd', 0.8],
    ]);
    expect(config.routing.candidates[0]).toEqual({
      id: 'gpt',
      provider: 'openai',
      model: 'gpt-4o',
      capabilities: ['tools'],
      compliance: [],
      price: { input_per_1m: 2.5, output_per_1m: 10 },
    });
    expect(config.routing.refresh_ms).toBe(1000);
    expect(config.routing.max_error_rate).toBe(0.2);
  });

  it('lists each quota problem once, with a clear message', () => {
    const path = file(
      'yaml',
      `quotas:
  - { id: q1, scope: { tenant: a }, metric: tokens, limit: 10.5, window: { kind: calendar, unit: fortnight } }
  - { id: q1, scope: { tenant: a }, metric: coins, limit: 5, window: { kind: calendar, unit: day, time_zone: Mars/Olympus } }
  - { id: q3, scope: { tenant: a }, metric: usd, limit: -1, window: { kind: sliding } }
`,
    );
    const problems = problemsOf(path);
    expect(problems).toEqual([
      'quotas[0] (q1).window.unit: must be one of minute, hour, day, week, month, got "fortnight"',
      'quotas[0] (q1).limit: tokens limit must be a whole number, got 10.5',
      'quotas[1] (q1).metric: must be one of tokens, requests, usd, got "coins"',
      'quotas[1] (q1).id: duplicate id, already used by quotas[0]',
      'quotas[1] (q1).window.time_zone: not an IANA time zone: "Mars/Olympus" (e.g. Europe/Berlin, UTC)',
      'quotas[2] (q3).window.kind: must be calendar or rolling, got "sliding"',
      'quotas[2] (q3).limit: must be > 0, got -1',
    ]);
  });

  it('lists every routing problem: schema ones and those only the routing compiler catches', () => {
    const path = file(
      'yaml',
      `routing:
  candidates:
    - { id: x, provider: openai, model: gpt-4o, price: { input_per_1m: 1, output_per_1m: 1 } }
    - { id: x, provider: anthropic, model: claude, price: { input_per_1m: 1, output_per_1m: 1 } }
  weights: { performance: 0, cost: 0, features: 0, stability: 0, compliance: 0 }
  refresh_ms: 0
  max_error_rate: 2
`,
    );
    const problems = problemsOf(path);
    expect(problems).toHaveLength(4);
    expect(problems.some((p) => p.startsWith('routing.refresh_ms:'))).toBe(true);
    expect(problems.some((p) => p.startsWith('routing.max_error_rate:'))).toBe(true);
    expect(problems).toContain('routing.candidates[1] (x): duplicate id');
    expect(problems).toContain('routing.weights: at least one must be > 0');
  });
});

describe('loadConfig: result', () => {
  it('is deeply frozen', () => {
    const path = file(
      'yaml',
      'prices:\n  - { provider: acme-ai, model: rocket-1, effective_from: 2025-01-01, input_per_1m: 1, output_per_1m: 1 }\n',
    );
    const { config } = loadConfig(path, {});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.clickhouse)).toBe(true);
    expect(Object.isFrozen(config.pipeline)).toBe(true);
    expect(Object.isFrozen(config.prices)).toBe(true);
    expect(Object.isFrozen(config.prices[0])).toBe(true);
    // ESM is strict mode: writes to a frozen object throw.
    expect(() => {
      (config.clickhouse as { path: string }).path = '/elsewhere';
    }).toThrow(TypeError);
    expect(() => {
      (config.prices as unknown[]).push({});
    }).toThrow(TypeError);
    expect(config.clickhouse.path).toBe('.quotaflow/data');
  });

  it('each load returns its own object', () => {
    const a = loadConfig(undefined, {});
    const b = loadConfig(undefined, { CLICKHOUSE_PATH: '/b' });
    expect(a.config.clickhouse.path).toBe('.quotaflow/data');
    expect(b.config.clickhouse.path).toBe('/b');
  });
});

describe('loadConfig: long-context tiers and units in the price table', () => {
  const call = (
    provider: string,
    model: string,
    timestamp_ms: number,
    input_tokens: number,
    cached_input_tokens: number,
    output_tokens: number,
  ) => ({
    provider,
    model,
    timestamp_ms,
    input_tokens,
    cached_input_tokens,
    output_tokens,
    reasoning_tokens: 0,
  });

  it('the shipped table bills gemini-1.5-pro prompts over 128,000 tokens at 2.5 / 10 for the whole call', () => {
    const { prices } = loadConfig(undefined, {});
    const at = Date.UTC(2025, 0, 15);
    // 128,000 x 1.25 + 1,000 x 5 = 160,000 + 5,000 = 165,000 -> 0.165
    expect(prices.cost(call('google', 'gemini-1.5-pro', at, 128_000, 0, 1_000))).toBe('0.165');
    // 128,001 x 2.5 + 1,000 x 10 = 320,002.5 + 10,000 = 330,002.5 -> 0.3300025
    expect(prices.cost(call('google', 'gemini-1.5-pro', at, 128_001, 0, 1_000))).toBe('0.3300025');
  });

  it('the shipped table adds the Sonnet 4 long-context tier from 2025-08-12, not before', () => {
    const { prices } = loadConfig(undefined, {});
    const from = Date.UTC(2025, 7, 12);
    // 200,001 input of which 100,000 cached, 1,000 output.
    // before: 100,001 x 3 + 100,000 x 0.3 + 1,000 x 15 = 300,003 + 30,000 + 15,000 = 345,003 -> 0.345003
    expect(prices.cost(call('anthropic', 'claude-sonnet-4-20250514', from - 1, 200_001, 100_000, 1_000))).toBe('0.345003');
    // from: 100,001 x 6 + 100,000 x 0.6 + 1,000 x 22.5 = 600,006 + 60,000 + 22,500 = 682,506 -> 0.682506
    expect(prices.cost(call('anthropic', 'claude-sonnet-4-20250514', from, 200_001, 100_000, 1_000))).toBe('0.682506');
    // at the boundary, the base: 100,000 x 3 + 100,000 x 0.3 + 1,000 x 15 = 345,000 -> 0.345
    expect(prices.cost(call('anthropic', 'claude-sonnet-4-20250514', from, 200_000, 100_000, 1_000))).toBe('0.345');
  });

  it('loads per_1k prices and long-context tiers from a config file', () => {
    const path = file(
      'yaml',
      `use_default_prices: false
prices:
  - { provider: acme-ai, model: rocket-1, effective_from: 2025-01-01, unit: per_1k, input_per_1m: 0.002, output_per_1m: "0.006",
      long_context: { above_input_tokens: 1000, input_per_1m: 0.004, output_per_1m: 0.012 } }
`,
    );
    const { prices } = loadConfig(path, {});
    const at = Date.UTC(2025, 1, 1);
    // 1,000 x 2 + 100 x 6 = 2,600 -> 0.0026 ; 1,001 x 4 + 100 x 12 = 4,004 + 1,200 = 5,204 -> 0.005204
    expect(prices.cost(call('acme-ai', 'rocket-1', at, 1_000, 0, 100))).toBe('0.0026');
    expect(prices.cost(call('acme-ai', 'rocket-1', at, 1_001, 0, 100))).toBe('0.005204');
  });

  it('lists bad units, absurd per-1K prices and bad tiers with the field named', () => {
    const path = file(
      'yaml',
      `use_default_prices: false
prices:
  - { provider: a, model: m1, effective_from: 2025-01-01, unit: per_token, input_per_1m: 1, output_per_1m: 1 }
  - { provider: a, model: m2, effective_from: 2025-01-01, unit: per_1k, input_per_1m: 0.001, output_per_1m: 3 }
  - { provider: a, model: m3, effective_from: 2025-01-01, input_per_1m: 1, output_per_1m: 1,
      long_context: { above_input_tokens: 10, input_per_1m: -2, output_per_1m: 1 } }
  - { provider: a, model: m4, effective_from: 2025-01-01, input_per_1m: 1, output_per_1m: 1,
      long_context: { above_input_tokens: 0, input_per_1m: 2, output_per_1m: 2 } }
`,
    );
    // The schema rejects m3 and m4 (a negative price, a zero boundary); the price table is built
    // from the other entries all the same, so the unit and per-1K problems of m1 and m2 are listed too.
    expect(problemsOf(path)).toEqual([
      'prices.2.long_context.input_per_1m: must be a number >= 0 or a decimal string such as "0.15", got -2',
      'prices.3.long_context.above_input_tokens: Expected integer to be greater or equal to 1',
      'prices[0] (a/m1).unit: must be per_1m (USD per 1M tokens) or per_1k (USD per 1K tokens), got "per_token"',
      'prices[1] (a/m2).output_per_1m: 3 USD per 1K tokens = 3000 USD per 1M tokens is absurd (over 1000 per 1M): ' +
        'a unit error? unit: per_1k takes USD per 1K tokens; drop it for per-1M prices',
    ]);
  });
});

describe('loadConfig: routing candidate prices from the price table', () => {
  it('fills a missing price from the entry in force at load time (base tier, per 1M, whatever the unit)', () => {
    const path = file(
      'yaml',
      `use_default_prices: false
prices:
  - { provider: acme-ai, model: rocket-1, effective_from: 2020-01-01, input_per_1m: 5, output_per_1m: 15 }
  - { provider: acme-ai, model: rocket-1, effective_from: 2021-01-01, input_per_1m: "0.5", output_per_1m: 1.5,
      long_context: { above_input_tokens: 1000, input_per_1m: 1, output_per_1m: 3 } }
  - { provider: acme-ai, model: rocket-1, effective_from: 2999-01-01, input_per_1m: 9, output_per_1m: 9 }
  - { provider: acme-ai, model: mini, effective_from: 2020-01-01, unit: per_1k, input_per_1m: 0.00015, output_per_1m: 0.0006 }
routing:
  candidates:
    - { id: rocket, provider: acme-ai, model: rocket-1 }
    - { id: mini, provider: ACME-AI, model: mini }
    - { id: own, provider: acme-ai, model: rocket-1, price: { input_per_1m: 7, output_per_1m: 8 } }
`,
    );
    const { config } = loadConfig(path, {});
    expect(config.routing.candidates.map((c) => [c.id, c.price])).toEqual([
      ['rocket', { input_per_1m: 0.5, output_per_1m: 1.5 }], // 2021 entry: not the old 2020 one, not the 2999 one, not the tier
      ['mini', { input_per_1m: 0.15, output_per_1m: 0.6 }], // 0.00015 and 0.0006 per 1K x 1,000
      ['own', { input_per_1m: 7, output_per_1m: 8 }], // a given price is kept
    ]);
    expect(Object.isFrozen(config.routing.candidates[0]?.price)).toBe(true);
  });

  it('fills from the shipped table, dated snapshot names included', () => {
    const path = file('yaml', 'routing:\n  candidates:\n    - { id: g, provider: openai, model: gpt-4o-2024-11-20 }\n');
    // gpt-4o-2024-11-20 has no entry of its own: its alias gpt-4o is 2.5 / 10 since 2024-10-02.
    expect(loadConfig(path, {}).config.routing.candidates[0]?.price).toEqual({ input_per_1m: 2.5, output_per_1m: 10 });
  });

  it('reports an unpriced candidate once, beside the other routing problems', () => {
    const path = file(
      'yaml',
      `use_default_prices: false
routing:
  candidates:
    - { id: ghost, provider: acme-ai, model: nothing-1 }
    - { id: ghost, provider: acme-ai, model: nothing-2, price: { input_per_1m: 1, output_per_1m: 1 } }
`,
    );
    expect(problemsOf(path)).toEqual([
      'routing.candidates[0] (ghost).price: no price given and acme-ai/nothing-1 is not in the price table',
      'routing.candidates[1] (ghost): duplicate id',
    ]);
  });

  it('an invalid price table is reported, not a missing candidate price on top of it', () => {
    const path = file(
      'yaml',
      `use_default_prices: false
prices:
  - { provider: acme-ai, model: rocket-1, effective_from: 2025-02-30, input_per_1m: 1, output_per_1m: 1 }
routing:
  candidates:
    - { id: rocket, provider: acme-ai, model: rocket-1 }
`,
    );
    expect(problemsOf(path)).toEqual(['prices[0] (acme-ai/rocket-1).effective_from: not an RFC 3339 date or date-time: 2025-02-30']);
  });
});

describe('loadConfig: price entries are named by their own index (item: per-token prices)', () => {
  it('a user entry is prices[i] of the user file, with the default table on; a clash names the default entry', () => {
    const path = file(
      'yaml',
      `prices:
  - { provider: openai, model: gpt-9, effective_from: 2025-01-01, input_per_1m: 0.000003, output_per_1m: 0.000015 }
  - { provider: openai, model: gpt-4o, effective_from: 2024-05-13, input_per_1m: 5, output_per_1m: 15 }
`,
    );
    const problems = problemsOf(path);
    expect(problems).toEqual([
      'prices[0] (openai/gpt-9).input_per_1m: 0.000003 USD per 1M tokens is implausibly low (under 0.005 per 1M; 0 is allowed ' +
        'for a free model): a per-token price? 0.000003 USD per token is 3 USD per 1M tokens',
      'prices[0] (openai/gpt-9).output_per_1m: 0.000015 USD per 1M tokens is implausibly low (under 0.005 per 1M; 0 is allowed ' +
        'for a free model): a per-token price? 0.000015 USD per token is 15 USD per 1M tokens',
      // config/prices.default.yaml entry 4 is gpt-4o from 2024-05-13.
      'prices[1] (openai/gpt-4o): two prices with effective_from 2024-05-13 (config/prices.default.yaml[4] has the same)',
    ]);
  });
});

describe('loadConfig: every check runs on the parts that parsed', () => {
  // Each case: a config with exactly one problem that only a check beyond the schema finds, and a
  // schema error added beside it in the same section. The first problem must still be listed.
  const CASES: Array<[string, string, string, string]> = [
    [
      'a duplicate ingest key, beside a key too short',
      'ingest_keys:\n  - { key: ingest-a-0123456789abcdef, tenant: team-a }\n  - { key: ingest-a-0123456789abcdef, tenant: team-b }\n',
      '  - { key: short, tenant: team-c }\n',
      'ingest_keys: the same key is listed twice (tenant team-b)',
    ],
    [
      'a duplicate candidate id, beside a candidate with a bad price',
      'routing:\n  candidates:\n    - { id: x, provider: openai, model: gpt-4o }\n    - { id: x, provider: openai, model: gpt-4o }\n',
      '    - { id: y, provider: openai, model: gpt-4o, price: { input_per_1m: -1, output_per_1m: 10 } }\n',
      'routing.candidates[1] (x): duplicate id',
    ],
    [
      'a candidate model not in the price table, beside a bad candidate',
      'routing:\n  candidates:\n    - { id: x, provider: nope, model: nope-1 }\n',
      '    - { id: y, provider: openai, model: gpt-4o, capabilities: [""] }\n',
      'routing.candidates[0] (x).price: no price given and nope/nope-1 is not in the price table',
    ],
    [
      'a candidate model not in the price table, beside a price entry the schema rejects',
      'routing:\n  candidates:\n    - { id: x, provider: nope, model: nope-1 }\n',
      'prices:\n  - { provider: acme, model: m, effective_from: 2025-01-01, input_per_1m: "lots", output_per_1m: 1 }\n',
      'routing.candidates[0] (x).price: no price given and nope/nope-1 is not in the price table',
    ],
    [
      'a candidate model not in the price table, beside a price entry the table rejects',
      'routing:\n  candidates:\n    - { id: x, provider: nope, model: nope-1 }\n',
      'prices:\n  - { provider: acme, model: m, effective_from: 2025-02-30, input_per_1m: 1, output_per_1m: 1 }\n',
      'routing.candidates[0] (x).price: no price given and nope/nope-1 is not in the price table',
    ],
    [
      'a per-token price, beside a price entry the schema rejects',
      'prices:\n  - { provider: acme, model: m, effective_from: 2025-01-01, input_per_1m: 0.000003, output_per_1m: 1 }\n',
      '  - { provider: acme, model: m2, effective_from: 2025-01-01, input_per_1m: 1 }\n',
      'prices[0] (acme/m).input_per_1m: 0.000003 USD per 1M tokens is implausibly low',
    ],
    [
      'a clash with the default table, beside use_default_prices of the wrong type',
      'prices:\n  - { provider: openai, model: gpt-4o, effective_from: 2024-05-13, input_per_1m: 5, output_per_1m: 15 }\n',
      'use_default_prices: "yes"\n',
      'prices[0] (openai/gpt-4o): two prices with effective_from 2024-05-13',
    ],
  ];

  it.each(CASES)('%s', (_label, base, breaker, expected) => {
    const alone = problemsOf(file('yaml', base));
    expect(
      alone.some((p) => p.startsWith(expected)),
      JSON.stringify(alone),
    ).toBe(true);
    const both = problemsOf(file('yaml', base + breaker));
    expect(both.length, JSON.stringify(both)).toBeGreaterThan(alone.length);
    expect(
      both.some((p) => p.startsWith(expected)),
      JSON.stringify(both),
    ).toBe(true);
  });

  it('a duplicate candidate id is found when the duplicate itself has a schema problem, which is reported once', () => {
    const problems = problemsOf(
      file(
        'yaml',
        'routing:\n  candidates:\n    - { id: x, provider: openai, model: gpt-4o }\n' +
          '    - { id: x, provider: openai, model: gpt-4o, price: { input_per_1m: -1, output_per_1m: 10 } }\n',
      ),
    );
    expect(problems).toEqual([
      'routing.candidates.1.price.input_per_1m: Expected number to be greater or equal to 0',
      'routing.candidates[1] (x): duplicate id',
    ]);
  });

  it('a candidate whose model has only a bad price entry is not also reported as unpriced', () => {
    const problems = problemsOf(
      file(
        'yaml',
        'routing:\n  candidates:\n    - { id: x, provider: acme, model: m }\nprices:\n' +
          '  - { provider: acme, model: m, effective_from: 2025-01-01, input_per_1m: -1, output_per_1m: 1 }\n',
      ),
    );
    expect(problems).toEqual(['prices.0.input_per_1m: must be a number >= 0 or a decimal string such as "0.15", got -1']);
  });
});

describe('loadConfig: env problems name the variable', () => {
  it.each<[string, string, string]>([
    ['CLICKHOUSE_MODE', 'cloud', 'CLICKHOUSE_MODE (clickhouse.mode): must be one of embedded, server, got "cloud"'],
    ['QUOTAFLOW_TRANSPORT', 'pigeon', 'QUOTAFLOW_TRANSPORT (transport): must be one of in-process, kafka, got "pigeon"'],
    ['LOG_LEVEL', 'loud', 'LOG_LEVEL (log_level): must be one of fatal, error, warn, info, debug, trace, silent, got "loud"'],
    ['KAFKA_PARTITIONS', 'lots', 'KAFKA_PARTITIONS (kafka.partitions): Expected integer'],
    ['HTTP_PORT', '99999', 'HTTP_PORT (http.port): Expected integer to be less or equal to 65535'],
    ['KAFKA_BROKERS', 'broker-without-port', 'KAFKA_BROKERS (kafka.brokers.0): Expected string to match'],
    ['INGEST_API_KEYS', 'abc', 'INGEST_API_KEYS: entry 1 must be key=tenant, pairs separated by commas'],
    ['INGEST_API_KEYS', 'short=team-a', 'INGEST_API_KEYS (ingest_keys.0.key): Expected string length greater or equal to 16'],
    ['API_KEYS', 'abc', 'API_KEYS: entry 1 must be key=admin or key=read:<tenant>, pairs separated by commas'],
    ['CLICKHOUSE_URL', 'tcp://ch:9000', 'CLICKHOUSE_URL (clickhouse.url): must be an http(s) URL in server mode, got tcp://ch:9000'],
  ])('%s=%s is reported once, under the variable', (name, value, expected) => {
    const env: NodeJS.ProcessEnv = { [name]: value, ...(name === 'CLICKHOUSE_URL' ? { CLICKHOUSE_MODE: 'server' } : {}) };
    const problems = problemsOf(undefined, env);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(expected);
    expect(problems[0]?.startsWith(name)).toBe(true);
  });
});
