/**
 * The context stream's per-batch transform: decode -> validate -> apply the content policy ->
 * last-write-wins against the stored versions -> number the winners.
 *
 * Pure: no I/O. Time, the content policy and what the store holds (each message's version, each
 * user's last change number) come in as arguments, so the same batch over the same store always
 * gives the same rows; that is what makes a replay harmless. The runner (context-runner.ts) does
 * the look-ups and the write around it.
 *
 * Only winners are written. A version that loses to the stored one (a late write with an older
 * updated_at) or equals it (a redelivered message, a replay of the topic) writes nothing, so a
 * replay changes neither the winners nor their change numbers, and a reader is never sent the
 * same change twice. Each winner gets the next change number of its user (`seq`), in the order
 * of the batch; the sync cursor counts these numbers (domain/context-cursor.ts).
 */
import { contextDeadLetterRaw } from '../domain/context-dead-letter.ts';
import { contextDigest, contextKey, contextVersion, userKey } from '../domain/context-merge.ts';
import { type FieldError, validateContextRecord, withContentPolicy } from '../domain/context-validation.ts';
import { type DeadLetterRow, deadLetter, sentString } from '../domain/dead-letter.ts';
import type { ContextRecord } from '../schemas/context-record.ts';
import type { RawMessage } from './usage.processor.ts';

export type DecodedContext =
  | { kind: 'record'; raw: RawMessage; record: ContextRecord; digest: string; version: bigint }
  | { kind: 'dead'; raw: RawMessage; reason: 'invalid_json' | 'invalid_event'; errors: FieldError[]; tenant: string; messageId: string };

/** A row of `contexts` (schemas/clickhouse/0008). Times are epoch ms; `version` a decimal string (UInt256). */
export interface ContextRow {
  tenant: string;
  user_id: string;
  conversation_id: string;
  message_id: string;
  platform: string;
  role: string;
  content: string;
  content_stored: 0 | 1;
  content_sha256: string;
  content_length: number;
  tool_call_id: string;
  created_at: number;
  updated_at: number;
  deleted: 0 | 1;
  token_count: number | null;
  digest: string;
  version: string;
  seq: number;
  source: string;
  ingested_at: number;
}

export interface ContextDecodeContext {
  nowMs: number;
  maxFutureSkewMs?: number;
  /** Config `contexts.store_content` as a lookup (schemas/contexts-config.ts `contentPolicy`). */
  storeContent: (tenant: string) => boolean;
}

/** What the store holds for a batch's messages and users (context-store.ts `lookup`). */
export interface ContextLookup {
  /** The stored winner's version, by `contextKey`; absent = never stored. */
  versions: ReadonlyMap<string, bigint>;
  /** The user's last change number, by `userKey`; absent = 0 (no change yet). */
  lastSeq: ReadonlyMap<string, number>;
}

export interface ContextOutcome {
  rows: ContextRow[];
  deadLetters: DeadLetterRow[];
  /** Versions equal to the winner already stored or earlier in the batch (redelivery, replay). */
  duplicates: number;
  /** Versions that lost: older than the stored winner, or replaced later in the same batch. */
  superseded: number;
}

/** Parse and validate each message; apply the content policy. Never throws: a bad payload becomes a dead letter. */
export function decodeContextBatch(messages: readonly RawMessage[], ctx: ContextDecodeContext): DecodedContext[] {
  return messages.map((raw): DecodedContext => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.value);
    } catch {
      // NOTE: JSON.parse's message quotes the text around the error: it would leak content.
      return {
        kind: 'dead',
        raw,
        reason: 'invalid_json',
        errors: [{ field: '(payload)', reason: 'not valid JSON' }],
        tenant: '',
        messageId: '',
      };
    }
    const result = validateContextRecord(parsed, ctx);
    if (!result.ok) {
      return {
        kind: 'dead',
        raw,
        reason: 'invalid_event',
        errors: result.errors,
        tenant: sentString(parsed, 'tenant'),
        messageId: sentString(parsed, 'message_id'),
      };
    }
    const record = withContentPolicy(result.record, ctx.storeContent(result.record.tenant));
    const digest = contextDigest(record);
    return { kind: 'record', raw, record, digest, version: contextVersion(record, digest) };
  });
}

/** The message keys and users the runner must look up before `transformContexts`. */
export function contextKeysToLookUp(decoded: readonly DecodedContext[]): ContextRecord[] {
  return decoded.flatMap((d) => (d.kind === 'record' ? [d.record] : []));
}

function toRow(d: Extract<DecodedContext, { kind: 'record' }>, seq: number, nowMs: number): ContextRow {
  const r = d.record;
  return {
    tenant: r.tenant,
    user_id: r.user_id,
    conversation_id: r.conversation_id,
    message_id: r.message_id,
    platform: r.platform,
    role: r.role,
    content: r.content ?? '',
    content_stored: r.content === null ? 0 : 1,
    content_sha256: r.content_sha256,
    content_length: r.content_length,
    tool_call_id: r.tool_call_id,
    created_at: r.created_at_ms,
    updated_at: r.updated_at_ms,
    deleted: r.deleted ? 1 : 0,
    token_count: r.token_count,
    digest: d.digest,
    version: d.version.toString(),
    seq,
    source: d.raw.source,
    ingested_at: nowMs,
  };
}

/**
 * Last-write-wins of a decoded batch against `lookup` (see the module comment).
 * @param storeContent the content policy, for what dead letters may keep of the payload.
 */
export function transformContexts(
  decoded: readonly DecodedContext[],
  lookup: ContextLookup,
  ctx: { nowMs: number; storeContent: (tenant: string) => boolean },
): ContextOutcome {
  const rows: Array<ContextRow | null> = [];
  const deadLetters: DeadLetterRow[] = [];
  const inBatch = new Map<string, { version: bigint; row: number }>();
  const lastSeq = new Map(lookup.lastSeq);
  let duplicates = 0;
  let superseded = 0;
  for (const d of decoded) {
    if (d.kind === 'dead') {
      const raw = contextDeadLetterRaw(d.raw.value, ctx.storeContent(d.tenant));
      deadLetters.push(
        deadLetter({
          reason: d.reason,
          errors: d.errors,
          raw,
          source: d.raw.source,
          tenant: d.tenant,
          eventId: d.messageId,
          nowMs: ctx.nowMs,
        }),
      );
      continue;
    }
    const key = contextKey(d.record);
    const stored = lookup.versions.get(key);
    const earlier = inBatch.get(key);
    const current = earlier === undefined ? stored : stored === undefined || earlier.version > stored ? earlier.version : stored;
    if (current !== undefined && d.version === current) {
      duplicates++;
      continue;
    }
    if (current !== undefined && d.version < current) {
      superseded++;
      continue;
    }
    if (earlier !== undefined) {
      rows[earlier.row] = null; // replaced within the batch: never visible, not written
      superseded++;
    }
    const uk = userKey(d.record.tenant, d.record.user_id);
    const seq = (lastSeq.get(uk) ?? 0) + 1;
    lastSeq.set(uk, seq);
    inBatch.set(key, { version: d.version, row: rows.length });
    rows.push(toRow(d, seq, ctx.nowMs));
  }
  return { rows: rows.filter((r): r is ContextRow => r !== null), deadLetters, duplicates, superseded };
}
