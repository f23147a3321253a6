/**
 * Registry of the file importers, and format detection from a file's first line.
 * Formats, field mappings, defaults and event ids: docs/importers.md.
 */
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { azure2023Importer, isAzure2023Header } from './azure-2023.importer.ts';
import { burstGptImporter, burstGptLayout } from './burstgpt.importer.ts';
import { headerCells, type Importer, TRACE_FORMATS, type TraceFormat } from './importer.ts';
import { isMooncakeLine, mooncakeImporter } from './mooncake.importer.ts';

export type { ImportedRecord, Importer, ImporterOptions, TraceFormat } from './importer.ts';
export { TRACE_FORMATS };

export const importers: Record<TraceFormat, Importer> = {
  'azure-2023': azure2023Importer,
  burstgpt: burstGptImporter,
  mooncake: mooncakeImporter,
};

/** True when `name` is one of the known importer formats. */
export function isTraceFormat(name: string): name is TraceFormat {
  return (TRACE_FORMATS as readonly string[]).includes(name);
}

/** The first non-empty line of a file (BOM and line break removed), or null for an empty file. Reads only that far. */
async function firstLine(path: string): Promise<string | null> {
  const file = await open(path, 'r'); // fails here, cleanly, when the file cannot be opened
  const input = file.createReadStream({ encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  try {
    let first = true;
    for await (const raw of lines) {
      const text = first ? raw.replace(/^\uFEFF/, '') : raw;
      first = false;
      if (text.trim() !== '') return text;
    }
    return null;
  } finally {
    lines.close();
    input.destroy();
  }
}

/**
 * Tell a trace file's format from its first non-empty line: the Azure 2023 CSV header, one of
 * the two BurstGPT CSV headers, or a Mooncake JSON object with timestamp / input_length /
 * output_length.
 * @throws Error naming the file when it cannot be read, is empty, or matches no format.
 */
export async function detectFormat(path: string): Promise<TraceFormat> {
  let line: string | null;
  try {
    line = await firstLine(path);
  } catch (err) {
    throw new Error(`cannot detect the trace format of ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (line === null) throw new Error(`cannot detect the trace format of ${path}: the file is empty`);
  if (line.trimStart().startsWith('{')) {
    if (isMooncakeLine(line)) return 'mooncake';
  } else {
    const cells = headerCells(line);
    if (isAzure2023Header(cells)) return 'azure-2023';
    if (burstGptLayout(cells) !== null) return 'burstgpt';
  }
  const shown = line.length > 120 ? `${line.slice(0, 120)}…` : line;
  throw new Error(
    `cannot detect the trace format of ${path}: its first line ${JSON.stringify(shown)} is neither an Azure LLM trace 2023 header, a BurstGPT header, nor a Mooncake JSON line (known formats: ${TRACE_FORMATS.join(', ')})`,
  );
}
