/** ISO weeks in a time zone (domain/iso-week.ts): names, boundaries, DST weeks, local days. */
import { describe, expect, it } from 'vitest';
import {
  formatIsoWeek,
  IsoWeekError,
  isoWeekInterval,
  isoWeekOf,
  lastCompleteIsoWeek,
  localDays,
  nextIsoWeek,
  parseIsoWeek,
  previousIsoWeek,
  reportWeekRange,
  validateReportWeek,
} from '../../domain/iso-week.ts';

const H = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();

describe('parseIsoWeek / formatIsoWeek', () => {
  it('reads and writes YYYY-Www', () => {
    expect(parseIsoWeek('2026-W47')).toEqual({ year: 2026, week: 47 });
    expect(formatIsoWeek({ year: 2026, week: 5 })).toBe('2026-W05');
  });
  it.each([
    ['2026-47', 'must look like 2026-W47'],
    ['2026-W7', 'must look like 2026-W47'],
    ['2026-w47', 'must look like 2026-W47'],
    ['2026-W00', '2026 has weeks 01..53'],
    // 2025 starts on a Wednesday and is not a leap year: 52 weeks. 2026 starts on a Thursday: 53.
    ['2025-W53', '2025 has weeks 01..52'],
  ])('rejects %s', (text, reason) => {
    expect(() => parseIsoWeek(text)).toThrow(IsoWeekError);
    expect(() => parseIsoWeek(text)).toThrow(reason);
  });
  it('accepts week 53 of a long year', () => {
    expect(parseIsoWeek('2026-W53')).toEqual({ year: 2026, week: 53 });
  });
});

describe('isoWeekInterval', () => {
  it('UTC: Monday 00:00 to Monday 00:00, 168 hours', () => {
    const w = isoWeekInterval('2026-W47', 'UTC');
    expect(iso(w.startMs)).toBe('2026-11-16T00:00:00.000Z');
    expect(iso(w.endMs)).toBe('2026-11-23T00:00:00.000Z');
  });
  it('America/New_York, the week DST ends (Sun 2026-11-01): 169 hours, EDT start, EST end', () => {
    const w = isoWeekInterval('2026-W44', 'America/New_York');
    expect(iso(w.startMs)).toBe('2026-10-26T04:00:00.000Z'); // Mon 00:00 EDT (UTC-4)
    expect(iso(w.endMs)).toBe('2026-11-02T05:00:00.000Z'); // Mon 00:00 EST (UTC-5)
    expect((w.endMs - w.startMs) / H).toBe(169);
  });
  it('America/New_York, the week DST starts (Sun 2026-03-08): 167 hours', () => {
    const w = isoWeekInterval('2026-W10', 'America/New_York');
    expect(iso(w.startMs)).toBe('2026-03-02T05:00:00.000Z');
    expect(iso(w.endMs)).toBe('2026-03-09T04:00:00.000Z');
    expect((w.endMs - w.startMs) / H).toBe(167);
  });
  it('Asia/Kolkata (+05:30): the week starts at 18:30 UTC on Sunday', () => {
    expect(iso(isoWeekInterval('2026-W47', 'Asia/Kolkata').startMs)).toBe('2026-11-15T18:30:00.000Z');
  });
  it('week 1 may start in the previous calendar year: 2026-W01 starts Mon 2025-12-29', () => {
    expect(iso(isoWeekInterval('2026-W01', 'UTC').startMs)).toBe('2025-12-29T00:00:00.000Z');
  });
  it('rejects an unknown zone, naming it', () => {
    expect(() => isoWeekInterval('2026-W47', 'Mars/Olympus')).toThrow('unknown time zone "Mars/Olympus"');
  });
});

describe('isoWeekOf / previousIsoWeek / lastCompleteIsoWeek', () => {
  it('names the week of an instant in the zone', () => {
    const sundayLateUtc = Date.UTC(2026, 10, 22, 23, 30); // Sun 23:30 UTC = Mon 00:30 in Berlin
    expect(isoWeekOf(sundayLateUtc, 'UTC')).toBe('2026-W47');
    expect(isoWeekOf(sundayLateUtc, 'Europe/Berlin')).toBe('2026-W48');
    expect(isoWeekOf(Date.UTC(2027, 0, 1), 'UTC')).toBe('2026-W53'); // Fri 2027-01-01
  });
  it('steps back across years', () => {
    expect(previousIsoWeek('2027-W01')).toBe('2026-W53');
    expect(previousIsoWeek('2026-W01')).toBe('2025-W52');
    expect(previousIsoWeek('2026-W47')).toBe('2026-W46');
  });
  it('the last complete week is the one before now', () => {
    expect(lastCompleteIsoWeek(Date.UTC(2026, 10, 23, 6, 0), 'UTC')).toBe('2026-W47');
    // Monday 06:00 UTC is still Sunday in Los Angeles: the week that ended there is W46.
    expect(lastCompleteIsoWeek(Date.UTC(2026, 10, 23, 6, 0), 'America/Los_Angeles')).toBe('2026-W46');
  });
});

describe('localDays', () => {
  it('7 contiguous local days; the DST Sunday is 25 hours in New York', () => {
    const days = localDays('2026-W44', 'America/New_York');
    expect(days.map((d) => d.date)).toEqual([
      '2026-10-26',
      '2026-10-27',
      '2026-10-28',
      '2026-10-29',
      '2026-10-30',
      '2026-10-31',
      '2026-11-01',
    ]);
    expect(days.map((d) => (d.endMs - d.startMs) / H)).toEqual([24, 24, 24, 24, 24, 24, 25]);
    for (let i = 1; i < days.length; i++) expect(days[i]?.startMs).toBe(days[i - 1]?.endMs);
    expect(iso(days[6]?.startMs ?? 0)).toBe('2026-11-01T04:00:00.000Z');
    expect(iso(days[6]?.endMs ?? 0)).toBe('2026-11-02T05:00:00.000Z');
  });
});

describe('nextIsoWeek', () => {
  it('steps forward across years, long and short', () => {
    expect(nextIsoWeek('2026-W47')).toBe('2026-W48');
    expect(nextIsoWeek('2026-W53')).toBe('2027-W01');
    expect(nextIsoWeek('2025-W52')).toBe('2026-W01');
  });
});

describe('reportWeekRange / validateReportWeek', () => {
  // Wed 2026-11-25 12:00 UTC: in 2026-W48 in every zone below.
  const NOW = Date.UTC(2026, 10, 25, 12, 0);

  it('from the week of 2000-01-01 (the earliest event time ingest accepts) to the week after the current one', () => {
    // 2000-01-01 is a Saturday: ISO week 1999-W52 (Mon 1999-12-27 .. Sun 2000-01-02), in every zone.
    expect(reportWeekRange(NOW, 'UTC')).toEqual({ first: '1999-W52', last: '2026-W49' });
    expect(reportWeekRange(NOW, 'Pacific/Kiritimati')).toEqual({ first: '1999-W52', last: '2026-W49' });
    expect(reportWeekRange(NOW, 'Etc/GMT+12')).toEqual({ first: '1999-W52', last: '2026-W49' });
    // Sun 2026-11-29 23:30 UTC is already Monday (W49) in Berlin: the last week there is W50.
    expect(reportWeekRange(Date.UTC(2026, 10, 29, 23, 30), 'UTC').last).toBe('2026-W49');
    expect(reportWeekRange(Date.UTC(2026, 10, 29, 23, 30), 'Europe/Berlin').last).toBe('2026-W50');
  });

  it('accepts the bounds and the weeks between', () => {
    for (const w of ['1999-W52', '2000-W01', '2026-W47', '2026-W48', '2026-W49'])
      expect(validateReportWeek(w, NOW, 'UTC'), w).toEqual(parseIsoWeek(w));
  });

  it.each([['0001-W01'], ['1000-W01'], ['1900-W01'], ['1969-W01'], ['1970-W01'], ['1999-W51'], ['2026-W50'], ['9999-W10']])(
    'rejects %s, naming the week and the accepted range',
    (w) => {
      expect(() => validateReportWeek(w, NOW, 'UTC')).toThrow(IsoWeekError);
      expect(() => validateReportWeek(w, NOW, 'UTC')).toThrow(`week ${w}: reports cover 1999-W52`);
      expect(() => validateReportWeek(w, NOW, 'UTC')).toThrow('to 2026-W49');
    },
  );

  it('still rejects a malformed week or one the year does not have', () => {
    expect(() => validateReportWeek('2025-W53', NOW, 'UTC')).toThrow('2025 has weeks 01..52');
    expect(() => validateReportWeek('2026-47', NOW, 'UTC')).toThrow('must look like 2026-W47');
  });
});
