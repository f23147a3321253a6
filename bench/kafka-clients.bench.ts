/**
 * Kafka client comparison, same broker, same messages, same shape as the ingest and processor
 * roles use them: kafkajs 2.2 against @platformatic/kafka 1.35 (the last line for Node 20), each
 * with one Kafka record per message and with the transport's envelopes (many messages of one
 * key per record: ingest/transport/kafka-envelope.ts). "kafkajs + envelopes" is our transport
 * itself (ingest/transport/kafka.transport.ts); the others are thin adapters with the same
 * guarantees: idempotent producer with acks=all; consumer group from the earliest offset, one
 * batch per partition at a time, offsets committed after the (no-op) handler.
 *
 *   npm run bench:kafka-clients -- [messages=200000] [rounds=1]
 *
 * Produce: `messages` usage-event JSON values (about 250 bytes; key = one of 16 tenants; one
 * `qf-source` header each) as 5,000-message sends, 4 sends in flight (4 concurrent HTTP ingest
 * requests). Consume: a new group reads them back in batches of at most 10,000 messages per
 * partition. For each: messages/s, this process's CPU per message (client + adapter) and the
 * broker's CPU per message (from /proc). Every client gets its own 4-partition topic; rounds
 * alternate the clients. Prints one JSON line (`"bench":"kafka-clients"`).
 *
 * Uses KAFKA_BROKERS if set, else starts the local broker (scripts/kafka-local.sh) if it is not
 * running; never stops it.
 */
import { execFileSync } from 'node:child_process';
import { Consumer as PlatConsumer, Producer as PlatProducer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import kafkajs from 'kafkajs';
import { chunkByBytes, createKafkaTransport, MAX_PRODUCE_BYTES } from '../ingest/transport/kafka.transport.ts';
import { packMessages, type RecordOut, unpackRecord } from '../ingest/transport/kafka-envelope.ts';
import type { OutgoingMessage } from '../ingest/transport/transport.ts';
import { benchEvent } from './bench-event.ts';
import { brokerPid, cpuMsOf } from './proc-stats.ts';

const total = Number(process.argv[2] ?? 200_000);
const rounds = Number(process.argv[3] ?? 1);
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

const tenants = Array.from({ length: 16 }, (_, i) => `bench-${i}`);
const messages: OutgoingMessage[] = Array.from({ length: total }, (_, i) => {
  const request = Math.floor(i / SEND_MESSAGES);
  const tenant = tenants[request % tenants.length] as string; // one tenant per request, as over HTTP
  return {
    key: tenant,
    value: JSON.stringify(benchEvent(i, `c-${run}-${i}`, tenant, Date.now())),
    headers: { 'qf-source': `http:req-${request}:${i % SEND_MESSAGES}` },
  };
});

/** What one client must do for the comparison. */
interface ClientUnderTest {
  name: string;
  /** Send one batch of messages; resolves when the broker acknowledged it. */
  send(topic: string, batch: OutgoingMessage[]): Promise<void>;
  /** Read `count` messages with a new group, committing after each batch; resolves when all are committed. */
  consumeAll(topic: string, group: string, count: number): Promise<void>;
  close(): Promise<void>;
}

/** Our transport: kafkajs with envelopes. */
function transportClient(): ClientUnderTest {
  const transport = createKafkaTransport({
    brokers: brokerList,
    clientId: 'bench-transport',
    partitions: PARTITIONS,
    produceTimeoutMs: 30_000,
  });
  const producers = new Map<string, ReturnType<typeof transport.producer>>();
  return {
    name: 'kafkajs + envelopes (the transport)',
    async send(topic, batch) {
      const p = producers.get(topic) ?? transport.producer(topic);
      producers.set(topic, p);
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

/** kafkajs with one record per message, with the transport's settings (idempotent, acks=all, eachBatch, commit after the handler). */
function kafkajsRecordClient(): ClientUnderTest {
  const kafka = new kafkajs.Kafka({ clientId: 'bench-kafkajs', brokers: brokerList, logLevel: kafkajs.logLevel.ERROR });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5, allowAutoTopicCreation: false });
  const connected = producer.connect();
  return {
    name: 'kafkajs, a record per message',
    async send(topic, batch) {
      await connected;
      // As the transport did before envelopes: a record batch must stay under message.max.bytes.
      for (const chunk of chunkByBytes(batch, MAX_PRODUCE_BYTES)) {
        await producer.send({ topic, acks: -1, messages: chunk.map((m) => ({ key: m.key, value: m.value, headers: m.headers })) });
      }
    },
    async consumeAll(topic, group, count) {
      const consumer = kafka.consumer({
        groupId: group,
        maxWaitTimeInMs: 200,
        maxBytesPerPartition: 4 * 1024 * 1024,
        maxBytes: 8 * 1024 * 1024,
      });
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      let seen = 0;
      let finish: () => void = () => undefined;
      const finished = new Promise<void>((resolve) => {
        finish = resolve;
      });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 2,
        eachBatch: async ({ batch, resolveOffset }) => {
          for (let i = 0; i < batch.messages.length; i += BATCH) {
            const chunk = batch.messages.slice(i, i + BATCH);
            const converted = chunk.map((m) => ({
              key: m.key?.toString('utf8') ?? '',
              value: m.value?.toString('utf8') ?? '',
              offset: m.offset,
              headers: Object.fromEntries(Object.entries(m.headers ?? {}).map(([k, v]) => [k, String(v)])),
            }));
            const last = converted[converted.length - 1]?.offset as string;
            resolveOffset(last);
            await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }]);
            seen += converted.length;
            if (seen >= count) finish();
          }
        },
      });
      await finished;
      await consumer.disconnect();
    },
    close: () => producer.disconnect(),
  };
}

/**
 * @platformatic/kafka 1.35 with the transport's guarantees: idempotent producer (it forces
 * acks=all); consumer with autocommit off, messages grouped per partition into batches of at most
 * BATCH (or what one fetch returned), one batch per partition at a time, committed after the handler.
 */
function platformaticClient(envelopes: boolean): ClientUnderTest {
  const producer = new PlatProducer({
    clientId: 'bench-platformatic',
    bootstrapBrokers: brokerList,
    idempotent: true,
    serializers: stringSerializers,
    autocreateTopics: false,
  });
  // TRICKY: concurrent send() calls on one idempotent producer reuse the same sequence numbers,
  // so the broker takes all but the first as duplicates while every call resolves: messages are
  // lost silently (reproduced here with 1.35.0; https://github.com/platformatic/kafka/issues/326).
  // The adapter therefore sends one batch at a time.
  let queue: Promise<unknown> = Promise.resolve();
  return {
    name: `@platformatic/kafka${envelopes ? ' + envelopes' : ', a record per message'}`,
    send(topic, batch) {
      const records: RecordOut[] = envelopes ? packMessages(batch) : batch;
      const sent = queue.then(async () => {
        for (const chunk of chunkByBytes(records, MAX_PRODUCE_BYTES)) {
          await producer.send({ messages: chunk.map((m) => ({ topic, key: m.key, value: m.value, headers: m.headers ?? {} })) });
        }
      });
      queue = sent.catch(() => undefined);
      return sent.then(() => undefined);
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
        maxBytes: 8 * 1024 * 1024,
      });
      type Msg = { partition: number; offset: bigint; key: string; value: string; headers: Map<string, string> };
      const pending = new Map<number, Msg[]>();
      const busy = new Set<number>();
      let seen = 0;
      let finish: () => void = () => undefined;
      let fail: (e: Error) => void = () => undefined;
      const finished = new Promise<void>((resolve, reject) => {
        finish = resolve;
        fail = reject;
      });
      const handle = async (partition: number, batch: Msg[]) => {
        const converted = batch.flatMap((m) =>
          unpackRecord(m.value, Object.fromEntries(m.headers)).map((u) => ({
            key: m.key,
            value: u.value,
            offset: m.offset.toString(),
            headers: u.headers,
          })),
        );
        const last = batch[batch.length - 1] as Msg;
        await consumer.commit({ offsets: [{ topic, partition, offset: last.offset + 1n, leaderEpoch: 0 }] });
        seen += converted.length;
        if (seen >= count) finish();
      };
      const drain = (partition: number): void => {
        const queued = pending.get(partition);
        if (busy.has(partition) || !queued || queued.length === 0) return;
        busy.add(partition);
        handle(partition, queued.splice(0, BATCH)).then(
          () => {
            busy.delete(partition);
            drain(partition);
          },
          (e: Error) => fail(e),
        );
      };
      stream.on('data', (m: Msg) => {
        const q = pending.get(m.partition) ?? [];
        pending.set(m.partition, q);
        q.push(m);
        // A fetch's records are pushed synchronously: drain once they are all queued.
        if (q.length === 1) setImmediate(() => drain(m.partition));
      });
      stream.on('error', (e: Error) => fail(e));
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
const makers = [kafkajsRecordClient, () => platformaticClient(false), transportClient, () => platformaticClient(true)];
const results: Record<string, Array<{ produce: unknown; consume: unknown }>> = {};
try {
  for (let round = 0; round < rounds; round++) {
    for (const make of makers) {
      const client = make();
      const topic = `bench.clients.${run}.${round}.${makers.indexOf(make)}`;
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }] });
      await client.send(topic, messages.slice(0, 1)); // warm-up: connection and producer id are not timed
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
      // Every message must be there: a client that loses acknowledged messages is disqualified.
      const stored = (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high), 0);
      log(`${client.name}: consume ${total + 1}`);
      const consume = await measure(
        () =>
          Promise.race([
            client.consumeAll(topic, `${topic}.g`, total + 1),
            new Promise<never>((_, reject) =>
              setTimeout(() => reject(new Error(`${client.name}: not every message came back`)), 180_000).unref(),
            ),
          ]),
        total + 1,
      );
      await client.close();
      results[client.name] = [...(results[client.name] ?? []), { produce, consume }];
      log(`${client.name}: ${JSON.stringify({ produce, consume, records_stored: stored })}`);
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    }
  }
} finally {
  await admin.disconnect();
}
console.log(
  JSON.stringify({
    bench: 'kafka-clients',
    messages: total,
    send_messages: SEND_MESSAGES,
    in_flight: IN_FLIGHT,
    partitions: PARTITIONS,
    results,
  }),
);
