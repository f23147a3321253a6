/**
 * The metrics' part of the role wiring (cli/roles.ts calls this): the consumer lag collector of
 * the processor role on Kafka (observability/kafka-lag.ts, docs/observability.md).
 */
import type { LoadedConfig } from '../config/load.ts';
import { kafkaLagAdmin, startLagCollector } from '../observability/kafka-lag.ts';
import type { LagMetrics } from '../observability/metrics.ts';
import type { Lifecycle } from './lifecycle.ts';
import { kafkaLogCreator, type Logger } from './logger.ts';

interface Ctx {
  loaded: LoadedConfig;
  logger: Logger;
  lifecycle: Lifecycle;
}

/** Lag is measured this often, ms: the scrape interval of deploy/prometheus/prometheus.yml. */
export const LAG_INTERVAL_MS = 15_000;

/**
 * Collect the lag of the processor's consumer groups (usage, dead letters, contexts: the group
 * names of processors/index.ts and cli/context-roles.ts) every LAG_INTERVAL_MS, until the
 * lifecycle stops. A failed round is logged (`metrics.lag_failed`) and retried next period.
 */
export function startLagCollection(ctx: Ctx, metrics: LagMetrics): void {
  const { kafka, contexts } = ctx.loaded.config;
  const collector = startLagCollector({
    targets: [
      { group: kafka.consumer_group, topic: kafka.usage_topic },
      { group: `${kafka.consumer_group}.dlq`, topic: kafka.dlq_topic },
      { group: `${kafka.consumer_group}.contexts`, topic: contexts.topic },
    ],
    metrics,
    intervalMs: LAG_INTERVAL_MS,
    connect: kafkaLagAdmin({ brokers: kafka.brokers, clientId: kafka.client_id, logCreator: kafkaLogCreator(ctx.logger) }),
    onError: (err) => ctx.logger.warn({ event: 'metrics.lag_failed', err }, 'consumer lag collection failed; retrying next period'),
  });
  ctx.lifecycle.add('lag-metrics', () => collector.stop());
}
