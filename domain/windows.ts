/**
 * Tumbling event-time windows, UTC (SPEC.md section 1, processors).
 *
 * A window is the half-open interval [start, start + size): an event at exactly 12:01:00.000
 * belongs to the 12:01 window, one at 12:00:59.999 to the 12:00 window. Event time, never
 * arrival time: a late event lands in the window of its own timestamp.
 */
export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/**
 * Start of the tumbling window of `sizeMs` that holds `timestampMs` (both epoch ms, UTC).
 * Windows are aligned to the Unix epoch, so minute, hour and day windows start on UTC
 * boundaries (no leap seconds in Unix time). Works for times before 1970 too.
 * @throws RangeError when sizeMs is not a positive integer.
 */
export function windowStart(timestampMs: number, sizeMs: number): number {
  if (!Number.isInteger(sizeMs) || sizeMs <= 0) throw new RangeError(`window size must be a positive integer of ms, got ${sizeMs}`);
  const r = timestampMs % sizeMs;
  return timestampMs - (r < 0 ? r + sizeMs : r);
}
