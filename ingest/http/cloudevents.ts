/**
 * CloudEvents 1.0, structured JSON mode, carrying a usage event v1 in `data`.
 * Spec: https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md and
 * https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/formats/json-format.md
 *
 * Pure: turns one decoded CloudEvent into the usage event it carries, or into per-field errors
 * named by the CloudEvents attribute (`specversion`, `type`, `id`, `source`, `data`, ...).
 */
import { type FieldError, parseRfc3339 } from '../../domain/usage-event-validation.ts';

/** The CloudEvents `type` of a quotaflow usage event v1. */
export const USAGE_CLOUDEVENT_TYPE = 'quotaflow.usage.v1';
export const CLOUDEVENTS_SPECVERSION = '1.0';

export type UnwrappedCloudEvent =
  | {
      ok: true;
      /** `data` with `event_id` defaulted to the CE `id` and `timestamp` to the CE `time`. */
      event: Record<string, unknown>;
      /** Envelope problems found although `data` is usable (the event is then rejected). */
      errors: FieldError[];
      /**
       * Event field -> the CloudEvents attribute that stands for it (`event_id` -> `id`,
       * `timestamp` -> `time`) when `data` lacks the field: a problem with the field is the
       * attribute's, and is reported under the attribute's name.
       */
      sentAs: Record<string, string>;
    }
  | { ok: false; errors: FieldError[]; eventId?: string };

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const nonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** `datacontenttype` absent, `application/json`, or any `+json` media type (the data is JSON). */
function isJsonContentType(v: string): boolean {
  const media = (v.split(';')[0] ?? '').trim().toLowerCase();
  return media === 'application/json' || media.endsWith('+json');
}

/**
 * Check a CloudEvent's envelope and take the usage event out of `data`.
 *
 * Required attributes (CloudEvents 1.0): `specversion` = "1.0", `id`, `source`, `type` =
 * "quotaflow.usage.v1". `data` must be a JSON object (`data_base64` is not accepted).
 * `data.event_id` defaults to `id`; `data.timestamp` defaults to `time`, which must be an RFC 3339
 * date-time with a zone when present. Other attributes and extensions are ignored.
 */
export function unwrapCloudEvent(ce: unknown): UnwrappedCloudEvent {
  if (!isPlainObject(ce)) return { ok: false, errors: [{ field: '(event)', reason: 'must be a CloudEvent (a JSON object)' }] };
  const errors: FieldError[] = [];
  if (ce.specversion !== CLOUDEVENTS_SPECVERSION) {
    errors.push({ field: 'specversion', reason: `must be "${CLOUDEVENTS_SPECVERSION}" (CloudEvents 1.0)` });
  }
  if (ce.type !== USAGE_CLOUDEVENT_TYPE) errors.push({ field: 'type', reason: `must be "${USAGE_CLOUDEVENT_TYPE}"` });
  if (!nonEmptyString(ce.id)) errors.push({ field: 'id', reason: 'must be a non-empty string (CloudEvents required attribute)' });
  if (!nonEmptyString(ce.source)) errors.push({ field: 'source', reason: 'must be a non-empty string (CloudEvents required attribute)' });
  // A bad `time` is reported here, on the attribute sent, and fills nothing: copied into
  // `timestamp` it would be reported a second time, under a field the client did not send.
  const timeOk = typeof ce.time === 'string' && parseRfc3339(ce.time) !== null;
  if (ce.time !== undefined && !timeOk) errors.push({ field: 'time', reason: 'must be an RFC 3339 date-time string with a zone' });
  if (ce.datacontenttype !== undefined && !(typeof ce.datacontenttype === 'string' && isJsonContentType(ce.datacontenttype))) {
    errors.push({ field: 'datacontenttype', reason: 'must be application/json (or absent): data must be the usage event as JSON' });
  }
  if (!isPlainObject(ce.data)) {
    const reason =
      ce.data_base64 !== undefined
        ? 'data_base64 is not supported: put the usage event in data as a JSON object'
        : 'must be a JSON object holding the usage event';
    errors.push({ field: 'data', reason });
    return { ok: false, errors, eventId: nonEmptyString(ce.id) ? ce.id : undefined };
  }
  const event: Record<string, unknown> = { ...ce.data };
  const sentAs: Record<string, string> = {};
  if (!Object.hasOwn(event, 'event_id') && ce.id !== undefined) {
    event.event_id = ce.id;
    sentAs.event_id = 'id';
  }
  if (!Object.hasOwn(event, 'timestamp') && ce.time !== undefined) {
    if (timeOk) event.timestamp = ce.time;
    sentAs.timestamp = 'time';
  }
  return { ok: true, event, errors, sentAs };
}
