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

/**
 * The tenants the config names (NFC, sorted, each once): those of `ingest_keys`, read `api_keys`,
 * `quotas` scopes, `teams`, `reports.tenants` and `reports.tenant_time_zones`. The report service
 * makes their reports even before their first event; any other tenant needs usage in the store.
 */
export function configuredTenants(config: LoadedConfig['config']): string[] {
  const names = [
    ...config.ingest_keys.map((k) => k.tenant),
    ...config.api_keys.flatMap((k) => (k.tenant === undefined ? [] : [k.tenant])),
    ...config.quotas.map((q) => q.scope.tenant),
    ...config.teams.map((t) => t.tenant),
    ...(config.reports.tenants ?? []),
    ...Object.keys(config.reports.tenant_time_zones),
  ];
  return [...new Set(names.map((t) => t.normalize('NFC')))].sort();
}

/** The report service over `clickhouse` with the config's zones, quotas, teams, prices, routing candidates and tenants. */
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
    configuredTenants: configuredTenants(config),
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
