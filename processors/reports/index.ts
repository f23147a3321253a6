/**
 * Weekly reports wired from the loaded config: the report service every role and command uses,
 * and the processor role's schedule. The recommendation engine is processors/recommendations
 * unless the caller passes another.
 */
import type { Logger } from 'pino';
import type { LoadedConfig } from '../../config/load.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import { measureAdopted, recommend } from '../recommendations/index.ts';
import { createReportService, type RecommendationEngine, type ReportService } from './report-service.ts';
import { clickhouseRunStore, createReportScheduler, type ReportScheduler } from './scheduler.ts';

/** processors/recommendations: `recommend` over the report week and `measureAdopted` of the tenant's adopted ones. */
export const RECOMMENDATIONS: RecommendationEngine = { recommend, measureAdopted };

/** The report service over `clickhouse` with the config's zones, quotas, teams, prices and routing candidates. */
export function reportServiceFromConfig(
  clickhouse: ClickHouseClient,
  loaded: LoadedConfig,
  engine: RecommendationEngine = RECOMMENDATIONS,
): ReportService {
  const { config, prices } = loaded;
  return createReportService({
    clickhouse,
    reports: config.reports,
    quotas: config.quotas,
    teams: config.teams,
    prices,
    candidates: config.routing.candidates,
    engine,
  });
}

/**
 * Start the weekly report schedule (config `reports`), or return undefined when
 * `reports.enabled` is false. The caller owns `stop()`.
 */
export function startWeeklyReports(o: {
  clickhouse: ClickHouseClient;
  loaded: LoadedConfig;
  logger: Logger;
  engine?: RecommendationEngine;
}): ReportScheduler | undefined {
  const { reports } = o.loaded.config;
  if (!reports.enabled) return undefined;
  const scheduler = createReportScheduler({
    service: reportServiceFromConfig(o.clickhouse, o.loaded, o.engine),
    store: clickhouseRunStore(o.clickhouse),
    config: reports,
    logger: o.logger,
  });
  scheduler.start();
  o.logger.info({ event: 'reports.scheduled', jobs: scheduler.jobs, schedule: reports.schedule }, 'weekly reports scheduled');
  return scheduler;
}
