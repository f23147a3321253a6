/**
 * Consumer lag per partition for Prometheus (`quotaflow_consumer_lag_messages`): every
 * `intervalMs` ask the Kafka admin API for each consumer group's committed offsets and each
 * topic's end offsets, and set lag = end offset - committed offset per partition.
 *
 * A collector of its own, with its own admin connection: it does not touch the transport
 * (ingest/transport/kafka.transport.ts), and a slow or failing admin call never delays a batch.
 * A failed round counts `quotaflow_consumer_lag_collect_errors_total` and keeps the last values.
 *
 * Offsets are Kafka int64s, as decimal strings (kafkajs returns them so).
 * https://kafka.js.org/docs/admin#a-name-fetch-consumer-group-offsets-a-fetch-consumer-group-offsets
 */
import kafkajs from 'kafkajs';
import type { LagMetrics, PartitionLag } from './metrics.ts';

/** End offsets of one partition (kafkajs `fetchTopicOffsets`): `high` is the next offset to be written, `low` the earliest retained. */
export interface PartitionEnds {
  partition: number;
  high: string;
  low: string;
}

/** A group's committed offset on one partition (kafkajs `fetchOffsets`): the next offset it will read; `-1` when it never committed. */
export interface CommittedOffset {
  partition: number;
  offset: string;
}

const INT = /^-?[0-9]+$/;

function offset(value: string, what: string): bigint {
  if (typeof value !== 'string' || !INT.test(value))
    throw new RangeError(`${what} must be an integer offset string, got ${JSON.stringify(value)}`);
  return BigInt(value);
}

/**
 * Lag of one group on each partition of `topic`, messages (one entry per partition of `ends`,
 * in partition order):
 * - committed offset c in [low, high]: lag = high - c;
 * - no commit (c = -1, or the partition missing from `committed`), or c < low (the committed
 *   messages were deleted by retention): the group will start from the earliest retained
 *   offset (the processors subscribe `fromBeginning`), so lag = high - low;
 * - c > high (the topic was re-created under the group): lag = 0, never negative.
 * @throws RangeError when an offset is not an integer string (names topic, partition and field).
 */
export function partitionLags(topic: string, ends: readonly PartitionEnds[], committed: readonly CommittedOffset[]): PartitionLag[] {
  const byPartition = new Map(committed.map((c) => [c.partition, c.offset]));
  return [...ends]
    .sort((a, b) => a.partition - b.partition)
    .map((e) => {
      const where = `topic ${topic} partition ${e.partition}`;
      const high = offset(e.high, `${where}: high`);
      const low = offset(e.low, `${where}: low`);
      const text = byPartition.get(e.partition);
      const c = text === undefined ? -1n : offset(text, `${where}: committed offset`);
      const from = c < 0n || c < low ? low : c;
      const lag = high > from ? high - from : 0n;
      return { topic, partition: e.partition, lag: Number(lag) };
    });
}

/** One consumer group and a topic it consumes. */
export interface LagTarget {
  group: string;
  topic: string;
}

/** The admin calls the collector makes (a kafkajs `Admin` fits). */
export interface LagAdmin {
  fetchTopicOffsets(topic: string): Promise<PartitionEnds[]>;
  fetchOffsets(o: { groupId: string; topics: string[] }): Promise<Array<{ topic: string; partitions: CommittedOffset[] }>>;
  disconnect(): Promise<void>;
}

export interface LagCollectorOptions {
  targets: readonly LagTarget[];
  metrics: LagMetrics;
  /** Period between rounds, ms; a round still running when the next is due makes that tick a no-op. */
  intervalMs: number;
  /** Give up on a round after this long, ms (then reconnect next round). Default: intervalMs. */
  roundTimeoutMs?: number;
  /** A connected admin client; called again after a failed round. */
  connect: () => Promise<LagAdmin>;
  /** A round failed (logging). */
  onError?: (err: unknown) => void;
}

export interface LagCollector {
  /** One round now. Resolves true when every group's lag was set; never rejects. */
  collect(): Promise<boolean>;
  /** Stop the timer, wait for the round in flight, disconnect. Idempotent. */
  stop(): Promise<void>;
}

/** Start collecting now and every `intervalMs`. */
export function startLagCollector(o: LagCollectorOptions): LagCollector {
  const groups = new Map<string, string[]>();
  for (const t of o.targets) groups.set(t.group, [...(groups.get(t.group) ?? []), t.topic]);
  let admin: Promise<LagAdmin> | undefined;
  let inFlight: Promise<boolean> | undefined;
  let stopped = false;

  /** @param live false once the round timed out: its late answers must not overwrite newer values. */
  async function round(live: () => boolean): Promise<void> {
    admin ??= o.connect();
    const a = await admin;
    // Computed in full before any gauge changes: a failed round leaves the last values.
    const results = await Promise.all(
      [...groups].map(async ([group, topics]) => {
        const [committed, ...ends] = await Promise.all([
          a.fetchOffsets({ groupId: group, topics }),
          ...topics.map((t) => a.fetchTopicOffsets(t)),
        ]);
        const lags = topics.flatMap((topic, i) =>
          partitionLags(topic, ends[i] as PartitionEnds[], committed.find((c) => c.topic === topic)?.partitions ?? []),
        );
        return [group, lags] as const;
      }),
    );
    if (!live()) return;
    for (const [group, lags] of results) o.metrics.set(group, lags);
  }

  function collect(): Promise<boolean> {
    inFlight ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      const ms = o.roundTimeoutMs ?? o.intervalMs;
      let live = true;
      try {
        await Promise.race([
          round(() => live),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`consumer lag round took longer than ${ms} ms`)), ms);
          }),
        ]);
        return true;
      } catch (err) {
        live = false;
        o.metrics.failed();
        o.onError?.(err);
        const a = admin;
        admin = undefined; // reconnect next round
        a?.then((c) => c.disconnect()).catch(() => undefined);
        return false;
      } finally {
        clearTimeout(timer);
        inFlight = undefined;
      }
    })();
    return inFlight;
  }

  const timer = setInterval(() => {
    if (!stopped) void collect();
  }, o.intervalMs);
  timer.unref();
  void collect();
  let stopping: Promise<void> | undefined;
  return {
    collect,
    stop() {
      stopping ??= (async () => {
        stopped = true;
        clearInterval(timer);
        await inFlight;
        await admin?.then((a) => a.disconnect()).catch(() => undefined);
      })();
      return stopping;
    },
  };
}

/** Options of the admin connection (config `kafka`). */
export interface KafkaLagConnection {
  brokers: string[];
  /** The role's kafka.client_id; the collector connects as `<clientId>-lag`. */
  clientId: string;
  logCreator?: kafkajs.logCreator;
}

/** A `connect` for `startLagCollector`: a kafkajs admin client of its own, connected. */
export function kafkaLagAdmin(c: KafkaLagConnection): () => Promise<LagAdmin> {
  const kafka = new kafkajs.Kafka({
    clientId: `${c.clientId}-lag`,
    brokers: c.brokers,
    logLevel: kafkajs.logLevel.ERROR,
    ...(c.logCreator ? { logCreator: c.logCreator } : {}),
    connectionTimeout: 3_000,
    requestTimeout: 10_000,
    retry: { retries: 2 },
  });
  return async () => {
    const admin = kafka.admin();
    await admin.connect();
    return admin;
  };
}
