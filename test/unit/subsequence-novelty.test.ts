import { describe, expect, it } from 'vitest';
import { RECOMPUTE_EVERY, SubsequenceNovelty } from '../../processors/anomaly/subsequence-novelty.ts';

/** Brute force: RMS distance from the subsequence ending at e to the nearest one ending in [max(L-1, e-H), e-L]. */
function bruteForce(x: number[], e: number, L: number, H: number): number {
  let best = Number.POSITIVE_INFINITY;
  for (let f = Math.max(L - 1, e - H); f <= e - L; f++) {
    let d2 = 0;
    for (let k = 0; k < L; k++) d2 += (x[e - k]! - x[f - k]!) ** 2;
    best = Math.min(best, d2);
  }
  return best === Number.POSITIVE_INFINITY ? Number.NaN : Math.sqrt(best / L);
}

describe('SubsequenceNovelty', () => {
  it('gives the RMS distance to the nearest earlier non-overlapping subsequence (hand-computed, L = 2)', () => {
    const n = new SubsequenceNovelty(2, 10);
    // Values 0..2: no complete pair has a non-overlapping earlier pair yet.
    expect([0, 0, 0].map((v) => n.push(v))).toEqual([Number.NaN, Number.NaN, Number.NaN]);
    expect(n.push(0)).toBe(0); // (0, 0) was seen at rows 0-1
    // (0, 3) against (0, 0) twice: sqrt((0 + 9) / 2)
    expect(n.push(3)).toBeCloseTo(Math.sqrt(4.5), 12);
    // (3, 0): every earlier pair that does not overlap it is (0, 0): sqrt(9 / 2) again
    expect(n.push(0)).toBeCloseTo(Math.sqrt(4.5), 12);
    // (0, 3) was seen at rows 3-4
    expect(n.push(3)).toBe(0);
  });

  it('only looks `history` points back', () => {
    const x = [5, 5, 0, 0, 0, 0, 0, 5, 5];
    // Row 8 ends the pair (5, 5), last seen at rows 0-1. With history 3 the candidates end at rows
    // 5 and 6, both (0, 0): sqrt((25 + 25) / 2) = 5. With history 10 rows 0-1 are in reach: 0.
    const near = new SubsequenceNovelty(2, 3);
    expect(x.map((v) => near.push(v))[8]).toBe(5);
    const far = new SubsequenceNovelty(2, 10);
    expect(x.map((v) => far.push(v))[8]).toBe(0);
  });

  it('matches a brute-force search on a noisy series, through the periodic recomputation', () => {
    let s = 7;
    const rnd = () => {
      s = (Math.imul(s, 1_103_515_245) + 12_345) & 0x7fffffff;
      return s / 2147483648;
    };
    const x = Array.from({ length: 2 * RECOMPUTE_EVERY + 200 }, (_, i) => Math.sin(i / 9) + 0.3 * rnd());
    const n = new SubsequenceNovelty(6, 150);
    x.forEach((v, e) => {
      const got = n.push(v);
      const want = bruteForce(x, e, 6, 150);
      if (Number.isNaN(want)) expect(got).toBeNaN();
      else expect(Math.abs(got - want)).toBeLessThan(1e-9);
    });
  });

  it('continues identically from a JSON round trip of its state', () => {
    const x = Array.from({ length: 900 }, (_, i) => Math.cos(i / 5) * (i % 97 === 0 ? 3 : 1));
    const whole = new SubsequenceNovelty(8, 200);
    const expected = x.map((v) => whole.push(v));
    const first = new SubsequenceNovelty(8, 200);
    for (const v of x.slice(0, 640)) first.push(v);
    const restored = SubsequenceNovelty.fromState(JSON.parse(JSON.stringify(first.toState())));
    expect(x.slice(640).map((v) => restored.push(v))).toEqual(expected.slice(640));
  });

  it('rejects bad arguments and values with the reason', () => {
    expect(() => new SubsequenceNovelty(1, 10)).toThrow(/length must be an integer >= 2/);
    expect(() => new SubsequenceNovelty(4, 4)).toThrow(/history must be an integer > length/);
    expect(() => new SubsequenceNovelty(4, 10).push(Number.NaN)).toThrow(/value must be a finite number/);
  });
});
