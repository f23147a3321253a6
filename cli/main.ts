/**
 * quotaflow CLI entry point: parse arguments, load the config, hand over to a command.
 * Thin on purpose: commands live in cli/commands/, wiring in cli/pipeline.ts.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { ConfigError, type LoadedConfig, loadConfig } from '../config/load.ts';
import { parseRfc3339 } from '../domain/usage-event-validation.ts';
import { TRACE_FORMATS, type TraceFormat } from '../ingest/importers/importer.ts';
import { detectFormat } from '../ingest/importers/index.ts';
import { DataFolderLockedError, isClickHouseError } from '../storage/clickhouse.ts';
import { registerContextCommand } from './commands/context.ts';
import { MAX_DETECT_RANGE_MS, runDetect } from './commands/detect.ts';
import { demoSources, runImportCommand } from './commands/import.ts';
import { runMigrate } from './commands/migrate.ts';
import { registerRecommendationsCommand } from './commands/recommendations.ts';
import { registerReconcileCommand } from './commands/reconcile.ts';
import { REPORT_FILE_FORMATS, type ReportFileFormat, runReport, weekOption, writeTenantReports } from './commands/report.ts';
import { serve } from './commands/serve.ts';
import { runSql, SQL_FORMATS } from './commands/sql.ts';
import { RoleConfigError } from './roles.ts';

const program = new Command('quotaflow')
  .description('LLM API usage analytics: events -> windows in ClickHouse -> answers')
  .option('-c, --config <file>', 'config file (JSON or YAML); env overrides: see README');

/** commander parser: an RFC 3339 date-time with a zone, as epoch ms. */
function rfc3339(value: string): number {
  const ms = parseRfc3339(value);
  if (ms === null) throw new InvalidArgumentError(`not an RFC 3339 date-time with a zone: ${value}`);
  return ms;
}

const config = (): LoadedConfig => loadConfig(program.opts<{ config?: string }>().config);

program
  .command('demo')
  .description('replay the bundled real traces (data/samples) through the embedded pipeline, print a summary, write weekly reports')
  .action(async () => {
    const loaded = config();
    await runImportCommand(loaded, demoSources(), async (client) => void (await writeTenantReports(loaded, client)));
  });

program
  .command('report')
  .description("build a tenant's weekly report now, store it, and print it (or write it with --out)")
  .requiredOption('--tenant <tenant>', 'tenant')
  .option('--week <week>', "ISO week in the tenant's report time zone, e.g. 2026-W47 (default: the last complete week)", weekOption)
  .addOption(new Option('--format <format>', 'output format').choices(REPORT_FILE_FORMATS).default('md'))
  .option('--out <file>', 'write to this file instead of stdout')
  .action(async (o: { tenant: string; week?: string; format: ReportFileFormat; out?: string }) => runReport(config(), o));

program
  .command('import')
  .description('import trace files through the embedded pipeline (a second import of a file adds nothing)')
  .argument('<files...>', 'trace files')
  .addOption(new Option('-f, --format <format>', 'file format (default: detected)').choices(TRACE_FORMATS))
  .option('--tenant <tenant>', 'tenant for events that lack one')
  .option('--provider <provider>', 'provider for events that lack one')
  .option('--model <model>', "model for events that lack one (or to override a trace's model names)")
  .option('--start <time>', 'RFC 3339 wall-clock time of trace time 0 (relative traces)')
  .option('--user <user_id>', 'user_id for events that lack one')
  .action(
    async (
      files: string[],
      o: { format?: TraceFormat; tenant?: string; provider?: string; model?: string; start?: string; user?: string },
    ) => {
      const options = { tenant: o.tenant, provider: o.provider, model: o.model, startTime: o.start, userId: o.user };
      const sources = [];
      for (const path of files) sources.push({ path, format: o.format ?? (await detectFormat(path)), options });
      await runImportCommand(config(), sources);
    },
  );

program
  .command('sql')
  .description('run a SQL query on the store (see README: tables)')
  .argument('<query>', 'SQL, e.g. "SELECT tenant, sum(requests) FROM usage_hour GROUP BY tenant"')
  .addOption(new Option('--format <format>', 'output format').choices(SQL_FORMATS).default('PrettyCompactMonoBlock'))
  .action(async (query: string, o: { format: string }) => runSql(config(), query, o.format));

program
  .command('detect')
  .description('run the anomaly detectors over a past time range and store what they find (table anomalies)')
  .requiredOption('--from <time>', 'range start, RFC 3339 with a zone (inclusive)', rfc3339)
  .requiredOption('--to <time>', 'range end, RFC 3339 with a zone (exclusive)', rfc3339)
  .option('--tenant <tenant>', 'only this tenant')
  .action(async (o: { from: number; to: number; tenant?: string }) => {
    if (!(o.to > o.from)) throw new InvalidArgumentError('--to must be after --from');
    if (o.to - o.from > MAX_DETECT_RANGE_MS) throw new InvalidArgumentError('the range may span at most 31 days');
    await runDetect(config(), { fromMs: o.from, toMs: o.to, ...(o.tenant ? { tenant: o.tenant } : {}) });
  });

program
  .command('migrate')
  .description('apply pending ClickHouse migrations (schemas/clickhouse)')
  .action(async () => runMigrate(config()));

for (const [role, description] of [
  ['ingest', 'HTTP ingest: POST /v1/events -> Kafka (needs transport: kafka)'],
  ['processor', 'Kafka consumer group -> validate, de-duplicate, price, window -> ClickHouse'],
  ['api', 'read API over ClickHouse: usage, quotas, allocations, anomalies, reports, routing (OpenAPI at /docs)'],
  ['all', 'ingest + processor + api in one process (embedded chDB: the only role that may own the folder)'],
] as const) {
  program
    .command(role)
    .description(description)
    .action(async () => serve(role, config(), exitWith));
}

registerContextCommand(program);
registerRecommendationsCommand(program, config);
registerReconcileCommand(program, config);

program
  .command('check-config')
  .description('validate the config (file + env) and exit 0, or list every problem and exit 1')
  .action(() => {
    const loaded = config();
    process.stdout.write(`config OK (${loaded.config.clickhouse.mode} ClickHouse)\n`);
  });

/**
 * Print why the command failed and exit 1. Problems the user can fix (config, arguments, a held
 * data folder, an error ClickHouse answered to a query) are one line without a stack trace; a
 * ClickHouse error names its code and type (`ClickHouse error 60 (UNKNOWN_TABLE): ...`), its
 * message folded onto that line. Anything else is a bug or an outage: the stack is printed.
 */
function exitWith(err: unknown): never {
  if (
    err instanceof ConfigError ||
    err instanceof DataFolderLockedError ||
    err instanceof InvalidArgumentError ||
    err instanceof RoleConfigError
  ) {
    process.stderr.write(`quotaflow: ${err.message}\n`);
  } else if (isClickHouseError(err)) {
    const text = err.message.replace(/\s+/g, ' ').trim();
    process.stderr.write(`quotaflow: ClickHouse error ${err.code}${err.type ? ` (${err.type})` : ''}: ${text}\n`);
  } else {
    process.stderr.write(`quotaflow: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  process.exit(1);
}

program.parseAsync(process.argv).catch(exitWith);
