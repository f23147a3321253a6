import { describe, expect, it } from 'vitest';
import { PriceTable } from '../../domain/pricing.ts';
import { validateUsageEvent } from '../../domain/usage-event-validation.ts';
import { hash64Hex } from '../../processors/fingerprint.ts';
import {
  type DecodedMessage,
  decodeBatch,
  dedupKey,
  keysToLookUp,
  type RawMessage,
  type TransformContext,
  transform,
  usageFingerprint,
} from '../../processors/usage.processor.ts';

const NOW = Date.UTC(2025, 5, 15, 13, 0, 0);
const T_1200 = Date.UTC(2025, 5, 15, 12, 0, 0);

// gpt-4o at its Oct 2024 list price: input 2.5, cached input 1.25, output 10 USD per 1M tokens.
const PRICES = new PriceTable([
  { provider: 'openai', model: 'gpt-4o', effective_from: '2024-10-02', input_per_1m: 2.5, cached_input_per_1m: 1.25, output_per_1m: 10 },
  { provider: 'openai', model: 'gpt-4o-mini', effective_from: '2024-07-18', input_per_1m: '0.15', output_per_1m: '0.6' },
]);

/** A valid event payload (as a client sends it); tests patch what they need. */
function payload(patch: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    event_id: 'evt-1',
    timestamp: '2025-06-15T12:00:30.000Z',
    tenant: 'acme',
    provider: 'openai',
    model: 'gpt-4o',
    input_tokens: 1000,
    cached_input_tokens: 200,
    output_tokens: 500,
    ...patch,
  };
}

let offset = 0;
/** A raw message at the next offset of partition 0. */
function msg(value: Record<string, unknown> | string, source?: string): RawMessage {
  return { value: typeof value === 'string' ? value : JSON.stringify(value), source: source ?? `quotaflow.usage.v1/0/${offset++}` };
}

function ctx(patch: Partial<TransformContext> = {}): TransformContext {
  return { nowMs: NOW, prices: PRICES, seen: new Map(), ...patch };
}

/** decode + transform, as the runner does it (no seen ids unless given). */
function run(messages: RawMessage[], seen: ReadonlyMap<string, string> = new Map()) {
  return transform(decodeBatch(messages, { nowMs: NOW }), ctx({ seen }));
}

function only<T>(xs: readonly T[]): T {
  expect(xs).toHaveLength(1);
  return xs[0] as T;
}

describe('decodeBatch', () => {
  it.each([
    ['truncated object', '{"event_id": "e1", "tenant": "ü'],
    ['empty payload', ''],
    ['trailing garbage', '{"event_id":"e1"} x'],
    ['bare word', 'undefined'],
    ['odd bytes and whitespace', ' \t{\u00a0"tenant":"a"}\r\n'],
  ])('invalid JSON (%s) -> dead letter invalid_json, payload and source kept byte for byte', (_label, value) => {
    const raw: RawMessage = { value, source: 'imports/usage.jsonl:17' };
    const d = only(decodeBatch([raw], { nowMs: NOW }));
    expect(d.kind).toBe('dead');
    if (d.kind !== 'dead') return;
    expect(d.reason).toBe('invalid_json');
    expect(d.raw).toEqual(raw);
    expect(d.errors).toHaveLength(1);
    expect(d.errors[0]?.field).toBe('(payload)');
    expect(d.errors[0]?.reason).toMatch(/^not valid JSON: /);

    const row = only(transform([d], ctx()).deadLetters);
    expect(row.reason).toBe('invalid_json');
    expect(row.raw).toBe(value);
    expect(row.source).toBe('imports/usage.jsonl:17');
    expect(row.tenant).toBe('');
    expect(row.event_id).toBe('');
    expect(row.received_at).toBe(NOW);
  });

  it('invalid event -> invalid_event with every field error, tenant and event_id kept', () => {
    const bad = payload({
      event_id: 'evt-bad',
      tenant: 'acme/ml',
      timestamp: 'yesterday',
      input_tokens: -1,
      output_tokens: 1.5,
      status: 'meh',
      colour: 'blue',
    });
    const value = JSON.stringify(bad);
    const d = only(decodeBatch([{ value, source: 's/0/1' }], { nowMs: NOW }));
    expect(d.kind).toBe('dead');
    if (d.kind !== 'dead') return;
    expect(d.reason).toBe('invalid_event');
    expect(d.tenant).toBe('acme/ml');
    expect(d.eventId).toBe('evt-bad');

    const expected = validateUsageEvent(bad, { nowMs: NOW });
    expect(expected.ok).toBe(false);
    if (expected.ok) return;
    expect(d.errors).toEqual(expected.errors);
    expect(d.errors.map((e) => e.field).sort()).toEqual(['colour', 'input_tokens', 'output_tokens', 'status', 'timestamp']);

    const row = only(transform([d], ctx()).deadLetters);
    expect(row).toMatchObject({ reason: 'invalid_event', tenant: 'acme/ml', event_id: 'evt-bad', raw: value, source: 's/0/1' });
    expect(JSON.parse(row.errors)).toEqual(expected.errors);
  });

  it('invalid event with unreadable tenant/event_id -> empty strings', () => {
    const d = only(decodeBatch([msg(payload({ tenant: 42, event_id: { id: 1 } }))], { nowMs: NOW }));
    expect(d).toMatchObject({ kind: 'dead', reason: 'invalid_event', tenant: '', eventId: '' });
  });

  it.each([['42'], ['null'], ['[{"event_id":"e1"}]'], ['"text"']])('valid JSON that is not an object (%s) -> invalid_event', (value) => {
    const d = only(decodeBatch([{ value, source: 's' }], { nowMs: NOW }));
    expect(d).toMatchObject({ kind: 'dead', reason: 'invalid_event', tenant: '', eventId: '', errors: [{ field: '(event)' }] });
  });

  it('a timestamp beyond the future skew allowance is invalid; within it, valid', () => {
    const [late, ok] = decodeBatch([msg(payload({ timestamp: NOW + 61_000 })), msg(payload({ timestamp: NOW + 59_000 }))], {
      nowMs: NOW,
      maxFutureSkewMs: 60_000,
    });
    expect(late).toMatchObject({ kind: 'dead', reason: 'invalid_event', errors: [{ field: 'timestamp' }] });
    expect(ok?.kind).toBe('event');
  });

  it('a valid event carries its normalised event and its fingerprint', () => {
    const d = only(decodeBatch([msg(payload({ provider: 'OpenAI' }))], { nowMs: NOW }));
    expect(d.kind).toBe('event');
    if (d.kind !== 'event') return;
    expect(d.event.provider).toBe('openai');
    expect(d.event.timestamp_ms).toBe(T_1200 + 30_000);
    expect(d.fingerprint).toBe(usageFingerprint(d.event));
  });
});

describe('keysToLookUp', () => {
  it('lists the (tenant, event_id) of decoded events only, in order, with NFC tenants', () => {
    const decoded = decodeBatch(
      [
        msg(payload({ tenant: 'cafe\u0301', event_id: 'a' })), // decomposed é
        msg('{not json'),
        msg(payload({ tenant: 'acme', event_id: 'b' })),
        msg(payload({ tenant: 'acme', input_tokens: -1 })),
      ],
      { nowMs: NOW },
    );
    expect(keysToLookUp(decoded)).toEqual([
      { tenant: 'caf\u00e9', event_id: 'a' },
      { tenant: 'acme', event_id: 'b' },
    ]);
  });

  it('is empty for a batch of dead letters', () => {
    expect(keysToLookUp(decodeBatch([msg('x')], { nowMs: NOW }))).toEqual([]);
  });
});

describe('dedupKey', () => {
  it('keeps tenant and event_id apart', () => {
    expect(dedupKey('a', 'b')).toBe(dedupKey('a', 'b'));
    expect(dedupKey('a/b', 'c')).not.toBe(dedupKey('a', 'b/c'));
    expect(dedupKey('a:b', 'c')).not.toBe(dedupKey('a', 'b:c'));
    expect(dedupKey('t1', 'e')).not.toBe(dedupKey('t2', 'e'));
  });
});

describe('transform: de-duplication', () => {
  it('the same (tenant, event_id) twice with the same usage counts once (duplicates = 1)', () => {
    // Same event, different bytes: key order, spacing and timestamp form differ.
    const first = payload();
    const again = { output_tokens: 500, ...payload(), timestamp: T_1200 + 30_000 };
    const out = run([msg(first), { value: `  ${JSON.stringify(again)}\n`, source: 'q/0/99' }]);
    expect(out.events).toHaveLength(1);
    expect(out.deadLetters).toEqual([]);
    expect(out.duplicates).toBe(1);
  });

  it('NFC-equal tenants are the same tenant', () => {
    const out = run([msg(payload({ tenant: 'caf\u00e9' })), msg(payload({ tenant: 'cafe\u0301' }))]);
    expect(out.events).toHaveLength(1);
    expect(out.duplicates).toBe(1);
  });

  it('with different usage, the first stands and the second is a conflicting_duplicate dead letter', () => {
    const second = msg(payload({ output_tokens: 501 }), 'quotaflow.usage.v1/1/7');
    const out = run([msg(payload()), second]);
    const event = only(out.events);
    expect(event.output_tokens).toBe(500);
    expect(out.duplicates).toBe(0);
    const dl = only(out.deadLetters);
    expect(dl).toMatchObject({
      reason: 'conflicting_duplicate',
      tenant: 'acme',
      event_id: 'evt-1',
      raw: second.value,
      source: second.source,
    });
    expect(JSON.parse(dl.errors)).toEqual([{ field: 'event_id', reason: expect.stringContaining('first event stands') }]);
  });

  it.each<[string, Record<string, unknown>]>([
    ['input tokens', { input_tokens: 1001 }],
    ['cached tokens', { cached_input_tokens: 201 }],
    ['reasoning tokens', { reasoning_tokens: 1 }],
    ['model', { model: 'gpt-4o-mini' }],
    ['provider', { provider: 'azure-openai' }],
    ['status', { status: 'error' }],
    ['user', { user_id: 'u2' }],
    ['task', { task_id: 't2' }],
    ['operation', { operation: 'embeddings' }],
    ['event time', { timestamp: T_1200 + 30_001 }],
    ['reported cost', { cost_usd: 0.01 }],
  ])('a different %s is a conflict', (_label, patch) => {
    const out = run([msg(payload()), msg(payload(patch))]);
    expect(out.events).toHaveLength(1);
    expect(only(out.deadLetters).reason).toBe('conflicting_duplicate');
  });

  it('a third copy after a conflict is still judged against the first', () => {
    const out = run([msg(payload()), msg(payload({ output_tokens: 9 })), msg(payload())]);
    expect(out.events).toHaveLength(1);
    expect(out.deadLetters.map((d) => d.reason)).toEqual(['conflicting_duplicate']);
    expect(out.duplicates).toBe(1);
  });

  it('the same event_id under two tenants -> both accepted', () => {
    const out = run([msg(payload({ tenant: 'acme' })), msg(payload({ tenant: 'globex', output_tokens: 7 }))]);
    expect(out.events.map((e) => [e.tenant, e.event_id])).toEqual([
      ['acme', 'evt-1'],
      ['globex', 'evt-1'],
    ]);
    expect(out.deadLetters).toEqual([]);
    expect(out.duplicates).toBe(0);
  });

  it('a key already in ctx.seen with the same fingerprint -> duplicate, nothing written', () => {
    const decoded = decodeBatch([msg(payload())], { nowMs: NOW });
    const d = decoded[0] as Extract<DecodedMessage, { kind: 'event' }>;
    const seen = new Map([[dedupKey('acme', 'evt-1'), d.fingerprint]]);
    const out = transform(decoded, ctx({ seen }));
    expect(out).toEqual({ events: [], deadLetters: [], duplicates: 1 });
  });

  it('a key already in ctx.seen with another fingerprint -> conflicting_duplicate', () => {
    const seen = new Map([[dedupKey('acme', 'evt-1'), '0123456789abcdef']]);
    const out = run([msg(payload())], seen);
    expect(out.events).toEqual([]);
    expect(out.duplicates).toBe(0);
    expect(only(out.deadLetters)).toMatchObject({ reason: 'conflicting_duplicate', tenant: 'acme', event_id: 'evt-1' });
  });

  it('ctx.seen for another tenant does not hide an event', () => {
    const seen = new Map([[dedupKey('globex', 'evt-1'), 'whatever']]);
    expect(run([msg(payload())], seen).events).toHaveLength(1);
  });
});

describe('transform: pricing', () => {
  it('a priced event gets cost_source price_table and the exact decimal cost', () => {
    // (1000 - 200) x 2.5 + 200 x 1.25 + 500 x 10 = 7250 USD per 1M -> 0.00725
    const e = only(run([msg(payload())]).events);
    expect(e.cost_source).toBe('price_table');
    expect(e.cost_usd).toBe('0.00725');
  });

  it('keeps small costs exact (no binary floating point)', () => {
    // 3 x 0.15 + 1 x 0.6 = 1.05 USD per 1M -> 0.00000105 (as floats: 0.0000010499999999999999)
    const e = only(run([msg(payload({ model: 'gpt-4o-mini', input_tokens: 3, cached_input_tokens: 0, output_tokens: 1 }))]).events);
    expect(e).toMatchObject({ cost_source: 'price_table', cost_usd: '0.00000105' });
  });

  it('a reported cost_usd is kept as sent (reported), even for a priced model', () => {
    const e = only(run([msg(payload({ cost_usd: 0.1 }))]).events);
    expect(e).toMatchObject({ cost_source: 'reported', cost_usd: '0.1' });
    const zero = only(run([msg(payload({ event_id: 'z', cost_usd: 0 }))]).events);
    expect(zero).toMatchObject({ cost_source: 'reported', cost_usd: '0' });
  });

  it('an unknown model -> unpriced, cost 0 in the row (flagged, never priced)', () => {
    const e = only(run([msg(payload({ model: 'mystery-1' }))]).events);
    expect(e).toMatchObject({ cost_source: 'unpriced', cost_usd: '0' });
  });

  it('an event before the first price of its model is unpriced', () => {
    const e = only(run([msg(payload({ timestamp: '2024-10-01T23:59:59.999Z' }))]).events);
    expect(e.cost_source).toBe('unpriced');
  });
});

describe('transform: rows', () => {
  it('window_start is the minute start in epoch seconds (half-open minutes)', () => {
    const out = run([
      msg(payload({ event_id: 'a', timestamp: '2025-06-15T12:00:59.999Z' })),
      msg(payload({ event_id: 'b', timestamp: '2025-06-15T12:01:00.000Z' })),
      msg(payload({ event_id: 'c', timestamp: '2025-06-15T12:00:00.000Z' })),
    ]);
    expect(out.events.map((e) => e.window_start)).toEqual([T_1200 / 1000, T_1200 / 1000 + 60, T_1200 / 1000]);
    expect(out.events.map((e) => e.timestamp)).toEqual([T_1200 + 59_999, T_1200 + 60_000, T_1200]);
    for (const e of out.events) expect(Number.isInteger(e.window_start)).toBe(true);
  });

  it('fills every column of usage_events', () => {
    const m = msg(
      payload({
        user_id: 'dev-7',
        task_id: 'job/42',
        operation: 'chat',
        status: 'ok',
        finish_reason: 'length',
        max_tokens: 500,
        latency_ms: 812.5,
        prompt_hash: 'ph1',
        reasoning_tokens: 100,
        tags: { team: 'search' },
      }),
      'quotaflow.usage.v1/1/3',
    );
    const d = decodeBatch([m], { nowMs: NOW })[0] as Extract<DecodedMessage, { kind: 'event' }>;
    expect(only(transform([d], ctx()).events)).toEqual({
      tenant: 'acme',
      event_id: 'evt-1',
      timestamp: T_1200 + 30_000,
      window_start: T_1200 / 1000,
      user_id: 'dev-7',
      task_id: 'job/42',
      provider: 'openai',
      model: 'gpt-4o',
      operation: 'chat',
      status: 'ok',
      finish_reason: 'length',
      input_tokens: 1000,
      output_tokens: 500,
      cached_input_tokens: 200,
      reasoning_tokens: 100,
      max_tokens: 500,
      latency_ms: 812.5,
      prompt_hash: 'ph1',
      cost_usd: '0.00725', // reasoning priced as output
      cost_source: 'price_table',
      tags: { team: 'search' },
      fingerprint: d.fingerprint,
      source: 'quotaflow.usage.v1/1/3',
      ingested_at: NOW,
    });
  });

  it('defaults absent optional fields', () => {
    const e = only(run([msg(payload())]).events);
    expect(e).toMatchObject({
      user_id: '',
      task_id: '',
      operation: 'chat',
      status: 'ok',
      finish_reason: '',
      max_tokens: null,
      latency_ms: null,
      prompt_hash: '',
      reasoning_tokens: 0,
      tags: {},
    });
  });
});

describe('dead_letter_id', () => {
  const idOf = (value: string, source: string) => only(run([{ value, source }]).deadLetters).dead_letter_id;

  it('is deterministic: same message and source -> same id', () => {
    expect(idOf('{bad', 'q/0/1')).toBe(idOf('{bad', 'q/0/1'));
    expect(idOf('{bad', 'q/0/1')).toMatch(/^[0-9a-f]{32}$/);
  });

  it('differs with the source or the payload', () => {
    expect(idOf('{bad', 'q/0/1')).not.toBe(idOf('{bad', 'q/0/2'));
    expect(idOf('{bad', 'q/0/1')).not.toBe(idOf('{bad!', 'q/0/1'));
  });

  it('does not depend on the time of processing', () => {
    const decoded = decodeBatch([{ value: '{bad', source: 'q/0/1' }], { nowMs: NOW });
    const a = only(transform(decoded, ctx({ nowMs: NOW })).deadLetters);
    const b = only(transform(decoded, ctx({ nowMs: NOW + 3_600_000 })).deadLetters);
    expect(a.dead_letter_id).toBe(b.dead_letter_id);
    expect(b.received_at).toBe(NOW + 3_600_000);
  });
});

describe('purity', () => {
  it('the same input gives deep-equal output, and neither the input nor ctx.seen is changed', () => {
    const messages = [
      msg(payload()),
      msg(payload()),
      msg(payload({ output_tokens: 1 })),
      msg(payload({ event_id: 'evt-2', model: 'unknown-model' })),
      msg(payload({ event_id: 'evt-3' })),
      msg('{oops'),
      msg(payload({ input_tokens: -5 })),
    ];
    const before = structuredClone(messages);
    const decodedA = decodeBatch(messages, { nowMs: NOW });
    const decodedB = decodeBatch(messages, { nowMs: NOW });
    expect(decodedA).toEqual(decodedB);

    const seen = new Map([[dedupKey('acme', 'evt-3'), 'ffffffffffffffff']]);
    const seenBefore = new Map(seen);
    const decodedSnapshot = structuredClone(decodedA);
    const a = transform(decodedA, ctx({ seen }));
    const b = transform(decodedA, ctx({ seen }));
    expect(a).toEqual(b);
    expect(a.events.map((e) => e.event_id)).toEqual(['evt-1', 'evt-2']);
    expect(a.deadLetters.map((d) => d.reason)).toEqual(['conflicting_duplicate', 'conflicting_duplicate', 'invalid_json', 'invalid_event']);
    expect(a.duplicates).toBe(1);
    expect(messages).toEqual(before);
    expect(decodedA).toEqual(decodedSnapshot);
    expect(seen).toEqual(seenBefore);
  });
});

describe('usageFingerprint and hash64Hex', () => {
  const event = () => {
    const r = validateUsageEvent(payload(), { nowMs: NOW });
    if (!r.ok) throw new Error('fixture must be valid');
    return r.event;
  };

  it('is 16 hex digits and stable for the same usage', () => {
    expect(usageFingerprint(event())).toMatch(/^[0-9a-f]{16}$/);
    expect(usageFingerprint(event())).toBe(usageFingerprint(event()));
  });

  it('ignores fields that do not change the totals (tenant and event_id are the key, not the usage)', () => {
    const e = event();
    expect(usageFingerprint({ ...e, event_id: 'other', tenant: 'other', tags: { a: 'b' }, prompt_hash: 'x' })).toBe(usageFingerprint(e));
  });

  it('changes with each usage field', () => {
    const e = event();
    const base = usageFingerprint(e);
    for (const patch of [
      { input_tokens: 1001 },
      { output_tokens: 501 },
      { cached_input_tokens: 0 },
      { reasoning_tokens: 1 },
      { timestamp_ms: e.timestamp_ms + 1 },
      { model: 'gpt-4o-mini' },
      { provider: 'azure-openai' },
      { status: 'error' as const },
      { user_id: 'u' },
      { task_id: 't' },
      { operation: 'embeddings' },
      { cost_usd: '0' },
    ]) {
      expect(usageFingerprint({ ...e, ...patch }), JSON.stringify(patch)).not.toBe(base);
    }
  });

  it('hash64Hex: 16 hex digits, deterministic, sensitive to every code unit', () => {
    for (const s of ['', 'a', 'ü', '😀', 'x'.repeat(10_000)]) {
      expect(hash64Hex(s)).toMatch(/^[0-9a-f]{16}$/);
      expect(hash64Hex(s)).toBe(hash64Hex(s));
    }
    expect(hash64Hex('ab')).not.toBe(hash64Hex('ba'));
    expect(hash64Hex('\u00e9')).not.toBe(hash64Hex('e\u0301'));
    const many = new Set(Array.from({ length: 10_000 }, (_, i) => hash64Hex(`event-${i}`)));
    expect(many.size).toBe(10_000);
  });

  // Fingerprints are stored (usage_event_ids) and compared across releases: the hash must never change.
  // Its low 53 bits are the published cyrb53 reference values (seed 0), which pins it independently.
  it.each([
    ['', 3338908027751811n],
    ['a', 7929297801672961n],
    ['b', 8684336938537663n],
    ['revenge', 4051478007546757n],
    ['revenue', 8309097637345594n],
  ])('hash64Hex(%j) matches cyrb53 in its low 53 bits', (text, cyrb53) => {
    const h = hash64Hex(text);
    const h1 = BigInt(`0x${h.slice(0, 8)}`);
    const h2 = BigInt(`0x${h.slice(8)}`);
    expect((h2 & 0x1fffffn) * 4294967296n + h1).toBe(cyrb53);
  });
});
