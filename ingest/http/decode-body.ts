/**
 * Decode an ingest request body into per-event items, keeping each event's text as sent.
 *
 * Pure: no I/O, no validation of the usage event itself (the route does that, after filling in
 * the tenant). A body that cannot be read at all is one `invalid_body` outcome; a problem with a
 * single event (a broken NDJSON line, a bad CloudEvent envelope) is that event's problem only.
 */
import type { FieldError } from '../../domain/usage-event-validation.ts';
import { isPlainObject, unwrapCloudEvent } from './cloudevents.ts';

/** Content type (media type, lower case, without parameters) -> body format. */
export const BODY_FORMATS = {
  'application/json': 'json',
  'application/x-ndjson': 'ndjson',
  'application/cloudevents+json': 'cloudevent',
  'application/cloudevents-batch+json': 'cloudevents-batch',
} as const;
export type BodyFormat = (typeof BODY_FORMATS)[keyof typeof BODY_FORMATS];

/** One event of the request, in request order. */
export type DecodedItem =
  | {
      kind: 'event';
      /** The text to keep in a dead letter: the event (or CloudEvent) as sent. */
      raw: string;
      /** The decoded usage event (any JSON value; validation says whether it is an event). */
      value: unknown;
      /** JSON text of `value`, to produce: the bytes as sent where the format allows. */
      text: string;
      /** Problems already found (CloudEvent envelope): the event is rejected with them. */
      errors: FieldError[];
      /** Event field -> the name it was sent under (a CloudEvent attribute), for problems (cloudevents.ts). */
      sentAs?: Record<string, string>;
    }
  | {
      kind: 'rejected';
      raw: string;
      reason: 'invalid_json' | 'invalid_event';
      errors: FieldError[];
      eventId?: string;
    };

export type DecodedBody =
  | { kind: 'items'; items: DecodedItem[] }
  /** The body as a whole is unreadable; `message` says why (JSON.parse's words included). */
  | { kind: 'invalid_body'; reason: 'invalid_json' | 'invalid_event'; message: string }
  | { kind: 'too_many'; count: number };

function parseJson(text: string): { ok: true; value: unknown } | { ok: false; message: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

function fromCloudEvent(ce: unknown, raw: string): DecodedItem {
  const u = unwrapCloudEvent(ce);
  if (!u.ok) return { kind: 'rejected', raw, reason: 'invalid_event', errors: u.errors, eventId: u.eventId };
  return { kind: 'event', raw, value: u.event, text: JSON.stringify(u.event), errors: u.errors, sentAs: u.sentAs };
}

/**
 * Split a body into events.
 *
 * - `json`: one event object (its text kept as sent, trimmed) or an array of events (each kept as
 *   `JSON.stringify(element)`).
 * - `ndjson`: one event per line (`\n` or `\r\n`); blank lines are skipped and do not count as
 *   events. A line that is not JSON is rejected alone with field `(payload)`.
 * - `cloudevent`: one structured CloudEvent; `cloudevents-batch`: a JSON array of them.
 *
 * @param maxEvents more events than this -> `too_many` (checked before any per-event work).
 */
export function decodeBody(format: BodyFormat, body: string, maxEvents: number): DecodedBody {
  try {
    return decodeBodyUnguarded(format, body, maxEvents);
  } catch (err) {
    // TRICKY: JSON.parse accepts nesting that JSON.stringify then cannot walk (RangeError: stack
    // size). Such a body is refused as a whole, and kept as a dead letter like any unreadable body.
    if (err instanceof RangeError) {
      return { kind: 'invalid_body', reason: 'invalid_json', message: 'the body is nested too deeply to process' };
    }
    throw err;
  }
}

function decodeBodyUnguarded(format: BodyFormat, body: string, maxEvents: number): DecodedBody {
  if (format === 'ndjson') {
    const lines = body.split('\n').flatMap((l) => {
      const line = l.endsWith('\r') ? l.slice(0, -1) : l;
      return line.trim() === '' ? [] : [line];
    });
    if (lines.length > maxEvents) return { kind: 'too_many', count: lines.length };
    return {
      kind: 'items',
      items: lines.map((line): DecodedItem => {
        const parsed = parseJson(line);
        if (!parsed.ok) {
          return {
            kind: 'rejected',
            raw: line,
            reason: 'invalid_json',
            errors: [{ field: '(payload)', reason: `not valid JSON: ${parsed.message}` }],
          };
        }
        return { kind: 'event', raw: line, value: parsed.value, text: line.trim(), errors: [] };
      }),
    };
  }

  const parsed = parseJson(body);
  if (!parsed.ok) {
    const what = body.trim() === '' ? 'the body is empty' : `the body is not valid JSON: ${parsed.message}`;
    return { kind: 'invalid_body', reason: 'invalid_json', message: what };
  }
  const value = parsed.value;

  if (format === 'cloudevents-batch') {
    if (!Array.isArray(value)) {
      return {
        kind: 'invalid_body',
        reason: 'invalid_event',
        message: 'application/cloudevents-batch+json must be a JSON array of CloudEvents',
      };
    }
    if (value.length > maxEvents) return { kind: 'too_many', count: value.length };
    return { kind: 'items', items: value.map((ce) => fromCloudEvent(ce, JSON.stringify(ce))) };
  }
  if (format === 'cloudevent') return { kind: 'items', items: [fromCloudEvent(value, body.trim())] };

  if (Array.isArray(value)) {
    if (value.length > maxEvents) return { kind: 'too_many', count: value.length };
    return {
      kind: 'items',
      items: value.map((v): DecodedItem => {
        const text = JSON.stringify(v);
        return { kind: 'event', raw: text, value: v, text, errors: [] };
      }),
    };
  }
  if (maxEvents < 1) return { kind: 'too_many', count: 1 };
  const text = body.trim();
  return { kind: 'items', items: [{ kind: 'event', raw: text, value, text, errors: [] }] };
}

/**
 * Add `"tenant":<tenant>` as the first member of a JSON object's text, leaving every other byte
 * as it was. `text` must be the JSON text of a plain object without a `tenant` member.
 */
export function insertTenant(text: string, value: Record<string, unknown>, tenant: string): string {
  const open = text.indexOf('{'); // the first non-blank character of an object's JSON text
  const comma = Object.keys(value).length > 0 ? ',' : '';
  return `${text.slice(0, open + 1)}"tenant":${JSON.stringify(tenant)}${comma}${text.slice(open + 1)}`;
}

export { isPlainObject };
