/**
 * `quotaflow report --tenant T [--week 2026-W47] [--format json|md|html] [--out file]`: build a
 * tenant's weekly report now, store it (table `reports`, as the scheduler does) and print it or
 * write it to a file. Also the demo's last step: a report per bundled tenant, written as files.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import type { LoadedConfig } from '../../config/load.ts';
import { IsoWeekError, isoWeekOf, parseIsoWeek } from '../../domain/iso-week.ts';
import { reportServiceFromConfig } from '../../processors/reports/index.ts';
import { type RecommendationEngine, type RenderedReport, UnknownTenantError } from '../../processors/reports/report-service.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import { latestEventByTenant } from '../../storage/queries/weekly-report.ts';
import { withStore } from '../pipeline.ts';

export const REPORT_FILE_FORMATS = ['json', 'md', 'html'] as const;
export type ReportFileFormat = (typeof REPORT_FILE_FORMATS)[number];

/**
 * Where the demo writes its reports: `reports` beside the embedded data folder (so
 * `.quotaflow/reports` by default), or `.quotaflow/reports` in the working directory in server mode.
 */
export function demoReportsDir(clickhouse: LoadedConfig['config']['clickhouse']): string {
  return clickhouse.mode === 'embedded' ? join(dirname(resolve(clickhouse.path)), 'reports') : resolve('.quotaflow', 'reports');
}

/** commander parser of `--week`: an ISO week name. */
export function weekOption(value: string): string {
  try {
    parseIsoWeek(value);
    return value;
  } catch (err) {
    if (err instanceof IsoWeekError) throw new InvalidArgumentError(err.message);
    throw err;
  }
}

const text = (r: RenderedReport, format: ReportFileFormat) => (format === 'json' ? r.json : format === 'md' ? r.markdown : r.html);

/**
 * Generate, store and output one report. Without `week`, the tenant's last complete week.
 * Nothing is stored for a week out of range or an unknown tenant (docs/reports.md).
 * @throws InvalidArgumentError (printed by the CLI as one line, exit 1) for a week outside
 *   `reportWeekRange` or an unknown tenant; whatever generation or the store throws; an
 *   unwritable `out`.
 */
export async function runReport(
  loaded: LoadedConfig,
  o: { tenant: string; week?: string; format: ReportFileFormat; out?: string },
  engine?: RecommendationEngine,
): Promise<void> {
  if (o.out !== undefined) checkOutFolder(o.out); // before anything is generated or stored
  await withStore(loaded, async (client) => {
    const service = reportServiceFromConfig(client, loaded, engine);
    const week = o.week ?? service.lastCompleteWeek(o.tenant);
    let report: RenderedReport;
    try {
      report = await service.generateAndStore(o.tenant, week);
    } catch (err) {
      // The user's arguments, not a failure: one line, no stack (cli/main.ts prints these so).
      if (err instanceof IsoWeekError || err instanceof UnknownTenantError) throw new InvalidArgumentError(err.message);
      throw err;
    }
    if (o.out === undefined) process.stdout.write(text(report, o.format));
    else {
      writeOut(o.out, text(report, o.format));
      process.stderr.write(`wrote ${resolve(o.out)}\n`);
    }
  });
}

/** @throws InvalidArgumentError (one line) when the folder of `--out` is missing or not writable. */
function checkOutFolder(path: string): void {
  const folder = dirname(resolve(path));
  if (!existsSync(folder)) throw new InvalidArgumentError(`--out ${path}: cannot write: no such folder ${folder}`);
  try {
    accessSync(folder, constants.W_OK);
  } catch {
    throw new InvalidArgumentError(`--out ${path}: cannot write: the folder ${folder} is not writable`);
  }
}

/** Write `--out`. @throws InvalidArgumentError (one line) with the system's reason when that fails. */
function writeOut(path: string, content: string): void {
  try {
    writeFileSync(path, content);
  } catch (err) {
    throw new InvalidArgumentError(`--out ${path}: cannot write: ${(err as Error).message}`);
  }
}

/** A file-name-safe form of a tenant id: itself when already safe, else its safe characters and a short hash. */
export function fileSafe(tenant: string): string {
  if (/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(tenant)) return tenant;
  const hash = createHash('sha256').update(tenant, 'utf8').digest('hex').slice(0, 8);
  return `${tenant.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 40)}-${hash}`;
}

/**
 * The demo's last step: for each tenant in the store, the report of the ISO week (in its report
 * zone) of its latest event (the bundled traces are from 2023 and 2024), stored and written as
 * `<dir>/<tenant>-<week>.{md,html,json}`. Prints the paths.
 * @returns the paths written.
 */
export async function writeTenantReports(
  loaded: LoadedConfig,
  client: ClickHouseClient,
  dir = demoReportsDir(loaded.config.clickhouse),
  engine?: RecommendationEngine,
): Promise<string[]> {
  const service = reportServiceFromConfig(client, loaded, engine);
  const rs = await client.query({ ...latestEventByTenant(), format: 'JSONEachRow' });
  const tenants = await rs.json<{ tenant: string; last_ms: string | number }>();
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  process.stdout.write("\nWeekly reports (the ISO week of each tenant's latest event)\n");
  for (const { tenant, last_ms } of tenants) {
    const week = isoWeekOf(Number(last_ms), service.timeZoneOf(tenant));
    const report = await service.generateAndStore(tenant, week);
    for (const format of ['md', 'html', 'json'] as const) {
      const path = resolve(dir, `${fileSafe(tenant)}-${week}.${format}`);
      writeFileSync(path, text(report, format));
      written.push(path);
      process.stdout.write(`  ${path}\n`);
    }
  }
  return written;
}
