/**
 * Text formatting shared by the Markdown and HTML renderers of the weekly report. Pure; returns
 * plain text (each renderer escapes it for its own format).
 */
import { Decimal } from 'decimal.js';
import { DateTime } from 'luxon';
import type { ReportTotals, WeeklyReport } from '../../schemas/report.ts';

const GROUP = /\B(?=(\d{3})+(?!\d))/g;

/** 12345 -> `12,345`. */
export const fmtInt = (n: number): string => String(Math.trunc(n)).replace(GROUP, ',');

/**
 * USD with 4 decimals and thousands separators (`$1,234.5678`); a positive amount below $0.00005
 * shows as `<$0.0001` rather than `$0.0000`. Rounds half up.
 */
export function fmtUsd(usd: string): string {
  const d = new Decimal(usd);
  if (d.gt(0) && d.lt('0.00005')) return '<$0.0001';
  const [whole, frac] = d.abs().toFixed(4, Decimal.ROUND_HALF_UP).split('.');
  return `${d.isNegative() ? '-' : ''}$${(whole as string).replace(GROUP, ',')}.${frac}`;
}

/** Cost of a totals row: `unpriced` when no call of it had a price, else USD plus the unpriced calls. */
export function fmtCost(t: Pick<ReportTotals, 'cost_usd' | 'requests' | 'unpriced_requests'>): string {
  if (t.requests > 0 && t.unpriced_requests === t.requests) return 'unpriced';
  return t.unpriced_requests > 0 ? `${fmtUsd(t.cost_usd)} (+${fmtInt(t.unpriced_requests)} unpriced calls)` : fmtUsd(t.cost_usd);
}

/** A week-over-week change: `+12.5%`, `-3%`, or `n/a` (no previous value). */
export const fmtChange = (p: number | null): string => (p === null ? 'n/a' : `${p > 0 ? '+' : ''}${p}%`);

/** A 0..1 share as a percentage with up to 2 decimals (`97.5%`), or `n/a`. */
export const fmtRate = (r: number | null): string => (r === null ? 'n/a' : `${Number((r * 100).toFixed(2))}%`);

/** An id that may be empty: `(none)` for calls without a user or task. */
export const label = (id: string): string => (id === '' ? '(none)' : id);

/** An RFC 3339 UTC time in `zone`: `2026-11-16 00:00 Mon`. */
export function localTime(isoUtc: string, zone: string): string {
  return DateTime.fromISO(isoUtc, { zone: 'utc' }).setZone(zone).toFormat('yyyy-MM-dd HH:mm ccc');
}

/** A local date `YYYY-MM-DD` with its weekday: `2026-11-16 Mon`. */
export const dayLabel = (date: string): string => DateTime.fromISO(date, { zone: 'utc' }).toFormat('yyyy-MM-dd ccc');

/** The one-line period of a report: `2026-11-16 00:00 Mon to 2026-11-23 00:00 Mon (Europe/Berlin, 168 h)`. */
export function periodLine(r: Pick<WeeklyReport, 'period' | 'time_zone'>): string {
  return `${localTime(r.period.start, r.time_zone)} to ${localTime(r.period.end, r.time_zone)} (${r.time_zone}, ${r.period.hours} h)`;
}

/** The readable rows of the totals table: [label, this week, previous week, change]. */
export function totalsRows(r: WeeklyReport): Array<[string, string, string, string]> {
  const { week, previous, change_percent: c } = r.totals;
  return [
    ['Requests', fmtInt(week.requests), fmtInt(previous.requests), fmtChange(c.requests)],
    ['Input tokens', fmtInt(week.input_tokens), fmtInt(previous.input_tokens), fmtChange(c.input_tokens)],
    ['Output tokens', fmtInt(week.output_tokens), fmtInt(previous.output_tokens), fmtChange(c.output_tokens)],
    ['Cached input tokens', fmtInt(week.cached_input_tokens), fmtInt(previous.cached_input_tokens), fmtChange(c.cached_input_tokens)],
    ['Reasoning tokens', fmtInt(week.reasoning_tokens), fmtInt(previous.reasoning_tokens), fmtChange(c.reasoning_tokens)],
    ['Cost', fmtCost(week), fmtCost(previous), fmtChange(c.cost_usd)],
  ];
}

/** A recommendation subject: `model=gpt-4o, task_id=t1` (`tenant` when it has no field). */
export const subjectText = (subject: object): string =>
  Object.entries(subject)
    .filter(([, v]) => typeof v === 'string')
    .map(([k, v]) => `${k}=${v}`)
    .join(', ') || 'tenant';

/** A monthly saving: USD, or `unpriced` when the model has no list price. */
export const fmtSaving = (s: { usd: string; priced?: boolean | undefined }): string => (s.priced === false ? 'unpriced' : fmtUsd(s.usd));
