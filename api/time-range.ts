/**
 * The `from` / `to` query parameters of the read routes that take a time range (`/v1/usage`,
 * `/v1/anomalies`): one parser, so every such route accepts and refuses the same ranges.
 */
import { parseRfc3339 } from '../domain/usage-event-validation.ts';

export type TimeRange = { ok: true; fromMs?: number; toMs?: number } | { ok: false; message: string };

/**
 * Both bounds as epoch ms (UTC), each absent when not given.
 * @returns `ok: false` with the 400 message when a bound is not an RFC 3339 date-time with a zone,
 *   or when `from` is after `to` (an empty range `from == to` is allowed).
 */
export function readTimeRange(q: { from?: string | undefined; to?: string | undefined }): TimeRange {
  const fromMs = q.from === undefined ? undefined : parseRfc3339(q.from);
  const toMs = q.to === undefined ? undefined : parseRfc3339(q.to);
  if (fromMs === null || toMs === null) return { ok: false, message: 'from/to must be RFC 3339 date-times with a zone' };
  if (fromMs !== undefined && toMs !== undefined && fromMs > toMs) return { ok: false, message: 'from must not be after to' };
  return { ok: true, ...(fromMs === undefined ? {} : { fromMs }), ...(toMs === undefined ? {} : { toMs }) };
}
