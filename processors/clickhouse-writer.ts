/**
 * The usage stream's ClickHouse side: the id lookup before a batch and the batch write after.
 *
 * Exactly-once effect (SPEC.md section 5) rests on three things:
 * 1. the runner looks a batch's keys up in `usage_event_ids` and `transform` drops those seen;
 * 2. a batch is written as ONE insert into `usage_events`; its materialized views write the
 *    id index and the minute/hour/day aggregates from that same insert, so "stored" and
 *    "counted" cannot drift apart between two statements;
 * 3. each insert carries an `insert_deduplication_token` derived from its content, and every
 *    table has `non_replicated_deduplication_window`, so retrying the same insert after a
 *    timeout is a no-op in the table and in every view.
 * Offsets are committed only after `write` resolved (see runner.ts).
 * https://clickhouse.com/docs/operations/settings/settings#insert_deduplication_token
 *
 * NOTE: ClickHouse does not commit a table and its views atomically: a crash between those part
 * commits can leave a roll-up view off by a batch. processors/rollup-repair.ts detects and
 * rebuilds such days from `usage_events` (run by the processor at start, periodically and at stop).
 */
import { createHash } from 'node:crypto';
import { DEAD_LETTER_COLUMNS } from '../domain/dead-letter.ts';
import type { ClickHouseClient } from '../storage/clickhouse.ts';
import { boundText, lookupChunks } from '../storage/lookup-chunks.ts';
import { type BatchOutcome, dedupKey, type UsageEventRow } from './usage.processor.ts';

/** Column order of the compact inserts (JSONCompactEachRow: arrays, half the bytes of objects). */
export const USAGE_EVENT_COLUMNS = [
  'tenant',
  'event_id',
  'timestamp',
  'window_start',
  'user_id',
  'task_id',
  'provider',
  'model',
  'operation',
  'status',
  'finish_reason',
  'input_tokens',
  'output_tokens',
  'cached_input_tokens',
  'reasoning_tokens',
  'max_tokens',
  'latency_ms',
  'prompt_hash',
  'cost_usd',
  'cost_source',
  'tags',
  'fingerprint',
  'source',
  'ingested_at',
] as const satisfies ReadonlyArray<keyof UsageEventRow>;

function toArrays<T>(rows: readonly T[], columns: ReadonlyArray<keyof T>): unknown[][] {
  return rows.map((r) => columns.map((c) => r[c]));
}

/** A ClickHouse call failed; the batch must not be committed. Carries the table and row count. */
export class StoreWriteError extends Error {
  constructor(
    readonly table: string,
    readonly rows: number,
    options: { cause: unknown },
  ) {
    super(`writing ${rows} rows to ${table} failed: ${(options.cause as Error)?.message ?? options.cause}`, options);
    this.name = 'StoreWriteError';
  }
}

export interface UsageStore {
  /** Fingerprints of the given keys that are already stored, by `dedupKey`. */
  lookupSeen(keys: ReadonlyArray<{ tenant: string; event_id: string }>): Promise<Map<string, string>>;
  /** Write a transformed batch. Resolves when ClickHouse acknowledged every row. @throws StoreWriteError */
  write(outcome: BatchOutcome): Promise<void>;
}

function contentToken(parts: readonly string[]): string {
  const h = createHash('sha1');
  for (const p of parts) h.update(p).update('\n');
  return h.digest('hex');
}

export function createUsageStore(client: ClickHouseClient): UsageStore {
  return {
    async lookupSeen(keys) {
      const seen = new Map<string, string>();
      // Chunked by count and by bound text (storage/lookup-chunks.ts: long ids broke lookups down).
      for (const chunk of lookupChunks(keys, (k) => boundText(k.tenant) + boundText(k.event_id))) {
        const wanted = new Set(chunk.map((k) => dedupKey(k.tenant, k.event_id)));
        const rs = await client.query({
          query: `SELECT tenant, event_id, any(fingerprint) AS fingerprint FROM usage_event_ids
                  WHERE tenant IN {tenants:Array(String)} AND event_id IN {ids:Array(String)}
                  GROUP BY tenant, event_id`,
          query_params: { tenants: [...new Set(chunk.map((k) => k.tenant))], ids: chunk.map((k) => k.event_id) },
          format: 'JSONEachRow',
        });
        for (const r of await rs.json<{ tenant: string; event_id: string; fingerprint: string }>()) {
          const key = dedupKey(r.tenant, r.event_id);
          if (wanted.has(key)) seen.set(key, r.fingerprint);
        }
      }
      return seen;
    },

    async write(outcome) {
      // Dead letters first: if we crash before the events insert, the replay rewrites the same
      // dead-letter ids (ReplacingMergeTree) and then inserts the events.
      if (outcome.deadLetters.length > 0) {
        const token = contentToken(outcome.deadLetters.map((d) => d.dead_letter_id));
        await insert(client, 'dead_letters', DEAD_LETTER_COLUMNS, toArrays(outcome.deadLetters, DEAD_LETTER_COLUMNS), token);
      }
      if (outcome.events.length > 0) {
        const token = contentToken(outcome.events.map((e) => `${dedupKey(e.tenant, e.event_id)}\u0000${e.fingerprint}`));
        await insert(client, 'usage_events', USAGE_EVENT_COLUMNS, toArrays(outcome.events, USAGE_EVENT_COLUMNS), token);
      }
    },
  };
}

async function insert(
  client: ClickHouseClient,
  table: string,
  columns: readonly string[],
  values: unknown[][],
  token: string,
): Promise<void> {
  try {
    await client.insert({
      table,
      columns: [...columns] as [string, ...string[]],
      values,
      format: 'JSONCompactEachRow',
      clickhouse_settings: {
        insert_deduplication_token: token,
        // Let each view de-duplicate its own block too, so a retried insert is a no-op everywhere.
        deduplicate_blocks_in_dependent_materialized_views: 1,
      },
    });
  } catch (err) {
    throw new StoreWriteError(table, values.length, { cause: err });
  }
}
