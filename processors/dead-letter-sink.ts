/**
 * Dead-letter sink: copies the dead-letter topic (quotaflow.usage.dlq) into the `dead_letters`
 * table, so invalid events are queryable next to the accepted ones. Idempotent: a dead letter's
 * id is fixed by its source and payload, the table is a ReplacingMergeTree on that id, and the
 * insert carries a content token, so a replayed batch rewrites the same rows.
 */
import { DEAD_LETTER_COLUMNS, type DeadLetterRow, deadLetter } from '../domain/dead-letter.ts';
import type { BatchHandler, ConsumedBatch } from '../ingest/transport/transport.ts';
import type { UsageStore } from './clickhouse-writer.ts';

const ROW_KEYS = DEAD_LETTER_COLUMNS;
const REASONS = new Set(['invalid_json', 'invalid_event', 'conflicting_duplicate']);

/** Parse one DLQ message; a message that is not a dead letter is itself kept, as invalid_json. */
export function parseDeadLetterMessage(value: string, source: string, nowMs: number): DeadLetterRow {
  try {
    const v = JSON.parse(value) as Record<string, unknown>;
    if (
      v &&
      typeof v === 'object' &&
      ROW_KEYS.every((k) => k in v) &&
      REASONS.has(v.reason as string) &&
      typeof v.dead_letter_id === 'string' &&
      typeof v.received_at === 'number'
    ) {
      return Object.fromEntries(ROW_KEYS.map((k) => [k, v[k]])) as unknown as DeadLetterRow;
    }
  } catch {
    // fall through: kept below with the raw bytes
  }
  return deadLetter({
    reason: 'invalid_json',
    errors: [{ field: '(payload)', reason: 'dead-letter topic message is not a quotaflow dead letter' }],
    raw: value,
    source,
    tenant: '',
    eventId: '',
    nowMs,
  });
}

/** The batch handler of the dead-letter sink. */
export function deadLetterSinkHandler(store: UsageStore, now: () => number = Date.now): BatchHandler {
  return async (batch: ConsumedBatch) => {
    const nowMs = now();
    const deadLetters = batch.messages.map((m) => parseDeadLetterMessage(m.value, `${m.topic}/${m.partition}/${m.offset}`, nowMs));
    await store.write({ events: [], deadLetters, duplicates: 0 });
  };
}
