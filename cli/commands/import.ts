/** `quotaflow import` and `quotaflow demo`: replay trace files through the embedded pipeline. */
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadedConfig } from '../../config/load.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import { createProgress, printTable } from '../output.ts';
import { type ImportResult, type ImportSource, importFiles, withStore } from '../pipeline.ts';
import { printSummary } from './summary.ts';

export const SAMPLES_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'data', 'samples');

/** The bundled real samples the demo replays (see data/samples/README.md). */
export function demoSources(dir = SAMPLES_DIR): ImportSource[] {
  return [
    { path: join(dir, 'AzureLLMInferenceTrace_code.csv'), format: 'azure-2023', options: {} },
    { path: join(dir, 'AzureLLMInferenceTrace_conv.csv'), format: 'azure-2023', options: {} },
    { path: join(dir, 'BurstGPT_1_first400.csv'), format: 'burstgpt', options: {} },
    { path: join(dir, 'BurstGPT_3_first400.csv'), format: 'burstgpt', options: {} },
    { path: join(dir, 'conversation_trace.jsonl'), format: 'mooncake', options: {} },
  ];
}

function countDataLines(path: string): number {
  const text = readFileSync(path, 'utf8');
  let n = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) n++;
  return n;
}

function printRun(result: ImportResult, seconds: number): void {
  const s = result.stats;
  const dead = s.deadLetters.invalid_json + s.deadLetters.invalid_event + s.deadLetters.conflicting_duplicate;
  printTable(
    'Files read (token sums as read from each file)',
    result.sources.map((t) => ({
      file: basename(t.path),
      records: t.records,
      input_tokens: t.input_tokens,
      output_tokens: t.output_tokens,
    })),
  );
  process.stdout.write(
    `\nThis run: ${s.messages.toLocaleString('en-US')} events in ${seconds.toFixed(1)} s -> ` +
      `${s.accepted.toLocaleString('en-US')} accepted (new), ${s.duplicates.toLocaleString('en-US')} duplicates (already stored, counted 0 times more), ` +
      `${dead.toLocaleString('en-US')} rejected to dead_letters ` +
      `(invalid_json ${s.deadLetters.invalid_json}, invalid_event ${s.deadLetters.invalid_event}, conflicting_duplicate ${s.deadLetters.conflicting_duplicate})\n`,
  );
}

/**
 * Run the sources, then print the run and the stored summary; `then` runs last on the same store
 * (the demo writes its weekly reports there).
 */
export async function runImportCommand(
  loaded: LoadedConfig,
  sources: ImportSource[],
  then?: (client: ClickHouseClient) => Promise<void>,
): Promise<ImportResult> {
  return withStore(loaded, async (client) => {
    const total = sources.reduce((n, s) => n + countDataLines(s.path), 0);
    const progress = createProgress(total, 'events');
    const started = performance.now();
    let result: ImportResult;
    try {
      result = await importFiles(loaded, client, sources, (sent, stats) => progress.update(sent, `${stats.accepted} accepted`));
    } finally {
      progress.stop();
    }
    printRun(result, (performance.now() - started) / 1000);
    await printSummary(client);
    await then?.(client);
    return result;
  });
}
