/**
 * The usage processor runner: consume a batch -> decode -> look up ids -> transform -> write
 * -> commit. Same code for the in-process transport and for Kafka.
 *
 * Guarantee: a batch's offsets are committed only after ClickHouse acknowledged its rows (the
 * transport commits when the handler resolves). A failed write throws, nothing is committed,
 * and the batch is delivered again; the id lookup and insert tokens make that replay harmless.
 */
import type { PriceTable } from '../domain/pricing.ts';
import { SOURCE_HEADER } from '../ingest/replay.ts';
import type { BatchHandler, ConsumedBatch, Consumer } from '../ingest/transport/transport.ts';
import type { UsageStore } from './clickhouse-writer.ts';
import { decodeBatch, keysToLookUp, type RawMessage, transform } from './usage.processor.ts';
import { addOutcome, emptyStats, type UsageStats } from './usage-stats.ts';

export interface UsageRunnerDeps {
  consumer: Consumer;
  store: UsageStore;
  prices: PriceTable;
  /** Epoch ms; injected for tests. */
  now?: () => number;
  maxFutureSkewMs?: number;
  /** Called after each committed batch (progress bars, logs). */
  onBatch?: (stats: Readonly<UsageStats>) => void;
}

export interface UsageRunner {
  /** Resolves when the consumer stops (or its topic ends); rejects on an infrastructure error. */
  run(): Promise<void>;
  stop(): Promise<void>;
  readonly stats: Readonly<UsageStats>;
}

export function toRawMessages(batch: ConsumedBatch): RawMessage[] {
  return batch.messages.map((m) => ({
    value: m.value,
    source: m.headers?.[SOURCE_HEADER] ?? `${m.topic}/${m.partition}/${m.offset}`,
  }));
}

export interface UsageHandlerDeps {
  store: UsageStore;
  prices: PriceTable;
  now?: () => number;
  maxFutureSkewMs?: number;
  /** Counters to add each committed batch to. */
  stats: UsageStats;
  onBatch?: (stats: Readonly<UsageStats>) => void;
}

/**
 * The usage stream's batch handler: decode -> look up ids -> transform -> write. It resolves
 * only after ClickHouse acknowledged the batch; the transport then commits its offsets.
 * Batches of one partition arrive one at a time; partitions run concurrently, so one batch is
 * decoded on the JS thread while another is written by ClickHouse.
 */
export function createUsageHandler(deps: UsageHandlerDeps): BatchHandler {
  const now = deps.now ?? Date.now;
  return async (batch: ConsumedBatch): Promise<void> => {
    if (batch.messages.length === 0) return;
    const nowMs = now();
    const decoded = decodeBatch(toRawMessages(batch), { nowMs, maxFutureSkewMs: deps.maxFutureSkewMs });
    const seen = await deps.store.lookupSeen(keysToLookUp(decoded));
    const outcome = transform(decoded, { nowMs, prices: deps.prices, seen });
    await deps.store.write(outcome);
    addOutcome(deps.stats, batch.messages.length, outcome);
    deps.onBatch?.(deps.stats);
  };
}

/** A consumer bound to the usage handler (embedded import and tests). */
export function createUsageRunner(deps: UsageRunnerDeps): UsageRunner {
  const stats = emptyStats();
  const handle = createUsageHandler({ ...deps, stats });
  return {
    run: () => deps.consumer.run(handle),
    stop: () => deps.consumer.stop(),
    stats,
  };
}
