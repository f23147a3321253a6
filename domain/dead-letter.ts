/**
 * Dead letters: events that were not accepted, kept with the raw payload and every reason
 * (SPEC.md section 2: nothing is dropped silently). The same shape is the value of a message on
 * the Kafka dead-letter topic and a row of the `dead_letters` table (schemas/clickhouse/0003).
 */
import { createHash } from 'node:crypto';
import type { FieldError } from './usage-event-validation.ts';

const LONE_SURROGATES = /\p{Cs}/gu;

/** Why an event did not count. Exact duplicates are not dead letters: they are expected replays. */
export type DeadLetterReason = 'invalid_json' | 'invalid_event' | 'conflicting_duplicate';

/** A row of `dead_letters` (schemas/clickhouse/0003). */
export interface DeadLetterRow {
  dead_letter_id: string;
  received_at: number;
  reason: DeadLetterReason;
  errors: string;
  tenant: string;
  event_id: string;
  raw: string;
  source: string;
}

/** The columns of a dead letter, in table order (compact inserts, DLQ message checks). */
export const DEAD_LETTER_COLUMNS = [
  'dead_letter_id',
  'received_at',
  'reason',
  'errors',
  'tenant',
  'event_id',
  'raw',
  'source',
] as const satisfies ReadonlyArray<keyof DeadLetterRow>;

export interface DeadLetterInput {
  reason: DeadLetterReason;
  errors: readonly FieldError[];
  /** The payload byte for byte (UTF-8 text). */
  raw: string;
  /** `topic/partition/offset`, `file:line` or `http:<request id>:<index>`. */
  source: string;
  tenant: string;
  eventId: string;
  nowMs: number;
}

/**
 * Build a dead letter. Its id hashes source and payload, so the same message at the same
 * position always gets the same id and a replayed batch rewrites rather than adds.
 */
export function deadLetter(d: DeadLetterInput): DeadLetterRow {
  // A dead letter must always be storable: lone surrogates (invalid Unicode, refused by ClickHouse
  // as UTF-8) become U+FFFD in the readable copies. `raw` is JSON text or file bytes decoded as
  // UTF-8, which cannot hold one; it is cleaned too, in case a caller passes a decoded string.
  const clean = (t: string) => t.replace(LONE_SURROGATES, '\uFFFD');
  return {
    dead_letter_id: createHash('sha1').update(`${d.source}\u0000${d.raw}`).digest('hex').slice(0, 32),
    received_at: d.nowMs,
    reason: d.reason,
    errors: JSON.stringify(d.errors),
    tenant: clean(d.tenant),
    event_id: clean(d.eventId),
    raw: clean(d.raw),
    source: clean(d.source),
  };
}

/**
 * A string field of a payload as sent, for a dead letter's `tenant` / `event_id` columns: '' when
 * the payload is not an object or the field is not a string, else at most 256 UTF-16 code units.
 */
export function sentString(obj: unknown, key: string): string {
  if (typeof obj !== 'object' || obj === null) return '';
  const v = (obj as Record<string, unknown>)[key];
  return typeof v === 'string' ? v.slice(0, 256) : '';
}
