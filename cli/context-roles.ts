/**
 * The context sync's part of the role wiring (cli/roles.ts calls these): the context topic,
 * the context pipeline of the processor role, and the options of the ingest role's context route.
 */
import type { LoadedConfig } from '../config/load.ts';
import type { ContextsRouteOptions } from '../ingest/http/contexts.route.ts';
import type { Transport } from '../ingest/transport/transport.ts';
import { startContextPipeline } from '../processors/context-runner.ts';
import { createContextStore } from '../processors/context-store.ts';
import { contentPolicy } from '../schemas/contexts-config.ts';
import type { ClickHouseClient } from '../storage/clickhouse.ts';
import type { Lifecycle } from './lifecycle.ts';
import type { Logger } from './logger.ts';

interface Ctx {
  loaded: LoadedConfig;
  logger: Logger;
  lifecycle: Lifecycle;
}

/** Stats of the context pipeline are logged this often, ms. */
const STATS_INTERVAL_MS = 10_000;

/**
 * Start the context pipeline (consumer group `<kafka.consumer_group>.contexts`) and register its
 * stop with the lifecycle; a pipeline that fails for good stops the process.
 */
export function startContextProcessing(ctx: Ctx, transport: Transport, client: ClickHouseClient): void {
  const { config } = ctx.loaded;
  const pipeline = startContextPipeline({
    transport,
    store: createContextStore(client),
    storeContent: contentPolicy(config.contexts.store_content),
    topic: config.contexts.topic,
    groupId: `${config.kafka.consumer_group}.contexts`,
    batchMaxMessages: config.pipeline.batch_max_messages,
    batchMaxWaitMs: config.pipeline.batch_max_wait_ms,
    maxFutureSkewMs: config.pipeline.max_future_skew_ms,
  });
  const timer = setInterval(() => ctx.logger.info({ event: 'contexts.stats', ...pipeline.stats }), STATS_INTERVAL_MS);
  timer.unref();
  ctx.lifecycle.add('contexts', async () => {
    clearInterval(timer);
    await pipeline.stop();
    ctx.logger.info({ event: 'contexts.stats', final: true, ...pipeline.stats });
  });
  pipeline.done.catch((err: unknown) => void ctx.lifecycle.stop(err));
}

/** Options of `POST /v1/contexts` (api/app.ts registers it for the ingest and all roles). */
export function contextIngestOptions(loaded: LoadedConfig, transport: Transport): ContextsRouteOptions {
  const { config } = loaded;
  return {
    contextProducer: transport.producer(config.contexts.topic),
    dlqProducer: transport.producer(config.kafka.dlq_topic),
    keys: config.ingest_keys,
    maxRecordsPerRequest: config.contexts.max_records_per_request,
    maxRecordBytes: config.contexts.max_record_bytes,
    storeContent: contentPolicy(config.contexts.store_content),
    produceTimeoutMs: config.kafka.produce_timeout_ms,
    maxFutureSkewMs: config.pipeline.max_future_skew_ms,
  };
}
