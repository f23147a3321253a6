/**
 * The context sync on a real Kafka 4.x broker (and the embedded ClickHouse engine): POST
 * /v1/contexts -> topic `contexts.topic` (key (tenant, user_id)) -> context pipeline (a consumer
 * group) -> `contexts` -> GET. Skipped when QUOTAFLOW_SKIP_KAFKA=1 and KAFKA_BROKERS is unset.
 *
 * - two platforms edit one message, a delete comes and a newer edit after it: the later
 *   updated_at wins, and so does a delete over an older edit;
 * - a replay of the whole topic (a new consumer group reading from offset 0) into the same store
 *   writes nothing, and into an emptied store rebuilds the same history;
 * - every message of one user is on one partition (the change numbers rely on it);
 * - incremental sync from every cursor returns each change once.
 */
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCursor } from '../../domain/context-cursor.ts';
import { toWireRecord } from '../../domain/context-validation.ts';
import { createKafkaTransport, type KafkaTransport } from '../../ingest/transport/kafka.transport.ts';
import type { ContextRecord } from '../../schemas/context-record.ts';
import { type ContextHarness, contextTestConfig, startContextHarness } from '../helpers/context-harness.ts';
import { competingWrites, followChanges, record, T0 } from '../helpers/contexts.ts';
import { kafkaBrokers, unique } from '../helpers/kafka.ts';
import { openTestStore, queryRows, type TestStore } from '../helpers/store.ts';

const brokers = kafkaBrokers();
const topic = unique('qf.test.context');
const dlqTopic = unique('qf.test.context-dlq');

let store: TestStore;
let transport: KafkaTransport;
let h: ContextHarness;

beforeAll(async () => {
  if (brokers.length === 0) return;
  store = await openTestStore();
  transport = createKafkaTransport({ brokers, clientId: 'qf-ctx-test', partitions: 4, produceTimeoutMs: 10_000, logLevel: 0 });
  await transport.ensureTopics([topic, dlqTopic]);
  const loaded = contextTestConfig(`kafka: { dlq_topic: ${dlqTopic} }\n`);
  h = await startContextHarness({
    loaded: { ...loaded, config: { ...loaded.config, contexts: { ...loaded.config.contexts, topic } } },
    transport,
    client: store.client,
    groupId: unique('qf.test.ctx-group'),
  });
});
afterAll(async () => {
  await h?.close();
  await transport?.close();
  await store?.close();
});

const msg = (patch: Partial<Parameters<typeof record>[0]> & { updatedMs: number }) =>
  record({ user_id: 'u1', conversation_id: 'c1', message_id: '000001', platform: 'openai', content: 'x', ...patch });
const wireOf = (r: ContextRecord) => {
  const { tenant: _tenant, ...rest } = toWireRecord(r);
  return rest;
};
async function history(): Promise<unknown[]> {
  const rows = await queryRows<{ user_id: string; message_id: string; content: string; platform: string; deleted: number; seq: number }>(
    store.client,
    "SELECT user_id, conversation_id, message_id, content, platform, deleted, seq FROM contexts FINAL WHERE tenant = 'acme' ORDER BY user_id, conversation_id, message_id",
  );
  return rows.map((r) => [r.user_id, r.message_id, Number(r.deleted) ? null : r.content, r.platform, Number(r.seq)]);
}

describe.skipIf(brokers.length === 0)('context sync on a real Kafka broker', () => {
  it('later updated_at wins across platforms, a delete beats an older edit; a replay of the topic changes nothing', async () => {
    const openai = msg({ platform: 'openai', content: 'edited on openai', updatedMs: T0 + 1_000 });
    const anthropic = msg({ platform: 'anthropic', content: 'edited on anthropic', updatedMs: T0 + 2_000 });
    const other = msg({ message_id: '000002', content: 'kept', updatedMs: T0 + 1_000 });
    const del = msg({ message_id: '000002', deleted: true, updatedMs: T0 + 3_000 });
    const olderEdit = msg({ message_id: '000002', content: 'older edit', updatedMs: T0 + 2_500 });
    // Late arrivals: the newer version first, then the older ones.
    await h.post([anthropic, other].map(wireOf));
    await h.post([openai, del].map(wireOf));
    await h.post([olderEdit].map(wireOf));
    await h.settle();
    const expected = [
      ['u1', '000001', 'edited on anthropic', 'anthropic', 1],
      ['u1', '000002', null, 'openai', 3],
    ];
    expect(await history()).toEqual(expected);
    const rows = await queryRows(store.client, 'SELECT count() AS n FROM contexts');

    // Replay the whole topic in a new consumer group into the same store: nothing is written.
    await h.restartPipeline(unique('qf.test.ctx-replay'));
    await h.settle();
    expect(h.stats()).toMatchObject({ messages: 5, written: 0 });
    expect(await history()).toEqual(expected);
    expect(await queryRows(store.client, 'SELECT count() AS n FROM contexts')).toEqual(rows);

    // Replay into an emptied store (a new replica): the same history is rebuilt, numbers included.
    await store.client.command({ query: 'TRUNCATE TABLE contexts' });
    await h.restartPipeline(unique('qf.test.ctx-replica'));
    await h.settle();
    expect(await history()).toEqual(expected);
  });

  it('one user, one partition; from every cursor each change exactly once', async () => {
    const writes = competingWrites(120, 21).map((r) => ({ ...r, user_id: `k${r.user_id}` }));
    for (let i = 0; i < writes.length; i += 30) await h.post(writes.slice(i, i + 30).map(wireOf));
    await h.settle();

    // Every message of a user sits on one partition of the topic.
    const partitions = new Map<string, Set<number>>();
    const kafka = new kafkajs.Kafka({ clientId: 'qf-ctx-check', brokers, logLevel: 0 });
    const admin = kafka.admin();
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets(topic);
    await admin.disconnect();
    const total = offsets.reduce((n, o) => n + Number(o.high), 0);
    const consumer = kafka.consumer({ groupId: unique('qf.test.ctx-check') });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    let seen = 0;
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            const key = message.key?.toString() ?? '';
            const set = partitions.get(key) ?? new Set<number>();
            set.add(partition);
            partitions.set(key, set);
            if (++seen >= total) resolve();
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();
    expect(partitions.get('["acme","ku0"]')?.size).toBe(1);
    expect(partitions.get('["acme","ku1"]')?.size).toBe(1);

    for (const user of ['ku0', 'ku1']) {
      const all = await followChanges((c) => h.changes(user, c, { limit: 1_000 }), undefined);
      const seqOf = new Map(
        (await h.changes(user, undefined, { limit: 1_000 })).records.map((x) => [`${x.conversation_id}/${x.message_id}`, x.seq]),
      );
      expect(all.received.length).toBe(seqOf.size);
      const maxSeq = Math.max(...seqOf.values());
      for (let s = 0; s <= maxSeq; s++) {
        const { received } = await followChanges((c) => h.changes(user, c, { limit: 3 }), encodeCursor(s, 'acme', user));
        expect(received.length).toBe([...seqOf.values()].filter((q) => q > s).length);
      }
    }
  });
});
