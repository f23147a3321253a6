/**
 * Validation and normalisation of usage event v1 (SPEC.md section 2).
 *
 * Returns every problem at once, each with the field path and the reason, so a client can fix
 * a payload in one round trip. Nothing here throws on bad input: problems are values.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ValueErrorType } from '@sinclair/typebox/errors';
import { Decimal } from 'decimal.js';
import { LIMITS, MAX_TOKENS_PER_CALL, STATUSES, type UsageEvent, UsageEventV1 } from '../schemas/usage-event.ts';
import { echoJson, echoText } from './echo.ts';

/**
 * One problem with one field. `field` is a dotted path (`tags.team`), `reason` says why. A field
 * name the client made up (an unknown field, a tag key) is repeated as sent, cut short when
 * absurdly long (domain/echo.ts).
 */
export interface FieldError {
  field: string;
  reason: string;
}

export type ValidationResult = { ok: true; event: UsageEvent } | { ok: false; errors: FieldError[] };

export interface ValidateOptions {
  /** Current time, epoch ms (injected so tests and replays are deterministic). */
  nowMs: number;
  /** How far past `nowMs` an event time may be (clock skew allowance), ms. Default 10 min. */
  maxFutureSkewMs?: number;
}

/** Earliest accepted event time: 2000-01-01T00:00:00Z. Older times are clock or unit bugs. */
export const MIN_TIMESTAMP_MS = Date.UTC(2000, 0, 1);
export const DEFAULT_MAX_FUTURE_SKEW_MS = 10 * 60_000;

const compiled = TypeCompiler.Compile(UsageEventV1);
/** C0 control characters and DEL: never legal in an id. */
export const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
const ID_FIELDS = ['event_id', 'tenant', 'user_id', 'task_id'] as const;
/** A lone UTF-16 surrogate (in `u` mode a valid pair is one code point and does not match). */
export const LONE_SURROGATE = /\p{Cs}/u;
const STRING_FIELDS = [...ID_FIELDS, 'provider', 'model', 'operation', 'finish_reason', 'prompt_hash', 'timestamp'] as const;
/**
 * Printable ASCII only. Such text has no surrogate and no control character, and is already in
 * NFC, so the Unicode checks below can skip it: most ids and names are ASCII, and those checks
 * were a third of the validation's cost.
 */
const PRINTABLE_ASCII = /^[\u0020-\u007e]*$/;
// RFC 3339 section 5.6 date-time; a zone is required, the fraction may have up to 9 digits.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|([+-])(\d{2}):(\d{2}))$/;

/**
 * Parse an RFC 3339 date-time with a zone into epoch ms (UTC). Fractions below 1 ms are
 * truncated toward the past, so an event never moves into a later window.
 * @returns epoch ms, or null when the text is not a valid RFC 3339 date-time.
 */
export function parseRfc3339(text: string): number | null {
  const m = RFC3339.exec(text);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 60) return null;
  const base = Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59));
  if (new Date(base).getUTCDate() !== day) return null; // 2023-02-30 and friends
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  let offsetMin = 0;
  if (m[9]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return null;
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  return base + ms - offsetMin * 60_000;
}

/** A token count as sent when it is a valid one (integer in [0, MAX_TOKENS_PER_CALL]), else undefined. */
function validCount(v: unknown): number | undefined {
  return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= MAX_TOKENS_PER_CALL ? (v as number) : undefined;
}

/** `text` in Unicode NFC (printable ASCII is already). */
function nfc(text: string): string {
  return PRINTABLE_ASCII.test(text) ? text : text.normalize('NFC');
}

function typeboxReason(path: string, message: string): string {
  if (message === 'Expected required property') return 'expected required property'; // missing, not malformed
  if (path === '/timestamp') return 'must be an RFC 3339 date-time string with a zone, or integer epoch milliseconds >= 0';
  if (path === '/status') return `must be one of ${STATUSES.join(', ')}`;
  if (message === 'Unexpected property') return 'unknown field (not part of usage event v1)';
  return message.charAt(0).toLowerCase() + message.slice(1);
}

function pathToField(path: string): string {
  // JSON pointer segments: `~1` is `/` and `~0` is `~` in a key.
  const segments = path
    .split('/')
    .slice(1)
    .map((p) => echoText(p.replaceAll('~1', '/').replaceAll('~0', '~')));
  return segments.join('.') || '(event)';
}

/**
 * Validate one decoded JSON value as a usage event v1 and normalise it.
 *
 * Rules beyond the JSON Schema: ids normalised to Unicode NFC (then length-checked again) and
 * free of control characters; `cached_input_tokens <= input_tokens`; `reasoning_tokens <=
 * output_tokens`; event time in [2000-01-01, now + skew]. Values are rejected, never clamped.
 */
export function validateUsageEvent(value: unknown, options: ValidateOptions): ValidationResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, errors: [{ field: '(event)', reason: 'must be a JSON object' }] };
  }
  const errors: FieldError[] = [];
  if (!compiled.Check(value)) {
    const seen = new Set<string>();
    for (const e of compiled.Errors(value)) {
      const field = pathToField(e.path);
      // Id lengths are capped after NFC normalisation (below), not on the raw text.
      if (e.type === ValueErrorType.StringMaxLength && (ID_FIELDS as readonly string[]).includes(field)) continue;
      if (seen.has(field)) continue; // one reason per field is enough, unions report several
      seen.add(field);
      errors.push({ field, reason: typeboxReason(e.path, e.message) });
    }
  }
  const raw = value as Record<string, unknown>;

  // Text that is not valid Unicode cannot be stored as UTF-8 (ClickHouse refuses the whole
  // insert), so it is rejected here, per field, before it can poison a batch.
  const notUnicode = 'contains an unpaired UTF-16 surrogate (not valid Unicode)';
  for (const f of STRING_FIELDS) {
    const v = raw[f];
    if (typeof v === 'string' && !PRINTABLE_ASCII.test(v) && LONE_SURROGATE.test(v)) errors.push({ field: f, reason: notUnicode });
  }
  if (typeof raw.tags === 'object' && raw.tags !== null) {
    // Each bad value under its own tag; a bad key under `tags` (the key itself is not repeated).
    let badKey = false;
    for (const [k, v] of Object.entries(raw.tags as Record<string, unknown>)) {
      if (LONE_SURROGATE.test(k)) badKey = true;
      else if (typeof v === 'string' && LONE_SURROGATE.test(v)) errors.push({ field: `tags.${echoText(k)}`, reason: notUnicode });
    }
    if (badKey) errors.push({ field: 'tags', reason: `a tag key ${notUnicode}` });
  }

  const ids: Record<string, string> = {};
  for (const f of ID_FIELDS) {
    const v = raw[f];
    if (typeof v !== 'string') continue;
    if (PRINTABLE_ASCII.test(v)) {
      if (v.length > LIMITS[f]) errors.push({ field: f, reason: `longer than ${LIMITS[f]} characters after NFC normalisation` });
      ids[f] = v;
      continue;
    }
    const nfc = v.normalize('NFC');
    if (CONTROL_CHARS.test(nfc)) errors.push({ field: f, reason: 'must not contain control characters' });
    else if (nfc.length > LIMITS[f]) errors.push({ field: f, reason: `longer than ${LIMITS[f]} characters after NFC normalisation` });
    ids[f] = nfc;
  }

  // TRICKY: TypeBox's Type.Record ignores the key schema's length bounds, so tag keys are checked here.
  if (typeof raw.tags === 'object' && raw.tags !== null && !Array.isArray(raw.tags)) {
    // Plain loops, no callbacks: this runs per event, and tsx wraps every closure it creates.
    let empty = false;
    let long: string | undefined;
    for (const k in raw.tags) {
      if (k.length === 0) empty = true;
      else if (long === undefined && k.length > LIMITS.tag_key) long = k;
    }
    if (empty) errors.push({ field: 'tags', reason: 'tag key must not be empty' });
    if (long !== undefined) errors.push({ field: 'tags', reason: `tag key longer than ${LIMITS.tag_key} characters: ${echoJson(long)}` });
  }

  let timestampMs: number | null = null;
  if (typeof raw.timestamp === 'string') {
    timestampMs = parseRfc3339(raw.timestamp);
    if (timestampMs === null && !errors.some((e) => e.field === 'timestamp')) {
      errors.push({ field: 'timestamp', reason: 'must be an RFC 3339 date-time string with a zone, or integer epoch milliseconds >= 0' });
    }
  } else if (typeof raw.timestamp === 'number' && Number.isInteger(raw.timestamp)) {
    timestampMs = raw.timestamp;
  }
  if (timestampMs !== null) {
    const maxMs = options.nowMs + (options.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS);
    if (timestampMs < MIN_TIMESTAMP_MS) errors.push({ field: 'timestamp', reason: 'before 2000-01-01T00:00:00Z (unit or clock error?)' });
    else if (timestampMs > maxMs)
      errors.push({ field: 'timestamp', reason: `more than ${Math.round((maxMs - options.nowMs) / 1000)} s in the future` });
  }

  // Subset rules are checked only between counts that are themselves valid (a negative or
  // fractional count already has its own error; comparing against it would only add noise).
  const input = validCount(raw.input_tokens);
  const cached = validCount(raw.cached_input_tokens);
  const output = validCount(raw.output_tokens);
  const reasoning = validCount(raw.reasoning_tokens);
  if (input !== undefined && cached !== undefined && cached > input) {
    errors.push({
      field: 'cached_input_tokens',
      reason: `greater than input_tokens (${cached} > ${input}); cached tokens are a subset of input tokens`,
    });
  }
  if (output !== undefined && reasoning !== undefined && reasoning > output) {
    errors.push({
      field: 'reasoning_tokens',
      reason: `greater than output_tokens (${reasoning} > ${output}); reasoning tokens are a subset of output tokens`,
    });
  }

  if (errors.length > 0 || timestampMs === null) {
    if (errors.length === 0) errors.push({ field: 'timestamp', reason: 'missing' });
    return { ok: false, errors };
  }
  const ev = value as UsageEventV1;
  return {
    ok: true,
    event: {
      event_id: ids.event_id as string,
      timestamp_ms: timestampMs,
      tenant: ids.tenant as string,
      user_id: ids.user_id ?? '',
      task_id: ids.task_id ?? '',
      provider: nfc(ev.provider).toLowerCase(),
      model: nfc(ev.model),
      operation: ev.operation ?? 'chat',
      input_tokens: ev.input_tokens,
      output_tokens: ev.output_tokens,
      cached_input_tokens: ev.cached_input_tokens ?? 0,
      reasoning_tokens: ev.reasoning_tokens ?? 0,
      latency_ms: ev.latency_ms ?? null,
      status: ev.status ?? 'ok',
      finish_reason: ev.finish_reason ?? '',
      max_tokens: ev.max_tokens ?? null,
      prompt_hash: ev.prompt_hash ?? '',
      // The JS number's shortest round-trip text is the value the client meant; keep it exact.
      cost_usd: ev.cost_usd === undefined ? null : new Decimal(String(ev.cost_usd)).toFixed(),
      tags: ev.tags ?? {},
    },
  };
}
