/**
 * ISO 8601 weeks in an IANA time zone, for the weekly report (SPEC.md section 7, issue 6). Pure.
 *
 * A week is named `YYYY-Www` (e.g. `2026-W47`: ISO week-numbering year, week 01..52 or 53) and
 * runs from Monday 00:00 local to the next Monday 00:00 local, as the half-open interval
 * [startMs, endMs) of epoch ms. On a DST change the week is 167 or 169 hours long. The boundaries
 * come from `quotaWindow` (domain/quota.ts), so a report week and a weekly quota window are the
 * same interval, DST and skipped midnights included.
 */
import { DateTime } from 'luxon';
import { type QuotaInterval, quotaWindow } from './quota.ts';
import { MIN_TIMESTAMP_MS } from './usage-event-validation.ts';

/** A parsed ISO week name. */
export interface IsoWeek {
  /** ISO week-numbering year (the year of the week's Thursday). */
  year: number;
  /** 1..52 or 53. */
  week: number;
}

const WEEK_NAME = /^(\d{4})-W(\d{2})$/;

/** Bad week name or zone: the message names the input and the reason. */
export class IsoWeekError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'IsoWeekError';
  }
}

/** `2026-W47` for year 2026, week 47. */
export function formatIsoWeek(w: IsoWeek): string {
  return `${String(w.year).padStart(4, '0')}-W${String(w.week).padStart(2, '0')}`;
}

/** A DateTime in `zone`, or an IsoWeekError naming the zone. */
function inZone(ms: number, zone: string): DateTime {
  const dt = DateTime.fromMillis(ms, { zone });
  if (!dt.isValid) throw new IsoWeekError(`unknown time zone ${JSON.stringify(zone)}`);
  return dt;
}

/**
 * Parse `YYYY-Www`. The week must exist in that year (week 53 only in long years, e.g. 2026 has 53).
 * @throws IsoWeekError on another shape or a week the year does not have.
 */
export function parseIsoWeek(text: string): IsoWeek {
  const m = WEEK_NAME.exec(text);
  if (!m) throw new IsoWeekError(`week must look like 2026-W47 (ISO year, -W, two-digit week), got ${JSON.stringify(text)}`);
  const year = Number(m[1]);
  const week = Number(m[2]);
  const weeks = DateTime.fromObject({ weekYear: year, weekNumber: 1 }, { zone: 'UTC' }).weeksInWeekYear;
  if (week < 1 || week > weeks) throw new IsoWeekError(`week ${text}: ${year} has weeks 01..${weeks}, got ${m[2]}`);
  return { year, week };
}

/**
 * The interval [Monday 00:00, next Monday 00:00) of `week` in `zone`, epoch ms (UTC).
 * @throws IsoWeekError on a bad week name or an unknown zone.
 */
export function isoWeekInterval(week: string, zone: string): QuotaInterval {
  const { year, week: n } = parseIsoWeek(week);
  // Thursday noon local is inside the week in every zone and never in a DST gap; quotaWindow
  // then finds the week's local Monday midnights.
  const thursday = DateTime.fromObject({ weekYear: year, weekNumber: n, weekday: 4, hour: 12 }, { zone });
  if (!thursday.isValid) throw new IsoWeekError(`unknown time zone ${JSON.stringify(zone)}`);
  return quotaWindow({ kind: 'calendar', unit: 'week', time_zone: zone }, thursday.toMillis());
}

/**
 * The ISO week that holds the instant `ms` in `zone`, e.g. `2026-W47`.
 * @throws IsoWeekError on an unknown zone.
 */
export function isoWeekOf(ms: number, zone: string): string {
  const dt = inZone(ms, zone);
  return formatIsoWeek({ year: dt.weekYear, week: dt.weekNumber });
}

/** The week before `week` (`2027-W01` -> `2026-W53`). @throws IsoWeekError on a bad week name. */
export function previousIsoWeek(week: string): string {
  const { year, week: n } = parseIsoWeek(week);
  const dt = DateTime.fromObject({ weekYear: year, weekNumber: n, weekday: 4 }, { zone: 'UTC' }).minus({ weeks: 1 });
  return formatIsoWeek({ year: dt.weekYear, week: dt.weekNumber });
}

/** The week after `week` (`2026-W53` -> `2027-W01`). @throws IsoWeekError on a bad week name. */
export function nextIsoWeek(week: string): string {
  const { year, week: n } = parseIsoWeek(week);
  const dt = DateTime.fromObject({ weekYear: year, weekNumber: n, weekday: 4 }, { zone: 'UTC' }).plus({ weeks: 1 });
  return formatIsoWeek({ year: dt.weekYear, week: dt.weekNumber });
}

/** -1, 0 or 1 as week `a` is before, equal to or after week `b`. */
function compareWeeks(a: IsoWeek, b: IsoWeek): number {
  return a.year !== b.year ? Math.sign(a.year - b.year) : Math.sign(a.week - b.week);
}

/**
 * The weeks a report may cover at `nowMs` in `zone`, both inclusive:
 * - `first`: the week holding 2000-01-01T00:00:00Z (`MIN_TIMESTAMP_MS`, the earliest event time
 *   ingest accepts: domain/usage-event-validation.ts), so no accepted event is out of reach.
 *   2000-01-01 is a Saturday, so this is `1999-W52` in every zone (Dec 31 or Jan 1 local);
 * - `last`: the week after the one holding now: events may be up to `pipeline.max_future_skew_ms`
 *   (at most a day) in the future, which can be the next week, never a later one.
 * @throws IsoWeekError on an unknown zone.
 */
export function reportWeekRange(nowMs: number, zone: string): { first: string; last: string } {
  return { first: isoWeekOf(MIN_TIMESTAMP_MS, zone), last: nextIsoWeek(isoWeekOf(nowMs, zone)) };
}

/**
 * Parse a report week and check it lies in `reportWeekRange(nowMs, zone)`.
 * @returns the parsed week.
 * @throws IsoWeekError on a bad name (see parseIsoWeek), an unknown zone, or a week out of the
 *   range: `week 1970-W01: reports cover 1999-W52 (...) to 2026-W49 (...)`.
 */
export function validateReportWeek(week: string, nowMs: number, zone: string): IsoWeek {
  const parsed = parseIsoWeek(week);
  const { first, last } = reportWeekRange(nowMs, zone);
  if (compareWeeks(parsed, parseIsoWeek(first)) < 0 || compareWeeks(parsed, parseIsoWeek(last)) > 0) {
    throw new IsoWeekError(
      `week ${week}: reports cover ${first} (the week of 2000-01-01, the earliest event time accepted) to ${last} (the week after the current one in ${zone})`,
    );
  }
  return parsed;
}

/**
 * The last week that has ended at `nowMs` in `zone`: the week before the one holding now.
 * @throws IsoWeekError on an unknown zone.
 */
export function lastCompleteIsoWeek(nowMs: number, zone: string): string {
  return previousIsoWeek(isoWeekOf(nowMs, zone));
}

/** One local calendar day of a week. */
export interface LocalDay {
  /** Local date, `YYYY-MM-DD`. */
  date: string;
  /** Local midnight (or the first local instant of the date, where DST skips midnight), epoch ms. */
  startMs: number;
  /** The next day's start, epoch ms (exclusive); 23 or 25 hours after startMs on a DST change. */
  endMs: number;
}

/**
 * The 7 local days of `week` in `zone`, Monday first, contiguous: day i ends where day i+1 starts,
 * and the last one ends at the week's end.
 * @throws IsoWeekError on a bad week name or an unknown zone.
 */
export function localDays(week: string, zone: string): LocalDay[] {
  const { startMs, endMs } = isoWeekInterval(week, zone);
  const days: LocalDay[] = [];
  let t = startMs;
  while (t < endMs) {
    const day = quotaWindow({ kind: 'calendar', unit: 'day', time_zone: zone }, t);
    days.push({ date: inZone(day.startMs, zone).toISODate() as string, startMs: day.startMs, endMs: day.endMs });
    t = day.endMs;
  }
  return days;
}
