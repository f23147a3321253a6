import { describe, expect, it } from 'vitest';
import { encodeCursor } from '../../domain/context-cursor.ts';
import { contextKey, contextVersion, mergeLastWriteWins, userKey } from '../../domain/context-merge.ts';
import { toWireRecord } from '../../domain/context-validation.ts';
import type { DeadLetterRow } from '../../domain/dead-letter.ts';
import type { ConsumedBatch } from '../../ingest/transport/transport.ts';
import { type ContextRow, decodeContextBatch, transformContexts } from '../../processors/context.processor.ts';
import { createContextHandler, emptyContextStats } from '../../processors/context-runner.ts';
import type { ContextStore } from '../../processors/context-store.ts';
import { competingWrites, followChanges, record, rng, T0, wire } from '../helpers/contexts.ts';

const NOW_MS = T0 + 60_000;
const storeAll = (_tenant: string) => true;

/**
 * The store as ClickHouse keeps it: every written row; a message's winner is its row with the
 * greatest version (the last inserted among equal ones, as ReplacingMergeTree does).
 */
class MemoryContextStore implements ContextStore {
  readonly rows: ContextRow[] = [];
  readonly deadLetters: DeadLetterRow[] = [];
  async lookup(records: Parameters<ContextStore['lookup']>[0]) {
    const keys = new Set(records.map(contextKey));
    const users = new Set(records.map((r) => userKey(r.tenant, r.user_id)));
    const versions = new Map<string, bigint>();
    const lastSeq = new Map<string, number>();
    for (const r of this.rows) {
      const k = contextKey(r);
      if (keys.has(k) && (versions.get(k) ?? -1n) < BigInt(r.version)) versions.set(k, BigInt(r.version));
      const u = userKey(r.tenant, r.user_id);
      if (users.has(u)) lastSeq.set(u, Math.max(lastSeq.get(u) ?? 0, r.seq));
    }
    return { versions, lastSeq };
  }
  async write(outcome: Parameters<ContextStore['write']>[0]) {
    this.deadLetters.push(...outcome.deadLetters);
    this.rows.push(...outcome.rows);
  }
  winners(): Map<string, ContextRow> {
    const best = new Map<string, ContextRow>();
    for (const r of this.rows) {
      const cur = best.get(contextKey(r));
      if (cur === undefined || BigInt(r.version) >= BigInt(cur.version)) best.set(contextKey(r), r);
    }
    return best;
  }
  /** The read query: the user's winners after `afterSeq`, in seq order. */
  changes(tenant: string, user: string, afterSeq: number): ContextRow[] {
    return [...this.winners().values()]
      .filter((r) => r.tenant === tenant && r.user_id === user && r.seq > afterSeq)
      .sort((a, b) => a.seq - b.seq);
  }
}

let offset = 0;
const batchOf = (values: string[]): ConsumedBatch => ({
  topic: 'quotaflow.context.v1',
  partition: 0,
  messages: values.map((value) => ({ topic: 'quotaflow.context.v1', partition: 0, offset: String(offset++), key: 'k', value })),
});

function handlerFor(store: ContextStore, storeContent: (t: string) => boolean = storeAll) {
  const stats = emptyContextStats();
  return { stats, handle: createContextHandler({ store, storeContent, now: () => NOW_MS, stats }) };
}

describe('transformContexts', () => {
  const m = (patch: Partial<Parameters<typeof record>[0]> = {}) =>
    record({ user_id: 'u1', conversation_id: 'c1', message_id: '000001', platform: 'openai', content: 'x', updatedMs: T0, ...patch });
  const decode = (values: string[], storeContent = storeAll) =>
    decodeContextBatch(
      values.map((value, i) => ({ value, source: `t/0/${i}` })),
      { nowMs: NOW_MS, storeContent },
    );
  const none = { versions: new Map(), lastSeq: new Map() };

  it('two platforms edit one message in one batch: one row, the later one, whatever the order', () => {
    const early = m({ platform: 'openai', content: 'early', updatedMs: T0 + 1 });
    const late = m({ platform: 'anthropic', content: 'late', updatedMs: T0 + 2 });
    // A replaced row is not written; the number it took is not reused (numbers only need to grow).
    for (const [order, seq] of [
      [[early, late], 2],
      [[late, early], 1],
    ] as const) {
      const out = transformContexts(decode(order.map(wire)), none, { nowMs: NOW_MS, storeContent: storeAll });
      expect(out.rows.map((r) => [r.content, r.platform, r.seq])).toEqual([['late', 'anthropic', seq]]);
      expect(out.superseded).toBe(1);
    }
  });

  it('against the store: an older version is superseded, an equal one a duplicate, a newer one gets the next number', () => {
    const stored = m({ updatedMs: T0 + 10 });
    const lookup = {
      versions: new Map([[contextKey(stored), contextVersion(stored)]]),
      lastSeq: new Map([[userKey('acme', 'u1'), 41]]),
    };
    const out = transformContexts(
      decode([wire(m({ updatedMs: T0 + 9, content: 'late loser' })), wire(stored), wire(m({ updatedMs: T0 + 11, content: 'newer' }))]),
      lookup,
      { nowMs: NOW_MS, storeContent: storeAll },
    );
    expect([out.superseded, out.duplicates]).toEqual([1, 1]);
    expect(out.rows.map((r) => [r.content, r.seq, r.source])).toEqual([['newer', 42, 't/0/2']]);
    expect(out.rows[0]?.version).toBe(contextVersion(m({ updatedMs: T0 + 11, content: 'newer' })).toString());
  });

  it('numbers each user separately, in batch order', () => {
    const out = transformContexts(
      decode([
        wire(m({ user_id: 'a', message_id: '1' })),
        wire(m({ user_id: 'b', message_id: '1' })),
        wire(m({ user_id: 'a', message_id: '2' })),
      ]),
      { versions: new Map(), lastSeq: new Map([[userKey('acme', 'b'), 7]]) },
      { nowMs: NOW_MS, storeContent: storeAll },
    );
    expect(out.rows.map((r) => [r.user_id, r.message_id, r.seq])).toEqual([
      ['a', '1', 1],
      ['b', '1', 8],
      ['a', '2', 2],
    ]);
  });

  it('a tenant that keeps no text: the row holds hash and length only, a dead letter withholds the text', () => {
    const noText = (t: string) => t !== 'acme';
    const out = transformContexts(
      decode(
        [wire(m({ content: 'secret words' })), JSON.stringify({ ...toWireRecord(m({ content: 'secret words' })), role: 'robot' })],
        noText,
      ),
      none,
      { nowMs: NOW_MS, storeContent: noText },
    );
    expect(out.rows.map((r) => [r.content, r.content_stored, r.content_length])).toEqual([['', 0, 12]]);
    expect(out.deadLetters).toHaveLength(1);
    expect(out.deadLetters[0]?.raw).not.toContain('secret');
    expect(JSON.parse(out.deadLetters[0]?.errors ?? '[]')).toEqual([
      { field: 'role', reason: 'must be one of system, user, assistant, tool' },
    ]);
  });

  it('a payload that is not JSON is a dead letter without an excerpt of it', () => {
    const [d] = decode(['{"content": "secret words"']);
    expect(d).toMatchObject({ kind: 'dead', reason: 'invalid_json', errors: [{ field: '(payload)', reason: 'not valid JSON' }] });
  });
});

describe('the context handler over a store that behaves like the table (property-style)', () => {
  /** Feed `writes` in batches of 1..6, optionally with an invalid message now and then. */
  async function feed(store: MemoryContextStore, writes: readonly string[], seed: number) {
    const { handle, stats } = handlerFor(store);
    const r = rng(seed);
    for (let i = 0; i < writes.length; ) {
      const n = 1 + r(6);
      await handle(batchOf(writes.slice(i, i + n)));
      i += n;
    }
    return stats;
  }
  const finalState = (store: MemoryContextStore) =>
    new Map([...store.winners()].map(([k, r]) => [k, { version: r.version, content: r.content, deleted: r.deleted }]));

  for (const seed of [1, 2, 3, 4, 5]) {
    it(`seed ${seed}: winners equal the in-memory merge; a replay and another arrival order change nothing`, async () => {
      const records = competingWrites(150, seed);
      const writes = records.map(wire);
      const store = new MemoryContextStore();
      const stats = await feed(store, writes, seed);
      expect(stats.messages).toBe(150);
      expect(stats.written + stats.duplicates + stats.superseded).toBeGreaterThanOrEqual(150);

      const expected = mergeLastWriteWins(records);
      expect(new Map([...store.winners()].map(([k, r]) => [k, BigInt(r.version)]))).toEqual(
        new Map([...expected].map(([k, r]) => [k, contextVersion(r)])),
      );

      // Replay of the whole topic into the same store: nothing is written.
      const rowsBefore = store.rows.length;
      const replay = await feed(store, writes, seed + 100);
      expect([store.rows.length, replay.written]).toEqual([rowsBefore, 0]);

      // A replica fed the same writes in another order ends with the same winners.
      const replica = new MemoryContextStore();
      const shuffled = [...writes];
      const r = rng(seed * 31);
      for (let i = shuffled.length - 1; i > 0; i--) {
        const j = r(i + 1);
        [shuffled[i], shuffled[j]] = [shuffled[j] as string, shuffled[i] as string];
      }
      await feed(replica, shuffled, seed);
      expect(finalState(replica)).toEqual(finalState(store));
    });

    it(`seed ${seed}: from every cursor, each changed message exactly once; readers syncing mid-stream end in the final state`, async () => {
      const store = new MemoryContextStore();
      const { handle } = handlerFor(store);
      const writes = competingWrites(120, seed + 50).map(wire);
      const page = (user: string, limit: number) => async (cursor: string | undefined) => {
        const after = cursor === undefined ? 0 : Number(Buffer.from(cursor, 'base64url').toString().split('.')[1]);
        const rows = store.changes('acme', user, after);
        const taken = rows.slice(0, limit);
        const last = taken.length === 0 ? after : (taken[taken.length - 1] as ContextRow).seq;
        return {
          records: taken.map((row) => ({ ...toWireRecord({ ...fromRow(row) }), seq: row.seq })),
          next_cursor: encodeCursor(last, 'acme', user),
          has_more: rows.length > limit,
        };
      };
      // Readers that sync after every batch, from the start, keeping their own copy.
      const readers = ['u0', 'u1'].map((user) => ({ user, cursor: undefined as string | undefined, state: new Map() }));
      const r = rng(seed);
      for (let i = 0; i < writes.length; ) {
        const n = 1 + r(5);
        await handle(batchOf(writes.slice(i, i + n)));
        i += n;
        for (const reader of readers)
          reader.cursor = (await followChanges(page(reader.user, 1 + r(3)), reader.cursor, reader.state)).cursor;
      }
      const winners = store.winners();
      for (const reader of readers) {
        const mine = [...winners].filter(([, row]) => row.user_id === reader.user);
        expect(new Map([...reader.state].map(([k, v]) => [k, [v.content ?? null, v.deleted ?? false]]))).toEqual(
          new Map(mine.map(([k, row]) => [k, [row.deleted ? null : row.content, row.deleted === 1]])),
        );
        // Every cursor position 0..last: the messages whose winner was numbered after it, once each.
        const maxSeq = Math.max(0, ...mine.map(([, row]) => row.seq));
        for (let s = 0; s <= maxSeq; s++) {
          const { received } = await followChanges(page(reader.user, 2), encodeCursor(s, 'acme', reader.user));
          const expected = mine.filter(([, row]) => row.seq > s).map(([k]) => k);
          expect(received.sort()).toEqual(expected.sort());
        }
      }
    });
  }
});

/** A row back as a normalised record (what the read query's fromReadRow does). */
function fromRow(row: ContextRow) {
  return {
    tenant: row.tenant,
    user_id: row.user_id,
    conversation_id: row.conversation_id,
    message_id: row.message_id,
    platform: row.platform,
    role: row.role as 'user',
    content: row.deleted === 1 || row.content_stored === 0 ? null : row.content,
    content_sha256: row.content_sha256,
    content_length: row.content_length,
    tool_call_id: row.tool_call_id,
    created_at_ms: row.created_at,
    updated_at_ms: row.updated_at,
    deleted: row.deleted === 1,
    token_count: row.token_count,
  };
}
