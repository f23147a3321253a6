/**
 * File importers: shared types and helpers (SPEC.md section 1, "file replay of real exports and
 * traces"). An importer streams one trace file and yields one usage event v1 candidate per data
 * row. It never validates and never drops a row: a row it cannot map is still yielded, carrying
 * what could be mapped, the bad value as-is, and an `import_error` field (not part of v1, so
 * validation always rejects the record with a field-level reason and it lands in the dead-letter
 * store). Only empty lines are skipped.
 *
 * Field mappings and defaults per format: docs/importers.md.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename, parse as parsePath } from 'node:path';
import { pipeline } from 'node:stream';
import { parse as parseCsv } from 'csv-parse';
import { Decimal } from 'decimal.js';
import { parseRfc3339 } from '../../domain/usage-event-validation.ts';
import { LIMITS } from '../../schemas/usage-event.ts';

export type TraceFormat = 'azure-2023' | 'burstgpt' | 'mooncake';
export const TRACE_FORMATS: readonly TraceFormat[] = ['azure-2023', 'burstgpt', 'mooncake'];

/** One mapped row. */
export interface ImportedRecord {
  /** Where the row came from: `<basename>:<line number>` (1-based physical line; a CSV header is line 1). */
  source: string;
  /** The mapped v1 event (wire shape `UsageEventV1`); may be invalid, validation decides. */
  value: Record<string, unknown>;
}

/** Values a trace does not carry; each importer documents its defaults. */
export interface ImporterOptions {
  tenant?: string;
  provider?: string;
  model?: string;
  /** RFC 3339 date-time with a zone: the wall-clock time of trace time 0, for relative traces. */
  startTime?: string;
  userId?: string;
}

export interface Importer {
  format: TraceFormat;
  description: string;
  /** Stream the file's rows as v1 candidates, in file order. Throws (naming the file) on file-level problems. */
  read(path: string, options: ImporterOptions): AsyncIterable<ImportedRecord>;
}

/**
 * Name of the extra field an importer adds when a row could not be mapped completely. It is not
 * a v1 field, so `validateUsageEvent` always rejects such a record ("unknown field").
 */
export const IMPORT_ERROR_FIELD = 'import_error';
/** Extra field holding the raw text of a row that was structurally broken (bad JSON, wrong column count). */
export const RAW_LINE_FIELD = 'raw_line';
/** `raw_line` keeps at most this many characters of a broken row. */
export const MAX_RAW_LINE_CHARS = 16_384;

/** `<basename>:<line>` */
export function sourceOf(path: string, line: number): string {
  return `${basename(path)}:${line}`;
}

/**
 * Deterministic event id: `${format}:${file name without extension}:${line}`, so importing the
 * same file twice yields the same ids (the second import adds nothing). When that would exceed
 * the 128-character cap, the name is cut and suffixed with `~` and the first 8 hex digits of the
 * sha256 of the full name, which keeps ids distinct and deterministic.
 */
export function eventIdOf(format: TraceFormat, path: string, line: number): string {
  const name = parsePath(path).name;
  const id = `${format}:${name}:${line}`;
  if (id.length <= LIMITS.event_id) return id;
  const digest = createHash('sha256').update(name, 'utf8').digest('hex').slice(0, 8);
  const room = LIMITS.event_id - format.length - String(line).length - 2 - digest.length - 1;
  return `${format}:${name.slice(0, Math.max(0, room))}~${digest}:${line}`;
}

/** Epoch ms (UTC) of a calendar date-time, or null when a part is out of range. Sub-ms digits are truncated. */
export function utcMs(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  fraction = '',
): number | null {
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return null;
  const base = Date.UTC(year, month - 1, day, hour, minute, second);
  const d = new Date(base);
  if (d.getUTCFullYear() !== year || d.getUTCDate() !== day) return null; // 2023-02-30 and friends
  return base + Number(fraction.slice(0, 3).padEnd(3, '0'));
}

/**
 * Parse the `startTime` option (RFC 3339 with a zone) into epoch ms; `fallback` when absent.
 * @throws Error when the option is present but not an RFC 3339 date-time with a zone.
 */
export function startTimeMs(startTime: string | undefined, fallback: string): number {
  const text = startTime ?? fallback;
  const ms = parseRfc3339(text);
  if (ms === null)
    throw new Error(
      `the start time (--start, option startTime) must be an RFC 3339 date-time with a zone (e.g. 2024-01-01T00:00:00Z), got ${JSON.stringify(text)}`,
    );
  return ms;
}

/** A token count from a CSV cell: an integer (possibly negative, validation rejects it), or null. */
export function parseIntegerText(text: string): number | null {
  if (!/^-?\d+$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * A non-negative decimal number of seconds (`5`, `19440110.0`, `1.25`) as milliseconds, computed
 * exactly in decimal. `truncate` cuts sub-millisecond digits (used for timestamps); otherwise
 * the exact value is returned (latency may be fractional). Null when the text is not such a number.
 */
export function secondsTextToMs(text: string, truncate: boolean): number | null {
  if (!/^\d+(?:\.\d+)?$/.test(text)) return null;
  const ms = new Decimal(text).times(1000);
  const n = (truncate ? ms.floor() : ms).toNumber();
  return Number.isFinite(n) && n <= Number.MAX_SAFE_INTEGER ? n : null;
}

/** Keep at most MAX_RAW_LINE_CHARS characters of a broken row. */
export function clipRaw(text: string): string {
  return text.length <= MAX_RAW_LINE_CHARS
    ? text
    : `${text.slice(0, MAX_RAW_LINE_CHARS)}…(${text.length - MAX_RAW_LINE_CHARS} more characters)`;
}

/** Attach the mapping problems of a row (if any) to its value, as `import_error: "a; b"`. */
export function withProblems(value: Record<string, unknown>, problems: readonly string[]): Record<string, unknown> {
  if (problems.length > 0) value[IMPORT_ERROR_FIELD] = problems.join('; ');
  return value;
}

/** One CSV row with its physical line number. */
export interface CsvRow {
  cells: string[];
  /** 1-based physical line number of the row. */
  line: number;
  /** The row's text without its line break. */
  raw: string;
}

/**
 * If a whole cell is wrapped in double quotes (`"API log"`), unwrap it and unescape `""`.
 * Quoting is otherwise not interpreted (see `readCsvRows`).
 */
function unquoteCell(cell: string): string {
  return cell.length >= 2 && cell.startsWith('"') && cell.endsWith('"') ? cell.slice(1, -1).replaceAll('""', '"') : cell;
}

/**
 * Stream a CSV file's rows (header included) with csv-parse, in constant memory.
 *
 * Quote parsing is off: none of the supported traces quotes fields, and with it off one physical
 * line is always one row, so a stray quote cannot swallow the rest of the file or shift line
 * numbers (a cell wholly wrapped in quotes is still unwrapped). Rows may have any number of
 * cells (the importer flags a wrong count). Empty lines are skipped; a UTF-8 BOM is dropped;
 * LF and CRLF line breaks are both accepted.
 * @throws Error naming the file when it cannot be read or parsed.
 */
export async function* readCsvRows(path: string): AsyncGenerator<CsvRow> {
  const parser = pipeline(
    createReadStream(path),
    parseCsv({ bom: true, quote: false, relax_column_count: true, skip_empty_lines: true, info: true, raw: true }),
    () => {
      /* errors surface through the iteration below */
    },
  );
  try {
    for await (const item of parser as AsyncIterable<{ record: string[]; info: { lines: number }; raw: string }>) {
      yield { cells: item.record.map(unquoteCell), line: item.info.lines, raw: item.raw.replace(/\r?\n$|\r$/, '').replace(/^[\r\n]+/, '') };
    }
  } catch (err) {
    throw new Error(`${path}: cannot read CSV: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  } finally {
    parser.destroy();
  }
}

/** The header row (cells trimmed and lower-cased) of a CSV text line. */
export function headerCells(line: string): string[] {
  return line
    .replace(/^\uFEFF/, '')
    .replace(/\r$/, '')
    .split(',')
    .map((c) => unquoteCell(c.trim()).trim().toLowerCase());
}
