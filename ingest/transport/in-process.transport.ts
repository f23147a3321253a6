/**
 * In-process transport for embedded mode: one bounded log per topic, one partition, one
 * consumer group. Same contract as Kafka (offsets, commit after the handler resolves), so the
 * processor runner cannot tell them apart.
 *
 * Bounded: a topic holds at most `capacity` uncommitted messages; `send()` waits for room
 * (back-pressure on the importer or HTTP handler) instead of growing memory.
 * Not durable: what is not committed when the process dies is gone, which is why embedded
 * importers are re-runnable (deterministic event ids make a second import add nothing).
 */
import {
  type BatchHandler,
  type ConsumedMessage,
  type Consumer,
  type ConsumerOptions,
  type OutgoingMessage,
  type Producer,
  type Transport,
  TransportClosedError,
} from './transport.ts';

interface Waiter {
  resolve: () => void;
}

class PartitionLog {
  /** Uncommitted messages, oldest first; `queue[0]` has offset `headOffset`. */
  private queue: ConsumedMessage[] = [];
  private nextOffset = 0;
  private inFlight = 0;
  private ended = false;
  private readonly spaceWaiters: Waiter[] = [];
  private dataWaiter: Waiter | null = null;
  /** Arrival time (ms) of each message in `queue`, same index. */
  private arrivedAt: number[] = [];

  constructor(
    readonly topic: string,
    readonly partition: number,
    private readonly capacity: number,
  ) {}

  async append(messages: readonly OutgoingMessage[]): Promise<void> {
    let i = 0;
    while (i < messages.length) {
      if (this.ended) throw new TransportClosedError(`topic ${this.topic} partition ${this.partition}`);
      const room = this.capacity - this.queue.length;
      if (room <= 0) {
        await new Promise<void>((resolve) => this.spaceWaiters.push({ resolve }));
        continue;
      }
      const take = messages.slice(i, i + room);
      const now = Date.now();
      for (const m of take) {
        this.arrivedAt.push(now);
        this.queue.push({
          key: m.key,
          value: m.value,
          headers: m.headers,
          topic: this.topic,
          partition: this.partition,
          offset: String(this.nextOffset++),
        });
      }
      i += take.length;
      this.wakeConsumer();
    }
  }

  end(): void {
    this.ended = true;
    this.wakeConsumer();
    // Producers waiting for room must not wait forever on a topic nobody will drain.
    for (const w of this.spaceWaiters.splice(0)) w.resolve();
  }

  private wakeConsumer(): void {
    const w = this.dataWaiter;
    this.dataWaiter = null;
    w?.resolve();
  }

  /**
   * Wait until a batch is due: enough messages, the oldest waited long enough, or the end.
   * Once stopped, what is left is handed out at once (drained), then null: this log is not
   * durable, so a message a producer was told is stored must reach the handler before the
   * process exits.
   */
  async nextBatch(max: number, maxWaitMs: number, stopped: () => boolean): Promise<ConsumedMessage[] | null> {
    for (;;) {
      const pending = this.queue.length - this.inFlight;
      if (stopped() && pending === 0) return null;
      // Age of the oldest message not yet handed out (each message keeps its own arrival time,
      // so leftovers of a full batch are not made to wait a second full period).
      const age = pending > 0 ? Date.now() - (this.arrivedAt[this.inFlight] as number) : 0;
      if (pending >= max || (pending > 0 && (this.ended || stopped() || age >= maxWaitMs))) {
        const batch = this.queue.slice(this.inFlight, this.inFlight + max);
        this.inFlight += batch.length;
        return batch;
      }
      if (pending === 0 && this.ended) return null;
      const wait = pending > 0 ? Math.max(1, maxWaitMs - age) : maxWaitMs;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.dataWaiter = {
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        };
      });
    }
  }

  /** The handler resolved: drop the batch from the log and let producers in. */
  commit(count: number): void {
    this.queue.splice(0, count);
    this.arrivedAt.splice(0, count);
    this.inFlight -= count;
    for (const w of this.spaceWaiters.splice(0)) w.resolve();
  }

  /** The handler failed: hand the batch out again to the next consumer. */
  rewind(count: number): void {
    this.inFlight -= count;
  }

  interrupt(): void {
    this.wakeConsumer();
  }
}

export interface InProcessTransportOptions {
  /** Max uncommitted messages per topic (split evenly over its partitions) before `send()` waits. */
  capacity: number;
  /**
   * Partitions per topic (default 2). As with Kafka, a key always maps to the same partition and
   * each partition is consumed one batch at a time, in order; partitions are consumed concurrently,
   * so one batch can be decoded while another is being written.
   */
  partitions?: number;
}

/** FNV-1a 32-bit hash of the key: a stable key -> partition map (not Kafka's murmur2; in-process only). */
export function partitionOf(key: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

/** Create the embedded-mode transport. Closing a producer ends its topic (the consumer drains and returns). */
export function createInProcessTransport(options: InProcessTransportOptions): Transport {
  const partitions = options.partitions ?? 2;
  const perPartition = Math.max(1, Math.floor(options.capacity / partitions));
  const topics = new Map<string, PartitionLog[]>();
  let closed = false;
  const logs = (topic: string): PartitionLog[] => {
    let t = topics.get(topic);
    if (!t) {
      if (closed) throw new TransportClosedError('in-process transport');
      t = Array.from({ length: partitions }, (_, p) => new PartitionLog(topic, p, perPartition));
      topics.set(topic, t);
    }
    return t;
  };

  return {
    producer(topic: string): Producer {
      const parts = logs(topic);
      let producerClosed = false;
      return {
        async send(messages) {
          if (producerClosed) throw new TransportClosedError(`producer for ${topic}`);
          const byPartition: OutgoingMessage[][] = parts.map(() => []);
          for (const m of messages) byPartition[partitionOf(m.key, partitions)]?.push(m);
          await Promise.all(byPartition.map((ms, p) => (ms.length > 0 ? parts[p]?.append(ms) : undefined)));
        },
        async close() {
          producerClosed = true;
          for (const p of parts) p.end();
        },
      };
    },

    consumer(opts: ConsumerOptions): Consumer {
      const parts = logs(opts.topic);
      let stopped = false;
      let running: Promise<void> | null = null;
      const consumePartition = async (log: PartitionLog, handler: BatchHandler): Promise<void> => {
        for (;;) {
          const messages = await log.nextBatch(opts.maxBatchMessages, opts.maxBatchWaitMs, () => stopped);
          if (!messages) return;
          try {
            await handler({ topic: opts.topic, partition: log.partition, messages });
          } catch (err) {
            log.rewind(messages.length);
            // One partition failed: stop the others too, as a crashed Kafka consumer would.
            stopped = true;
            for (const p of parts) p.interrupt();
            throw err;
          }
          log.commit(messages.length);
        }
      };
      return {
        run(handler: BatchHandler) {
          running = Promise.all(parts.map((log) => consumePartition(log, handler))).then(() => undefined);
          return running;
        },
        async stop() {
          stopped = true;
          for (const p of parts) p.interrupt();
          await running?.catch(() => undefined);
        },
      };
    },

    async close() {
      closed = true;
      for (const t of topics.values()) for (const p of t) p.end();
    },
  };
}
