/**
 * Role wiring: which components each role starts, on which transport and store.
 *   ingest     HTTP ingest -> Kafka                       (stateless, scale out)
 *   processor  Kafka consumer group -> ClickHouse         (scale out up to the partition count;
 *              its HTTP server has only /healthz, /readyz, /metrics and /docs)
 *   api        read API over ClickHouse
 *   all        everything in one process; the only role meant for embedded chDB (one owner)
 * Components register their stop functions with the lifecycle in start order.
 */
import { buildApp } from '../api/app.ts';
import { createRoutingSnapshot, type RoutingSnapshots } from '../api/routing-snapshot.ts';
import type { LoadedConfig } from '../config/load.ts';
import { createInFlightLimit } from '../ingest/http/in-flight.ts';
import { createInProcessTransport } from '../ingest/transport/in-process.transport.ts';
import { createKafkaTransport, type KafkaTransport } from '../ingest/transport/kafka.transport.ts';
import type { Transport } from '../ingest/transport/transport.ts';
import { createMetrics, type Metrics } from '../observability/metrics.ts';
import { startAnomalyDetection } from '../processors/anomaly/index.ts';
import { createUsageStore } from '../processors/clickhouse-writer.ts';
import { startPipelines } from '../processors/index.ts';
import { startQuotaAlerts } from '../processors/quota-alerts.ts';
import { reportServiceFromConfig, startWeeklyReports } from '../processors/reports/index.ts';
import { repairRollups } from '../processors/rollup-repair.ts';
import { withStoreMetrics } from '../processors/store-metrics.ts';
import { type ClickHouseClient, openClickHouse } from '../storage/clickhouse.ts';
import { migrate } from '../storage/migrate.ts';
import { contextIngestOptions, startContextProcessing } from './context-roles.ts';
import type { Lifecycle } from './lifecycle.ts';
import { kafkaLogCreator, type Logger } from './logger.ts';
import { startLagCollection } from './observability-roles.ts';

export const ROLES = ['ingest', 'processor', 'api', 'all'] as const;
export type Role = (typeof ROLES)[number];

/** Roll-up consistency check period, ms (four GROUP BY day queries; about 20 ms per 200k events on chDB). */
const ROLLUP_CHECK_INTERVAL_MS = 30_000;
/** Stats are logged this often by the processor, ms. */
const STATS_INTERVAL_MS = 10_000;

export class RoleConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RoleConfigError';
  }
}

interface Ctx {
  loaded: LoadedConfig;
  logger: Logger;
  lifecycle: Lifecycle;
}

function kafkaTransport({ loaded, logger, lifecycle }: Ctx): KafkaTransport {
  const { kafka } = loaded.config;
  const t = createKafkaTransport({
    brokers: kafka.brokers,
    clientId: kafka.client_id,
    partitions: kafka.partitions,
    produceTimeoutMs: kafka.produce_timeout_ms,
    sessionTimeoutMs: kafka.session_timeout_ms,
    logCreator: kafkaLogCreator(logger),
    onRetry: ({ topic, partition, attempt, error }) =>
      logger.warn({ event: 'batch.retry', topic, partition, attempt, err: error }, 'batch failed; retrying'),
  });
  lifecycle.add('kafka', () => t.close());
  return t;
}

async function clickhouse({ loaded, lifecycle, logger }: Ctx): Promise<ClickHouseClient> {
  const client = await openClickHouse(loaded.config.clickhouse);
  lifecycle.add('clickhouse', () => client.close());
  const applied = await migrate(client);
  if (applied.length > 0) logger.info({ event: 'clickhouse.migrated', versions: applied });
  return client;
}

/** `onWritten` runs after each batch the processor writes (the `all` role nudges its routing snapshot). */
async function startProcessing(
  ctx: Ctx,
  transport: Transport,
  client: ClickHouseClient,
  metrics: Metrics,
  onWritten?: () => void,
): Promise<void> {
  const { config, prices } = ctx.loaded;
  // Before consuming: repair roll-ups a crash inside a multi-view insert left short.
  const repaired = await repairRollups(client);
  if (repaired.length > 0) ctx.logger.warn({ event: 'rollups.repaired', days: repaired }, 'roll-ups rebuilt from usage_events');
  const pipelines = startPipelines({
    transport,
    store: withStoreMetrics(createUsageStore(client), metrics.store),
    prices,
    config: {
      usageTopic: config.kafka.usage_topic,
      dlqTopic: config.kafka.dlq_topic,
      consumerGroup: config.kafka.consumer_group,
      batchMaxMessages: config.pipeline.batch_max_messages,
      batchMaxWaitMs: config.pipeline.batch_max_wait_ms,
      maxFutureSkewMs: config.pipeline.max_future_skew_ms,
    },
    ...(onWritten ? { onBatch: () => onWritten() } : {}),
    metrics: metrics.pipeline,
    repair: {
      run: () => repairRollups(client),
      intervalMs: ROLLUP_CHECK_INTERVAL_MS,
      onRepaired: (days) => ctx.logger.warn({ event: 'rollups.repaired', days }, 'roll-ups rebuilt from usage_events'),
    },
  });
  const timer = setInterval(() => ctx.logger.info({ event: 'processor.stats', ...pipelines.usageStats }), STATS_INTERVAL_MS);
  timer.unref();
  ctx.lifecycle.add('processor', async () => {
    clearInterval(timer);
    await pipelines.stop();
    ctx.logger.info({ event: 'processor.stats', final: true, ...pipelines.usageStats });
  });
  pipelines.done.catch((err: unknown) => void ctx.lifecycle.stop(err));
  // Conversation context sync (docs/contexts.md): its own topic and consumer group.
  startContextProcessing(ctx, transport, client);
  // Quota alerts, when quotas are configured; stopped before the processor and ClickHouse.
  const alerts = startQuotaAlerts({
    clickhouse: client,
    quotas: config.quotas,
    teams: config.teams,
    alerts: config.alerts,
    logger: ctx.logger,
    metrics: metrics.quotas,
  });
  if (alerts) ctx.lifecycle.add('quota-alerts', () => alerts.stop());
  // Anomaly detection over the minute aggregates; stopped before the processor and ClickHouse.
  const anomalies = startAnomalyDetection({
    clickhouse: client,
    config: config.anomalies,
    alerts: config.alerts,
    quotas: config.quotas,
    teams: config.teams,
    logger: ctx.logger,
    metrics: metrics.anomalies,
  });
  if (anomalies) ctx.lifecycle.add('anomalies', () => anomalies.stop());
  // Weekly reports on config reports.schedule (docs/reports.md); stopped before ClickHouse.
  const reports = startWeeklyReports({ clickhouse: client, loaded: ctx.loaded, logger: ctx.logger });
  if (reports) ctx.lifecycle.add('reports', () => reports.stop());
}

/** The routing snapshot refresher of the read API: first refresh before serving, stopped with the lifecycle. */
async function startRouting(ctx: Ctx, client: ClickHouseClient): Promise<RoutingSnapshots> {
  const { routing, quotas, teams } = ctx.loaded.config;
  const snapshots = createRoutingSnapshot({
    clickhouse: client,
    candidates: routing.candidates,
    ...(routing.weights ? { weights: routing.weights } : {}),
    quotas,
    teams,
    refreshMs: routing.refresh_ms,
    maxErrorRate: routing.max_error_rate,
    onError: (err) => ctx.logger.warn({ event: 'routing.refresh_failed', err }, 'routing snapshot refresh failed; keeping the last one'),
  });
  ctx.lifecycle.add('routing', async () => snapshots.stop());
  await snapshots.refresh();
  return snapshots;
}

/**
 * Start a role. Resolves once it serves; the lifecycle owns its shutdown.
 * @throws RoleConfigError when the config does not fit the role (e.g. ingest without Kafka).
 */
export async function startRole(role: Role, ctx: Ctx): Promise<{ url?: string }> {
  const { config } = ctx.loaded;
  const useKafka = role === 'ingest' || role === 'processor' || config.transport === 'kafka';
  if ((role === 'ingest' || role === 'processor') && config.transport !== 'kafka') {
    throw new RoleConfigError(
      `the ${role} role carries events on Kafka: set transport: kafka (or QUOTAFLOW_TRANSPORT=kafka) and KAFKA_BROKERS`,
    );
  }
  let transport: Transport | undefined;
  const readiness: Record<string, () => Promise<boolean>> = {};
  if (role !== 'api') {
    if (useKafka) {
      const k = kafkaTransport(ctx);
      await k.ensureTopics([config.kafka.usage_topic, config.kafka.dlq_topic, config.contexts.topic]);
      readiness.kafka = () => k.ping();
      transport = k;
    } else {
      const t = createInProcessTransport({ capacity: config.pipeline.transport_capacity });
      ctx.lifecycle.add('transport', () => t.close());
      transport = t;
    }
  }
  let client: ClickHouseClient | undefined;
  if (role !== 'ingest') {
    client = await clickhouse(ctx);
    const c = client;
    readiness.clickhouse = async () => (await c.ping()).success;
  }
  // The `all` role routes on the usage it writes itself: each batch nudges the snapshot.
  const routing = (role === 'api' || role === 'all') && client ? await startRouting(ctx, client) : undefined;
  // One metrics registry per process, served at GET /metrics (docs/observability.md).
  const metrics = createMetrics();
  if ((role === 'processor' || role === 'all') && transport && client) {
    await startProcessing(ctx, transport, client, metrics, routing?.nudge);
    if (useKafka) startLagCollection(ctx, metrics.lag);
  }

  // Every role listens on http.port; the processor role serves only /healthz, /readyz, /metrics and /docs.
  const serveIngest = role === 'ingest' || role === 'all';
  // One bound for both ingest routes: they share the process's memory (ingest/http/in-flight.ts).
  const inFlight = createInFlightLimit({ maxBytes: config.http.max_in_flight_bytes, metrics: metrics.ingest });
  const app = buildApp({
    logger: ctx.logger,
    bodyLimitBytes: config.http.body_limit_bytes,
    requestTimeoutMs: config.http.request_timeout_ms,
    readiness,
    metrics,
    ingest:
      serveIngest && transport
        ? {
            usageProducer: transport.producer(config.kafka.usage_topic),
            dlqProducer: transport.producer(config.kafka.dlq_topic),
            keys: config.ingest_keys,
            maxEventsPerRequest: config.http.max_events_per_request,
            produceTimeoutMs: config.kafka.produce_timeout_ms,
            maxFutureSkewMs: config.pipeline.max_future_skew_ms,
            inFlight,
          }
        : undefined,
    ...(serveIngest && transport ? { contexts: { ...contextIngestOptions(ctx.loaded, transport), inFlight } } : {}),
    api:
      (role === 'api' || role === 'all') && client
        ? {
            clickhouse: client,
            // Ingest keys read their own tenant; api_keys are read (one tenant) or admin (every tenant).
            keys: [...config.ingest_keys, ...config.api_keys],
            quotas: config.quotas,
            teams: config.teams,
            ...(routing ? { routing } : {}),
            reports: reportServiceFromConfig(client, ctx.loaded),
          }
        : undefined,
  });
  // Registered last, so it stops first: no new requests, in-flight ones finish.
  ctx.lifecycle.add('http', () => app.close());
  const url = await app.listen({ host: config.http.host, port: config.http.port });
  ctx.logger.info({ event: 'role.started', role, url });
  return { url };
}
