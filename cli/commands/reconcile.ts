/**
 * `quotaflow reconcile --tenant T --file <export.json> [--tolerance 0.01] [--provider P] [--json]`:
 * compare a provider's usage export (OpenAI organisation usage API, completions; or Anthropic's
 * messages usage report) with the tenant's events, per UTC day and model, and flag the rows that
 * differ by more than the tolerance (default: config `reconcile.tolerance`, 1%).
 */
import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import type { LoadedConfig } from '../../config/load.ts';
import { parseUsageExport, type ReconcileRow, reconcile, UsageExportError } from '../../processors/reconcile/index.ts';
import { printTable } from '../output.ts';
import { withStore } from '../pipeline.ts';

export interface ReconcileOptions {
  tenant: string;
  file: string;
  /** Share, 0.01 = 1%. */
  tolerance: number;
  provider?: string;
  json?: boolean;
}

const pctCell = (v: number | null) => (v === null ? 'n/a' : `${v >= 0 ? '+' : ''}${v.toFixed(2)}%`);

function tableRow(r: ReconcileRow): Record<string, unknown> {
  return {
    day: r.day,
    model: r.model,
    provider_req: r.provider_requests ?? '',
    ours_req: r.ours_requests,
    provider_in: r.provider_tokens_in,
    ours_in: r.ours_in,
    diff_in: r.diff,
    diff_in_pct: pctCell(r.diff_pct),
    provider_out: r.provider_tokens_out,
    ours_out: r.ours_out,
    diff_out_pct: pctCell(r.diff_out_pct),
    provider_cached: r.provider_cached_in,
    ours_cached: r.ours_cached_in,
    flag: r.flagged ? `! ${r.reasons.join(',')}` : '',
  };
}

/**
 * Run the command (see the module doc). A file that cannot be read or parsed is reported on stderr
 * with exit code 1; the comparison itself always exits 0 (read the flags).
 */
export async function runReconcile(loaded: LoadedConfig, o: ReconcileOptions): Promise<void> {
  const fail = (message: string) => {
    process.stderr.write(`quotaflow: ${o.file}: ${message}\n`);
    process.exitCode = 1;
  };
  let text: string;
  try {
    text = readFileSync(o.file, 'utf8');
  } catch (err) {
    return fail(`cannot read: ${(err as Error).message}`);
  }
  let exported: ReturnType<typeof parseUsageExport>;
  try {
    exported = parseUsageExport(JSON.parse(text));
  } catch (err) {
    if (err instanceof SyntaxError) return fail(`not JSON: ${err.message}`);
    if (err instanceof UsageExportError) return fail(err.message);
    throw err;
  }
  const tenant = o.tenant.normalize('NFC');
  const result = await withStore(loaded, (client) =>
    reconcile(client, { tenant, exported, tolerance: o.tolerance, ...(o.provider ? { provider: o.provider } : {}) }),
  );
  if (o.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  printTable(
    `Reconciliation of ${o.file} (${result.format}) with tenant ${tenant}, provider ${result.provider}, ${result.range.from} .. ${result.range.to}` +
      (result.by_model ? '' : ' (export without model: * = all models)'),
    result.rows.map(tableRow),
  );
  process.stdout.write(
    `\n${result.flagged} of ${result.rows.length} day/model rows differ by more than ${(o.tolerance * 100).toFixed(2)}% (diff = ours - provider)\n`,
  );
  if (result.partial_export)
    process.stdout.write('note: the export says more pages follow (has_more); days on later pages are not compared\n');
}

function tolerance(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(n >= 0 && n <= 1))
    throw new InvalidArgumentError(`--tolerance: a share between 0 and 1 (0.01 = 1%), got ${value}`);
  return n;
}

/** Register `quotaflow reconcile` on the program; `config` loads the config when the command runs. */
export function registerReconcileCommand(program: Command, config: () => LoadedConfig): void {
  program
    .command('reconcile')
    .description("compare a provider's usage export with the tenant's events, per UTC day and model (docs/recommendations.md)")
    .requiredOption('--tenant <tenant>', 'tenant')
    .requiredOption('--file <export.json>', 'OpenAI organisation usage (completions) export, or Anthropic messages usage report')
    .option('--tolerance <share>', 'flag differences above this share (default: config reconcile.tolerance, 0.01 = 1%)', tolerance)
    .option('--provider <provider>', "our provider name to compare with (default: the export's: openai or anthropic)")
    .option('--json', 'print JSON instead of a table')
    .action(async (o: { tenant: string; file: string; tolerance?: number; provider?: string; json?: boolean }) => {
      const loaded = config();
      await runReconcile(loaded, {
        tenant: o.tenant,
        file: o.file,
        tolerance: o.tolerance ?? loaded.config.reconcile.tolerance,
        ...(o.provider ? { provider: o.provider } : {}),
        ...(o.json ? { json: true } : {}),
      });
    });
}
