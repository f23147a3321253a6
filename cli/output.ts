/** Terminal output helpers for the CLI: tables and a progress bar that stays off when piped. */
import cliProgress from 'cli-progress';

/** Print rows as an aligned text table (numbers right-aligned, with thousands separators). */
export function printTable(title: string, rows: ReadonlyArray<Record<string, unknown>>, out = process.stdout): void {
  out.write(`\n${title}\n`);
  if (rows.length === 0) {
    out.write('  (none)\n');
    return;
  }
  const cols = Object.keys(rows[0] as object);
  const fmt = (v: unknown): string => {
    if (typeof v === 'number') return v.toLocaleString('en-US');
    if (typeof v === 'string' && /^-?\d+$/.test(v) && v.length > 3) return Number(v).toLocaleString('en-US');
    return v === null || v === undefined ? '' : String(v);
  };
  const cells = rows.map((r) => cols.map((c) => fmt(r[c])));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => (row[i] as string).length)));
  const numeric = cols.map((_, i) => cells.every((row) => /^-?[\d,.]+$/.test(row[i] as string)));
  const line = (vals: string[]) =>
    `  ${vals.map((v, i) => (numeric[i] ? v.padStart(widths[i] as number) : v.padEnd(widths[i] as number))).join('  ')}\n`;
  out.write(line(cols));
  for (const row of cells) out.write(line(row));
}

export interface Progress {
  update(value: number, label?: string): void;
  stop(): void;
}

/** A progress bar on stderr when it is a terminal; silent otherwise (CI logs stay clean). */
export function createProgress(total: number, unit: string): Progress {
  if (!process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    { format: `  {bar} {percentage}% | {value}/{total} ${unit} | {label}`, stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { label: '' });
  return {
    update: (value, label) => bar.update(Math.min(value, total), label === undefined ? {} : { label }),
    stop: () => bar.stop(),
  };
}
