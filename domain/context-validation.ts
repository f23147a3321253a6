/**
 * Validation and normalisation of conversation context records v1 (schemas/context-record.ts).
 *
 * Returns every problem at once as `{ field, reason }`, like the usage event validation it
 * shares its helpers with (RFC 3339 parser, control-character and lone-surrogate checks).
 * Nothing throws on bad input. TRICKY: a reason never quotes the message text (content must
 * never reach a log or an error body), and ids are quoted only by length.
 */
import { createHash } from 'node:crypto';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ValueErrorType } from '@sinclair/typebox/errors';
import { CONTEXT_LIMITS, CONTEXT_ROLES, type ContextRecord, ContextRecordV1, type ContextRole } from '../schemas/context-record.ts';
import {
  CONTROL_CHARS,
  DEFAULT_MAX_FUTURE_SKEW_MS,
  type FieldError,
  LONE_SURROGATE,
  MIN_TIMESTAMP_MS,
  parseRfc3339,
} from './usage-event-validation.ts';

export type { FieldError };

export type ContextValidationResult = { ok: true; record: ContextRecord } | { ok: false; errors: FieldError[] };

export interface ValidateContextOptions {
  /** Current time, epoch ms (injected so tests and replays are deterministic). */
  nowMs: number;
  /** How far past `nowMs` created_at/updated_at may be, ms. Default 10 min (as for usage events). */
  maxFutureSkewMs?: number;
  /** Accept a record without `tenant` (normalised to ''): file conversion, where no tenant applies. Default false. */
  tenantOptional?: boolean;
}

const compiled = TypeCompiler.Compile(ContextRecordV1);
const ID_FIELDS = ['tenant', 'user_id', 'conversation_id', 'message_id', 'platform', 'tool_call_id'] as const;
type IdField = (typeof ID_FIELDS)[number];
const STRING_FIELDS = [...ID_FIELDS, 'content', 'created_at', 'updated_at'] as const;
const TIME_REASON = 'must be an RFC 3339 date-time string with a zone (e.g. 2025-06-15T12:00:00Z)';

/** Lower-case hex SHA-256 of the UTF-8 bytes of `text`. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function typeboxReason(field: string, type: ValueErrorType, message: string): string {
  if (message === 'Expected required property') return 'expected required property';
  if (message === 'Unexpected property') return 'unknown field (not part of context record v1)';
  if (field === 'role') return `must be one of ${CONTEXT_ROLES.join(', ')}`;
  if (field === 'content_sha256' && type === ValueErrorType.StringPattern) return 'must be 64 lower-case hex digits (a SHA-256)';
  if (field === 'created_at' || field === 'updated_at') return TIME_REASON;
  return message.charAt(0).toLowerCase() + message.slice(1);
}

/**
 * Validate one decoded JSON value as a context record v1 and normalise it.
 *
 * Rules beyond the JSON Schema:
 * - ids (tenant, user_id, conversation_id, message_id, platform, tool_call_id) normalised to NFC,
 *   then length-capped and free of control characters; platform lower-cased;
 * - no field holds an unpaired UTF-16 surrogate (ClickHouse stores UTF-8 and would refuse the batch);
 * - created_at and updated_at are RFC 3339 with a zone, in [2000-01-01, now + skew], and
 *   updated_at >= created_at (a far-future updated_at would win every merge for ever);
 * - a live record carries its text as `content` XOR as `content_sha256` + `content_length`;
 *   `content` is at most 1 MiB of UTF-8; a tombstone (`deleted: true`) needs neither, and any
 *   content sent with it is dropped (a tombstone stores no text);
 * - `tool_call_id` only on role `tool`.
 * Values are rejected, never clamped.
 */
export function validateContextRecord(value: unknown, options: ValidateContextOptions): ContextValidationResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, errors: [{ field: '(record)', reason: 'must be a JSON object' }] };
  }
  const errors: FieldError[] = [];
  const add = (field: string, reason: string) => {
    if (!errors.some((e) => e.field === field)) errors.push({ field, reason });
  };
  if (!compiled.Check(value)) {
    for (const e of compiled.Errors(value)) {
      const field = e.path.replace(/^\//, '').replaceAll('/', '.') || '(record)';
      // Id lengths are capped after NFC normalisation (below), not on the raw text.
      if (e.type === ValueErrorType.StringMaxLength && (ID_FIELDS as readonly string[]).includes(field)) continue;
      if (field === 'tenant' && e.message === 'Expected required property' && options.tenantOptional) continue;
      add(field, typeboxReason(field, e.type, e.message));
    }
  }
  const raw = value as Record<string, unknown>;
  if (raw.tenant === undefined && !options.tenantOptional) add('tenant', 'expected required property');

  for (const f of STRING_FIELDS) {
    const v = raw[f];
    if (typeof v === 'string' && LONE_SURROGATE.test(v)) add(f, 'contains an unpaired UTF-16 surrogate (not valid Unicode)');
  }

  const ids: Partial<Record<IdField, string>> = {};
  for (const f of ID_FIELDS) {
    const v = raw[f];
    if (typeof v !== 'string') continue;
    const nfc = v.normalize('NFC');
    if (CONTROL_CHARS.test(nfc)) add(f, 'must not contain control characters');
    else if (nfc.length > CONTEXT_LIMITS[f]) add(f, `longer than ${CONTEXT_LIMITS[f]} characters after NFC normalisation`);
    ids[f] = nfc;
  }

  const nowMs = options.nowMs;
  const maxMs = nowMs + (options.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS);
  const time = (f: 'created_at' | 'updated_at'): number | null => {
    const v = raw[f];
    if (typeof v !== 'string') return null;
    const ms = parseRfc3339(v);
    if (ms === null) add(f, TIME_REASON);
    else if (ms < MIN_TIMESTAMP_MS) add(f, 'before 2000-01-01T00:00:00Z (unit or clock error?)');
    else if (ms > maxMs) add(f, `more than ${Math.round((maxMs - nowMs) / 1000)} s in the future`);
    else return ms;
    return null;
  };
  const createdMs = time('created_at');
  const updatedMs = time('updated_at');
  if (createdMs !== null && updatedMs !== null && updatedMs < createdMs) add('updated_at', 'before created_at');

  const deleted = raw.deleted === true;
  const hasContent = typeof raw.content === 'string';
  const hasHash = raw.content_sha256 !== undefined;
  const hasLength = raw.content_length !== undefined;
  if (!deleted) {
    if (hasContent && (hasHash || hasLength)) add('content', 'send either content or content_sha256 + content_length, not both');
    else if (!hasContent && raw.content === undefined && !hasHash && !hasLength) {
      add('content', 'required unless deleted is true (or send content_sha256 + content_length when the text is withheld)');
    } else if (hasHash && !hasLength) add('content_length', 'required with content_sha256');
    else if (hasLength && !hasHash) add('content_sha256', 'required with content_length');
    if (hasContent && Buffer.byteLength(raw.content as string, 'utf8') > CONTEXT_LIMITS.content_bytes) {
      add('content', `longer than ${CONTEXT_LIMITS.content_bytes} UTF-8 bytes`);
    }
  }
  if (raw.tool_call_id !== undefined && raw.role !== 'tool') add('tool_call_id', 'only for role tool');

  if (errors.length > 0 || createdMs === null || updatedMs === null) {
    if (errors.length === 0) add('updated_at', 'missing');
    return { ok: false, errors };
  }
  const r = value as ContextRecordV1;
  const text = deleted ? null : (r.content ?? null);
  return {
    ok: true,
    record: {
      tenant: ids.tenant ?? '',
      user_id: ids.user_id as string,
      conversation_id: ids.conversation_id as string,
      message_id: ids.message_id as string,
      platform: (ids.platform as string).toLowerCase(),
      role: r.role as ContextRole,
      content: text,
      content_sha256: deleted ? '' : text !== null ? sha256Hex(text) : (r.content_sha256 as string),
      content_length: deleted ? 0 : text !== null ? Buffer.byteLength(text, 'utf8') : (r.content_length as number),
      tool_call_id: ids.tool_call_id ?? '',
      created_at_ms: createdMs,
      updated_at_ms: updatedMs,
      deleted,
      token_count: r.token_count ?? null,
    },
  };
}

/** A tenant's content policy (config `contexts.store_content`): false -> keep only the hash and length. */
export function withContentPolicy(record: ContextRecord, storeContent: boolean): ContextRecord {
  return storeContent || record.content === null ? record : { ...record, content: null };
}

/** Epoch ms -> RFC 3339 UTC with milliseconds (`2025-06-15T12:00:00.000Z`). */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * The wire form (schemas/context-record.ts) of a normalised record: what is produced to the
 * context topic and what the read API returns. A withheld text travels as hash + length.
 */
export function toWireRecord(r: ContextRecord): ContextRecordV1 {
  return {
    ...(r.tenant === '' ? {} : { tenant: r.tenant }),
    user_id: r.user_id,
    conversation_id: r.conversation_id,
    message_id: r.message_id,
    platform: r.platform,
    role: r.role,
    ...(r.deleted
      ? {}
      : r.content !== null
        ? { content: r.content }
        : { content_sha256: r.content_sha256, content_length: r.content_length }),
    ...(r.tool_call_id === '' ? {} : { tool_call_id: r.tool_call_id }),
    created_at: rfc3339(r.created_at_ms),
    updated_at: rfc3339(r.updated_at_ms),
    ...(r.deleted ? { deleted: true } : {}),
    ...(r.token_count === null ? {} : { token_count: r.token_count }),
  };
}
