/**
 * The context stream's ClickHouse side: the look-ups before a batch (each message's stored
 * version, each user's last change number) and the batch write after.
 *
 * Replays are harmless for three reasons: transformContexts writes only versions greater than
 * the stored ones, so a redelivered batch writes nothing; the table is a ReplacingMergeTree on
 * the version (schemas/clickhouse/0008), so even a duplicate row cannot change the winner; and
 * the insert carries an `insert_deduplication_token` derived from its rows, so retrying the same
 * insert after a timeout is a no-op. Offsets are committed only after `write` resolved.
 *
 * NOTE: with a replicated ClickHouse, the look-ups must read what the previous batch of the same
 * partition wrote (e.g. `select_sequential_consistency` or `insert_quorum`), or two changes of a
 * user could get one number.
 */
import { createHash } from 'node:crypto';
import { contextKey, userKey } from '../domain/context-merge.ts';
import type { ContextRecord } from '../schemas/context-record.ts';
import type { ClickHouseClient } from '../storage/clickhouse.ts';
import { boundText, lookupChunks } from '../storage/lookup-chunks.ts';
import { contextLastSeqQuery, contextVersionsQuery } from '../storage/queries/contexts.ts';
import { createUsageStore, StoreWriteError } from './clickhouse-writer.ts';
import type { ContextLookup, ContextOutcome, ContextRow } from './context.processor.ts';

/** Column order of the compact insert into `contexts`. */
export const CONTEXT_COLUMNS = [
  'tenant',
  'user_id',
  'conversation_id',
  'message_id',
  'platform',
  'role',
  'content',
  'content_stored',
  'content_sha256',
  'content_length',
  'tool_call_id',
  'created_at',
  'updated_at',
  'deleted',
  'token_count',
  'digest',
  'version',
  'seq',
  'source',
  'ingested_at',
] as const satisfies ReadonlyArray<keyof ContextRow>;

export interface ContextStore {
  /** What the store holds for these records' messages and users. */
  lookup(records: readonly ContextRecord[]): Promise<ContextLookup>;
  /** Write a transformed batch (dead letters, then rows). Resolves when ClickHouse acknowledged. @throws StoreWriteError */
  write(outcome: ContextOutcome): Promise<void>;
}

export function createContextStore(client: ClickHouseClient): ContextStore {
  const deadLetters = createUsageStore(client);
  const rows = async <T>(built: { query: string; query_params: Record<string, unknown> }): Promise<T[]> => {
    const rs = await client.query({ query: built.query, query_params: built.query_params, format: 'JSONEachRow' });
    return rs.json<T>();
  };
  return {
    async lookup(records) {
      const versions = new Map<string, bigint>();
      const lastSeq = new Map<string, number>();
      const textOf = (r: (typeof records)[number]) =>
        boundText(r.tenant) + boundText(r.user_id) + boundText(r.conversation_id) + boundText(r.message_id);
      for (const chunk of lookupChunks(records, textOf)) {
        const wanted = new Set(chunk.map(contextKey));
        type VersionRow = { tenant: string; user_id: string; conversation_id: string; message_id: string; version: string };
        for (const r of await rows<VersionRow>(contextVersionsQuery(chunk))) {
          const key = contextKey(r);
          if (wanted.has(key)) versions.set(key, BigInt(r.version));
        }
        const users = new Set(chunk.map((r) => userKey(r.tenant, r.user_id)));
        for (const r of await rows<{ tenant: string; user_id: string; seq: number | string }>(contextLastSeqQuery(chunk))) {
          const uk = userKey(r.tenant, r.user_id);
          if (users.has(uk)) lastSeq.set(uk, Number(r.seq));
        }
      }
      return { versions, lastSeq };
    },

    async write(outcome) {
      // Dead letters first, as the usage store does: a crash before the rows replays both.
      if (outcome.deadLetters.length > 0) await deadLetters.write({ events: [], deadLetters: outcome.deadLetters, duplicates: 0 });
      if (outcome.rows.length === 0) return;
      const h = createHash('sha1');
      for (const r of outcome.rows) h.update(`${contextKey(r)}\u0000${r.version}\u0000${r.seq}\n`);
      try {
        await client.insert({
          table: 'contexts',
          columns: [...CONTEXT_COLUMNS],
          values: outcome.rows.map((r) => CONTEXT_COLUMNS.map((c) => r[c])),
          format: 'JSONCompactEachRow',
          clickhouse_settings: { insert_deduplication_token: h.digest('hex') },
        });
      } catch (err) {
        throw new StoreWriteError('contexts', outcome.rows.length, { cause: err });
      }
    },
  };
}
