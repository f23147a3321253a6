/**
 * Importer for the Azure LLM inference trace 2023 (the "Splitwise" trace).
 *
 * Source: GitHub `Azure/AzurePublicDataset` (commit `b469a113`), files
 * `data/AzureLLMInferenceTrace_code.csv` and `data/AzureLLMInferenceTrace_conv.csv`; description in
 * `AzureLLMInferenceDataset2023.md`. A sample of real production traces from LLM inference services
 * in Azure, collected on 2023-11-16 (prompt content withheld, token counts real).
 * Licence: CC-BY 4.0 (Creative Commons Attribution 4.0 International), see the repository's LICENSE.
 * Using the data means agreeing to the licence. Citation (required): Patel et al., "Splitwise:
 * Efficient generative LLM inference using phase splitting", ISCA 2024.
 *
 * Layout: CSV, header `TIMESTAMP,ContextTokens,GeneratedTokens`, CRLF line breaks.
 *
 * | source column      | v1 field        | notes |
 * |--------------------|-----------------|-------|
 * | TIMESTAMP          | timestamp       | `2023-11-16 18:17:03.9799600`: no zone, read as UTC; parsed exactly, the 7-digit fraction truncated to ms (never rounded); epoch ms |
 * | ContextTokens      | input_tokens    | integer, as-is |
 * | GeneratedTokens    | output_tokens   | integer, as-is |
 * | (file, line)       | event_id        | `azure-2023:<file name without extension>:<line>` |
 * | —                  | tenant          | option `tenant`; default `azure-code` / `azure-conv` from the file name (`_code` / `_conv`), else `azure` |
 * | —                  | provider        | option `provider`; default `azure` |
 * | —                  | model           | option `model`; default `azure-llm-2023-code` / `azure-llm-2023-conv` (else `azure-llm-2023`): the trace does not name its model, so these placeholder names are in no price table and pricing flags the events unpriced |
 * | —                  | user_id         | option `userId`; omitted by default |
 *
 * Not set (the trace has no such column): task_id, latency_ms, status (default ok), operation
 * (default chat), prompt_hash, tags. The `startTime` option is ignored: the trace has absolute times.
 * The TIMESTAMP is the only time the trace gives; it is used as the event time as-is.
 */
import { basename } from 'node:path';
import {
  type CsvRow,
  clipRaw,
  eventIdOf,
  headerCells,
  type ImportedRecord,
  type Importer,
  type ImporterOptions,
  parseIntegerText,
  RAW_LINE_FIELD,
  readCsvRows,
  sourceOf,
  utcMs,
  withProblems,
} from './importer.ts';

export const AZURE_2023_HEADER = ['timestamp', 'contexttokens', 'generatedtokens'] as const;

/** True when the (trimmed, lower-cased) header cells are the Azure 2023 trace header. */
export function isAzure2023Header(cells: readonly string[]): boolean {
  return cells.length === AZURE_2023_HEADER.length && AZURE_2023_HEADER.every((h, i) => cells[i] === h);
}

const AZURE_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$/;

/**
 * Parse an Azure 2023 TIMESTAMP (`2023-11-16 18:17:03.9799600`, no zone) as UTC epoch ms,
 * truncating the fraction to whole milliseconds. Null when the text is not in that form.
 */
export function parseAzureTimestamp(text: string): number | null {
  const m = AZURE_TIMESTAMP.exec(text);
  if (!m) return null;
  return utcMs(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), m[7] ?? '');
}

/** `code` / `conv` from the file name (`AzureLLMInferenceTrace_code.csv`), or null. */
function traceKind(path: string): 'code' | 'conv' | null {
  const name = basename(path).toLowerCase();
  if (/(^|[^a-z])code([^a-z]|$)/.test(name)) return 'code';
  if (/(^|[^a-z])conv([^a-z]|$)/.test(name)) return 'conv';
  return null;
}

function mapRow(
  row: CsvRow,
  path: string,
  defaults: { tenant: string; provider: string; model: string; userId?: string | undefined },
): ImportedRecord {
  const problems: string[] = [];
  const [tsText = '', inText = '', outText = ''] = row.cells;
  const value: Record<string, unknown> = { event_id: eventIdOf('azure-2023', path, row.line) };

  const ts = parseAzureTimestamp(tsText);
  if (ts === null) problems.push(`TIMESTAMP: not a date-time of the form YYYY-MM-DD hh:mm:ss.fffffff: ${JSON.stringify(tsText)}`);
  value.timestamp = ts ?? tsText;
  value.tenant = defaults.tenant;
  if (defaults.userId !== undefined) value.user_id = defaults.userId;
  value.provider = defaults.provider;
  value.model = defaults.model;

  const input = row.cells.length > 1 ? parseIntegerText(inText) : null;
  if (row.cells.length > 1) {
    if (input === null) problems.push(`ContextTokens: not an integer: ${JSON.stringify(inText)}`);
    value.input_tokens = input ?? inText;
  }
  const output = row.cells.length > 2 ? parseIntegerText(outText) : null;
  if (row.cells.length > 2) {
    if (output === null) problems.push(`GeneratedTokens: not an integer: ${JSON.stringify(outText)}`);
    value.output_tokens = output ?? outText;
  }

  if (row.cells.length !== AZURE_2023_HEADER.length) {
    problems.unshift(`expected ${AZURE_2023_HEADER.length} columns (TIMESTAMP,ContextTokens,GeneratedTokens), got ${row.cells.length}`);
    value[RAW_LINE_FIELD] = clipRaw(row.raw);
  }
  return { source: sourceOf(path, row.line), value: withProblems(value, problems) };
}

async function* read(path: string, options: ImporterOptions = {}): AsyncGenerator<ImportedRecord> {
  const kind = traceKind(path);
  const defaults = {
    tenant: options.tenant ?? (kind ? `azure-${kind}` : 'azure'),
    provider: options.provider ?? 'azure',
    model: options.model ?? (kind ? `azure-llm-2023-${kind}` : 'azure-llm-2023'),
    userId: options.userId,
  };
  let header = true;
  for await (const row of readCsvRows(path)) {
    if (header) {
      header = false;
      const cells = headerCells(row.raw);
      if (!isAzure2023Header(cells)) {
        throw new Error(
          `${path}: not an Azure LLM inference trace 2023 file: line ${row.line} is ${JSON.stringify(row.raw.slice(0, 200))}, expected the header TIMESTAMP,ContextTokens,GeneratedTokens`,
        );
      }
      continue;
    }
    yield mapRow(row, path, defaults);
  }
}

export const azure2023Importer: Importer = {
  format: 'azure-2023',
  description:
    'Azure LLM inference trace 2023 (Splitwise; AzureLLMInferenceTrace_code.csv / _conv.csv): TIMESTAMP (UTC), ContextTokens, GeneratedTokens. CC-BY 4.0, cite Patel et al., ISCA 2024.',
  read,
};
