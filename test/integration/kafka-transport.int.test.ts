/**
 * The Kafka transport against a real Apache Kafka 4.x broker: produce/consume, commit only after
 * the handler resolved, resume from the committed offset, retry of a failed batch, keys on
 * partitions, and the unavailable error when no broker answers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createKafkaTransport, type KafkaTransport, TransportUnavailableError } from '../../ingest/transport/kafka.transport.ts';
import type { ConsumedMessage } from '../../ingest/transport/transport.ts';
import { kafkaBrokers, unique, until } from '../helpers/kafka.ts';

const brokers = kafkaBrokers();
const transports: KafkaTransport[] = [];
function transport(extra: Partial<Parameters<typeof createKafkaTransport>[0]> = {}): KafkaTransport {
  const t = createKafkaTransport({ brokers, clientId: 'qf-test', partitions: 4, produceTimeoutMs: 5_000, logLevel: 0, ...extra });
  transports.push(t);
  return t;
}
afterEach(async () => {
  await Promise.all(transports.splice(0).map((t) => t.close()));
});

const opts = (topic: string, groupId: string) => ({ topic, groupId, maxBatchMessages: 100, maxBatchWaitMs: 100 });

describe.skipIf(brokers.length === 0)('Kafka transport on a real broker', () => {
  it('delivers every message once, keyed messages stay on one partition, offsets resume after a restart', async () => {
    const topic = unique('qf.test.usage');
    const group = unique('qf.test.group');
    const t = transport();
    await t.ensureTopics([topic]);
    const producer = t.producer(topic);
    await producer.send(Array.from({ length: 1_000 }, (_, i) => ({ key: `tenant-${i % 7}`, value: `v${i}`, headers: { n: String(i) } })));

    const got: ConsumedMessage[] = [];
    const c1 = t.consumer(opts(topic, group));
    const run1 = c1.run(async (b) => {
      got.push(...b.messages);
    });
    await until(() => got.length >= 1_000, '1,000 messages');
    await c1.stop();
    await run1;
    expect(new Set(got.map((m) => m.value)).size).toBe(1_000);
    const partitionOfKey = new Map<string, number>();
    for (const m of got) {
      expect(partitionOfKey.get(m.key) ?? m.partition).toBe(m.partition);
      partitionOfKey.set(m.key, m.partition);
      expect(m.headers?.n).toBe(m.value.slice(1));
    }

    // A new consumer in the same group starts after the committed offsets: only new messages.
    await producer.send([{ key: 'tenant-1', value: 'after-restart' }]);
    const again: string[] = [];
    const c2 = t.consumer(opts(topic, group));
    const run2 = c2.run(async (b) => {
      again.push(...b.messages.map((m) => m.value));
    });
    await until(() => again.length >= 1, 'the message produced after the restart');
    await c2.stop();
    await run2;
    expect(again).toEqual(['after-restart']);
  });

  it('does not commit a batch whose handler failed: it is retried until it succeeds', async () => {
    const topic = unique('qf.test.retry');
    const t = transport();
    await t.ensureTopics([topic]);
    await t.producer(topic).send([{ key: 'k', value: 'only' }]);
    let calls = 0;
    const c = t.consumer(opts(topic, unique('qf.test.group')));
    const run = c.run(async () => {
      calls++;
      if (calls < 3) throw new Error('ClickHouse is down');
    });
    await until(() => calls >= 3, 'the third attempt', 30_000);
    await c.stop();
    await run;
    expect(calls).toBe(3);
  });

  it('a produce with no broker reachable fails fast with TransportUnavailableError', async () => {
    const t = transport({ brokers: ['127.0.0.1:1'], produceTimeoutMs: 1_500 });
    const started = Date.now();
    await expect(t.producer('nowhere').send([{ key: 'k', value: 'v' }])).rejects.toBeInstanceOf(TransportUnavailableError);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await t.ping(1_000)).toBe(false);
  });
});

describe.skipIf(brokers.length === 0)('Kafka transport: large sends', () => {
  it('a send larger than the broker message size limit (2.5 MB) is split and fully delivered', async () => {
    const topic = unique('qf.test.large');
    const t = transport();
    await t.ensureTopics([topic]);
    const value = 'x'.repeat(500);
    await t.producer(topic).send(Array.from({ length: 5_000 }, (_, i) => ({ key: 'one-tenant', value: `${i}:${value}` })));
    let got = 0;
    const c = t.consumer(opts(topic, unique('qf.test.group')));
    const run = c.run(async (b) => {
      got += b.messages.length;
    });
    await until(() => got >= 5_000, '5,000 messages');
    await c.stop();
    await run;
    expect(got).toBe(5_000);
  });
});

describe.skipIf(brokers.length === 0)('Kafka transport: rebalance', () => {
  it('a member joining mid-stream takes over partitions from the committed offsets: every message handled once', async () => {
    const topic = unique('qf.test.rebalance');
    const group = unique('qf.test.group');
    const t = transport({ sessionTimeoutMs: 6_000 }); // heartbeats every 600 ms: the join is noticed quickly
    await t.ensureTopics([topic]);
    const producer = t.producer(topic);
    let produced = 0;
    const produce = async (n: number) => {
      await producer.send(Array.from({ length: n }, (_, k) => ({ key: `tenant-${(produced + k) % 8}`, value: String(produced + k) })));
      produced += n;
    };
    await produce(2_000);
    const handled = new Map<string, string[]>(); // message -> consumers that handled it
    const handler = (name: string) => async (b: { messages: ConsumedMessage[] }) => {
      for (const m of b.messages) handled.set(m.value, [...(handled.get(m.value) ?? []), name]);
      await new Promise((r) => setTimeout(r, 20)); // a slow write
    };
    const opts2 = { topic, groupId: group, maxBatchMessages: 100, maxBatchWaitMs: 100 };
    const c1 = t.consumer(opts2);
    const run1 = c1.run(handler('c1'));
    await until(() => handled.size >= 200, 'c1 to make progress');
    const c2 = t.consumer(opts2);
    const run2 = c2.run(handler('c2'));
    // Keep traffic flowing until the group has rebalanced and c2 handles messages too.
    await until(
      async () => {
        await produce(100);
        return [...handled.values()].some((by) => by.includes('c2'));
      },
      'c2 to be assigned partitions and handle messages',
      60_000,
    );
    await until(() => handled.size >= produced, `all ${produced} messages`, 60_000);
    await Promise.all([c1.stop(), c2.stop()]);
    await Promise.all([run1, run2]);
    expect([...handled].filter(([, by]) => by.length > 1)).toEqual([]); // nobody handled a message twice
    expect(handled.size).toBe(produced);
  });
});
