/**
 * The one way every caller (scheduler, CLI `quotaflow report`, `GET /v1/reports/...`, the demo)
 * builds, renders and stores a weekly report: data (weekly.ts) -> recommendations (the engine,
 * injected) -> JSON, Markdown, HTML -> `reports` table (storage/report-store.ts).
 */
import { Value } from '@sinclair/typebox/value';
import { isoWeekInterval, lastCompleteIsoWeek, validateReportWeek } from '../../domain/iso-week.ts';
import type { PriceTable } from '../../domain/pricing.ts';
import type { RoutingCandidate } from '../../domain/routing.ts';
import type { TeamMembership } from '../../domain/team-allocation.ts';
import type { QuotaSpec } from '../../schemas/quota.ts';
import { WeeklyReport } from '../../schemas/report.ts';
import { type ReportsConfig, reportTimeZone } from '../../schemas/reports-config.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import { tenantHasUsage } from '../../storage/queries/weekly-report.ts';
import { loadReport, type StoredReport, saveReport } from '../../storage/report-store.ts';
import { renderHtml } from './html.ts';
import { renderMarkdown } from './markdown.ts';
import { type AdoptionMeasure, buildWeeklyReport, type Recommendation } from './weekly.ts';

/** Arguments of the recommendation engine's `recommend` (processors/recommendations). */
export interface RecommendArgs {
  tenant: string;
  /** The report week, epoch ms, half-open. */
  fromMs: number;
  toMs: number;
  prices: PriceTable;
  candidates?: readonly RoutingCandidate[];
}

/** The recommendation engine (processors/recommendations), injected so reports stay testable without it. */
export interface RecommendationEngine {
  recommend(client: ClickHouseClient, args: RecommendArgs): Promise<Recommendation[]>;
  /** The measured effect in [fromMs, toMs) of the tenant's adopted recommendations, priced with `prices`. */
  measureAdopted(client: ClickHouseClient, tenant: string, fromMs: number, toMs: number, prices: PriceTable): Promise<AdoptionMeasure[]>;
}

/**
 * A report of a tenant that quotaflow does not know: no usage row ever (table `usage_day`, kept
 * 5 years) and not named in the config. The API answers 404, the CLI exits 1; nothing is stored.
 */
export class UnknownTenantError extends Error {
  constructor(readonly tenant: string) {
    super(`unknown tenant ${JSON.stringify(tenant)}: no usage was ever recorded for it and the config does not name it`);
    this.name = 'UnknownTenantError';
  }
}

export interface ReportServiceOptions {
  clickhouse: ClickHouseClient;
  /** Config `reports` (zones, top_n). */
  reports: Pick<ReportsConfig, 'time_zone' | 'tenant_time_zones' | 'top_n'>;
  quotas?: readonly QuotaSpec[];
  teams?: readonly TeamMembership[];
  prices: PriceTable;
  /** Config routing candidates: cheaper models the engine may suggest. */
  candidates?: readonly RoutingCandidate[];
  /** Without it the reports say that no recommendations were computed. */
  engine?: RecommendationEngine;
  /**
   * Tenants the config names (processors/reports/index.ts `configuredTenants`): they get a report,
   * empty if need be, before their first event. Others need usage (see UnknownTenantError).
   */
  configuredTenants?: readonly string[];
  /** Current time, epoch ms. Default Date.now. */
  now?: () => number;
}

/** A report and its three renderings. */
export interface RenderedReport {
  report: WeeklyReport;
  /** The report document, pretty-printed. */
  json: string;
  markdown: string;
  html: string;
}

export interface ReportService {
  /** The IANA zone of `tenant`'s weeks (config reports.tenant_time_zones, else reports.time_zone). */
  timeZoneOf(tenant: string): string;
  /** The last ISO week that has ended in `tenant`'s zone. */
  lastCompleteWeek(tenant: string): string;
  /**
   * Check that a report of `tenant` for `week` may be made: the week is well formed and in
   * `reportWeekRange` (domain/iso-week.ts) of the tenant's zone, and the tenant is known (named in
   * the config, or with usage in the store). `generate` runs it first.
   * @throws IsoWeekError (bad or out-of-range week); UnknownTenantError; whatever ClickHouse throws.
   */
  validateRequest(tenant: string, week: string): Promise<void>;
  /**
   * Build and render the report of `tenant` for `week` (ISO, `2026-W47`); nothing is stored.
   * @throws what `validateRequest` throws; Error when the built report does not match its schema
   *   (a bug); whatever ClickHouse or the engine throw.
   */
  generate(tenant: string, week: string): Promise<RenderedReport>;
  /** `generate`, then store it in `reports` (it replaces an older report of the same week). */
  generateAndStore(tenant: string, week: string): Promise<RenderedReport>;
  /** The latest stored report of (tenant, week), or undefined. */
  stored(tenant: string, week: string): Promise<StoredReport | undefined>;
}

export function createReportService(o: ReportServiceOptions): ReportService {
  const now = o.now ?? Date.now;
  const timeZoneOf = (tenant: string) => reportTimeZone(o.reports, tenant);
  const configured = new Set((o.configuredTenants ?? []).map((t) => t.normalize('NFC')));

  async function validateRequest(tenantRaw: string, week: string): Promise<void> {
    const tenant = tenantRaw.normalize('NFC');
    validateReportWeek(week, now(), timeZoneOf(tenant));
    if (configured.has(tenant)) return;
    const rs = await o.clickhouse.query({ ...tenantHasUsage(tenant), format: 'JSONEachRow' });
    if ((await rs.json()).length === 0) throw new UnknownTenantError(tenant);
  }

  async function generate(tenantRaw: string, week: string): Promise<RenderedReport> {
    const tenant = tenantRaw.normalize('NFC');
    await validateRequest(tenant, week);
    const timeZone = timeZoneOf(tenant);
    const { startMs, endMs } = isoWeekInterval(week, timeZone);
    const recommendations = o.engine
      ? {
          items: await o.engine.recommend(o.clickhouse, {
            tenant,
            fromMs: startMs,
            toMs: endMs,
            prices: o.prices,
            ...(o.candidates ? { candidates: o.candidates } : {}),
          }),
          adopted: await o.engine.measureAdopted(o.clickhouse, tenant, startMs, endMs, o.prices),
        }
      : undefined;
    const report = await buildWeeklyReport(o.clickhouse, {
      tenant,
      week,
      timeZone,
      ...(o.quotas ? { quotas: o.quotas } : {}),
      ...(o.teams ? { teams: o.teams } : {}),
      topN: o.reports.top_n,
      nowMs: now(),
      ...(recommendations ? { recommendations } : {}),
    });
    const first = Value.Errors(WeeklyReport, report).First();
    if (first) throw new Error(`weekly report of ${tenant} ${week} does not match its schema at ${first.path}: ${first.message}`);
    return { report, json: `${JSON.stringify(report, null, 2)}\n`, markdown: renderMarkdown(report), html: await renderHtml(report) };
  }

  return {
    timeZoneOf,
    lastCompleteWeek: (tenant) => lastCompleteIsoWeek(now(), timeZoneOf(tenant)),
    validateRequest,
    generate,
    async generateAndStore(tenant, week) {
      const r = await generate(tenant, week);
      await saveReport(o.clickhouse, {
        tenant: r.report.tenant,
        week: r.report.week,
        time_zone: r.report.time_zone,
        period_start_ms: Date.parse(r.report.period.start),
        period_end_ms: Date.parse(r.report.period.end),
        generated_at_ms: Date.parse(r.report.generated_at),
        json: r.json,
        markdown: r.markdown,
        html: r.html,
      });
      return r;
    },
    stored: (tenant, week) => loadReport(o.clickhouse, tenant.normalize('NFC'), week),
  };
}
