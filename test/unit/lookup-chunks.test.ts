import { describe, expect, it } from 'vitest';
import { boundText, LOOKUP_MAX_KEYS, LOOKUP_MAX_TEXT, lookupChunks } from '../../storage/lookup-chunks.ts';

describe('lookupChunks', () => {
  it('keeps every chunk under the text budget with long ids, in order, covering every key once', () => {
    const ids = Array.from({ length: 20_000 }, (_, i) => `${String(i).padStart(6, '0')}${'x'.repeat(250)}`); // 256 characters
    const chunks = lookupChunks(ids, boundText);
    for (const c of chunks) expect(c.reduce((n, id) => n + boundText(id), 0)).toBeLessThanOrEqual(LOOKUP_MAX_TEXT);
    expect(chunks.flat()).toEqual(ids);
    // 260 per id: 3,024 per chunk (786,432 / 260), so 7 chunks for 20,000.
    expect(chunks.map((c) => c.length)).toEqual([3_024, 3_024, 3_024, 3_024, 3_024, 3_024, 1_856]);
  });

  it('counts UTF-8 bytes, not characters', () => {
    expect(boundText('abc')).toBe(7);
    expect(boundText('é😀')).toBe(2 + 4 + 4);
  });

  it('cuts short ids by count: at most LOOKUP_MAX_KEYS per chunk', () => {
    const ids = Array.from({ length: 45_001 }, (_, i) => `e${i}`);
    expect(lookupChunks(ids, boundText).map((c) => c.length)).toEqual([LOOKUP_MAX_KEYS, LOOKUP_MAX_KEYS, 5_001]);
  });

  it('an item over the budget on its own goes alone; an empty list gives no chunk', () => {
    expect(lookupChunks(['a', 'b'.repeat(100), 'c'], boundText, 50)).toEqual([['a'], ['b'.repeat(100)], ['c']]);
    expect(lookupChunks([], boundText)).toEqual([]);
  });
});
