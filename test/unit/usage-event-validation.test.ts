import { describe, expect, it } from 'vitest';
import {
  type FieldError,
  MIN_TIMESTAMP_MS,
  parseRfc3339,
  type ValidateOptions,
  validateUsageEvent,
} from '../../domain/usage-event-validation.ts';
import { MINUTE_MS, windowStart } from '../../domain/windows.ts';
import type { UsageEvent } from '../../schemas/usage-event.ts';

/** Injected "now": 2025-06-15T12:00:00.000Z. Default skew allowance is 10 min. */
const NOW_MS = Date.UTC(2025, 5, 15, 12, 0, 0);
const OPTS: ValidateOptions = { nowMs: NOW_MS };
const SKEW_MS = 10 * 60_000;
const RFC3339_REASON = 'must be an RFC 3339 date-time string with a zone, or integer epoch milliseconds >= 0';

/** A minimal valid event; every test changes one thing. */
const BASE = Object.freeze({
  event_id: '01J0ABCDEFGHJKMNPQRSTVWXYZ',
  timestamp: '2025-06-15T11:00:00Z',
  tenant: 'acme',
  provider: 'openai',
  model: 'gpt-4o',
  input_tokens: 1_000,
  output_tokens: 500,
});

function withPatch(patch: Record<string, unknown>): Record<string, unknown> {
  return { ...BASE, ...patch };
}

function without(field: string): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...BASE };
  delete copy[field];
  return copy;
}

function errorsOf(value: unknown, options: ValidateOptions = OPTS): FieldError[] {
  const r = validateUsageEvent(value, options);
  if (r.ok) throw new Error(`expected a rejection, got ${JSON.stringify(r.event)}`);
  return r.errors;
}

function eventOf(value: unknown, options: ValidateOptions = OPTS): UsageEvent {
  const r = validateUsageEvent(value, options);
  if (!r.ok) throw new Error(`expected acceptance, got ${JSON.stringify(r.errors)}`);
  return r.event;
}

/** Exactly one problem, on `field`, whose reason contains `reason`. */
function expectOnly(value: unknown, field: string, reason: string, options: ValidateOptions = OPTS): void {
  expect(errorsOf(value, options)).toEqual([{ field, reason: expect.stringContaining(reason) }]);
}

describe('validateUsageEvent: a valid event', () => {
  it('fills the defaults and normalises a minimal event', () => {
    expect(eventOf(BASE)).toEqual({
      event_id: '01J0ABCDEFGHJKMNPQRSTVWXYZ',
      timestamp_ms: Date.UTC(2025, 5, 15, 11, 0, 0),
      tenant: 'acme',
      user_id: '',
      task_id: '',
      provider: 'openai',
      model: 'gpt-4o',
      operation: 'chat',
      input_tokens: 1_000,
      output_tokens: 500,
      cached_input_tokens: 0,
      reasoning_tokens: 0,
      latency_ms: null,
      status: 'ok',
      finish_reason: '',
      max_tokens: null,
      prompt_hash: '',
      cost_usd: null,
      tags: {},
    } satisfies UsageEvent);
  });

  it('keeps every optional field that is given', () => {
    const e = eventOf(
      withPatch({
        user_id: 'dev-42',
        task_id: 'debug-session-7',
        operation: 'embeddings',
        cached_input_tokens: 1_000,
        reasoning_tokens: 500,
        latency_ms: 1234.5,
        status: 'rate_limited',
        finish_reason: 'length',
        max_tokens: 512,
        prompt_hash: 'sha256:abc',
        cost_usd: 0.0125,
        tags: { team: 'search', env: '' },
      }),
    );
    expect(e).toMatchObject({
      user_id: 'dev-42',
      task_id: 'debug-session-7',
      operation: 'embeddings',
      cached_input_tokens: 1_000,
      reasoning_tokens: 500,
      latency_ms: 1234.5,
      status: 'rate_limited',
      finish_reason: 'length',
      max_tokens: 512,
      prompt_hash: 'sha256:abc',
      cost_usd: '0.0125',
      tags: { team: 'search', env: '' },
    });
  });

  it.each(['ok', 'error', 'rate_limited', 'timeout', 'cancelled'])('accepts status %s', (status) => {
    expect(eventOf(withPatch({ status })).status).toBe(status);
  });

  it.each([
    ['OpenAI', 'openai'],
    ['ANTHROPIC', 'anthropic'],
    ['DeepSeek', 'deepseek'],
    ['openai', 'openai'],
  ])('lower-cases provider %s -> %s (model case is kept)', (provider, expected) => {
    const e = eventOf(withPatch({ provider, model: 'GPT-4o' }));
    expect(e.provider).toBe(expected);
    expect(e.model).toBe('GPT-4o');
  });

  it('accepts the subset rules at equality (cached == input, reasoning == output)', () => {
    const e = eventOf(withPatch({ cached_input_tokens: 1_000, reasoning_tokens: 500 }));
    expect([e.cached_input_tokens, e.reasoning_tokens]).toEqual([1_000, 500]);
  });

  it('accepts token counts at the 10,000,000 cap and zero', () => {
    const e = eventOf(withPatch({ input_tokens: 10_000_000, output_tokens: 0 }));
    expect([e.input_tokens, e.output_tokens]).toEqual([10_000_000, 0]);
  });
});

describe('validateUsageEvent: not an object', () => {
  it.each([
    ['an array', [BASE]],
    ['an empty array', []],
    ['null', null],
    ['undefined', undefined],
    ['a string', JSON.stringify(BASE)],
    ['a number', 42],
    ['a boolean', true],
  ])('rejects %s as a whole', (_label, value) => {
    expect(errorsOf(value)).toEqual([{ field: '(event)', reason: 'must be a JSON object' }]);
  });
});

describe('validateUsageEvent: required fields', () => {
  it.each(['event_id', 'timestamp', 'tenant', 'provider', 'model', 'input_tokens', 'output_tokens'])(
    'reports a missing %s as missing',
    (field) => {
      expectOnly(without(field), field, 'expected required property');
    },
  );

  it('reports every missing required field of an empty object', () => {
    const errors = errorsOf({});
    expect(errors.map((e) => e.field).sort()).toEqual(
      ['event_id', 'input_tokens', 'model', 'output_tokens', 'provider', 'tenant', 'timestamp'].sort(),
    );
    for (const e of errors) expect(e.reason).toBe('expected required property');
  });
});

describe('validateUsageEvent: wrong types', () => {
  it.each<[string, unknown, string]>([
    ['event_id', 42, 'expected string'],
    ['tenant', ['acme'], 'expected string'],
    ['provider', null, 'expected string'],
    ['model', {}, 'expected string'],
    ['user_id', 7, 'expected string'],
    ['task_id', false, 'expected string'],
    ['operation', 3, 'expected string'],
    ['finish_reason', 1, 'expected string'],
    ['prompt_hash', 123, 'expected string'],
    ['input_tokens', '1000', 'expected integer'],
    ['output_tokens', true, 'expected integer'],
    ['cached_input_tokens', '0', 'expected integer'],
    ['reasoning_tokens', null, 'expected integer'],
    ['max_tokens', 1.5, 'expected integer'],
    ['latency_ms', '12', 'expected number'],
    ['cost_usd', '0.1', 'expected number'],
    ['tags', 'team=search', 'expected object'],
    ['tags', ['search'], 'expected object'],
    ['status', 1, 'must be one of ok, error, rate_limited, timeout, cancelled'],
    ['timestamp', true, RFC3339_REASON],
    ['timestamp', { seconds: 1 }, RFC3339_REASON],
  ])('%s = %j -> %s', (field, value, reason) => {
    expectOnly(withPatch({ [field]: value }), field, reason);
  });

  it.each(['event_id', 'tenant', 'provider', 'model'])('rejects an empty %s', (field) => {
    expectOnly(withPatch({ [field]: '' }), field, 'expected string length greater or equal to 1');
  });
});

describe('validateUsageEvent: token counts', () => {
  // Large input/output so that only the rule under test can fail (the subset rules stay satisfied).
  const big = { input_tokens: 10_000_000, output_tokens: 10_000_000 };
  const fields = ['input_tokens', 'output_tokens', 'cached_input_tokens', 'reasoning_tokens'];
  it.each(
    fields.flatMap((field) => [
      [field, -1, 'expected integer to be greater or equal to 0'],
      [field, 2.5, 'expected integer'],
      [field, 10_000_001, 'expected integer to be less or equal to 10000000'],
      [field, 1e12, 'expected integer to be less or equal to 10000000'],
    ]) as [string, number, string][],
  )('%s = %d -> %s', (field, value, reason) => {
    const patch = field === 'input_tokens' || field === 'output_tokens' ? { [field]: value } : { ...big, [field]: value };
    const errors = errorsOf(withPatch(patch));
    // Over the cap, a cached/reasoning count is also over its parent count: both are reported, on this field only.
    expect(errors.every((e) => e.field === field)).toBe(true);
    expect(errors[0]).toEqual({ field, reason: expect.stringContaining(reason) });
  });

  it('rejects cached_input_tokens > input_tokens, naming both values', () => {
    expectOnly(withPatch({ input_tokens: 10, cached_input_tokens: 11 }), 'cached_input_tokens', 'greater than input_tokens (11 > 10)');
  });

  it('rejects reasoning_tokens > output_tokens, naming both values', () => {
    expectOnly(withPatch({ output_tokens: 5, reasoning_tokens: 6 }), 'reasoning_tokens', 'greater than output_tokens (6 > 5)');
  });

  it.each<[string, number, string]>([
    ['max_tokens', 0, 'expected integer to be greater or equal to 1'],
    ['max_tokens', 10_000_001, 'expected integer to be less or equal to 10000000'],
    ['latency_ms', -1, 'expected number to be greater or equal to 0'],
    ['latency_ms', 86_400_001, 'expected number to be less or equal to 86400000'],
  ])('%s = %d -> %s', (field, value, reason) => {
    expectOnly(withPatch({ [field]: value }), field, reason);
  });
});

describe('validateUsageEvent: unknown fields and status', () => {
  it.each(['prompt', 'Tenant', 'usage', 'cost'])('rejects the unknown field %s', (field) => {
    expectOnly(withPatch({ [field]: 'x' }), field, 'unknown field (not part of usage event v1)');
  });

  it.each(['success', 'OK', 'Error', '', 'rate-limited'])('rejects status %j', (status) => {
    expectOnly(withPatch({ status }), 'status', 'must be one of ok, error, rate_limited, timeout, cancelled');
  });
});

describe('validateUsageEvent: timestamp', () => {
  it.each([
    ['slashes', '2025/06/15T11:00:00Z'],
    ['an HTTP date', 'Sun, 15 Jun 2025 11:00:00 GMT'],
    ['a date only', '2025-06-15'],
    ['no seconds', '2025-06-15T11:00Z'],
    ['no zone', '2025-06-15T11:00:00'],
    ['no zone, with fraction', '2025-06-15T11:00:00.123'],
    ['an offset without colon', '2025-06-15T11:00:00+0530'],
    ['more than 9 fraction digits', '2025-06-15T11:00:00.1234567890Z'],
    ['an impossible date 2023-02-30', '2023-02-30T00:00:00Z'],
    ['Feb 29 of a non-leap year', '2023-02-29T12:00:00Z'],
    ['April 31', '2025-04-31T00:00:00Z'],
    ['day 00', '2025-06-00T00:00:00Z'],
    ['month 13', '2025-13-01T00:00:00Z'],
    ['hour 24', '2025-06-15T24:00:00Z'],
    ['minute 60', '2025-06-15T11:60:00Z'],
    ['offset hour 24', '2025-06-15T11:00:00+24:00'],
    ['offset minute 60', '2025-06-15T11:00:00+05:60'],
    ['epoch ms as a string', '1749985200000'],
    ['an empty string', ''],
    ['a string over 40 chars', `2025-06-15T11:00:00.${'0'.repeat(30)}Z`],
  ])('rejects %s (%j)', (_label, timestamp) => {
    expectOnly(withPatch({ timestamp }), 'timestamp', RFC3339_REASON);
  });

  it('rejects a fractional epoch', () => {
    expectOnly(withPatch({ timestamp: 1_749_985_200_000.5 }), 'timestamp', RFC3339_REASON);
  });

  it('accepts integer epoch milliseconds as is', () => {
    expect(eventOf(withPatch({ timestamp: 1_749_985_200_123 })).timestamp_ms).toBe(1_749_985_200_123);
  });

  it.each([
    ['leap day 2024-02-29', '2024-02-29T23:59:59Z', Date.UTC(2024, 1, 29, 23, 59, 59)],
    ['lower-case t and z', '2025-06-15t11:00:00z', Date.UTC(2025, 5, 15, 11)],
    ['milliseconds', '2025-06-15T11:00:00.123Z', Date.UTC(2025, 5, 15, 11, 0, 0, 123)],
    ['one fraction digit', '2025-06-15T11:00:00.5Z', Date.UTC(2025, 5, 15, 11, 0, 0, 500)],
    ['+05:30 converted to UTC', '2025-06-15T16:30:00+05:30', Date.UTC(2025, 5, 15, 11, 0, 0)],
    ['-08:00 converted to UTC', '2025-06-15T03:00:00-08:00', Date.UTC(2025, 5, 15, 11, 0, 0)],
    ['+05:30 across midnight', '2025-06-15T01:00:00+05:30', Date.UTC(2025, 5, 14, 19, 30, 0)],
    ['-08:00 across midnight', '2025-06-14T20:00:00.250-08:00', Date.UTC(2025, 5, 15, 4, 0, 0, 250)],
    ['+00:00', '2025-06-15T11:00:00+00:00', Date.UTC(2025, 5, 15, 11)],
    ['-00:00', '2025-06-15T11:00:00-00:00', Date.UTC(2025, 5, 15, 11)],
    ['the 2000-01-01 lower bound', '2000-01-01T00:00:00Z', MIN_TIMESTAMP_MS],
  ])('accepts %s', (_label, timestamp, expected) => {
    expect(eventOf(withPatch({ timestamp })).timestamp_ms).toBe(expected);
  });

  it.each([
    ['4 digits', '2025-06-15T11:59:59.9999Z'],
    ['6 digits', '2025-06-15T11:59:59.999999Z'],
    ['9 digits', '2025-06-15T11:59:59.999999999Z'],
    ['with an offset', '2025-06-15T17:29:59.9999+05:30'],
  ])('truncates (never rounds) a sub-ms fraction, %s: stays in the same second and minute', (_label, timestamp) => {
    const ms = eventOf(withPatch({ timestamp })).timestamp_ms;
    expect(ms).toBe(Date.UTC(2025, 5, 15, 11, 59, 59, 999));
    expect(windowStart(ms, 1_000)).toBe(Date.UTC(2025, 5, 15, 11, 59, 59));
    expect(windowStart(ms, MINUTE_MS)).toBe(Date.UTC(2025, 5, 15, 11, 59));
  });

  it('truncates a sub-ms fraction at the end of a day into that day', () => {
    expect(parseRfc3339('2024-12-31T23:59:59.9999999Z')).toBe(Date.UTC(2024, 11, 31, 23, 59, 59, 999));
  });

  it.each<[string, string | number]>([
    ['an RFC 3339 time 1 ms before 2000', '1999-12-31T23:59:59.999Z'],
    ['an offset time that is 1999 in UTC', '2000-01-01T00:30:00+01:00'],
    ['epoch ms 1 ms before 2000', MIN_TIMESTAMP_MS - 1],
    ['epoch 0', 0],
    ['epoch seconds instead of ms', 1_749_985_200],
  ])('rejects %s as before 2000', (_label, timestamp) => {
    expectOnly(withPatch({ timestamp }), 'timestamp', 'before 2000-01-01T00:00:00Z');
  });

  it('rejects a negative epoch', () => {
    const errors = errorsOf(withPatch({ timestamp: -1 }));
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((e) => e.field === 'timestamp')).toBe(true);
  });

  it('accepts an event exactly at now + skew, rejects 1 ms later', () => {
    expect(eventOf(withPatch({ timestamp: NOW_MS + SKEW_MS })).timestamp_ms).toBe(NOW_MS + SKEW_MS);
    expectOnly(withPatch({ timestamp: NOW_MS + SKEW_MS + 1 }), 'timestamp', 'more than 600 s in the future');
  });

  it('rejects an RFC 3339 time more than the skew in the future', () => {
    expectOnly(withPatch({ timestamp: '2025-06-15T12:10:00.001Z' }), 'timestamp', 'more than 600 s in the future');
    expectOnly(withPatch({ timestamp: '2025-06-15T17:45:00+05:30' }), 'timestamp', 'in the future'); // 12:15Z
  });

  it('honours an injected skew', () => {
    const opts: ValidateOptions = { nowMs: NOW_MS, maxFutureSkewMs: 0 };
    expect(eventOf(withPatch({ timestamp: NOW_MS }), opts).timestamp_ms).toBe(NOW_MS);
    expectOnly(withPatch({ timestamp: NOW_MS + 1 }), 'timestamp', 'more than 0 s in the future', opts);
  });

  it.each([
    ['epoch microseconds', 1_749_985_200_000_000],
    ['epoch nanoseconds (beyond 2^53)', 1_749_985_200_000_000_000],
  ])('rejects %s as in the future (a unit error), not as missing', (_label, timestamp) => {
    expectOnly(withPatch({ timestamp }), 'timestamp', 'in the future');
  });

  it('accepts a leap second, clamped into the same minute', () => {
    expect(eventOf(withPatch({ timestamp: '2016-12-31T23:59:60Z' }), { nowMs: NOW_MS }).timestamp_ms).toBe(
      Date.UTC(2016, 11, 31, 23, 59, 59),
    );
  });
});

describe('validateUsageEvent: string ids', () => {
  it.each<[string, number]>([
    ['event_id', 128],
    ['tenant', 128],
    ['user_id', 256],
    ['task_id', 256],
  ])('%s: accepts %d chars, rejects one more', (field, max) => {
    expect(eventOf(withPatch({ [field]: 'x'.repeat(max) }))[field as keyof UsageEvent]).toBe('x'.repeat(max));
    expectOnly(withPatch({ [field]: 'x'.repeat(max + 1) }), field, `longer than ${max} characters after NFC normalisation`);
  });

  it.each<[string, number]>([
    ['provider', 64],
    ['model', 128],
    ['operation', 64],
    ['finish_reason', 64],
    ['prompt_hash', 128],
  ])('%s: rejects more than %d chars', (field, max) => {
    expect(validateUsageEvent(withPatch({ [field]: 'x'.repeat(max) }), OPTS).ok).toBe(true);
    expectOnly(withPatch({ [field]: 'x'.repeat(max + 1) }), field, `expected string length less or equal to ${max}`);
  });

  it('measures the length after NFC: 129 code units in NFD that are 128 in NFC are accepted', () => {
    const nfd = `${'a'.repeat(127)}e\u0301`;
    expect(nfd.length).toBe(129);
    const e = eventOf(withPatch({ tenant: nfd }));
    expect(e.tenant).toBe(`${'a'.repeat(127)}\u00e9`);
    expect(e.tenant.length).toBe(128);
  });

  it('measures the length after NFC: a string that grows under NFC past the cap is rejected', () => {
    // U+0958 (DEVANAGARI LETTER QA) is a composition exclusion: NFC turns it into U+0915 U+093C.
    const raw = '\u0958'.repeat(65);
    expect(raw.normalize('NFC').length).toBe(130);
    expectOnly(withPatch({ tenant: raw }), 'tenant', 'longer than 128 characters after NFC normalisation');
  });

  it.each<[string, string]>([
    ['event_id', 'evt\u00001'],
    ['tenant', 'acme\nprod'],
    ['user_id', 'dev\t42'],
    ['task_id', 'job\u007f'],
    ['tenant', '\u001bacme'],
  ])('%s: rejects control characters (%j)', (field, value) => {
    expectOnly(withPatch({ [field]: value }), field, 'must not contain control characters');
  });

  it.each<[string, string, string]>([
    ['tenant', 'Cafe\u0301', 'Caf\u00e9'],
    ['user_id', 'Jose\u0301', 'Jos\u00e9'],
    ['task_id', 'A\u030angstro\u0308m', '\u00c5ngstr\u00f6m'],
    ['event_id', 'n\u0303-1', '\u00f1-1'],
  ])('%s: normalises %j to NFC %j', (field, value, expected) => {
    expect(eventOf(withPatch({ [field]: value }))[field as keyof UsageEvent]).toBe(expected);
  });

  it('NFC is not NFKC: compatibility characters are kept', () => {
    expect(eventOf(withPatch({ tenant: '\ufb01nance\u2460' })).tenant).toBe('\ufb01nance\u2460');
  });

  it.each<[string, string]>([
    ['event_id', 'org/team/run#1?x=y'],
    ['tenant', 'équipe-数据/北京'],
    ['user_id', '🚀 rocket 👩‍💻'],
    ['task_id', 'a/b\\c d'],
    ['tenant', 'Ünïcödé'],
  ])('%s: keeps %j byte-exact', (field, value) => {
    expect(eventOf(withPatch({ [field]: value }))[field as keyof UsageEvent]).toBe(value);
  });
});

describe('validateUsageEvent: tags', () => {
  const tags = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));

  it('accepts 32 tags, rejects 33', () => {
    expect(Object.keys(eventOf(withPatch({ tags: tags(32) })).tags)).toHaveLength(32);
    expectOnly(withPatch({ tags: tags(33) }), 'tags', 'no more than 32 properties');
  });

  it('accepts a 64-char key, rejects a 65-char key', () => {
    expect(eventOf(withPatch({ tags: { ['k'.repeat(64)]: 'v' } })).tags).toEqual({ ['k'.repeat(64)]: 'v' });
    expectOnly(withPatch({ tags: { ['k'.repeat(65)]: 'v' } }), 'tags', 'tag key longer than 64 characters');
  });

  it('rejects an empty key', () => {
    expectOnly(withPatch({ tags: { '': 'v' } }), 'tags', 'tag key must not be empty');
  });

  it.each<[string, unknown]>([
    ['a number', 1],
    ['a boolean', true],
    ['null', null],
    ['an object', { a: 'b' }],
    ['an array', ['a']],
  ])('rejects %s as a tag value', (_label, value) => {
    expectOnly(withPatch({ tags: { team: value } }), 'tags.team', 'expected string');
  });

  it('accepts a 256-char value, rejects 257', () => {
    expect(eventOf(withPatch({ tags: { team: 'v'.repeat(256) } })).tags.team).toHaveLength(256);
    expectOnly(withPatch({ tags: { team: 'v'.repeat(257) } }), 'tags.team', 'expected string length less or equal to 256');
  });
});

describe('validateUsageEvent: cost_usd', () => {
  it.each<[number, string]>([
    [-0.01, 'expected number to be greater or equal to 0'],
    [-1, 'expected number to be greater or equal to 0'],
    [100_000.01, 'expected number to be less or equal to 100000'],
    [1e9, 'expected number to be less or equal to 100000'],
  ])('rejects %d', (cost_usd, reason) => {
    expectOnly(withPatch({ cost_usd }), 'cost_usd', reason);
  });

  it.each<[number, string]>([
    [0.1, '0.1'],
    [0, '0'],
    [100_000, '100000'],
    [0.0125, '0.0125'],
    [1e-7, '0.0000001'],
    [123.456789, '123.456789'],
    // What the client's JSON said, exactly: no rounding to a "nicer" value either.
    [0.1 + 0.2, '0.30000000000000004'],
  ])('keeps %d as the exact decimal string %j', (cost_usd, expected) => {
    expect(eventOf(withPatch({ cost_usd })).cost_usd).toBe(expected);
  });
});

describe('validateUsageEvent: several problems at once', () => {
  it('reports every problem, one per field', () => {
    const errors = errorsOf({
      event_id: 'evt\u0000', // control character
      timestamp: '2023-02-30T00:00:00Z', // impossible date
      tenant: 'acme',
      // provider missing
      model: 'gpt-4o',
      input_tokens: 10,
      output_tokens: 5,
      cached_input_tokens: 11, // > input_tokens
      reasoning_tokens: 6, // > output_tokens
      status: 'done', // not a status
      tags: { team: 1 }, // non-string value
      colour: 'red', // unknown field
    });
    expect(errors).toHaveLength(8);
    expect(errors.map((e) => e.field).sort()).toEqual(
      ['cached_input_tokens', 'colour', 'event_id', 'provider', 'reasoning_tokens', 'status', 'tags.team', 'timestamp'].sort(),
    );
    expect(errors).toContainEqual({ field: 'provider', reason: 'expected required property' });
    expect(errors).toContainEqual({ field: 'timestamp', reason: RFC3339_REASON });
  });

  it('reports token problems on different fields together', () => {
    const errors = errorsOf(withPatch({ input_tokens: -1, output_tokens: 1.5, latency_ms: -3, cost_usd: -1 }));
    expect(errors.map((e) => e.field).sort()).toEqual(['cost_usd', 'input_tokens', 'latency_ms', 'output_tokens']);
  });
});

describe('text that is not valid Unicode', () => {
  const base = {
    event_id: 'e-1',
    timestamp: '2026-11-29T12:00:00Z',
    tenant: 't',
    provider: 'openai',
    model: 'gpt-4o',
    input_tokens: 1,
    output_tokens: 1,
  };
  it.each([
    ['user_id', { user_id: 'x\ud800' }],
    ['event_id', { event_id: 'e\udfff' }],
    ['model', { model: '\ud83dgpt' }],
    ['tags.note', { tags: { note: 'a\udc00' } }],
    ['tags.b', { tags: { a: 'fine', b: 'x\ud800' } }],
    ['tags', { tags: { 'k\udc00': 'v' } }], // the key itself: not repeated
  ])('a lone surrogate in %s is rejected by field (ClickHouse cannot store it as UTF-8)', (field, patch) => {
    const r = validateUsageEvent({ ...base, ...patch }, { nowMs: Date.UTC(2026, 10, 30) });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors).toContainEqual({ field, reason: expect.stringContaining('unpaired UTF-16 surrogate') });
  });
  it('every tag with a lone surrogate is named, each once', () => {
    const r = validateUsageEvent({ ...base, tags: { a: '\ud800', b: 'ok', c: '\udfff' } }, { nowMs: Date.UTC(2026, 10, 30) });
    expect(r.ok ? [] : r.errors.map((e) => e.field)).toEqual(['tags.a', 'tags.c']);
  });

  it('a valid surrogate pair (emoji) is accepted', () => {
    expect(validateUsageEvent({ ...base, user_id: 'dev-\ud83d\ude80' }, { nowMs: Date.UTC(2026, 10, 30) }).ok).toBe(true);
  });
});
