/**
 * The processor role's pipelines, registered from one list: each consumes one topic with its
 * own consumer group and batch handler. Adding a pipeline = adding an entry here.
 */
import type { PriceTable } from '../domain/pricing.ts';
import type { BatchHandler, Transport } from '../ingest/transport/transport.ts';
import type { PipelineMetrics } from '../observability/metrics.ts';
import type { UsageStore } from './clickhouse-writer.ts';
import { deadLetterSinkHandler } from './dead-letter-sink.ts';
import { createRepairGate } from './repair-gate.ts';
import { createUsageHandler } from './runner.ts';
import { emptyStats, type UsageStats } from './usage-stats.ts';

export interface PipelineConfig {
  usageTopic: string;
  dlqTopic: string;
  consumerGroup: string;
  batchMaxMessages: number;
  batchMaxWaitMs: number;
  maxFutureSkewMs: number;
}

export interface PipelineDeps {
  transport: Transport;
  store: UsageStore;
  prices: PriceTable;
  config: PipelineConfig;
  onBatch?: (pipeline: string, stats: Readonly<UsageStats>) => void;
  /** Batch size and flush duration per pipeline (observability/metrics.ts); default none. */
  metrics?: PipelineMetrics;
  /**
   * Roll-up check and repair (processors/rollup-repair.ts), run alone (batches paused) every
   * `repairIntervalMs` and once more after the consumers stopped. A replay right after a crash
   * can leave a roll-up view off by a batch; this brings it back to the raw events.
   */
  repair?: { run: () => Promise<string[]>; intervalMs: number; onRepaired?: (days: string[]) => void };
}

export interface RunningPipelines {
  /** Resolves when every pipeline stopped; rejects when one fails for good. */
  done: Promise<void>;
  /** Stop fetching, finish and commit the batches in flight. Idempotent. */
  stop(): Promise<void>;
  readonly usageStats: Readonly<UsageStats>;
}

export function startPipelines(deps: PipelineDeps): RunningPipelines {
  const { config } = deps;
  const usageStats = emptyStats();
  const gate = createRepairGate();
  const usageHandler = createUsageHandler({
    store: deps.store,
    prices: deps.prices,
    maxFutureSkewMs: config.maxFutureSkewMs,
    stats: usageStats,
    onBatch: (s) => deps.onBatch?.('usage', s),
  });
  const repairNow = async () => {
    if (!deps.repair) return;
    const days = await gate.exclusive(deps.repair.run);
    if (days.length > 0) deps.repair.onRepaired?.(days);
  };
  const pipelines: Array<{ name: string; topic: string; group: string; handler: BatchHandler }> = [
    {
      name: 'usage',
      topic: config.usageTopic,
      group: config.consumerGroup,
      handler: (batch) => gate.shared(() => usageHandler(batch)),
    },
    { name: 'dead-letters', topic: config.dlqTopic, group: `${config.consumerGroup}.dlq`, handler: deadLetterSinkHandler(deps.store) },
  ];
  const metrics = deps.metrics;
  if (metrics) {
    // Timed from delivery to ClickHouse acknowledgement; a failed batch is not observed.
    for (const p of pipelines) {
      const handle = p.handler;
      p.handler = async (batch) => {
        const started = performance.now();
        await handle(batch);
        metrics.batch(p.name, batch.messages.length, (performance.now() - started) / 1000);
      };
    }
  }
  const consumers = pipelines.map((p) =>
    deps.transport.consumer({
      topic: p.topic,
      groupId: p.group,
      maxBatchMessages: config.batchMaxMessages,
      maxBatchWaitMs: config.batchMaxWaitMs,
    }),
  );
  const done = Promise.all(consumers.map((c, i) => c.run((pipelines[i] as (typeof pipelines)[number]).handler))).then(() => undefined);
  let repairing: Promise<void> = Promise.resolve();
  const timer = deps.repair
    ? setInterval(() => {
        repairing = repairing.then(repairNow).catch(() => undefined); // a failed check is retried next time
      }, deps.repair.intervalMs)
    : undefined;
  timer?.unref();
  let stopping: Promise<void> | null = null;
  return {
    done,
    stop() {
      stopping ??= (async () => {
        clearInterval(timer);
        await Promise.all(consumers.map((c) => c.stop()));
        await repairing;
        await repairNow(); // leave the aggregates consistent with the raw events
      })();
      return stopping;
    },
    usageStats,
  };
}
