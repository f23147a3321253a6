import { medianAbsoluteDeviation, quantile } from 'simple-statistics';
import { describe, expect, it } from 'vitest';
import { RollingWindow } from '../../processors/anomaly/rolling-window.ts';

describe('RollingWindow', () => {
  it('keeps the last `capacity` values and their order statistics', () => {
    const w = new RollingWindow(4);
    for (const v of [5, 1, 9, 3]) w.push(v);
    // sorted 1 3 5 9: median (3 + 5) / 2 = 4; |x - 4| = 1 3 1 5 -> sorted 1 1 3 5 -> MAD 2
    expect(w.median()).toBe(4);
    expect(w.mad()).toBe(2);
    expect(w.quantile(0)).toBe(1);
    expect(w.quantile(1)).toBe(9);
    expect(w.quantile(0.25)).toBe(2.5); // type 7: index 0.75 between 1 and 3
    w.push(7); // evicts 5: 1 3 7 9
    expect(w.values()).toEqual([1, 9, 3, 7]);
    expect(w.median()).toBe(5);
    expect(w.mad()).toBe(3); // |x - 5| = 4 2 2 4 -> 3
    expect(w.recent(0)).toBe(7);
    expect(w.recent(3)).toBe(1);
    expect(w.rankBelow(7)).toBe(0.5);
    expect(w.size).toBe(4);
  });

  it('handles an odd count and repeated values', () => {
    const w = new RollingWindow(10);
    for (const v of [2, 2, 2, 8, 2]) w.push(v);
    expect(w.median()).toBe(2);
    expect(w.mad()).toBe(0);
    w.push(8);
    w.push(8); // 2 2 2 2 8 8 8: median 2, deviations 0 0 0 0 6 6 6 -> 0
    expect(w.mad()).toBe(0);
    w.push(8); // 2 2 2 2 8 8 8 8: median 5, deviations all 3
    expect(w.median()).toBe(5);
    expect(w.mad()).toBe(3);
  });

  it('agrees with simple-statistics on a long stream with evictions', () => {
    let seed = 7;
    const rnd = () => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) & 0x7fffffff;
      return seed / 2147483648;
    };
    const w = new RollingWindow(101);
    const all: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const v = Math.round(rnd() * 1000) / 10;
      w.push(v);
      all.push(v);
      if (i % 97 === 0 || i === 999) {
        const last = all.slice(-101);
        expect(w.median()).toBeCloseTo(quantile(last, 0.5), 12);
        expect(w.quantile(0.9)).toBeCloseTo(quantile(last, 0.9), 12);
        expect(w.mad()).toBeCloseTo(medianAbsoluteDeviation(last), 12);
      }
    }
  });

  it('round-trips its state', () => {
    const w = new RollingWindow(3);
    for (const v of [4, 8, 15, 16]) w.push(v);
    const copy = RollingWindow.fromState(JSON.parse(JSON.stringify(w.toState())));
    expect(copy.values()).toEqual([8, 15, 16]);
    copy.push(23);
    w.push(23);
    expect(copy.median()).toBe(w.median());
  });

  it('rejects bad input with the reason', () => {
    expect(() => new RollingWindow(0)).toThrow(/capacity/);
    expect(() => new RollingWindow(3).push(Number.NaN)).toThrow(/finite/);
    expect(() => new RollingWindow(3).mad()).toThrow(/empty/);
    expect(() => new RollingWindow(3).median()).toThrow();
    expect(() => RollingWindow.fromState({ capacity: 1, values: [1, 2] })).toThrow(/at most capacity/);
    const w = new RollingWindow(2);
    w.push(1);
    expect(() => w.recent(1)).toThrow(/outside/);
  });
});
