import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from '../../domain/context-cursor.ts';
import { contextDigest, contextKey, contextVersion, mergeLastWriteWins } from '../../domain/context-merge.ts';
import type { ContextRecord } from '../../schemas/context-record.ts';

const T0 = Date.UTC(2025, 5, 15, 12, 0, 0);
const base: ContextRecord = Object.freeze({
  tenant: 'acme',
  user_id: 'u1',
  conversation_id: 'c1',
  message_id: '000003',
  platform: 'openai',
  role: 'assistant',
  content: 'first answer',
  content_sha256: 'a'.repeat(64),
  content_length: 12,
  tool_call_id: '',
  created_at_ms: T0,
  updated_at_ms: T0,
  deleted: false,
  token_count: null,
});
const version = (patch: Partial<ContextRecord>): ContextRecord => ({ ...base, ...patch });

/** Every ordering of `items`. */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [items.slice()];
  return items.flatMap((x, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((p) => [x, ...p]));
}

describe('last-write-wins order', () => {
  it('version packs (updated_at ms, deleted, first 128 bits of the digest) into one integer', () => {
    const r = version({ updated_at_ms: 5 });
    const digest = `${'f'.repeat(32)}${'0'.repeat(32)}`;
    // 5 * 2^129 + (2^128 - 1): computed by hand from the layout
    expect(contextVersion(r, digest)).toBe(5n * 2n ** 129n + (2n ** 128n - 1n));
    expect(contextVersion({ ...r, deleted: true }, digest)).toBe(5n * 2n ** 129n + 2n ** 128n + (2n ** 128n - 1n));
    // The digest prefix alone never outweighs the tombstone bit, nor the tombstone bit a millisecond.
    expect(contextVersion({ ...r, deleted: true }, '0'.repeat(64))).toBeGreaterThan(contextVersion(r, 'f'.repeat(64)));
    expect(contextVersion({ ...r, updated_at_ms: 6 }, '0'.repeat(64))).toBeGreaterThan(
      contextVersion({ ...r, deleted: true }, 'f'.repeat(64)),
    );
  });

  it('two platforms edit the same message: the later updated_at wins, in either arrival order', () => {
    const fromOpenAI = version({
      platform: 'openai',
      content: 'edited on openai',
      content_sha256: 'b'.repeat(64),
      updated_at_ms: T0 + 1_000,
    });
    const fromAnthropic = version({
      platform: 'anthropic',
      content: 'edited on anthropic',
      content_sha256: 'c'.repeat(64),
      updated_at_ms: T0 + 2_000,
    });
    for (const order of permutations([base, fromOpenAI, fromAnthropic])) {
      expect(mergeLastWriteWins(order).get(contextKey(base))).toBe(fromAnthropic);
    }
  });

  it('equal updated_at: the greater digest wins, the same every time', () => {
    const a = version({ platform: 'openai', content_sha256: '1'.repeat(64) });
    const b = version({ platform: 'anthropic', content_sha256: '2'.repeat(64) });
    const c = version({ platform: 'deepseek', content_sha256: '3'.repeat(64) });
    // An independent statement of the rule: the largest hex digest.
    const expected = [a, b, c].reduce((x, y) => (contextDigest(y) > contextDigest(x) ? y : x));
    for (const order of permutations([a, b, c])) expect(mergeLastWriteWins(order).get(contextKey(a))).toBe(expected);
  });

  it('a delete beats an older edit and an edit at the same time, and loses to a newer edit', () => {
    const del = version({ deleted: true, content: null, content_sha256: '', content_length: 0, updated_at_ms: T0 + 5_000 });
    const older = version({ content_sha256: 'd'.repeat(64), updated_at_ms: T0 + 4_999 });
    const same = version({ content_sha256: 'f'.repeat(64), updated_at_ms: T0 + 5_000 });
    const newer = version({ content_sha256: 'e'.repeat(64), updated_at_ms: T0 + 5_001 });
    for (const order of permutations([del, older, same])) expect(mergeLastWriteWins(order).get(contextKey(del))).toBe(del);
    for (const order of permutations([del, older, newer])) expect(mergeLastWriteWins(order).get(contextKey(del))).toBe(newer);
  });

  it('the packed version orders pairs exactly as (updated_at, deleted, digest) compared field by field', () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 300; i++) {
      const mk = () => version({ updated_at_ms: T0 + rnd(3), deleted: rnd(2) === 1, content_length: rnd(5) });
      const x = mk();
      const y = mk();
      const tuple = (r: ContextRecord) => [r.updated_at_ms, r.deleted ? 1 : 0, contextDigest(r)] as const;
      const [tx, ty] = [tuple(x), tuple(y)];
      const byFields =
        tx[0] !== ty[0]
          ? Math.sign(tx[0] - ty[0])
          : tx[1] !== ty[1]
            ? Math.sign(tx[1] - ty[1])
            : tx[2] === ty[2]
              ? 0
              : tx[2] > ty[2]
                ? 1
                : -1;
      const vx = contextVersion(x);
      const vy = contextVersion(y);
      expect(vx > vy ? 1 : vx < vy ? -1 : 0).toBe(byFields);
    }
  });

  it('the digest covers every stored field but the key and updated_at', () => {
    const d = contextDigest(base);
    expect(contextDigest({ ...base, updated_at_ms: T0 + 9 })).toBe(d);
    expect(contextDigest({ ...base, message_id: 'other' })).toBe(d);
    for (const patch of [
      { role: 'user' as const },
      { platform: 'anthropic' },
      { content_sha256: 'b'.repeat(64) },
      { content_length: 13 },
      { content: null },
      { tool_call_id: 'x' },
      { created_at_ms: T0 - 1 },
      { deleted: true },
      { token_count: 3 },
    ]) {
      expect(contextDigest({ ...base, ...patch }), JSON.stringify(patch)).not.toBe(d);
    }
  });
});

describe('sync cursor', () => {
  it('round-trips the change number for its own user', () => {
    for (const seq of [0, 1, 42, Number.MAX_SAFE_INTEGER]) {
      const c = encodeCursor(seq, 'acme', 'u1');
      expect(c).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(decodeCursor(c, 'acme', 'u1')).toEqual({ ok: true, seq });
    }
  });

  it("refuses another user's cursor, garbage, and a bad number", () => {
    const c = encodeCursor(5, 'acme', 'u1');
    expect(decodeCursor(c, 'acme', 'u2')).toEqual({ ok: false, reason: "belongs to another user's history" });
    expect(decodeCursor(c, 'globex', 'u1')).toEqual({ ok: false, reason: "belongs to another user's history" });
    expect(decodeCursor('not a cursor!', 'acme', 'u1').ok).toBe(false);
    expect(decodeCursor(Buffer.from('c1.-1.000000000000').toString('base64url'), 'acme', 'u1').ok).toBe(false);
    expect(decodeCursor(Buffer.from('c1.01.000000000000').toString('base64url'), 'acme', 'u1').ok).toBe(false);
    expect(() => encodeCursor(-1, 'acme', 'u1')).toThrow(RangeError);
    expect(() => encodeCursor(1.5, 'acme', 'u1')).toThrow(RangeError);
  });
});
