/**
 * Embedded-mode wiring: open the store, run files through in-process transport -> processor
 * runner -> ClickHouse, and close everything in order. Roles stay separate; this only connects them.
 */

import type { LoadedConfig } from '../config/load.ts';
import type { ImportedRecord, ImporterOptions, TraceFormat } from '../ingest/importers/importer.ts';
import { importers } from '../ingest/importers/index.ts';
import { replayRecords } from '../ingest/replay.ts';
import { createInProcessTransport } from '../ingest/transport/in-process.transport.ts';
import { createUsageStore } from '../processors/clickhouse-writer.ts';
import { repairRollups } from '../processors/rollup-repair.ts';
import { createUsageRunner } from '../processors/runner.ts';
import type { UsageStats } from '../processors/usage-stats.ts';
import { type ClickHouseClient, openClickHouse } from '../storage/clickhouse.ts';
import { migrate } from '../storage/migrate.ts';

export const USAGE_TOPIC = 'quotaflow.usage.v1';

/** Open the configured store, apply pending migrations, run `fn`, always close. */
export async function withStore<T>(loaded: LoadedConfig, fn: (client: ClickHouseClient) => Promise<T>): Promise<T> {
  const client = await openClickHouse(loaded.config.clickhouse);
  try {
    await migrate(client);
    return await fn(client);
  } finally {
    await client.close();
  }
}

export interface ImportSource {
  path: string;
  format: TraceFormat;
  options: ImporterOptions;
}

/** What was read from one file, summed as the importer mapped it (before validation). */
export interface SourceReadTotals {
  path: string;
  records: number;
  input_tokens: number;
  output_tokens: number;
}

export interface ImportResult {
  stats: UsageStats;
  sources: SourceReadTotals[];
}

async function* tally(records: AsyncIterable<ImportedRecord>, totals: SourceReadTotals): AsyncGenerator<ImportedRecord> {
  for await (const r of records) {
    totals.records++;
    if (Number.isInteger(r.value.input_tokens)) totals.input_tokens += r.value.input_tokens as number;
    if (Number.isInteger(r.value.output_tokens)) totals.output_tokens += r.value.output_tokens as number;
    yield r;
  }
}

/**
 * Replay files through the embedded pipeline. Resolves once every event is committed.
 * @throws the first infrastructure error (ClickHouse write, unreadable file); what was
 *   committed before it stays, and re-running the import adds only what is missing.
 */
export async function importFiles(
  loaded: LoadedConfig,
  client: ClickHouseClient,
  sources: readonly ImportSource[],
  onProgress?: (sent: number, stats: Readonly<UsageStats>) => void,
): Promise<ImportResult> {
  const { pipeline } = loaded.config;
  await repairRollups(client); // a previous run killed mid-insert may have left roll-ups short
  const transport = createInProcessTransport({ capacity: pipeline.transport_capacity });
  const producer = transport.producer(USAGE_TOPIC);
  let sentTotal = 0;
  const runner = createUsageRunner({
    consumer: transport.consumer({
      topic: USAGE_TOPIC,
      groupId: 'quotaflow-processor',
      maxBatchMessages: pipeline.batch_max_messages,
      maxBatchWaitMs: pipeline.batch_max_wait_ms,
    }),
    store: createUsageStore(client),
    prices: loaded.prices,
    maxFutureSkewMs: pipeline.max_future_skew_ms,
    onBatch: (stats) => onProgress?.(sentTotal, stats),
  });
  // If the processor fails, end the topic so the producer stops waiting for room.
  const running = runner.run().catch(async (err: unknown) => {
    await transport.close();
    throw err;
  });
  const totals: SourceReadTotals[] = [];
  try {
    for (const s of sources) {
      const t: SourceReadTotals = { path: s.path, records: 0, input_tokens: 0, output_tokens: 0 };
      totals.push(t);
      const base = sentTotal;
      await replayRecords(tally(importers[s.format].read(s.path, s.options), t), producer, (n) => {
        sentTotal = base + n;
        onProgress?.(sentTotal, runner.stats);
      });
    }
  } catch (err) {
    await transport.close();
    await running; // a processor failure is the root cause: it wins
    throw err;
  }
  await producer.close();
  await running;
  return { stats: { ...runner.stats }, sources: totals };
}
