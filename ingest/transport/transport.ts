/**
 * The event transport between ingest and processors (SPEC.md section 1).
 *
 * Two implementations: in-process (embedded mode, `in-process.transport.ts`) and Apache Kafka.
 * Both give the same contract, modelled on Kafka: messages are appended to a topic partition,
 * carry an offset, and a consumer group resumes from its last committed offset.
 *
 * Delivery guarantee: at least once. A batch handler that resolves marks its messages done
 * (offsets committed); one that throws leaves them to be delivered again.
 */

/** One message to produce. `value` is the UTF-8 JSON text of one event, kept byte for byte. */
export interface OutgoingMessage {
  /** Partitioning key: the tenant, so one tenant's events stay in order on one partition. */
  key: string;
  value: string;
  /** Small string metadata (origin file:line, content type); never usage data. */
  headers?: Record<string, string>;
}

/** A message as consumed, with its position in the log. */
export interface ConsumedMessage extends OutgoingMessage {
  topic: string;
  partition: number;
  /**
   * Kafka offsets are int64: kept as decimal strings. Messages that travelled in one Kafka
   * record (an envelope, kafka-envelope.ts) share its offset.
   */
  offset: string;
}

/** A batch of messages from one partition, in offset order. */
export interface ConsumedBatch {
  topic: string;
  partition: number;
  messages: ConsumedMessage[];
}

export interface Producer {
  /**
   * Append messages to the topic. Resolves once the transport holds them (Kafka: acknowledged
   * by the broker). Waits while the transport is full (back-pressure), never buffers without bound.
   * @throws TransportClosedError after `close()`.
   */
  send(messages: readonly OutgoingMessage[]): Promise<void>;
  close(): Promise<void>;
}

export type BatchHandler = (batch: ConsumedBatch) => Promise<void>;

export interface Consumer {
  /**
   * Deliver batches to `handler` one at a time per partition; commit a batch's offsets only
   * after its handler resolved. Resolves when the consumer is stopped (or, in process, when
   * the topic is closed and drained). A handler that throws stops the consumer and rejects.
   */
  run(handler: BatchHandler): Promise<void>;
  /** Stop fetching, let the batch in flight finish, then resolve. Idempotent. */
  stop(): Promise<void>;
}

export interface ConsumerOptions {
  topic: string;
  groupId: string;
  /** Flush a batch at this many messages... */
  maxBatchMessages: number;
  /** ...or when its oldest message waited this long, ms. */
  maxBatchWaitMs: number;
}

export interface Transport {
  producer(topic: string): Producer;
  consumer(options: ConsumerOptions): Consumer;
  close(): Promise<void>;
}

export class TransportClosedError extends Error {
  constructor(what: string) {
    super(`${what} is closed`);
    this.name = 'TransportClosedError';
  }
}
