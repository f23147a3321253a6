/**
 * Apache Kafka transport (kafkajs 2.2), behind the same `Transport` contract as the in-process
 * one, so the processor runner and HTTP ingest do not know which they use. Verified against a
 * real Kafka 4.4 broker in KRaft mode (test/integration/kafka-*.int.test.ts).
 *
 * Records: the messages of one `send()` that share a key travel as envelopes of up to 1,000
 * messages per Kafka record (kafka-envelope.ts), because the client's cost is per record; the
 * consumer unpacks them, and reads any plain record (an external producer's) as one message. The
 * messages of an envelope share its offset. Consumer batches are whole records of one partition,
 * at most `maxBatchMessages` messages plus the rest of the last envelope.
 *
 * Client choice (kafkajs 2.2, not @platformatic/kafka 1.35): measured in
 * bench/kafka-clients.bench.ts and docs/benchmarks.md.
 *
 * Guarantees, and where they are enforced:
 * - Producer: `acks: -1` (all in-sync replicas) and the idempotent producer, so a broker retry
 *   never writes a message twice; `send()` resolves only once the broker acknowledged.
 *   A send that fails or outlasts `produceTimeoutMs` rejects with `TransportUnavailableError`.
 * - Consumer: manual commits (`autoCommit: false`). A batch's offset (last + 1) is committed only
 *   after the handler resolved, i.e. after ClickHouse acknowledged its rows. A handler error is
 *   retried with backoff while this member still owns the partition; replays are harmless
 *   because the processor de-duplicates by (tenant, event_id).
 * - Rebalances: before each chunk the consumer checks `isStale()`; a partition that was revoked
 *   is never written for. kafkajs rejoins the group only between batches, and the eager
 *   rebalance protocol gives the partition to another member only after this one rejoined (or
 *   its session expired), so two members never write the same offsets at the same time.
 * https://kafka.js.org/docs/consuming#a-name-each-batch-a-eachbatch
 */
import kafkajs, { type Admin, type EachBatchPayload, type Consumer as KafkaConsumer, type Producer as KafkaProducer } from 'kafkajs';
import { packMessages, unpackRecord } from './kafka-envelope.ts';
import {
  type BatchHandler,
  type ConsumedMessage,
  type Consumer,
  type ConsumerOptions,
  type Producer,
  type Transport,
  TransportClosedError,
} from './transport.ts';

const { Kafka, logLevel } = kafkajs;

export interface KafkaTransportOptions {
  brokers: string[];
  clientId: string;
  /** Partitions when `ensureTopics` creates a topic. */
  partitions: number;
  /** Consumer group session timeout, ms (default 30 s); heartbeats go every tenth of it. */
  sessionTimeoutMs?: number;
  /** A produce not acknowledged within this time fails (HTTP ingest answers 503), ms. */
  produceTimeoutMs: number;
  /** kafkajs log level (default: errors only). */
  logLevel?: number;
  /** kafkajs log creator (route its logs into the app's logger). */
  logCreator?: kafkajs.logCreator;
  /** Called when the consumer retries a failed batch (logging/metrics). */
  onRetry?: (info: { topic: string; partition: number; attempt: number; error: Error }) => void;
}

/** The broker did not acknowledge in time or is unreachable: nothing was acknowledged. */
export class TransportUnavailableError extends Error {
  readonly code = 'QF_TRANSPORT_UNAVAILABLE';
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = 'TransportUnavailableError';
  }
}

export interface KafkaTransport extends Transport {
  /** Create the topics that do not exist yet (idempotent). */
  ensureTopics(topics: readonly string[]): Promise<void>;
  /** True when a broker answers a metadata request within `timeoutMs`. */
  ping(timeoutMs?: number): Promise<boolean>;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TransportUnavailableError(`${what}: no acknowledgement within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Bytes of messages per produce request. The broker refuses a record batch larger than
 * `message.max.bytes` (default 1,048,588) with MESSAGE_TOO_LARGE; half of that leaves room for
 * record overhead. https://kafka.apache.org/documentation/#brokerconfigs_message.max.bytes
 */
export const MAX_PRODUCE_BYTES = 512 * 1024;

/** Split messages, in order, into runs of at most `maxBytes` (a larger single message goes alone). */
export function chunkByBytes<T extends { key: string; value: string }>(messages: readonly T[], maxBytes: number): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = Buffer.byteLength(m.value) + Buffer.byteLength(m.key) + 64;
    if (current.length > 0 && bytes + size > maxBytes) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(m);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * Bytes one partition fetch may return: a full batch of `maxBatchMessages` events at 512 bytes
 * each (a usage event is about 250-350 bytes of JSON, plus envelope escaping), at least 1 MiB
 * (large single events) and at most 64 MiB. Bounds the consumer's fetch buffer (memory).
 */
export function fetchBytesFor(maxBatchMessages: number): number {
  return Math.min(64 * 1024 * 1024, Math.max(1024 * 1024, maxBatchMessages * 512));
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function createKafkaTransport(options: KafkaTransportOptions): KafkaTransport {
  const kafka = new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    logLevel: options.logLevel ?? logLevel.ERROR,
    ...(options.logCreator ? { logCreator: options.logCreator } : {}),
    connectionTimeout: 3_000,
    requestTimeout: 10_000,
    // Reconnects are cheap and quick; the caller decides how long a produce may take.
    retry: { initialRetryTime: 100, maxRetryTime: 2_000, retries: 5 },
  });
  const producers = new Set<KafkaProducer>();
  const consumers = new Set<{ stop(): Promise<void> }>();
  let closed = false;

  // Readiness pings use a client without retries (its connect would otherwise retry a refused
  // connection until the ping's timeout) and without logs (a probe every few seconds while the
  // broker is down would flood them): a broker that is down is reported at once.
  const pingClient = new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    retry: { retries: 0 },
  });

  async function withAdmin<T>(fn: (admin: Admin) => Promise<T>, client = kafka): Promise<T> {
    const admin = client.admin();
    await admin.connect();
    try {
      return await fn(admin);
    } finally {
      await admin.disconnect();
    }
  }

  return {
    async ensureTopics(topics) {
      await withAdmin(async (admin) => {
        const existing = new Set(await admin.listTopics());
        const missing = topics.filter((t) => !existing.has(t));
        if (missing.length === 0) return;
        await admin.createTopics({
          waitForLeaders: true,
          topics: missing.map((topic) => ({ topic, numPartitions: options.partitions, replicationFactor: -1 })),
        });
      });
    },

    async ping(timeoutMs = 2_000) {
      try {
        await withTimeout(
          withAdmin((admin) => admin.describeCluster(), pingClient),
          timeoutMs,
          'ping',
        );
        return true;
      } catch {
        return false;
      }
    },

    producer(topic: string): Producer {
      if (closed) throw new TransportClosedError('kafka transport');
      // Idempotent: the broker drops a retried batch it already has (per producer session).
      // https://kafka.js.org/docs/producing#options
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5, allowAutoTopicCreation: false });
      producers.add(producer);
      let connecting: Promise<void> | null = null;
      let producerClosed = false;
      const connect = () => {
        connecting ??= producer.connect().catch((err: unknown) => {
          connecting = null; // try again on the next send
          throw err;
        });
        return connecting;
      };
      return {
        async send(messages) {
          if (producerClosed || closed) throw new TransportClosedError(`producer for ${topic}`);
          if (messages.length === 0) return;
          try {
            await withTimeout(
              (async () => {
                await connect();
                // Messages of one key travel in envelopes of up to 1,000 (kafka-envelope.ts): the
                // client's cost is per record. One produce request per chunk: a record batch must
                // stay under the broker's message.max.bytes (1 MiB by default).
                for (const chunk of chunkByBytes(packMessages(messages), MAX_PRODUCE_BYTES)) {
                  await producer.send({
                    topic,
                    acks: -1,
                    timeout: options.produceTimeoutMs,
                    messages: chunk.map((m) => ({ key: m.key, value: m.value, headers: m.headers })),
                  });
                }
              })(),
              options.produceTimeoutMs,
              `produce to ${topic}`,
            );
          } catch (err) {
            if (err instanceof TransportUnavailableError) throw err;
            throw new TransportUnavailableError(`produce to ${topic} failed: ${(err as Error).message}`, { cause: err });
          }
        },
        async close() {
          producerClosed = true;
          producers.delete(producer);
          await producer.disconnect();
        },
      };
    },

    consumer(opts: ConsumerOptions): Consumer {
      if (closed) throw new TransportClosedError('kafka transport');
      const consumer: KafkaConsumer = kafka.consumer({
        groupId: opts.groupId,
        // Fetch returns as soon as data is there, or after this wait (also bounds stop() time).
        maxWaitTimeInMs: Math.min(opts.maxBatchWaitMs, 500),
        // Room for a full batch per partition fetch (fetchBytesFor), for two partitions per fetch.
        maxBytesPerPartition: fetchBytesFor(opts.maxBatchMessages),
        maxBytes: 2 * fetchBytesFor(opts.maxBatchMessages),
        sessionTimeout: options.sessionTimeoutMs ?? 30_000,
        heartbeatInterval: Math.round((options.sessionTimeoutMs ?? 30_000) / 10),
        allowAutoTopicCreation: false,
        retry: { initialRetryTime: 300, maxRetryTime: 10_000, retries: 10 },
      });
      let stopping = false;
      let settle: { resolve: () => void; reject: (e: Error) => void } | null = null;
      const done = new Promise<void>((resolve, reject) => {
        settle = { resolve, reject };
      });
      consumer.on(consumer.events.CRASH, (e) => {
        // kafkajs restarts on retriable crashes; a non-restarting crash ends run().
        if (!e.payload.restart && !stopping) settle?.reject(e.payload.error);
      });

      const eachBatch = async (payload: EachBatchPayload): Promise<void> => {
        const { batch, isRunning, isStale, heartbeat } = payload;
        const records = batch.messages;
        let next = 0;
        while (next < records.length && isRunning() && !isStale()) {
          // A chunk is whole records (an envelope is never split: offsets are per record), up to
          // maxBatchMessages messages, so it may exceed that by one envelope's messages.
          const messages: ConsumedMessage[] = [];
          let lastOffset = '';
          while (next < records.length && messages.length < opts.maxBatchMessages) {
            const r = records[next++] as (typeof records)[number];
            const key = r.key?.toString('utf8') ?? '';
            const headers: Record<string, string> = {};
            for (const [k, v] of Object.entries(r.headers ?? {})) headers[k] = String(v);
            for (const m of unpackRecord(r.value?.toString('utf8') ?? '', headers)) {
              messages.push({ topic: batch.topic, partition: batch.partition, offset: r.offset, key, value: m.value, headers: m.headers });
            }
            lastOffset = r.offset;
          }
          for (let attempt = 1; ; attempt++) {
            // TRICKY: never write for a partition this member no longer owns.
            if (!isRunning() || isStale()) return;
            try {
              await handler({ topic: batch.topic, partition: batch.partition, messages });
              break;
            } catch (err) {
              options.onRetry?.({ topic: batch.topic, partition: batch.partition, attempt, error: err as Error });
              if (stopping) throw err;
              await sleep(Math.min(30_000, 250 * 2 ** Math.min(attempt, 7)));
              await heartbeat(); // keeps the partition while ClickHouse is down; throws on rebalance
            }
          }
          if (lastOffset === '') continue;
          payload.resolveOffset(lastOffset);
          // Commit exactly what was stored. A failed commit (e.g. during a rebalance) only means
          // a replay, which the processor's de-duplication makes harmless.
          await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(lastOffset) + 1n).toString() }]);
        }
      };

      let handler: BatchHandler = async () => undefined;
      const handle = {
        async stop() {
          if (stopping) return;
          stopping = true;
          await consumer.disconnect(); // waits for the batch in flight, then leaves the group
          consumers.delete(handle);
          settle?.resolve();
        },
      };
      consumers.add(handle);
      return {
        async run(h: BatchHandler) {
          handler = h;
          await consumer.connect();
          await consumer.subscribe({ topics: [opts.topic], fromBeginning: true });
          await consumer.run({
            autoCommit: false,
            eachBatchAutoResolve: false,
            partitionsConsumedConcurrently: 2,
            eachBatch,
          });
          return done;
        },
        stop: () => handle.stop(),
      };
    },

    async close() {
      closed = true;
      await Promise.all([...consumers].map((c) => c.stop()));
      await Promise.all([...producers].map((p) => p.disconnect()));
      producers.clear();
    },
  };
}
