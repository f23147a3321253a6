/**
 * Anomaly detection in the processor role (issue 5): `runOnce` every `interval_ms`, never two runs
 * at once (a slow run delays the next instead of overlapping it); errors are logged and the next
 * run carries on from where the last one stopped.
 */
import type { Logger } from 'pino';
import type { AnomalyMetrics } from '../../observability/metrics.ts';
import type { AlertsConfig } from '../../schemas/alerts.ts';
import type { AnomaliesConfig } from '../../schemas/anomalies-config.ts';
import type { QuotaSpec } from '../../schemas/quota.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import { type MeasureOptions, measurableWith, measureQuota } from '../../storage/quota-measure.ts';
import { webhookFromAlertsConfig } from '../webhook.ts';
import { CORE_DETECTOR_NAME, coreDetectorFactory, createAnomalyDetection } from './detection.ts';

export interface AnomalyDetectionDeps {
  clickhouse: ClickHouseClient;
  config: Readonly<AnomaliesConfig>;
  /** The webhook settings of the quota alerts: anomalies are sent to the same receiver. */
  alerts: Readonly<AlertsConfig>;
  quotas: readonly QuotaSpec[];
  teams?: MeasureOptions['teams'];
  logger: Logger;
  metrics?: AnomalyMetrics;
}

/** Start detection; undefined when `anomalies.enabled` is false. `stop()` waits for a run in progress. */
export function startAnomalyDetection(d: AnomalyDetectionDeps): { stop(): Promise<void> } | undefined {
  if (!d.config.enabled) return undefined;
  const measureOpts = { teams: d.teams ?? [] };
  const webhook = webhookFromAlertsConfig(d.alerts, d.logger);
  const detection = createAnomalyDetection({
    clickhouse: d.clickhouse,
    detectorFactory: coreDetectorFactory(),
    detectorName: CORE_DETECTOR_NAME,
    logger: d.logger,
    ...(webhook ? { webhook } : {}),
    quotas: d.quotas.filter(measurableWith(measureOpts)),
    measure: (spec, nowMs) => measureQuota(d.clickhouse, spec, nowMs, true, measureOpts),
    graceMs: d.config.grace_ms,
    warmupMs: d.config.warmup_hours * 3_600_000,
    resolveAfterMinutes: d.config.resolve_after_minutes,
    loopThreshold: d.config.loop_threshold,
    loopWindowMinutes: d.config.loop_window_minutes,
    ...(d.metrics ? { metrics: d.metrics } : {}),
  });
  let running: Promise<void> | undefined;
  let stopped = false;
  const tick = () => {
    if (running || stopped) return;
    running = detection
      .runOnce()
      .then((r) => {
        const opened = r.changes.filter((c) => c.change === 'opened').length;
        if (opened > 0) d.logger.info({ event: 'anomaly.run', opened, changes: r.changes.length });
      })
      .catch((err: unknown) => d.logger.error({ event: 'anomaly.run_failed', err }, 'anomaly detection run failed'))
      .finally(() => {
        running = undefined;
      });
  };
  const timer = setInterval(tick, d.config.interval_ms);
  timer.unref();
  tick();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
      await webhook?.stop();
    },
  };
}
