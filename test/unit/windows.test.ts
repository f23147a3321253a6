import { describe, expect, it } from 'vitest';
import { DAY_MS, HOUR_MS, MINUTE_MS, windowStart } from '../../domain/windows.ts';

const utc = (iso: string) => Date.parse(iso);

describe('windowStart', () => {
  it('has the expected sizes', () => {
    expect([MINUTE_MS, HOUR_MS, DAY_MS]).toEqual([60_000, 3_600_000, 86_400_000]);
  });

  // [label, event time, window size, expected window start]
  it.each<[string, string, number, string]>([
    // minute: half-open [start, start + 1 min)
    ['minute, last ms', '2025-06-15T12:00:59.999Z', MINUTE_MS, '2025-06-15T12:00:00.000Z'],
    ['minute, first ms of the next', '2025-06-15T12:01:00.000Z', MINUTE_MS, '2025-06-15T12:01:00.000Z'],
    ['minute, middle', '2025-06-15T12:01:30.500Z', MINUTE_MS, '2025-06-15T12:01:00.000Z'],
    // hour
    ['hour, last ms', '2025-06-15T12:59:59.999Z', HOUR_MS, '2025-06-15T12:00:00.000Z'],
    ['hour, first ms of the next', '2025-06-15T13:00:00.000Z', HOUR_MS, '2025-06-15T13:00:00.000Z'],
    // day, in UTC
    ['day, last ms', '2025-06-15T23:59:59.999Z', DAY_MS, '2025-06-15T00:00:00.000Z'],
    ['day, first ms of the next', '2025-06-16T00:00:00.000Z', DAY_MS, '2025-06-16T00:00:00.000Z'],
    ['minute at the end of a day', '2025-06-15T23:59:59.999Z', MINUTE_MS, '2025-06-15T23:59:00.000Z'],
    ['hour at the end of a day', '2025-06-15T23:59:59.999Z', HOUR_MS, '2025-06-15T23:00:00.000Z'],
    ['minute at the start of a day', '2025-06-16T00:00:00.000Z', MINUTE_MS, '2025-06-16T00:00:00.000Z'],
    // year end
    ['day at the end of a year', '2024-12-31T23:59:59.999Z', DAY_MS, '2024-12-31T00:00:00.000Z'],
    ['day at the start of a year', '2025-01-01T00:00:00.000Z', DAY_MS, '2025-01-01T00:00:00.000Z'],
    // leap day 2024-02-29
    ['day, leap day start', '2024-02-29T00:00:00.000Z', DAY_MS, '2024-02-29T00:00:00.000Z'],
    ['day, leap day end', '2024-02-29T23:59:59.999Z', DAY_MS, '2024-02-29T00:00:00.000Z'],
    ['day, the day after the leap day', '2024-03-01T00:00:00.000Z', DAY_MS, '2024-03-01T00:00:00.000Z'],
    ['day, the day before the leap day', '2024-02-28T23:59:59.999Z', DAY_MS, '2024-02-28T00:00:00.000Z'],
    ['hour on the leap day', '2024-02-29T23:30:00.000Z', HOUR_MS, '2024-02-29T23:00:00.000Z'],
    ['minute on the leap day', '2024-02-29T12:34:56.789Z', MINUTE_MS, '2024-02-29T12:34:00.000Z'],
    // the epoch
    ['minute at the epoch', '1970-01-01T00:00:00.000Z', MINUTE_MS, '1970-01-01T00:00:00.000Z'],
    ['day at the epoch', '1970-01-01T23:59:59.999Z', DAY_MS, '1970-01-01T00:00:00.000Z'],
  ])('%s: %s / %d -> %s', (_label, at, size, expected) => {
    expect(new Date(windowStart(utc(at), size)).toISOString()).toBe(expected);
  });

  it.each<[number, number, number]>([
    // Before 1970 the window still starts at or before the event (floor, not truncation toward 0).
    [-1, MINUTE_MS, -60_000],
    [-1, DAY_MS, -86_400_000],
    [-59_999, MINUTE_MS, -60_000],
    [-60_000, MINUTE_MS, -60_000],
    [-60_001, MINUTE_MS, -120_000],
    [-3_600_000, HOUR_MS, -3_600_000],
    [-3_599_999, HOUR_MS, -3_600_000],
    [utc('1969-12-31T23:59:59.999Z'), DAY_MS, utc('1969-12-31T00:00:00.000Z')],
    [utc('1969-07-20T20:17:40.000Z'), HOUR_MS, utc('1969-07-20T20:00:00.000Z')],
    [utc('1900-02-28T23:59:59.999Z'), DAY_MS, utc('1900-02-28T00:00:00.000Z')],
  ])('negative epoch %d / %d -> %d', (ts, size, expected) => {
    const start = windowStart(ts, size);
    expect(start).toBe(expected);
    expect(start).toBeLessThanOrEqual(ts);
    expect(ts - start).toBeLessThan(size);
  });

  it('is idempotent and every window is half-open [start, start + size)', () => {
    for (const size of [1, 1_000, MINUTE_MS, HOUR_MS, DAY_MS, 5 * MINUTE_MS]) {
      for (const ts of [0, 1, 1_749_985_199_999, 1_749_985_200_000, -1, -123_456_789]) {
        const start = windowStart(ts, size);
        expect(windowStart(start, size)).toBe(start);
        expect(start <= ts && ts < start + size).toBe(true);
        expect(Number.isInteger(start / size)).toBe(true);
      }
    }
  });

  it.each<[string, number]>([
    ['zero', 0],
    ['negative', -MINUTE_MS],
    ['fractional', 1.5],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
  ])('throws RangeError for a %s size', (_label, size) => {
    expect(() => windowStart(1_749_985_200_000, size)).toThrow(RangeError);
    expect(() => windowStart(1_749_985_200_000, size)).toThrow(/window size must be a positive integer/);
  });
});
