/**
 * The context sync end to end on the embedded engine (chDB) with the in-process transport:
 * POST /v1/contexts -> topic -> context pipeline -> `contexts` (ReplacingMergeTree) -> GET
 * /v1/contexts/:user and /export, wired as the roles wire it.
 *
 * - two platforms edit one message: the later updated_at wins, in either arrival order and after
 *   a replay; equal updated_at resolves the same way in every arrival order; a delete beats an
 *   older edit and loses to a newer one;
 * - incremental sync from every cursor returns each change once; readers that sync while writes
 *   (late ones included) arrive end with the merged history;
 * - a late write is returned once if it wins, never if it loses;
 * - OpenAI -> records -> (store) -> Anthropic -> records keeps the conversation;
 * - tenant isolation, and no text stored for a tenant that keeps hashes only.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { encodeCursor } from '../../domain/context-cursor.ts';
import { contextKey, contextVersion, mergeLastWriteWins } from '../../domain/context-merge.ts';
import { toWireRecord } from '../../domain/context-validation.ts';
import { fromAnthropic } from '../../ingest/context/anthropic.ts';
import { fromOpenAIChat } from '../../ingest/context/openai-chat.ts';
import { createInProcessTransport } from '../../ingest/transport/in-process.transport.ts';
import type { Transport } from '../../ingest/transport/transport.ts';
import type { ContextRecord } from '../../schemas/context-record.ts';
import { type ContextHarness, contextTestConfig, KEYS, startContextHarness } from '../helpers/context-harness.ts';
import { competingWrites, followChanges, record, rng, T0 } from '../helpers/contexts.ts';
import { openTestStore, queryRows, type TestStore } from '../helpers/store.ts';

let store: TestStore;
let transport: Transport;
let h: ContextHarness;

beforeAll(async () => {
  store = await openTestStore();
  transport = createInProcessTransport({ capacity: 10_000 });
  h = await startContextHarness({ loaded: contextTestConfig(), transport, client: store.client });
});
afterAll(async () => {
  await h?.close();
  await transport?.close();
  await store?.close();
});
beforeEach(async () => {
  await store.client.command({ query: 'TRUNCATE TABLE contexts' });
});

const msg = (patch: Partial<Parameters<typeof record>[0]> & { updatedMs: number }) =>
  record({ user_id: 'u1', conversation_id: 'c1', message_id: '000001', platform: 'openai', content: 'x', ...patch });
const wireOf = (r: ContextRecord) => {
  const { tenant: _tenant, ...rest } = toWireRecord(r);
  return rest; // the key's tenant is filled in
};
async function postAll(records: readonly ContextRecord[]): Promise<void> {
  await h.post(records.map(wireOf));
  await h.settle();
}
/** The current history of u1 as [message_id, content or null, platform, deleted]. */
async function historyOf(user = 'u1'): Promise<unknown[]> {
  const rows = await queryRows<{ message_id: string; content: string; platform: string; deleted: number; content_stored: number }>(
    store.client,
    `SELECT message_id, content, platform, deleted, content_stored FROM contexts FINAL
     WHERE tenant = 'acme' AND user_id = {u:String} ORDER BY conversation_id, message_id`,
    { u: user },
  );
  return rows.map((r) => [r.message_id, Number(r.deleted) ? null : r.content, r.platform, Number(r.deleted) === 1]);
}

describe('last-write-wins in the store', () => {
  it('two platforms edit the same message: the later updated_at wins in either order, and after a replay', async () => {
    const openai = msg({ platform: 'openai', content: 'edited on openai', updatedMs: T0 + 1_000 });
    const anthropic = msg({ platform: 'anthropic', content: 'edited on anthropic', updatedMs: T0 + 2_000 });
    for (const order of [
      [openai, anthropic],
      [anthropic, openai],
    ]) {
      await store.client.command({ query: 'TRUNCATE TABLE contexts' });
      for (const r of order) await postAll([r]); // one request each: the second arrives after the first is stored
      expect(await historyOf()).toEqual([['000001', 'edited on anthropic', 'anthropic', false]]);
    }
    // A replay (every message sent again, e.g. a client retry after a timeout) changes nothing.
    const before = await queryRows(store.client, 'SELECT count() AS n FROM contexts');
    await postAll([openai, anthropic, openai]);
    expect(await historyOf()).toEqual([['000001', 'edited on anthropic', 'anthropic', false]]);
    expect(await queryRows(store.client, 'SELECT count() AS n FROM contexts')).toEqual(before);
  });

  it('equal updated_at: the same winner in every arrival order (and the one the in-memory merge picks)', async () => {
    const versions = ['openai', 'anthropic', 'deepseek'].map((platform) =>
      msg({ platform, content: `from ${platform}`, updatedMs: T0 + 500 }),
    );
    const expected = mergeLastWriteWins(versions).get(contextKey(versions[0] as ContextRecord)) as ContextRecord;
    const orders = [
      [0, 1, 2],
      [0, 2, 1],
      [1, 0, 2],
      [1, 2, 0],
      [2, 0, 1],
      [2, 1, 0],
    ];
    for (const order of orders) {
      await store.client.command({ query: 'TRUNCATE TABLE contexts' });
      for (const i of order) await postAll([versions[i] as ContextRecord]);
      expect(await historyOf()).toEqual([['000001', expected.content, expected.platform, false]]);
      // The table's own version column picks it too (no FINAL, no processor): max(version).
      const [v] = await queryRows<{ v: string }>(store.client, 'SELECT toString(max(version)) AS v FROM contexts');
      expect(v?.v).toBe(contextVersion(expected).toString());
    }
  });

  it('a delete beats an older edit (and one stamped the same ms) but loses to a newer one', async () => {
    const edit = msg({ content: 'draft', updatedMs: T0 + 1_000 });
    const del = msg({ deleted: true, updatedMs: T0 + 2_000 });
    const sameMs = msg({ content: 'edit at the same ms', updatedMs: T0 + 2_000 });
    await postAll([del]);
    await postAll([edit, sameMs]);
    expect(await historyOf()).toEqual([['000001', null, 'openai', true]]);
    expect((await h.exportOf('u1')).records).toEqual([]); // tombstones are not exported
    await postAll([msg({ content: 'restored', updatedMs: T0 + 3_000 })]);
    expect(await historyOf()).toEqual([['000001', 'restored', 'openai', false]]);
  });

  it('merges to the in-memory last-write-wins of every write, whatever the batches (random workload)', async () => {
    const writes = competingWrites(200, 11);
    const r = rng(3);
    for (let i = 0; i < writes.length; ) {
      const n = 1 + r(25);
      await postAll(writes.slice(i, i + n));
      i += n;
    }
    const expected = mergeLastWriteWins(writes);
    const rows = await queryRows<{ key: string; v: string }>(
      store.client,
      `SELECT concat(tenant, char(0), user_id, char(0), conversation_id, char(0), message_id) AS key, toString(version) AS v FROM contexts FINAL`,
    );
    expect(new Map(rows.map((x) => [x.key, BigInt(x.v)]))).toEqual(new Map([...expected].map(([k, rec]) => [k, contextVersion(rec)])));
  });
});

describe('incremental sync', () => {
  it('from every cursor each changed message comes exactly once; readers syncing between writes end with the merged history', async () => {
    const writes = competingWrites(90, 5);
    const readers = ['u0', 'u1'].map((user) => ({ user, cursor: undefined as string | undefined, state: new Map() }));
    const r = rng(9);
    for (let i = 0; i < writes.length; ) {
      const n = 1 + r(12);
      await postAll(writes.slice(i, i + n));
      i += n;
      for (const reader of readers) {
        reader.cursor = (await followChanges((c) => h.changes(reader.user, c, { limit: 1 + r(4) }), reader.cursor, reader.state)).cursor;
      }
    }
    for (const reader of readers) {
      const exported = await h.exportOf(reader.user);
      // The reader's copy, tombstones dropped, is the export.
      const live = [...reader.state.values()].filter((x) => !x.deleted).map((x) => [x.conversation_id, x.message_id, x.content, x.seq]);
      expect(live.sort()).toEqual(exported.records.map((x) => [x.conversation_id, x.message_id, x.content, x.seq]).sort());
      // Every cursor: the messages whose winning version was numbered after it, once each.
      const all = await followChanges((c) => h.changes(reader.user, c, { limit: 1_000 }), undefined);
      const seqs = new Map([...(await fullState(reader.user)).entries()]);
      const maxSeq = Math.max(...seqs.values());
      expect(all.received.length).toBe(seqs.size);
      for (let s = 0; s <= maxSeq; s++) {
        const { received } = await followChanges((c) => h.changes(reader.user, c, { limit: 4 }), encodeCursor(s, 'acme', reader.user));
        expect(received.sort()).toEqual(
          [...seqs]
            .filter(([, seq]) => seq > s)
            .map(([k]) => k)
            .sort(),
        );
      }
    }
  });

  it('a late write with an older updated_at: returned once if it wins, never if it loses', async () => {
    await postAll([
      msg({ message_id: 'm1', content: 'm1 at t10', updatedMs: T0 + 10 }),
      msg({ message_id: 'm2', content: 'm2 at t20', updatedMs: T0 + 20 }),
    ]);
    const first = await h.changes('u1');
    expect(first.records.map((x) => [x.message_id, x.content, x.seq])).toEqual([
      ['m1', 'm1 at t10', 1],
      ['m2', 'm2 at t20', 2],
    ]);
    // Arrives late, stamped before m2's time, but newer than the stored m1: it wins and is sent.
    await postAll([msg({ message_id: 'm1', content: 'm1 at t15', updatedMs: T0 + 15 })]);
    const second = await h.changes('u1', first.next_cursor);
    expect(second.records.map((x) => [x.message_id, x.content, x.seq])).toEqual([['m1', 'm1 at t15', 3]]);
    // Arrives late and older than the stored m2: it loses, nothing changed, nothing is sent.
    await postAll([msg({ message_id: 'm2', content: 'm2 at t19', updatedMs: T0 + 19 })]);
    const third = await h.changes('u1', second.next_cursor);
    expect([third.records, third.has_more, third.next_cursor]).toEqual([[], false, second.next_cursor]);
  });

  it('pages: limit, has_more, records ordered by (updated_at, conversation, message) within a page; bad cursors are 400', async () => {
    await postAll([
      msg({ message_id: 'b', updatedMs: T0 + 5 }),
      msg({ message_id: 'a', updatedMs: T0 + 5 }),
      msg({ message_id: 'c', updatedMs: T0 + 1 }),
    ]);
    const p1 = await h.changes('u1', undefined, { limit: 2 });
    expect([p1.records.map((x) => x.message_id), p1.has_more]).toEqual([['a', 'b'], true]);
    const p2 = await h.changes('u1', p1.next_cursor, { limit: 2 });
    expect([p2.records.map((x) => x.message_id), p2.has_more]).toEqual([['c'], false]);
    const bad = await h.app.inject({
      url: `/v1/contexts/u1?since=${encodeCursor(1, 'acme', 'u2')}`,
      headers: { authorization: `Bearer ${KEYS.acme}` },
    });
    expect([bad.statusCode, bad.json().error.message]).toEqual([400, "since: belongs to another user's history"]);
  });
});

describe('formats, tenants and text policy', () => {
  it('OpenAI -> records -> store -> Anthropic (export?platform=anthropic) -> records keeps the conversation', async () => {
    const chat = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Capital of France?' },
      { role: 'assistant', content: 'Paris.' },
      { role: 'user', content: 'And of Japan? 東京?' },
    ];
    const at = '2025-06-15T11:00:00Z';
    const { records } = fromOpenAIChat(chat, { user_id: 'u1', conversation_id: 'geo', at });
    await h.post(records);
    await h.settle();
    const exported = await h.exportOf('u1', { query: 'platform=anthropic' });
    expect(exported.notes).toEqual([]);
    const conversation = (exported.conversations as Array<Record<string, unknown>>)[0] as Record<string, unknown>;
    expect(conversation).toEqual({
      conversation_id: 'geo',
      system: [{ type: 'text', text: 'You are terse.' }],
      messages: [
        { role: 'user', content: 'Capital of France?' },
        { role: 'assistant', content: 'Paris.' },
        { role: 'user', content: 'And of Japan? 東京?' },
      ],
    });
    const back = fromAnthropic(conversation, { user_id: 'u1', conversation_id: 'geo', at }).records;
    expect(back.map((x) => [x.message_id, x.role, x.content])).toEqual(records.map((x) => [x.message_id, x.role, x.content]));
  });

  it('a key reads only its tenant; an admin names the tenant', async () => {
    await postAll([msg({ content: 'acme text', updatedMs: T0 })]);
    await h.post([wireOf(msg({ tenant: 'globex', content: 'globex text', updatedMs: T0 }))], KEYS.globex);
    await h.settle();
    expect((await h.changes('u1', undefined, { key: KEYS.globex })).records.map((x) => [x.tenant, x.content])).toEqual([
      ['globex', 'globex text'],
    ]);
    expect((await h.changes('u1')).records.map((x) => [x.tenant, x.content])).toEqual([['acme', 'acme text']]);
    const other = await h.app.inject({ url: '/v1/contexts/u1?tenant=globex', headers: { authorization: `Bearer ${KEYS.acme}` } });
    expect([other.statusCode, other.json().error.code]).toEqual([403, 'forbidden']);
    const admin = await h.app.inject({ url: '/v1/contexts/u1', headers: { authorization: `Bearer ${KEYS.admin}` } });
    expect([admin.statusCode, admin.json().error.code]).toEqual([400, 'tenant_required']);
    expect((await h.exportOf('u1', { key: KEYS.admin, query: 'tenant=globex' })).records.map((x) => x.content)).toEqual(['globex text']);
    // A reader's cursor of one tenant is not a cursor of the same user id in another.
    const c = (await h.changes('u1')).next_cursor;
    const cross = await h.app.inject({ url: `/v1/contexts/u1?since=${c}`, headers: { authorization: `Bearer ${KEYS.globex}` } });
    expect(cross.statusCode).toBe(400);
  });

  it('a tenant that keeps no text: no text in contexts nor dead_letters; renders note it', async () => {
    const secret = 'private diary entry';
    await h.post(
      [
        wireOf(msg({ tenant: 'private', content: secret, updatedMs: T0 })),
        { ...wireOf(msg({ tenant: 'private', content: secret, updatedMs: T0 })), role: 'robot' },
      ],
      KEYS.private,
    );
    await h.settle();
    const stored = await queryRows<{ content: string; content_stored: number; content_length: number }>(
      store.client,
      "SELECT content, content_stored, content_length FROM contexts FINAL WHERE tenant = 'private'",
    );
    expect(stored.map((x) => [x.content, Number(x.content_stored), Number(x.content_length)])).toEqual([['', 0, 19]]);
    const letters = await queryRows<{ raw: string; errors: string }>(
      store.client,
      "SELECT raw, errors FROM dead_letters FINAL WHERE tenant = 'private'",
    );
    expect(letters).toHaveLength(1);
    expect(JSON.stringify(letters)).not.toContain('diary');
    const rendered = await h.exportOf('u1', { key: KEYS.private, query: 'platform=openai' });
    expect(rendered.conversations).toEqual([{ conversation_id: 'c1', messages: [] }]);
    expect(rendered.notes).toEqual([{ conversation_id: 'c1', message_id: '000001', reason: 'text not stored (only its hash): left out' }]);
  });
});

/** The current change number of each message of `user` (tombstones included), by context key. */
async function fullState(user: string): Promise<Map<string, number>> {
  const rows = await queryRows<{ conversation_id: string; message_id: string; seq: number | string }>(
    store.client,
    "SELECT conversation_id, message_id, seq FROM contexts FINAL WHERE tenant = 'acme' AND user_id = {u:String}",
    { u: user },
  );
  return new Map(
    rows.map((x) => [
      contextKey({ tenant: 'acme', user_id: user, conversation_id: x.conversation_id, message_id: x.message_id }),
      Number(x.seq),
    ]),
  );
}
