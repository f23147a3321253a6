/**
 * Kafka client comparison: kafkajs (our transport, ingest/transport/kafka.transport.ts) against
 * @platformatic/kafka (a thin adapter with the same guarantees: idempotent producer with
 * acks=all; consumer group, one batch per partition at a time, offsets committed after the
 * handler), same broker, same messages, same shape as the ingest and processor roles use them.
 *
 *   npm run bench:kafka-clients -- [messages=200000]
 *
 * Produce: `messages` usage-event JSON values (about 250 bytes, key = one of 4 tenants, one
 * header) sent as 5,000-message sends, 4 sends in flight (what 4 concurrent HTTP ingest requests
 * do). Consume: a new consumer group reads them back from the start in batches of at most 10,000
 * messages per partition with a no-op handler, committing after each batch. For each: messages/s,
 * this process's CPU per message and the broker's CPU per message (from /proc; USER_HZ ticks).
 * Each client gets its own 4-partition topic. Prints one JSON line.
 *
 * Uses KAFKA_BROKERS if set, else starts the local broker (scripts/kafka-local.sh); never stops it.
 */
import { execFileSync } from 'node:child_process';
import { Consumer as PlatConsumer, Producer as PlatProducer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import kafkajs from 'kafkajs';
import { createKafkaTransport } from '../ingest/transport/kafka.transport.ts';
import type { OutgoingMessage } from '../ingest/transport/transport.ts';
import { brokerPid, cpuMsOf } from './proc-stats.ts';

const total = Number(process.argv[2] ?? 200_000);
const SEND_MESSAGES = 5_000;
const IN_FLIGHT = 4;
const BATCH = 10_000;
const PARTITIONS = 4;

let brokers = process.env.KAFKA_BROKERS;
if (!brokers) {
  const out = execFileSync('scripts/kafka-local.sh', ['start'], { encoding: 'utf8' });
  brokers = /KAFKA_BROKERS=(\S+)/.exec(out)?.[1] as string;
}
const brokerList = brokers.split(',');
const run = Date.now().toString(36);
const log = (msg: string) => process.stderr.write(`[bench:kafka-clients] ${msg}\n`);

const tenants = ['bench-0', 'bench-1', 'bench-2', 'bench-3'];
const messages: OutgoingMessage[] = Array.from({ length: total }, (_, i) => {
  const tenant = tenants[i % tenants.length] as string;
  return {
    key: tenant,
    value: JSON.stringify({
      event_id: `c-${run}-${i}`,
      timestamp: Date.now(),
      tenant,
      user_id: `u${i % 200}`,
      task_id: `t${i % 50}`,
      provider: 'openai',
      model: i % 3 ? 'gpt-4o' : 'gpt-4o-mini',
      input_tokens: 500 + (i % 1000),
      output_tokens: 20 + (i % 300),
      latency_ms: 300 + (i % 900),
    }),
    headers: { 'qf-source': `http:req-${Math.floor(i / SEND_MESSAGES)}:${i % SEND_MESSAGES}` },
  };
});

/** What one client must do for the comparison. */
interface ClientUnderTest {
  name: string;
  /** Send one batch; resolves when the broker acknowledged it. */
  send(topic: string, batch: OutgoingMessage[]): Promise<void>;
  /** Read `count` messages with a new group, committing after each batch; resolves when all are committed. */
  consumeAll(topic: string, group: string, count: number): Promise<void>;
  close(): Promise<void>;
}

function kafkajsClient(): ClientUnderTest {
  const transport = createKafkaTransport({ brokers: brokerList, clientId: 'bench-kafkajs', partitions: PARTITIONS, produceTimeoutMs: 30_000 });
  const producers = new Map<string, ReturnType<typeof transport.producer>>();
  return {
    name: 'kafkajs',
    async send(topic, batch) {
      let p = producers.get(topic);
      if (!p) producers.set(topic, (p = transport.producer(topic)));
      await p.send(batch);
    },
    async consumeAll(topic, group, count) {
      const consumer = transport.consumer({ topic, groupId: group, maxBatchMessages: BATCH, maxBatchWaitMs: 200 });
      let seen = 0;
      await new Promise<void>((resolve, reject) => {
        consumer
          .run(async (batch) => {
            seen += batch.messages.length;
            if (seen >= count) setImmediate(resolve); // after this batch is committed
          })
          .catch(reject);
      });
      await consumer.stop();
    },
    close: () => transport.close(),
  };
}

/**
 * @platformatic/kafka 1.x with the transport's guarantees: idempotent producer (it forces
 * acks=all); consumer with autocommit off, messages grouped per partition into batches of at most
 * BATCH (or what one fetch returned), one batch per partition at a time, committed after the handler.
 */
function platformaticClient(): ClientUnderTest {
  const producer = new PlatProducer({
    clientId: 'bench-platformatic',
    bootstrapBrokers: brokerList,
    idempotent: true,
    serializers: stringSerializers,
    autocreateTopics: false,
  });
  return {
    name: '@platformatic/kafka',
    async send(topic, batch) {
      await producer.send({
        messages: batch.map((m) => ({ topic, key: m.key, value: m.value, headers: m.headers ?? {} })),
      });
    },
    async consumeAll(topic, group, count) {
      const consumer = new PlatConsumer({
        clientId: 'bench-platformatic',
        groupId: group,
        bootstrapBrokers: brokerList,
        deserializers: stringDeserializers,
      });
      const stream = await consumer.consume({
        topics: [topic],
        mode: 'committed',
        fallbackMode: 'earliest',
        autocommit: false,
        maxWaitTime: 200,
        maxBytesPerPartition: 4 * 1024 * 1024,
        maxBytes: 16 * 1024 * 1024,
      });
      type Msg = { partition: number; offset: bigint; key: string; value: string; headers: Map<string, string> };
      const pending = new Map<number, Msg[]>();
      const busy = new Map<number, Promise<void>>();
      let seen = 0;
      let finish: () => void = () => undefined;
      const finished = new Promise<void>((resolve) => {
        finish = resolve;
      });
      const handler = async (partition: number, batch: Msg[]) => {
        // The handler of the comparison does nothing but convert the messages as ours does.
        const converted = batch.map((m) => ({ key: m.key, value: m.value, offset: m.offset.toString(), headers: Object.fromEntries(m.headers) }));
        const last = batch[batch.length - 1] as Msg;
        await consumer.commit({ offsets: [{ topic, partition, offset: last.offset + 1n, leaderEpoch: 0 }] });
        seen += converted.length;
        if (seen >= count) finish();
      };
      const drain = (partition: number): void => {
        if (busy.has(partition)) return;
        const queue = pending.get(partition);
        if (!queue || queue.length === 0) return;
        const batch = queue.splice(0, BATCH);
        busy.set(
          partition,
          handler(partition, batch).finally(() => {
            busy.delete(partition);
            drain(partition);
          }),
        );
      };
      stream.on('data', (m: Msg) => {
        let q = pending.get(m.partition);
        if (!q) pending.set(m.partition, (q = []));
        q.push(m);
      });
      stream.on('fetch', () => {
        for (const p of pending.keys()) drain(p);
      });
      await finished;
      await stream.close();
      await consumer.close(true);
    },
    close: () => producer.close(),
  };
}

async function measure(fn: () => Promise<void>, n: number) {
  const pid = brokerPid();
  const b0 = cpuMsOf(pid);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const seconds = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return {
    messages_per_s: Math.round(n / seconds),
    client_cpu_us_per_message: Number(((c.user + c.system) / n).toFixed(2)),
    broker_cpu_us_per_message: Number((((cpuMsOf(pid) - b0) * 1000) / n).toFixed(2)),
  };
}

const admin = new kafkajs.Kafka({ brokers: brokerList, clientId: 'bench-admin', logLevel: kafkajs.logLevel.NOTHING }).admin();
await admin.connect();
const results: Record<string, unknown> = {};
try {
  for (const make of [kafkajsClient, platformaticClient, kafkajsClient, platformaticClient]) {
    const client = make();
    const topic = `bench.clients.${run}.${client.name.replace(/\W/g, '')}.${Object.keys(results).length}`;
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }] });
    // Warm-up: one send, so connection and producer-id set-up is not timed.
    await client.send(topic, messages.slice(0, 1));
    log(`${client.name}: produce ${total}`);
    const produce = await measure(async () => {
      let next = 0;
      const worker = async () => {
        while (next < total) {
          const from = next;
          next += SEND_MESSAGES;
          await client.send(topic, messages.slice(from, Math.min(total, from + SEND_MESSAGES)));
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    }, total);
    log(`${client.name}: consume ${total + 1}`);
    const consume = await measure(() => client.consumeAll(topic, `${topic}.g`, total + 1), total + 1);
    await client.close();
    const key = `${client.name}#${Object.keys(results).length < 2 ? 1 : 2}`;
    results[key] = { produce, consume };
    log(`${key}: ${JSON.stringify(results[key])}`);
  }
} finally {
  await admin.disconnect();
}
console.log(JSON.stringify({ bench: 'kafka-clients', messages: total, send_messages: SEND_MESSAGES, in_flight: IN_FLIGHT, results }));
process.exit(0);
