/**
 * The weekly report schedule (issue 6): node-cron fires config `reports.schedule` once per distinct
 * tenant time zone, read in that zone, so every tenant's report is made at the same local time
 * (Monday 06:00 by default) for its last complete ISO week.
 *
 * Guarantees:
 * - A run never overlaps the previous run of the same job (zone): a firing while it still runs is
 *   skipped and logged (`report.run.skipped`), not queued.
 * - Every tenant report a run attempts is logged in `report_runs` as it finishes: `ok`, or
 *   `failed` with the error message; one tenant's failure does not stop the others. A failure to
 *   list the tenants is logged as one failed row with an empty tenant. The last success of a job
 *   is its latest ok row (storage/report-store.ts `lastRuns`).
 * - `stop()` stops the timers and waits for the runs in flight.
 */
import { randomUUID } from 'node:crypto';
import { createTask, type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import { isoWeekInterval, lastCompleteIsoWeek } from '../../domain/iso-week.ts';
import type { ReportsConfig } from '../../schemas/reports-config.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import { tenantsWithUsage } from '../../storage/queries/weekly-report.ts';
import { type ReportRun, recordRuns } from '../../storage/report-store.ts';
import type { ReportService } from './report-service.ts';

/** Job name prefix in logs and `report_runs.job`: `weekly-report:<zone>`. */
export const WEEKLY_REPORT_JOB = 'weekly-report';

/** Where the scheduler finds tenants and writes its log (`clickhouseRunStore` in production). */
export interface RunStore {
  /** Tenants (NFC) with usage in [fromMs, toMs). */
  tenantsWithUsage(fromMs: number, toMs: number): Promise<string[]>;
  /** Append run rows to the log. */
  record(runs: readonly ReportRun[]): Promise<void>;
}

/** The run store over ClickHouse: `usage_hour` for tenants, `report_runs` for the log. */
export function clickhouseRunStore(client: ClickHouseClient): RunStore {
  return {
    async tenantsWithUsage(fromMs, toMs) {
      const rs = await client.query({ ...tenantsWithUsage({ fromMs, toMs }), format: 'JSONEachRow' });
      return (await rs.json<{ tenant: string }>()).map((r) => r.tenant);
    },
    record: (runs) => recordRuns(client, runs),
  };
}

export interface ReportSchedulerOptions {
  service: Pick<ReportService, 'timeZoneOf' | 'generateAndStore'>;
  store: RunStore;
  config: Pick<ReportsConfig, 'schedule' | 'time_zone' | 'tenant_time_zones' | 'tenants'>;
  logger: Logger;
  /** Current time, epoch ms. Default Date.now. */
  now?: () => number;
}

/** What one run of a job did. */
export interface RunOutcome {
  job: string;
  /** `skipped` when the previous run of the job was still running. */
  status: 'done' | 'skipped';
  /** The rows this run logged (empty when skipped). */
  runs: ReportRun[];
}

export interface ReportScheduler {
  /** The jobs (one per zone), e.g. `weekly-report:UTC`. */
  readonly jobs: readonly string[];
  /** Start the cron tasks. Idempotent. */
  start(): void;
  /** Run the job of `zone` now, with the same overlap rule as a scheduled firing. */
  runNow(zone: string): Promise<RunOutcome>;
  /** Stop the cron tasks and wait for the runs in flight. Idempotent. */
  stop(): Promise<void>;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Build the scheduler; nothing fires until `start()`. */
export function createReportScheduler(o: ReportSchedulerOptions): ReportScheduler {
  const now = o.now ?? Date.now;
  const { config, logger } = o;
  const listed = config.tenants?.map((t) => t.normalize('NFC'));
  // The zones with a job: those of the listed tenants, else the default zone and every configured one.
  const zones = [
    ...new Set(listed ? listed.map((t) => o.service.timeZoneOf(t)) : [config.time_zone, ...Object.values(config.tenant_time_zones)]),
  ];
  const jobOf = (zone: string) => `${WEEKLY_REPORT_JOB}:${zone}`;
  const inFlight = new Map<string, Promise<RunOutcome>>();
  const tasks: ScheduledTask[] = [];

  /** The tenants whose report the job of `zone` makes for [fromMs, toMs). */
  async function tenantsOf(zone: string, fromMs: number, toMs: number): Promise<string[]> {
    const candidates = listed ?? (await o.store.tenantsWithUsage(fromMs, toMs));
    return candidates.filter((t) => o.service.timeZoneOf(t) === zone);
  }

  async function run(zone: string): Promise<RunOutcome> {
    const job = jobOf(zone);
    const runId = randomUUID();
    const week = lastCompleteIsoWeek(now(), zone);
    const { startMs, endMs } = isoWeekInterval(week, zone);
    const rows: ReportRun[] = [];
    const log = async (row: ReportRun) => {
      rows.push(row);
      try {
        await o.store.record([row]);
      } catch (err) {
        logger.error({ event: 'report.run.log_failed', job, tenant: row.tenant, err }, 'writing report_runs failed');
      }
    };
    logger.info({ event: 'report.run.started', job, run_id: runId, week }, `weekly reports for ${week} (${zone})`);
    let tenants: string[];
    const listedAt = now();
    try {
      tenants = await tenantsOf(zone, startMs, endMs);
    } catch (err) {
      logger.error({ event: 'report.run.failed', job, run_id: runId, week, err }, 'listing the tenants to report failed');
      await log({
        run_id: runId,
        job,
        tenant: '',
        week,
        started_at_ms: listedAt,
        finished_at_ms: now(),
        status: 'failed',
        error: message(err),
      });
      return { job, status: 'done', runs: rows };
    }
    for (const tenant of tenants) {
      const startedAt = now();
      try {
        await o.service.generateAndStore(tenant, week);
        await log({ run_id: runId, job, tenant, week, started_at_ms: startedAt, finished_at_ms: now(), status: 'ok', error: '' });
      } catch (err) {
        logger.error({ event: 'report.run.failed', job, run_id: runId, tenant, week, err }, `weekly report of ${tenant} failed`);
        await log({
          run_id: runId,
          job,
          tenant,
          week,
          started_at_ms: startedAt,
          finished_at_ms: now(),
          status: 'failed',
          error: message(err),
        });
      }
    }
    const failed = rows.filter((r) => r.status === 'failed').length;
    logger.info(
      { event: 'report.run.finished', job, run_id: runId, week, reports: rows.length - failed, failed },
      `weekly reports for ${week} done`,
    );
    return { job, status: 'done', runs: rows };
  }

  function runNow(zone: string): Promise<RunOutcome> {
    const job = jobOf(zone);
    if (inFlight.has(job)) {
      logger.warn({ event: 'report.run.skipped', job }, 'the previous weekly report run is still running; this one is skipped');
      return Promise.resolve({ job, status: 'skipped', runs: [] });
    }
    const p = run(zone).finally(() => inFlight.delete(job));
    inFlight.set(job, p);
    return p;
  }

  const cronLogger = {
    info: (m: string) => logger.debug({ event: 'report.cron' }, m),
    warn: (m: string) => logger.warn({ event: 'report.cron' }, m),
    error: (m: string | Error, err?: Error) => logger.error({ event: 'report.cron', err: err ?? m }, String(m)),
    debug: (m: string | Error) => logger.debug({ event: 'report.cron' }, String(m)),
  };

  let started = false;
  let stopping: Promise<void> | undefined;
  return {
    jobs: zones.map(jobOf),
    start() {
      if (started) return;
      started = true;
      for (const zone of zones) {
        const task = createTask(config.schedule, () => runNow(zone), {
          timezone: zone,
          name: jobOf(zone),
          logger: cronLogger,
          unref: true,
        });
        void task.start();
        tasks.push(task);
      }
    },
    runNow,
    stop() {
      stopping ??= (async () => {
        await Promise.all(tasks.map((t) => t.destroy()));
        await Promise.allSettled([...inFlight.values()]);
      })();
      return stopping;
    },
  };
}
