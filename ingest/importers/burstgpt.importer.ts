/**
 * Importer for BurstGPT, a real ChatGPT / GPT-4 request trace (Azure OpenAI service used by a
 * university campus).
 *
 * Source: GitHub `HPMLL/BurstGPT` (commit `e92f533b`): `data/BurstGPT_1.csv` and the release
 * assets `BurstGPT_2.csv` / `BurstGPT_3.csv` (and their `_without_fails` variants).
 * Licence: CC-BY 4.0 (Creative Commons Attribution 4.0 International), the repository's LICENSE
 * (its `example/` code alone is MIT).
 * Citation (required): Wang et al., "BurstGPT: A Real-World Workload Dataset to Optimize LLM
 * Serving Systems", KDD 2025 (arXiv 2401.17644).
 *
 * Two CSV layouts, told apart by the header (the two extra columns of `_3` are inserted at
 * positions 2-3, not appended):
 * - `_1` / `_2`, 6 columns: `Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type`
 * - `_3`, 8 columns: `Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens,Log Type`
 *
 * | source column   | v1 field      | notes |
 * |-----------------|---------------|-------|
 * | Timestamp       | timestamp     | seconds since the start of the trace (`5`, `19440110.0`): epoch ms = start + seconds x 1000, exact decimal, sub-ms truncated; start = option `startTime`, default `2023-07-01T00:00:00Z` (a PLACEHOLDER: the trace has no wall-clock date) |
 * | Session ID (_3) | task_id       | only when non-empty (set on `Conversation log` rows, empty on `API log` rows) |
 * | Elapsed time (_3) | latency_ms  | seconds x 1000 (end-to-end, request to complete response); omitted when empty |
 * | Model           | model         | `ChatGPT` -> `gpt-3.5-turbo`, `GPT-4` -> `gpt-4`, any other value as-is; option `model` overrides all rows |
 * | Request tokens  | input_tokens  | integer, as-is |
 * | Response tokens | output_tokens | integer, as-is |
 * | Response tokens | status        | `error` when 0 (BurstGPT marks a failed request by 0 response tokens), else `ok` |
 * | Total tokens    | —             | checked: must equal Request + Response tokens, else the row is flagged (`import_error`) |
 * | Log Type        | tags.log_type | as-is (`Conversation log` / `API log`); omitted when empty |
 * | (file, line)    | event_id      | `burstgpt:<file name without extension>:<line>` |
 * | —               | tenant        | option `tenant`; default `burstgpt` |
 * | —               | provider      | option `provider`; default `azure-openai` |
 * | —               | user_id       | option `userId`; omitted by default |
 *
 * The trace Timestamp is the request's arrival time; it is used as the event time as-is (not
 * shifted by the elapsed time), so both layouts give the same times for the same trace rows.
 */
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
  secondsTextToMs,
  sourceOf,
  startTimeMs,
  withProblems,
} from './importer.ts';

/** Placeholder wall-clock time of BurstGPT trace time 0 (the trace has no date). */
export const BURSTGPT_DEFAULT_START = '2023-07-01T00:00:00Z';

/** Model names in the trace -> model names used for pricing. */
export const BURSTGPT_MODELS: Readonly<Record<string, string>> = { ChatGPT: 'gpt-3.5-turbo', 'GPT-4': 'gpt-4' };

interface Layout {
  name: '_1' | '_3';
  columns: number;
  timestamp: number;
  sessionId?: number;
  elapsed?: number;
  model: number;
  request: number;
  response: number;
  total: number;
  logType: number;
}

const LAYOUT_1: Layout = { name: '_1', columns: 6, timestamp: 0, model: 1, request: 2, response: 3, total: 4, logType: 5 };
const LAYOUT_3: Layout = {
  name: '_3',
  columns: 8,
  timestamp: 0,
  sessionId: 1,
  elapsed: 2,
  model: 3,
  request: 4,
  response: 5,
  total: 6,
  logType: 7,
};
const TAIL = ['model', 'request tokens', 'response tokens', 'total tokens', 'log type'];

/** The layout of a BurstGPT header (trimmed, lower-cased cells), or null when it is not one. */
export function burstGptLayout(cells: readonly string[]): '_1' | '_3' | null {
  const same = (expected: readonly string[]) => cells.length === expected.length && expected.every((h, i) => cells[i] === h);
  if (same(['timestamp', ...TAIL])) return '_1';
  if (same(['timestamp', 'session id', 'elapsed time', ...TAIL]) || same(['timestamp', 'session id', 'elapsed time (s)', ...TAIL]))
    return '_3';
  return null;
}

interface Defaults {
  tenant: string;
  provider: string;
  model?: string | undefined;
  userId?: string | undefined;
  startMs: number;
}

function mapRow(row: CsvRow, path: string, layout: Layout, d: Defaults): ImportedRecord {
  const problems: string[] = [];
  const cell = (i: number | undefined): string | undefined => (i === undefined ? undefined : row.cells[i]);
  const value: Record<string, unknown> = { event_id: eventIdOf('burstgpt', path, row.line) };

  const tsText = cell(layout.timestamp) ?? '';
  const offsetMs = secondsTextToMs(tsText, true);
  if (offsetMs === null) problems.push(`Timestamp: not a number of seconds: ${JSON.stringify(tsText)}`);
  value.timestamp = offsetMs === null ? tsText : d.startMs + offsetMs;
  value.tenant = d.tenant;
  if (d.userId !== undefined) value.user_id = d.userId;
  const session = cell(layout.sessionId);
  if (session) value.task_id = session;
  value.provider = d.provider;
  const model = cell(layout.model);
  if (d.model !== undefined) value.model = d.model;
  else if (model !== undefined) value.model = BURSTGPT_MODELS[model] ?? model;

  const tokens = (index: number, column: string, field: string): number | null => {
    const text = cell(index);
    if (text === undefined) return null;
    const n = parseIntegerText(text);
    if (n === null) problems.push(`${column}: not an integer: ${JSON.stringify(text)}`);
    value[field] = n ?? text;
    return n;
  };
  const input = tokens(layout.request, 'Request tokens', 'input_tokens');
  const output = tokens(layout.response, 'Response tokens', 'output_tokens');

  const elapsed = cell(layout.elapsed);
  if (elapsed) {
    const ms = secondsTextToMs(elapsed, false);
    if (ms === null) problems.push(`Elapsed time: not a number of seconds: ${JSON.stringify(elapsed)}`);
    value.latency_ms = ms ?? elapsed;
  }
  if (output !== null) value.status = output === 0 ? 'error' : 'ok';

  const totalText = cell(layout.total);
  if (totalText !== undefined && input !== null && output !== null) {
    const total = parseIntegerText(totalText);
    if (total !== input + output)
      problems.push(`Total tokens ${JSON.stringify(totalText)} is not Request tokens + Response tokens (${input + output})`);
  }
  const logType = cell(layout.logType);
  if (logType) value.tags = { log_type: logType };

  if (row.cells.length !== layout.columns) {
    problems.unshift(`expected ${layout.columns} columns (BurstGPT${layout.name} layout), got ${row.cells.length}`);
    value[RAW_LINE_FIELD] = clipRaw(row.raw);
  }
  return { source: sourceOf(path, row.line), value: withProblems(value, problems) };
}

async function* read(path: string, options: ImporterOptions = {}): AsyncGenerator<ImportedRecord> {
  const defaults: Defaults = {
    tenant: options.tenant ?? 'burstgpt',
    provider: options.provider ?? 'azure-openai',
    model: options.model,
    userId: options.userId,
    startMs: startTimeMs(options.startTime, BURSTGPT_DEFAULT_START),
  };
  let layout: Layout | null = null;
  for await (const row of readCsvRows(path)) {
    if (layout === null) {
      const name = burstGptLayout(headerCells(row.raw));
      if (name === null) {
        throw new Error(
          `${path}: not a BurstGPT file: line ${row.line} is ${JSON.stringify(row.raw.slice(0, 200))}, expected the header ` +
            'Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type or Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens,Log Type',
        );
      }
      layout = name === '_1' ? LAYOUT_1 : LAYOUT_3;
      continue;
    }
    yield mapRow(row, path, layout, defaults);
  }
}

export const burstGptImporter: Importer = {
  format: 'burstgpt',
  description:
    'BurstGPT (ChatGPT/GPT-4 on Azure OpenAI at a university), layouts _1 (6 columns) and _3 (8 columns): relative Timestamp (s), tokens, 0 response tokens = failed. CC-BY 4.0, cite Wang et al., KDD 2025.',
  read,
};
