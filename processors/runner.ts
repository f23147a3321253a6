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
import type { ConsumedBatch, Consumer } from '../ingest/transport/transport.ts';
import type { UsageStore } from './clickhouse-writer.ts';
import { decodeBatch, dedupKey, keysToLookUp, type RawMessage, transform } from './usage.processor.ts';
import { addOutcome, emptyStats, type UsageStats } from './usage-stats.ts';

export const DEFAULT_WRITE_CHUNK = 20_000;

export interface UsageRunnerDeps {
  consumer: Consumer;
  store: UsageStore;
  prices: PriceTable;
  /** Epoch ms; injected for tests. */
  now?: () => number;
  maxFutureSkewMs?: number;
  /** Events per ClickHouse insert within a batch (default 5,000). */
  writeChunk?: number;
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

export function createUsageRunner(deps: UsageRunnerDeps): UsageRunner {
  const now = deps.now ?? Date.now;
  const chunkSize = deps.writeChunk ?? DEFAULT_WRITE_CHUNK;
  const stats = emptyStats();

  /**
   * One batch, cut into chunks so that decoding chunk k+1 (JS thread) overlaps the ClickHouse
   * write of chunk k (its own thread in chDB, another machine for a server). At most one write
   * is in flight. The handler resolves only when every chunk is acknowledged, so the batch's
   * offsets are committed after all of its rows are stored.
   */
  const handle = async (batch: ConsumedBatch): Promise<void> => {
    if (batch.messages.length === 0) return;
    const nowMs = now();
    const raws = toRawMessages(batch);
    // Keys accepted by earlier chunks of this batch whose write may not be visible to a lookup yet.
    const pending = new Map<string, string>();
    let inFlight: Promise<void> = Promise.resolve();
    try {
      for (let i = 0; i < raws.length; i += chunkSize) {
        const chunk = raws.slice(i, i + chunkSize);
        const decoded = decodeBatch(chunk, { nowMs, maxFutureSkewMs: deps.maxFutureSkewMs });
        const seen = await deps.store.lookupSeen(keysToLookUp(decoded));
        for (const [k, v] of pending) if (!seen.has(k)) seen.set(k, v);
        const outcome = transform(decoded, { nowMs, prices: deps.prices, seen });
        for (const e of outcome.events) pending.set(dedupKey(e.tenant, e.event_id), e.fingerprint);
        await inFlight;
        inFlight = deps.store.write(outcome).then(() => addOutcome(stats, chunk.length, outcome));
        // The rejection is observed by the next `await inFlight`; avoid an unhandled-rejection crash meanwhile.
        inFlight.catch(() => undefined);
      }
    } finally {
      await inFlight;
    }
    stats.batches++;
    deps.onBatch?.(stats);
  };
  return {
    run: () => deps.consumer.run(handle),
    stop: () => deps.consumer.stop(),
    stats,
  };
}
