/**
 * Metrics of what the usage store wrote (observability/metrics.ts): a `UsageStore` wrapper that,
 * after each write ClickHouse acknowledged, counts rows per table and dead letters per reason and
 * observes the batch's event freshness. A failed write counts nothing (it throws through).
 *
 * Freshness (`quotaflow_event_freshness_seconds`), one observation per batch with events:
 * acknowledgement time - the oldest event `timestamp` of the batch, seconds. Every event of the
 * batch became queryable in the aggregates at most this long after its call finished (the minute
 * views are written by the same insert). It includes the emitter's and ingest's delays and the
 * clock skew between the client and the processor; events replayed from old files show as their
 * age. Observed once per batch, not per event, so its cost does not grow with the event rate.
 */
import type { StoreMetrics } from '../observability/metrics.ts';
import type { UsageStore } from './clickhouse-writer.ts';

/**
 * @param now current time, epoch ms (tests inject it). Default Date.now.
 * @returns a store with the same behaviour as `store` that records into `metrics`.
 */
export function withStoreMetrics(store: UsageStore, metrics: StoreMetrics, now: () => number = Date.now): UsageStore {
  return {
    lookupSeen: (keys) => store.lookupSeen(keys),
    async write(outcome) {
      await store.write(outcome);
      const ackMs = now();
      metrics.written('usage_events', outcome.events.length);
      metrics.written('dead_letters', outcome.deadLetters.length);
      const byReason = new Map<(typeof outcome.deadLetters)[number]['reason'], number>();
      for (const d of outcome.deadLetters) byReason.set(d.reason, (byReason.get(d.reason) ?? 0) + 1);
      for (const [reason, n] of byReason) metrics.deadLetter(reason, n);
      if (outcome.events.length > 0) {
        let oldest = Number.POSITIVE_INFINITY;
        for (const e of outcome.events) if (e.timestamp < oldest) oldest = e.timestamp;
        metrics.freshness(Math.max(0, (ackMs - oldest) / 1000));
      }
    },
  };
}
