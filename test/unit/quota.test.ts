import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { matchesScope, type QuotaStatus, quotaStatus, quotaWindow } from '../../domain/quota.ts';
import { HOUR_MS, MINUTE_MS } from '../../domain/windows.ts';
import { type CalendarUnit, checkQuotaSpecs, QuotaSpec, type QuotaWindowSpec } from '../../schemas/quota.ts';

const utc = (iso: string) => Date.parse(iso);
const cal = (unit: CalendarUnit, time_zone?: string): QuotaWindowSpec => ({ kind: 'calendar', unit, ...(time_zone ? { time_zone } : {}) });
/** The window holding `now`, as ISO strings and its length in hours. */
function windowOf(w: QuotaWindowSpec, now: string): [string, string, number] {
  const { startMs, endMs } = quotaWindow(w, utc(now));
  return [new Date(startMs).toISOString(), new Date(endMs).toISOString(), (endMs - startMs) / HOUR_MS];
}

describe('quotaWindow: calendar days at local midnight, DST included', () => {
  // [label, zone, now (UTC), expected start, expected end, hours]
  it.each<[string, string, string, string, string, number]>([
    // Europe/Berlin 2026: CET -> CEST on Sun 29 March 01:00Z, CEST -> CET on Sun 25 October 01:00Z.
    ['Berlin, ordinary winter day', 'Europe/Berlin', '2026-03-27T12:00:00Z', '2026-03-26T23:00:00.000Z', '2026-03-27T23:00:00.000Z', 24],
    [
      'Berlin, spring-forward day (23 h)',
      'Europe/Berlin',
      '2026-03-29T12:00:00Z',
      '2026-03-28T23:00:00.000Z',
      '2026-03-29T22:00:00.000Z',
      23,
    ],
    [
      'Berlin, first ms of that day',
      'Europe/Berlin',
      '2026-03-28T23:00:00.000Z',
      '2026-03-28T23:00:00.000Z',
      '2026-03-29T22:00:00.000Z',
      23,
    ],
    [
      'Berlin, last ms of that day',
      'Europe/Berlin',
      '2026-03-29T21:59:59.999Z',
      '2026-03-28T23:00:00.000Z',
      '2026-03-29T22:00:00.000Z',
      23,
    ],
    [
      'Berlin, next local midnight',
      'Europe/Berlin',
      '2026-03-29T22:00:00.000Z',
      '2026-03-29T22:00:00.000Z',
      '2026-03-30T22:00:00.000Z',
      24,
    ],
    ['Berlin, fall-back day (25 h)', 'Europe/Berlin', '2026-10-25T12:00:00Z', '2026-10-24T22:00:00.000Z', '2026-10-25T23:00:00.000Z', 25],
    ['Berlin, 02:30 CEST (first)', 'Europe/Berlin', '2026-10-25T00:30:00Z', '2026-10-24T22:00:00.000Z', '2026-10-25T23:00:00.000Z', 25],
    ['Berlin, 02:30 CET (repeated)', 'Europe/Berlin', '2026-10-25T01:30:00Z', '2026-10-24T22:00:00.000Z', '2026-10-25T23:00:00.000Z', 25],
    [
      'Berlin, last ms of the 25 h day',
      'Europe/Berlin',
      '2026-10-25T22:59:59.999Z',
      '2026-10-24T22:00:00.000Z',
      '2026-10-25T23:00:00.000Z',
      25,
    ],
    // America/New_York 2026: EST -> EDT on Sun 8 March 07:00Z, EDT -> EST on Sun 1 November 06:00Z.
    [
      'New York, spring-forward day (23 h)',
      'America/New_York',
      '2026-03-08T12:00:00Z',
      '2026-03-08T05:00:00.000Z',
      '2026-03-09T04:00:00.000Z',
      23,
    ],
    [
      'New York, before the jump',
      'America/New_York',
      '2026-03-08T06:59:59.999Z',
      '2026-03-08T05:00:00.000Z',
      '2026-03-09T04:00:00.000Z',
      23,
    ],
    [
      'New York, fall-back day (25 h)',
      'America/New_York',
      '2026-11-01T12:00:00Z',
      '2026-11-01T04:00:00.000Z',
      '2026-11-02T05:00:00.000Z',
      25,
    ],
    [
      'New York, previous day last ms',
      'America/New_York',
      '2026-11-01T03:59:59.999Z',
      '2026-10-31T04:00:00.000Z',
      '2026-11-01T04:00:00.000Z',
      24,
    ],
    // Asia/Kolkata: +05:30 all year, local midnight is 18:30Z.
    ['Kolkata, last ms of 15 June', 'Asia/Kolkata', '2026-06-15T18:29:59.999Z', '2026-06-14T18:30:00.000Z', '2026-06-15T18:30:00.000Z', 24],
    [
      'Kolkata, first ms of 16 June',
      'Asia/Kolkata',
      '2026-06-15T18:30:00.000Z',
      '2026-06-15T18:30:00.000Z',
      '2026-06-16T18:30:00.000Z',
      24,
    ],
    // America/Santiago 2026: the clock jumps from 24:00 to 01:00 on 6 September, so that day starts at 01:00.
    [
      'Santiago, day whose midnight is skipped',
      'America/Santiago',
      '2026-09-06T12:00:00Z',
      '2026-09-06T04:00:00.000Z',
      '2026-09-07T03:00:00.000Z',
      23,
    ],
    [
      'Santiago, the day before',
      'America/Santiago',
      '2026-09-06T03:59:59.999Z',
      '2026-09-05T04:00:00.000Z',
      '2026-09-06T04:00:00.000Z',
      24,
    ],
    // UTC (default zone, fast path)
    ['UTC, last ms', 'UTC', '2026-06-15T23:59:59.999Z', '2026-06-15T00:00:00.000Z', '2026-06-16T00:00:00.000Z', 24],
    ['UTC, first ms', 'UTC', '2026-06-16T00:00:00.000Z', '2026-06-16T00:00:00.000Z', '2026-06-17T00:00:00.000Z', 24],
  ])('%s', (_label, zone, now, start, end, hours) => {
    expect(windowOf(cal('day', zone), now)).toEqual([start, end, hours]);
  });

  it('defaults to UTC when no zone is given', () => {
    expect(windowOf(cal('day'), '2026-03-29T12:00:00Z')).toEqual(['2026-03-29T00:00:00.000Z', '2026-03-30T00:00:00.000Z', 24]);
  });
});

describe('quotaWindow: minutes, hours, weeks and months', () => {
  it.each<[string, QuotaWindowSpec, string, string, string]>([
    ['UTC minute, last ms', cal('minute'), '2026-06-15T12:00:59.999Z', '2026-06-15T12:00:00.000Z', '2026-06-15T12:01:00.000Z'],
    ['UTC minute, first ms of the next', cal('minute'), '2026-06-15T12:01:00.000Z', '2026-06-15T12:01:00.000Z', '2026-06-15T12:02:00.000Z'],
    ['Kolkata minute', cal('minute', 'Asia/Kolkata'), '2026-06-15T12:00:59.999Z', '2026-06-15T12:00:00.000Z', '2026-06-15T12:01:00.000Z'],
    ['UTC hour', cal('hour'), '2026-06-15T12:59:59.999Z', '2026-06-15T12:00:00.000Z', '2026-06-15T13:00:00.000Z'],
    // Kolkata hours are local hours: they start at :30 UTC.
    ['Kolkata hour', cal('hour', 'Asia/Kolkata'), '2026-06-15T12:10:00Z', '2026-06-15T11:30:00.000Z', '2026-06-15T12:30:00.000Z'],
    ['Kolkata hour, boundary', cal('hour', 'Asia/Kolkata'), '2026-06-15T12:30:00Z', '2026-06-15T12:30:00.000Z', '2026-06-15T13:30:00.000Z'],
    // New York fall back: local 01:00-02:00 happens twice; each is its own hour.
    [
      'New York, 01:30 EDT',
      cal('hour', 'America/New_York'),
      '2026-11-01T05:30:00Z',
      '2026-11-01T05:00:00.000Z',
      '2026-11-01T06:00:00.000Z',
    ],
    [
      'New York, 01:30 EST',
      cal('hour', 'America/New_York'),
      '2026-11-01T06:30:00Z',
      '2026-11-01T06:00:00.000Z',
      '2026-11-01T07:00:00.000Z',
    ],
    // Australia/Lord_Howe falls back 30 min on 5 April 2026 (02:00 +11 -> 01:30 +10:30): local hour 01 lasts 90 min.
    [
      'Lord Howe, the 90-minute hour',
      cal('hour', 'Australia/Lord_Howe'),
      '2026-04-04T15:10:00Z',
      '2026-04-04T14:00:00.000Z',
      '2026-04-04T15:30:00.000Z',
    ],
    [
      'Lord Howe, its first ms',
      cal('hour', 'Australia/Lord_Howe'),
      '2026-04-04T14:00:00Z',
      '2026-04-04T14:00:00.000Z',
      '2026-04-04T15:30:00.000Z',
    ],
    // ISO weeks start on Monday. 2026-01-01 is a Thursday.
    ['UTC week, Thursday', cal('week'), '2026-01-01T12:00:00Z', '2025-12-29T00:00:00.000Z', '2026-01-05T00:00:00.000Z'],
    ['UTC week, Monday first ms', cal('week'), '2025-12-29T00:00:00.000Z', '2025-12-29T00:00:00.000Z', '2026-01-05T00:00:00.000Z'],
    ['UTC week, Sunday last ms', cal('week'), '2026-01-04T23:59:59.999Z', '2025-12-29T00:00:00.000Z', '2026-01-05T00:00:00.000Z'],
    ['UTC week, next Monday', cal('week'), '2026-01-05T00:00:00.000Z', '2026-01-05T00:00:00.000Z', '2026-01-12T00:00:00.000Z'],
    // Berlin week holding the spring-forward Sunday: 167 hours.
    [
      'Berlin week across DST',
      cal('week', 'Europe/Berlin'),
      '2026-03-29T12:00:00Z',
      '2026-03-22T23:00:00.000Z',
      '2026-03-29T22:00:00.000Z',
    ],
    // Months, including leap February 2028 and a year end.
    ['UTC leap February, last ms', cal('month'), '2028-02-29T23:59:59.999Z', '2028-02-01T00:00:00.000Z', '2028-03-01T00:00:00.000Z'],
    ['UTC March after leap Feb', cal('month'), '2028-03-01T00:00:00.000Z', '2028-03-01T00:00:00.000Z', '2028-04-01T00:00:00.000Z'],
    ['UTC February 2027 (28 days)', cal('month'), '2027-02-14T00:00:00Z', '2027-02-01T00:00:00.000Z', '2027-03-01T00:00:00.000Z'],
    ['UTC December into the new year', cal('month'), '2026-12-31T23:59:59.999Z', '2026-12-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
    [
      'New York March (EST start, EDT end)',
      cal('month', 'America/New_York'),
      '2026-03-31T12:00:00Z',
      '2026-03-01T05:00:00.000Z',
      '2026-04-01T04:00:00.000Z',
    ],
    [
      'New York, 31 March 23:59 local',
      cal('month', 'America/New_York'),
      '2026-04-01T03:59:59.999Z',
      '2026-03-01T05:00:00.000Z',
      '2026-04-01T04:00:00.000Z',
    ],
    [
      'Kolkata, 1 March 00:00 local',
      cal('month', 'Asia/Kolkata'),
      '2028-02-29T18:30:00Z',
      '2028-02-29T18:30:00.000Z',
      '2028-03-31T18:30:00.000Z',
    ],
  ])('%s', (_label, w, now, start, end) => {
    expect(windowOf(w, now).slice(0, 2)).toEqual([start, end]);
  });

  it('tiles time without gaps or overlaps in every unit and zone', () => {
    const zones = ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'America/Santiago', 'Australia/Lord_Howe'];
    // Whole 2026 for days, weeks and months; hours (37 us a window in luxon) over the spans holding
    // every 2026 DST change of these zones.
    const spans: [CalendarUnit, string, string][] = [
      ['day', '2026-01-01', '2027-01-01'],
      ['week', '2026-01-01', '2027-01-01'],
      ['month', '2026-01-01', '2027-01-01'],
      ['hour', '2026-03-01', '2026-04-10'],
      ['hour', '2026-09-01', '2026-11-05'],
    ];
    const problems: string[] = [];
    for (const zone of zones) {
      for (const [unit, from, to] of spans) {
        const w = cal(unit, zone);
        let { startMs, endMs } = quotaWindow(w, utc(`${from}T00:00:00Z`));
        while (startMs < utc(`${to}T00:00:00Z`)) {
          const last = quotaWindow(w, endMs - 1);
          const next = quotaWindow(w, endMs);
          if (endMs <= startMs || last.startMs !== startMs || last.endMs !== endMs || next.startMs !== endMs) {
            problems.push(`${zone} ${unit} [${new Date(startMs).toISOString()}, ${new Date(endMs).toISOString()})`);
          }
          ({ startMs, endMs } = next);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('rolling windows are the last N minutes, ending now', () => {
    const now = utc('2026-03-29T01:30:00.123Z');
    expect(quotaWindow({ kind: 'rolling', minutes: 60 }, now)).toEqual({ startMs: now - HOUR_MS, endMs: now });
    expect(quotaWindow({ kind: 'rolling', minutes: 1 }, now)).toEqual({ startMs: now - MINUTE_MS, endMs: now });
    expect(quotaWindow({ kind: 'rolling', minutes: 44_640 }, now)).toEqual({ startMs: now - 31 * 24 * HOUR_MS, endMs: now });
  });

  it('rejects an unknown zone and a non-finite time', () => {
    expect(() => quotaWindow(cal('day', 'Mars/Olympus'), 0)).toThrow(RangeError);
    expect(() => quotaWindow(cal('day'), Number.NaN)).toThrow(RangeError);
    expect(() => quotaWindow({ kind: 'rolling', minutes: 0 }, 0)).toThrow(RangeError);
  });
});

const NOON = utc('2026-06-15T12:00:00Z');
function spec(patch: Partial<QuotaSpec> = {}): QuotaSpec {
  return { id: 'q1', scope: { tenant: 'acme' }, metric: 'tokens', limit: 10_000, window: cal('day'), ...patch };
}
/** The fields of a status that a test names. */
function pick<K extends keyof QuotaStatus>(s: QuotaStatus, ...keys: K[]): Pick<QuotaStatus, K> {
  return Object.fromEntries(keys.map((k) => [k, s[k]])) as Pick<QuotaStatus, K>;
}

describe('quotaStatus: state, percent, remaining', () => {
  it.each<[number, number, 'ok' | 'soft' | 'exhausted', number]>([
    [0, 0, 'ok', 10_000],
    [7_999, 79.99, 'ok', 2_001],
    [8_000, 80, 'soft', 2_000],
    [9_999, 99.99, 'soft', 1],
    [10_000, 100, 'exhausted', 0],
    [12_345, 123.45, 'exhausted', 0],
  ])('used %d of 10000 tokens: %d%%, %s, %d left', (used, percent, state, remaining) => {
    const s = quotaStatus(spec(), { usedInWindow: used, nowMs: NOON });
    expect(pick(s, 'used', 'limit', 'remaining', 'percent', 'state')).toEqual({ used, limit: 10_000, remaining, percent, state });
  });

  it('truncates the percent so it never shows a threshold not reached', () => {
    // 79.995% and 99.999% must not display as 80.00 and 100.00.
    expect(quotaStatus(spec({ limit: 200_000 }), { usedInWindow: 159_990, nowMs: NOON })).toMatchObject({ percent: 79.99, state: 'ok' });
    expect(quotaStatus(spec({ limit: 100_000 }), { usedInWindow: 99_999, nowMs: NOON })).toMatchObject({ percent: 99.99, state: 'soft' });
    expect(quotaStatus(spec({ metric: 'requests', limit: 3 }), { usedInWindow: 2, nowMs: NOON }).percent).toBe(66.66);
  });

  it('uses the spec soft threshold', () => {
    const s = spec({ soft_threshold: 0.5 });
    expect(quotaStatus(s, { usedInWindow: 4_999, nowMs: NOON }).state).toBe('ok');
    expect(quotaStatus(s, { usedInWindow: 5_000, nowMs: NOON }).state).toBe('soft');
  });

  it('reads amounts given as strings (ClickHouse UInt64) and returns numbers for tokens', () => {
    const s = quotaStatus(spec(), { usedInWindow: '8000', nowMs: NOON });
    expect(pick(s, 'metric', 'used', 'remaining', 'state')).toEqual({ metric: 'tokens', used: 8_000, remaining: 2_000, state: 'soft' });
  });

  it('reports the window in RFC 3339 UTC, with every documented field', () => {
    const s = quotaStatus(spec({ window: cal('day', 'Europe/Berlin') }), { usedInWindow: 0, nowMs: utc('2026-10-25T12:00:00Z') });
    expect(s).toEqual({
      id: 'q1',
      metric: 'tokens',
      used: 0,
      limit: 10_000,
      remaining: 10_000,
      percent: 0,
      state: 'ok',
      window_start: '2026-10-24T22:00:00.000Z',
      window_end: '2026-10-25T23:00:00.000Z',
      burn_rate_per_hour: 0,
      projected_exhaustion_at: null,
      retry_after_s: null,
    });
    expect(Object.keys(s).slice(0, 5)).toEqual(['id', 'metric', 'used', 'limit', 'remaining']);
  });

  it('rejects negative or malformed usage and a bad burn window', () => {
    expect(() => quotaStatus(spec(), { usedInWindow: -1, nowMs: NOON })).toThrow(RangeError);
    expect(() => quotaStatus(spec(), { usedInWindow: '1e3', nowMs: NOON })).toThrow(RangeError);
    expect(() => quotaStatus(spec(), { usedInWindow: Number.NaN, nowMs: NOON })).toThrow(RangeError);
    expect(() => quotaStatus(spec(), { usedInWindow: 1, nowMs: NOON, usedInBurnWindow: 1, burnWindowMs: 0 })).toThrow(RangeError);
  });
});

describe('quotaStatus: usd in exact decimals', () => {
  const usd = (limit: string) => spec({ metric: 'usd', limit });

  it('is soft at exactly 80% where floating point would say ok', () => {
    // In doubles 0.1 * 0.8 = 0.08000000000000002 > 0.08.
    expect(0.1 * 0.8 > 0.08).toBe(true);
    const s = quotaStatus(usd('0.1'), { usedInWindow: '0.08', nowMs: NOON });
    expect(pick(s, 'used', 'limit', 'remaining', 'percent', 'state')).toEqual({
      used: '0.08',
      limit: '0.1',
      remaining: '0.02',
      percent: 80,
      state: 'soft',
    });
    expect(quotaStatus(usd('0.1'), { usedInWindow: 0.08, nowMs: NOON }).state).toBe('soft');
  });

  it.each<[string, string, 'ok' | 'soft' | 'exhausted', number]>([
    ['9.999999999999', '2.500000000001', 'ok', 79.99],
    ['10', '2.5', 'soft', 80],
    ['12.499999999999', '0.000000000001', 'soft', 99.99],
    ['12.5', '0', 'exhausted', 100],
    ['12.500000000001', '0', 'exhausted', 100],
  ])('used $%s of $12.50: $%s left, %s', (used, remaining, state, percent) => {
    const s = quotaStatus(usd('12.50'), { usedInWindow: used, nowMs: NOON });
    expect(pick(s, 'used', 'limit', 'remaining', 'state', 'percent')).toEqual({ used, limit: '12.5', remaining, state, percent });
  });

  it('every USD amount is an exact decimal string, the burn rate too (like used and limit)', () => {
    const s = quotaStatus(usd('0.01'), { usedInWindow: '0.0175', nowMs: NOON, usedInBurnWindow: '0.0175' });
    // $0.0175 in 15 min = $0.07 per hour.
    expect(pick(s, 'used', 'limit', 'remaining', 'burn_rate_per_hour')).toEqual({
      used: '0.0175',
      limit: '0.01',
      remaining: '0',
      burn_rate_per_hour: '0.07',
    });
    // $0.01 in 7 min = $0.0857142857142857... per hour: 12 decimals (pico-USD), rounded half up.
    const t = quotaStatus(usd('1'), { usedInWindow: '0.01', nowMs: NOON, usedInBurnWindow: '0.01', burnWindowMs: 7 * 60_000 });
    expect(t.burn_rate_per_hour).toBe('0.085714285714');
    // Tokens and requests stay numbers.
    expect(quotaStatus(spec(), { usedInWindow: 10, nowMs: NOON, usedInBurnWindow: 10 }).burn_rate_per_hour).toBe(40);
  });

  it('computes the burn rate in USD per hour', () => {
    const s = quotaStatus(usd('10'), { usedInWindow: '4', nowMs: NOON, usedInBurnWindow: '0.25' });
    // $0.25 in 15 min = $1/h; $6 left -> 6 h -> 18:00Z.
    expect(pick(s, 'burn_rate_per_hour', 'projected_exhaustion_at')).toEqual({
      burn_rate_per_hour: '1',
      projected_exhaustion_at: '2026-06-15T18:00:00.000Z',
    });
  });
});

describe('quotaStatus: burn rate, projection, retry_after (calendar)', () => {
  it('projects now + remaining / rate when that is before the window end', () => {
    // 250 tokens in the last 15 min = 1000/h; 5000 left -> 5 h.
    const s = quotaStatus(spec(), { usedInWindow: 5_000, nowMs: NOON, usedInBurnWindow: 250 });
    expect(pick(s, 'burn_rate_per_hour', 'projected_exhaustion_at', 'retry_after_s')).toEqual({
      burn_rate_per_hour: 1_000,
      projected_exhaustion_at: '2026-06-15T17:00:00.000Z',
      retry_after_s: null,
    });
  });

  it('honours a custom burn window', () => {
    // 100 tokens in 5 min = 1200/h; 6000 left -> 5 h.
    const s = quotaStatus(spec(), { usedInWindow: 4_000, nowMs: NOON, usedInBurnWindow: 100, burnWindowMs: 5 * MINUTE_MS });
    expect(pick(s, 'burn_rate_per_hour', 'projected_exhaustion_at')).toEqual({
      burn_rate_per_hour: 1_200,
      projected_exhaustion_at: '2026-06-15T17:00:00.000Z',
    });
  });

  it('gives no projection when exhaustion falls after, or exactly at, the window end', () => {
    // 400/h: 5000 left -> 12.5 h, after midnight.
    expect(quotaStatus(spec(), { usedInWindow: 5_000, nowMs: NOON, usedInBurnWindow: 100 })).toMatchObject({
      burn_rate_per_hour: 400,
      projected_exhaustion_at: null,
    });
    // 5000 in the last 12 h: 5000 left -> exactly 12 h -> the window resets at that instant.
    expect(
      quotaStatus(spec(), { usedInWindow: 5_000, nowMs: NOON, usedInBurnWindow: 5_000, burnWindowMs: 12 * HOUR_MS })
        .projected_exhaustion_at,
    ).toBeNull();
    // ... and 1 ms less of look-back makes it land just inside.
    expect(
      quotaStatus(spec(), { usedInWindow: 5_000, nowMs: NOON, usedInBurnWindow: 5_000, burnWindowMs: 12 * HOUR_MS - 1 })
        .projected_exhaustion_at,
    ).toBe('2026-06-15T23:59:59.999Z');
  });

  it('gives no projection when the burn rate is zero', () => {
    expect(quotaStatus(spec(), { usedInWindow: 9_000, nowMs: NOON, usedInBurnWindow: 0 })).toMatchObject({
      burn_rate_per_hour: 0,
      projected_exhaustion_at: null,
      state: 'soft',
    });
    // At the first ms of the window nothing has elapsed: the average rate is 0, not a division by 0.
    expect(quotaStatus(spec(), { usedInWindow: 0, nowMs: utc('2026-06-15T00:00:00Z') })).toMatchObject({
      burn_rate_per_hour: 0,
      projected_exhaustion_at: null,
    });
  });

  it('falls back to the average since the window start without burn-window usage', () => {
    // 6000 in the 12 h since midnight = 500/h; 4000 left -> 8 h -> 20:00Z.
    expect(quotaStatus(spec(), { usedInWindow: 6_000, nowMs: NOON })).toMatchObject({
      burn_rate_per_hour: 500,
      projected_exhaustion_at: '2026-06-15T20:00:00.000Z',
    });
  });

  it('when exhausted: retry after the window end, no projection', () => {
    expect(quotaStatus(spec(), { usedInWindow: 10_000, nowMs: NOON, usedInBurnWindow: 999 })).toMatchObject({
      state: 'exhausted',
      retry_after_s: 12 * 3_600,
      projected_exhaustion_at: null,
    });
    // Rounded up: half a second before midnight is 1 s.
    expect(quotaStatus(spec(), { usedInWindow: 10_000, nowMs: utc('2026-06-15T23:59:59.500Z') }).retry_after_s).toBe(1);
    // In Berlin on the 25 h day, from local noon (10:00Z) to local midnight (23:00Z) is 13 h.
    const berlin = spec({ window: cal('day', 'Europe/Berlin') });
    expect(quotaStatus(berlin, { usedInWindow: 10_000, nowMs: utc('2026-10-25T10:00:00Z') }).retry_after_s).toBe(13 * 3_600);
  });
});

describe('quotaStatus: rolling windows', () => {
  const rolling = spec({ limit: 1_000, window: { kind: 'rolling', minutes: 60 } });

  it('reports the last N minutes as the window', () => {
    expect(quotaStatus(rolling, { usedInWindow: 0, nowMs: NOON })).toMatchObject({
      window_start: '2026-06-15T11:00:00.000Z',
      window_end: '2026-06-15T12:00:00.000Z',
    });
  });

  it('projects with the net rate: burn rate minus the usage ageing out', () => {
    // 300 in 15 min = 1200/h in; 900/60 min = 900/h ageing out; net 300/h; 100 left -> 20 min.
    expect(quotaStatus(rolling, { usedInWindow: 900, nowMs: NOON, usedInBurnWindow: 300 })).toMatchObject({
      state: 'soft',
      burn_rate_per_hour: 1_200,
      projected_exhaustion_at: '2026-06-15T12:20:00.000Z',
    });
    // 800/h in but 900/h ageing out: usage falls, never exhausts.
    expect(quotaStatus(rolling, { usedInWindow: 900, nowMs: NOON, usedInBurnWindow: 200 }).projected_exhaustion_at).toBeNull();
    // Without burn-window usage the rate is the window average: steady, no projection.
    expect(quotaStatus(rolling, { usedInWindow: 900, nowMs: NOON })).toMatchObject({
      burn_rate_per_hour: 900,
      projected_exhaustion_at: null,
    });
  });

  it('estimates retry_after from the usage ageing out', () => {
    // 1200 used, 1000 allowed, 1200/h ageing out: 200 leave in 10 min.
    expect(quotaStatus(rolling, { usedInWindow: 1_200, nowMs: NOON })).toMatchObject({ state: 'exhausted', retry_after_s: 600 });
    // Exactly at the limit: the next ms frees some; at least 1 s.
    expect(quotaStatus(rolling, { usedInWindow: 1_000, nowMs: NOON }).retry_after_s).toBe(1);
  });
});

describe('matchesScope', () => {
  const row = { tenant: 'acme', user_id: 'u1', provider: 'openai', teams: ['search'] };
  it.each<[string, QuotaSpec['scope'], boolean]>([
    ['tenant only', { tenant: 'acme' }, true],
    ['other tenant', { tenant: 'globex' }, false],
    ['same user', { tenant: 'acme', user_id: 'u1' }, true],
    ['other user', { tenant: 'acme', user_id: 'u2' }, false],
    ['provider, any case', { tenant: 'acme', provider: 'OpenAI' }, true],
    ['other provider', { tenant: 'acme', provider: 'anthropic' }, false],
    ['member team', { tenant: 'acme', team: 'search' }, true],
    ['other team', { tenant: 'acme', team: 'ads' }, false],
    ['all fields', { tenant: 'acme', team: 'search', user_id: 'u1', provider: 'openai' }, true],
  ])('%s', (_label, scope, expected) => {
    expect(matchesScope(scope, row)).toBe(expected);
  });

  it('matches no team scope when the row has no teams, and no user scope without a user', () => {
    expect(matchesScope({ tenant: 'acme', team: 'search' }, { tenant: 'acme' })).toBe(false);
    expect(matchesScope({ tenant: 'acme', user_id: 'u1' }, { tenant: 'acme', user_id: '' })).toBe(false);
  });

  it('compares ids after NFC normalisation', () => {
    // Config written with a decomposed é; ingest stores NFC.
    expect(matchesScope({ tenant: 'cafe\u0301' }, { tenant: 'caf\u00e9' })).toBe(true);
  });
});

describe('QuotaSpec schema and checkQuotaSpecs', () => {
  const valid = [
    {
      id: 'acme-daily',
      scope: { tenant: 'acme' },
      metric: 'tokens',
      limit: 1_000_000,
      window: { kind: 'calendar', unit: 'day', time_zone: 'Europe/Berlin' },
    },
    {
      id: 'acme-usd',
      scope: { tenant: 'acme', team: 'search' },
      metric: 'usd',
      limit: '250.50',
      window: { kind: 'calendar', unit: 'month' },
    },
    {
      id: 'u1-burst',
      scope: { tenant: 'acme', user_id: 'u1', provider: 'openai' },
      metric: 'requests',
      limit: 60,
      window: { kind: 'rolling', minutes: 5 },
      soft_threshold: 0.9,
    },
  ];

  it('accepts valid specs and fills the defaults', () => {
    expect(checkQuotaSpecs(valid)).toEqual([]);
    const withDefaults = Value.Default(QuotaSpec, structuredClone(valid[1])) as QuotaSpec;
    expect(withDefaults.soft_threshold).toBe(0.8);
    expect(withDefaults.window).toEqual({ kind: 'calendar', unit: 'month', time_zone: 'UTC' });
    expect(Value.Check(QuotaSpec, withDefaults)).toBe(true);
  });

  it('lists every problem at once', () => {
    const bad = [
      valid[0],
      { ...valid[0], window: { kind: 'calendar', unit: 'day', time_zone: 'Europe/Berln' } },
      { id: 'frac', scope: { tenant: 'acme' }, metric: 'tokens', limit: 1.5, window: { kind: 'calendar', unit: 'fortnight' } },
      { id: 'zero-usd', scope: {}, metric: 'usd', limit: '0', window: { kind: 'rolling', minutes: 50_000 }, soft_threshold: 1 },
      { id: 'pico', scope: { tenant: 'acme' }, metric: 'dollars', limit: '0.0000000000001', window: { kind: 'sliding' }, extra: true },
      'not a quota',
    ];
    expect(checkQuotaSpecs(bad)).toEqual([
      'quotas[1] (acme-daily).id: duplicate id, already used by quotas[0]',
      'quotas[1] (acme-daily).window.time_zone: not an IANA time zone: "Europe/Berln" (e.g. Europe/Berlin, UTC)',
      'quotas[2] (frac).window.unit: must be one of minute, hour, day, week, month, got "fortnight"',
      'quotas[2] (frac).limit: tokens limit must be a whole number, got 1.5',
      'quotas[3] (zero-usd).scope.tenant: Expected required property',
      'quotas[3] (zero-usd).soft_threshold: Expected number to be less than 1',
      'quotas[3] (zero-usd).window.minutes: Expected integer to be less or equal to 44640',
      'quotas[3] (zero-usd).limit: must be > 0, got 0',
      'quotas[4] (pico).extra: Unexpected property',
      'quotas[4] (pico).metric: must be one of tokens, requests, usd, got "dollars"',
      'quotas[4] (pico).window.kind: must be calendar or rolling, got "sliding"',
      'quotas[5]: must be a mapping',
    ]);
  });

  it('checks usd decimals, id shape and the list itself', () => {
    const one = (patch: object) => checkQuotaSpecs([{ ...valid[1], ...patch }]);
    expect(one({ limit: '0.0000000000001' })).toEqual(['quotas[0] (acme-usd).limit: more than 12 decimals (0.0000000000001)']);
    expect(one({ limit: '0.000000000001' })).toEqual([]);
    expect(one({ limit: -5 })).toEqual(['quotas[0] (acme-usd).limit: must be > 0, got -5']);
    expect(one({ limit: '1e3' })).toEqual(['quotas[0] (acme-usd).limit: must be a number > 0 or a decimal string, got "1e3"']);
    expect(one({ id: 'has space' })[0]).toMatch(/^quotas\[0\] \(has space\)\.id: /);
    expect(checkQuotaSpecs({}, 'config.quotas')).toEqual(['config.quotas: must be a list of quotas']);
  });
});
