import { describe, expect, it } from 'vitest';
import { contextDeadLetterRaw, withheldMark } from '../../domain/context-dead-letter.ts';
import { sha256Hex, toWireRecord, validateContextRecord, withContentPolicy } from '../../domain/context-validation.ts';
import type { ContextRecord } from '../../schemas/context-record.ts';

/** Injected "now": 2025-06-15T12:00:00.000Z. */
const NOW_MS = Date.UTC(2025, 5, 15, 12, 0, 0);
const opts = { nowMs: NOW_MS };
/** Text that must never appear in an error reason. */
const SECRET = 'my bank PIN is 4711';

const REC = Object.freeze({
  tenant: 'acme',
  user_id: 'u1',
  conversation_id: 'c1',
  message_id: '000001',
  platform: 'openai',
  role: 'user',
  content: 'Hello',
  created_at: '2025-06-15T09:00:00Z',
  updated_at: '2025-06-15T11:30:00.250+02:00',
});
const rec = (patch: Record<string, unknown> = {}): Record<string, unknown> => {
  const r: Record<string, unknown> = { ...REC, ...patch };
  for (const [k, v] of Object.entries(patch)) if (v === undefined) delete r[k];
  return r;
};
const errorsOf = (value: unknown, o: Parameters<typeof validateContextRecord>[1] = opts) => {
  const r = validateContextRecord(value, o);
  return r.ok ? [] : r.errors;
};

describe('validateContextRecord: a valid record', () => {
  it('is normalised: times to epoch ms UTC, the hash and UTF-8 length of the text computed', () => {
    const r = validateContextRecord(rec(), opts);
    expect(r).toEqual({
      ok: true,
      record: {
        tenant: 'acme',
        user_id: 'u1',
        conversation_id: 'c1',
        message_id: '000001',
        platform: 'openai',
        role: 'user',
        content: 'Hello',
        // sha256("Hello"), a published test vector
        content_sha256: '185f8db32271fe25f561a6fc938b2e264306ec304eda518007d1764826381969',
        content_length: 5,
        tool_call_id: '',
        created_at_ms: Date.UTC(2025, 5, 15, 9, 0, 0),
        // 11:30:00.250 at +02:00 is 09:30:00.250 UTC
        updated_at_ms: Date.UTC(2025, 5, 15, 9, 30, 0, 250),
        deleted: false,
        token_count: null,
      } satisfies ContextRecord,
    });
  });

  it('normalises ids to NFC and lower-cases the platform; the text stays byte-exact', () => {
    const r = validateContextRecord(rec({ user_id: 'Cafe\u0301', platform: 'OpenAI', content: 'e\u0301 ü' }), opts);
    expect(r.ok && r.record.user_id).toBe('Caf\u00e9');
    expect(r.ok && r.record.platform).toBe('openai');
    expect(r.ok && r.record.content).toBe('e\u0301 ü');
    // 'e' 1 + U+0301 2 + ' ' 1 + 'ü' 2 = 6 UTF-8 bytes
    expect(r.ok && r.record.content_length).toBe(6);
  });

  it('takes a hash and length instead of the text (content withheld by the client)', () => {
    const r = validateContextRecord(rec({ content: undefined, content_sha256: 'a'.repeat(64), content_length: 12 }), opts);
    expect(r.ok && [r.record.content, r.record.content_sha256, r.record.content_length]).toEqual([null, 'a'.repeat(64), 12]);
  });

  it('a tombstone needs no text, and text sent with it is dropped', () => {
    const none = validateContextRecord(rec({ content: undefined, deleted: true }), opts);
    const withText = validateContextRecord(rec({ deleted: true }), opts);
    for (const r of [none, withText]) {
      expect(r.ok && [r.record.deleted, r.record.content, r.record.content_sha256, r.record.content_length]).toEqual([true, null, '', 0]);
    }
  });

  it('a tool result carries its tool_call_id; the tenant may be left out for file conversion', () => {
    const r = validateContextRecord(rec({ role: 'tool', tool_call_id: 'call_1', tenant: undefined }), { ...opts, tenantOptional: true });
    expect(r.ok && [r.record.tenant, r.record.tool_call_id]).toEqual(['', 'call_1']);
  });
});

describe('validateContextRecord: every problem, with the field and the reason', () => {
  it.each<[string, Record<string, unknown>, string, RegExp]>([
    ['no text and not deleted', { content: undefined }, 'content', /required unless deleted is true/],
    ['text and a hash', { content_sha256: 'a'.repeat(64), content_length: 1 }, 'content', /either content or content_sha256/],
    ['a hash without its length', { content: undefined, content_sha256: 'a'.repeat(64) }, 'content_length', /required with content_sha256/],
    ['a length without a hash', { content: undefined, content_length: 3 }, 'content_sha256', /required with content_length/],
    [
      'an upper-case hash',
      { content: undefined, content_sha256: 'A'.repeat(64), content_length: 3 },
      'content_sha256',
      /64 lower-case hex/,
    ],
    ['updated before created', { updated_at: '2025-06-15T08:59:59.999Z' }, 'updated_at', /before created_at/],
    ['a time without a zone', { created_at: '2025-06-15T10:00:00' }, 'created_at', /RFC 3339/],
    ['a time in the future', { updated_at: '2025-06-15T12:10:01Z' }, 'updated_at', /more than 600 s in the future/],
    ['a time before 2000', { created_at: '1999-12-31T23:59:59Z' }, 'created_at', /before 2000-01-01/],
    ['an unknown role', { role: 'developer' }, 'role', /must be one of system, user, assistant, tool/],
    ['a control character in an id', { message_id: 'a\nb' }, 'message_id', /control characters/],
    ['an id too long after NFC', { conversation_id: 'x'.repeat(257) }, 'conversation_id', /longer than 256 characters/],
    ['a tool_call_id on a user message', { tool_call_id: 'call_1' }, 'tool_call_id', /only for role tool/],
    ['an unknown field', { text: 'hi' }, 'text', /unknown field/],
    ['a negative token count', { token_count: -1 }, 'token_count', /greater or equal to 0|minimum|>= 0/i],
    ['no tenant', { tenant: undefined }, 'tenant', /expected required property/],
  ])('%s', (_label, patch, field, reason) => {
    const errors = errorsOf(rec(patch));
    const e = errors.find((x) => x.field === field);
    expect(e, JSON.stringify(errors)).toBeDefined();
    expect(e?.reason).toMatch(reason);
  });

  it('reports several problems in one answer', () => {
    const errors = errorsOf(rec({ role: 'x', updated_at: 'yesterday', message_id: '' }));
    expect(errors.map((e) => e.field).sort()).toEqual(['message_id', 'role', 'updated_at']);
  });

  it('rejects a lone surrogate in the text (ClickHouse could not store it)', () => {
    expect(errorsOf(rec({ content: 'ok \ud800 not' }))).toEqual([
      { field: 'content', reason: 'contains an unpaired UTF-16 surrogate (not valid Unicode)' },
    ]);
  });

  it('never quotes the text in a reason', () => {
    const variants = [
      rec({ content: `${SECRET}\ud800` }),
      rec({ content: SECRET, content_sha256: 'b'.repeat(64), content_length: 1 }),
      rec({ content: `${SECRET}${'x'.repeat(1_048_577)}` }),
      rec({ content: SECRET, role: 'robot', tool_call_id: SECRET.slice(0, 3) }),
    ];
    for (const v of variants) {
      const errors = errorsOf(v);
      expect(errors.length).toBeGreaterThan(0);
      expect(JSON.stringify(errors)).not.toContain('PIN');
    }
  });

  it('a value that is not an object', () => {
    expect(errorsOf([1])).toEqual([{ field: '(record)', reason: 'must be a JSON object' }]);
  });
});

describe('content policy and wire form', () => {
  const valid = (patch: Record<string, unknown> = {}) => {
    const r = validateContextRecord(rec(patch), opts);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    return r.record;
  };

  it('a tenant that does not store text keeps only its hash and length', () => {
    const r = withContentPolicy(valid(), false);
    expect([r.content, r.content_sha256, r.content_length]).toEqual([null, sha256Hex('Hello'), 5]);
    expect(withContentPolicy(valid(), true).content).toBe('Hello');
  });

  it('toWireRecord gives back a record that validates to the same normalised record', () => {
    for (const r of [
      valid(),
      valid({ deleted: true }),
      withContentPolicy(valid({ token_count: 7 }), false),
      valid({ role: 'tool', tool_call_id: 'c' }),
    ]) {
      const again = validateContextRecord(toWireRecord(r), opts);
      expect(again).toEqual({ ok: true, record: r });
    }
    expect(toWireRecord(withContentPolicy(valid(), false))).not.toHaveProperty('content');
  });
});

describe('contextDeadLetterRaw', () => {
  const raw = JSON.stringify(rec({ content: SECRET }));

  it('keeps the payload as sent when the tenant stores text', () => {
    expect(contextDeadLetterRaw(raw, true)).toBe(raw);
  });

  it('otherwise replaces the text by its hash and UTF-8 length', () => {
    const out = JSON.parse(contextDeadLetterRaw(raw, false));
    expect(out.content).toEqual({ withheld: true, sha256: sha256Hex(SECRET), length: 19 });
    expect(out.message_id).toBe('000001');
  });

  it('withholds the whole payload when the text cannot be told apart or the result is still too large', () => {
    expect(contextDeadLetterRaw(`{"content": "${SECRET}`, false)).toBe(withheldMark(`{"content": "${SECRET}`));
    expect(contextDeadLetterRaw(JSON.stringify({ content: [{ text: SECRET }] }), false)).toMatch(
      /^\(withheld: \d+ bytes, sha256 [0-9a-f]{64}\)$/,
    );
    expect(contextDeadLetterRaw(raw, false, 50)).toBe(withheldMark(raw));
    expect(withheldMark('abc')).toBe(`(withheld: 3 bytes, sha256 ${sha256Hex('abc')})`);
  });
});
