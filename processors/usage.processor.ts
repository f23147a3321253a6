/**
 * The usage stream's per-batch transform: decode -> validate -> de-duplicate -> price -> window.
 *
 * Pure: no I/O. Time, the price table and the already-seen ids come in through `ctx`, so the
 * same batch always gives the same rows (which is what makes replays harmless). The runner
 * (`runner.ts`) does the I/O around it.
 */
import { type DeadLetterReason, type DeadLetterRow, deadLetter, sentString } from '../domain/dead-letter.ts';
import type { PriceTable } from '../domain/pricing.ts';
import { type FieldError, validateUsageEvent } from '../domain/usage-event-validation.ts';
import { MINUTE_MS, windowStart } from '../domain/windows.ts';
import type { UsageEvent } from '../schemas/usage-event.ts';
import { hash64Hex } from './fingerprint.ts';

/** One message to transform: the payload byte for byte and where it came from. */
export interface RawMessage {
  value: string;
  /** `topic/partition/offset` or `file:line`. */
  source: string;
}

export type { DeadLetterReason, DeadLetterRow };

export type DecodedMessage =
  | { kind: 'event'; raw: RawMessage; event: UsageEvent; fingerprint: string }
  | { kind: 'dead'; raw: RawMessage; reason: DeadLetterReason; errors: FieldError[]; tenant: string; eventId: string };

/** A row of `usage_events` (schemas/clickhouse/0001). Times are epoch ms / s as ClickHouse accepts them. */
export interface UsageEventRow {
  tenant: string;
  event_id: string;
  timestamp: number;
  window_start: number;
  user_id: string;
  task_id: string;
  provider: string;
  model: string;
  operation: string;
  status: string;
  finish_reason: string;
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
  reasoning_tokens: number;
  max_tokens: number | null;
  latency_ms: number | null;
  prompt_hash: string;
  cost_usd: string;
  cost_source: 'reported' | 'price_table' | 'unpriced';
  tags: Record<string, string>;
  fingerprint: string;
  source: string;
  ingested_at: number;
}

export interface DecodeContext {
  nowMs: number;
  maxFutureSkewMs?: number;
}

export interface TransformContext {
  nowMs: number;
  prices: PriceTable;
  /** Fingerprints of keys (`dedupKey`) already stored, as returned by the id lookup. */
  seen: ReadonlyMap<string, string>;
}

export interface BatchOutcome {
  events: UsageEventRow[];
  deadLetters: DeadLetterRow[];
  /** Exact replays of an accepted event: counted zero times more, not an error. */
  duplicates: number;
}

/** The idempotency key: event ids are unique per tenant. */
export function dedupKey(tenant: string, eventId: string): string {
  return `${tenant}\u0000${eventId}`;
}

/**
 * Hash of the fields that decide what an event adds to the totals. Two events with the same
 * key and fingerprint are one event delivered twice; with different fingerprints, a conflict.
 */
export function usageFingerprint(e: UsageEvent): string {
  return hash64Hex(
    JSON.stringify([
      e.timestamp_ms,
      e.user_id,
      e.task_id,
      e.provider,
      e.model,
      e.operation,
      e.status,
      e.input_tokens,
      e.output_tokens,
      e.cached_input_tokens,
      e.reasoning_tokens,
      e.cost_usd,
    ]),
  );
}

/** Parse and validate each message. Never throws: a bad payload becomes a dead letter. */
export function decodeBatch(messages: readonly RawMessage[], ctx: DecodeContext): DecodedMessage[] {
  return messages.map((raw): DecodedMessage => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.value);
    } catch (err) {
      return {
        kind: 'dead',
        raw,
        reason: 'invalid_json',
        tenant: '',
        eventId: '',
        errors: [{ field: '(payload)', reason: `not valid JSON: ${(err as Error).message}` }],
      };
    }
    const result = validateUsageEvent(parsed, ctx);
    if (!result.ok) {
      return {
        kind: 'dead',
        raw,
        reason: 'invalid_event',
        errors: result.errors,
        tenant: sentString(parsed, 'tenant'),
        eventId: sentString(parsed, 'event_id'),
      };
    }
    return { kind: 'event', raw, event: result.event, fingerprint: usageFingerprint(result.event) };
  });
}

/** The keys the runner must look up in the id index before `transform`. */
export function keysToLookUp(decoded: readonly DecodedMessage[]): Array<{ tenant: string; event_id: string }> {
  const out: Array<{ tenant: string; event_id: string }> = [];
  for (const d of decoded) if (d.kind === 'event') out.push({ tenant: d.event.tenant, event_id: d.event.event_id });
  return out;
}

function deadLetterRow(d: Extract<DecodedMessage, { kind: 'dead' }>, nowMs: number): DeadLetterRow {
  return deadLetter({
    reason: d.reason,
    errors: d.errors,
    raw: d.raw.value,
    source: d.raw.source,
    tenant: d.tenant,
    eventId: d.eventId,
    nowMs,
  });
}

/**
 * De-duplicate, price and window a decoded batch.
 *
 * An event whose (tenant, event_id) was seen before (in `ctx.seen` or earlier in this batch)
 * counts zero times more: with the same fingerprint it is an exact duplicate; with another it
 * is a `conflicting_duplicate` dead letter and the first one stands.
 */
export function transform(decoded: readonly DecodedMessage[], ctx: TransformContext): BatchOutcome {
  const events: UsageEventRow[] = [];
  const deadLetters: DeadLetterRow[] = [];
  let duplicates = 0;
  const batchSeen = new Map<string, string>();
  for (const d of decoded) {
    if (d.kind === 'dead') {
      deadLetters.push(deadLetterRow(d, ctx.nowMs));
      continue;
    }
    const e = d.event;
    const key = dedupKey(e.tenant, e.event_id);
    const first = ctx.seen.get(key) ?? batchSeen.get(key);
    if (first !== undefined) {
      if (first === d.fingerprint) duplicates++;
      else {
        deadLetters.push(
          deadLetterRow(
            {
              kind: 'dead',
              raw: d.raw,
              reason: 'conflicting_duplicate',
              tenant: e.tenant,
              eventId: e.event_id,
              errors: [
                {
                  field: 'event_id',
                  reason: `already accepted for tenant ${JSON.stringify(e.tenant)} with different usage; the first event stands`,
                },
              ],
            },
            ctx.nowMs,
          ),
        );
      }
      continue;
    }
    batchSeen.set(key, d.fingerprint);
    let cost = e.cost_usd;
    let costSource: UsageEventRow['cost_source'] = 'reported';
    if (cost === null) {
      cost = ctx.prices.cost(e);
      costSource = cost === null ? 'unpriced' : 'price_table';
    }
    events.push({
      tenant: e.tenant,
      event_id: e.event_id,
      timestamp: e.timestamp_ms,
      window_start: windowStart(e.timestamp_ms, MINUTE_MS) / 1000,
      user_id: e.user_id,
      task_id: e.task_id,
      provider: e.provider,
      model: e.model,
      operation: e.operation,
      status: e.status,
      finish_reason: e.finish_reason,
      input_tokens: e.input_tokens,
      output_tokens: e.output_tokens,
      cached_input_tokens: e.cached_input_tokens,
      reasoning_tokens: e.reasoning_tokens,
      max_tokens: e.max_tokens,
      latency_ms: e.latency_ms,
      prompt_hash: e.prompt_hash,
      cost_usd: cost ?? '0',
      cost_source: costSource,
      tags: e.tags,
      fingerprint: d.fingerprint,
      source: d.raw.source,
      ingested_at: ctx.nowMs,
    });
  }
  return { events, deadLetters, duplicates };
}
