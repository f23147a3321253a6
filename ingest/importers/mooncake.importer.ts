/**
 * Importer for the Mooncake (Moonshot AI / Kimi) request traces, FAST'25 release.
 *
 * Source: GitHub `kvcache-ai/Mooncake` (commit `3b5a5941`), directory `FAST25-release/traces/`
 * (`conversation_trace.jsonl`: real, sampled from one hour of online Kimi conversation requests;
 * also `toolagent_trace.jsonl`, real, and `synthetic_trace.jsonl`, synthetic).
 * Licence: Apache License 2.0 (the repository's `LICENSE-APACHE`; no separate data licence).
 * Citation: "Mooncake: A KVCache-centric Disaggregated Architecture for LLM Serving", FAST 2025.
 *
 * Layout: JSON Lines, one request per line:
 * `{"timestamp": 0, "input_length": 6758, "output_length": 500, "hash_ids": [0, 1, …, 13]}`
 *
 * | source field   | v1 field           | notes |
 * |----------------|--------------------|-------|
 * | timestamp      | timestamp          | ms since the start of the trace: epoch ms = start + timestamp (sub-ms truncated); start = option `startTime`, default `2024-01-01T00:00:00Z` (a PLACEHOLDER: the trace has no wall-clock date) |
 * | input_length   | input_tokens       | integer, as-is |
 * | output_length  | output_tokens      | integer, as-is |
 * | hash_ids       | prompt_hash        | hex sha256 of the ids joined by `,` (`0,1,2`), first 32 hex digits; same block chain = same prompt prefix. Omitted when hash_ids is absent or empty |
 * | hash_ids       | tags.prefix_blocks | number of 512-token prefix blocks, as a decimal string |
 * | hash_ids       | tags.prefix_chain  | prefix checkpoints `tokens:block id` (domain/prompt-prefix.ts), for the cache recommendation |
 * | (file, line)   | event_id           | `mooncake:<file name without extension>:<line>` (line 1 = first request) |
 * | —              | tenant             | option `tenant`; default `mooncake` |
 * | —              | provider           | option `provider`; default `moonshot` |
 * | —              | model              | option `model`; default `kimi` (not in a price table: pricing flags it unpriced) |
 * | —              | user_id            | option `userId`; omitted by default |
 *
 * Not set (the trace has no such field): task_id, latency_ms, status (default ok), operation
 * (default chat). The trace timestamp is the arrival time; it is used as the event time as-is.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { PREFIX_CHAIN_TAG, prefixChainTag } from '../../domain/prompt-prefix.ts';
import {
  clipRaw,
  eventIdOf,
  type ImportedRecord,
  type Importer,
  type ImporterOptions,
  RAW_LINE_FIELD,
  sourceOf,
  startTimeMs,
  withProblems,
} from './importer.ts';

/** Placeholder wall-clock time of Mooncake trace time 0 (the trace has no date). */
export const MOONCAKE_DEFAULT_START = '2024-01-01T00:00:00Z';
/** Tokens per prefix block in `hash_ids`. */
export const MOONCAKE_BLOCK_TOKENS = 512;

/**
 * `tags.prefix_chain` (domain/prompt-prefix.ts) of a block chain: checkpoint i covers the first
 * min((i + 1) x 512, input_length) tokens and is named by block id i, which in Mooncake's trace
 * stands for the whole chain up to it. Omitted (empty object) when the row's lengths do not fit
 * its blocks (two checkpoints with the same token count) or the input length is not a number.
 */
function prefixChain(ids: readonly number[], inputLength: unknown): { prefix_chain?: string } {
  if (ids.length === 0 || !Number.isSafeInteger(inputLength)) return {};
  try {
    const cps = ids.map((id, i) => ({ tokens: Math.min((i + 1) * MOONCAKE_BLOCK_TOKENS, inputLength as number), hash: String(id) }));
    return { [PREFIX_CHAIN_TAG]: prefixChainTag(cps) };
  } catch {
    return {};
  }
}

/** prompt_hash of a block chain: hex sha256 of the ids joined by ',', first 32 hex digits. */
export function mooncakePromptHash(hashIds: readonly number[]): string {
  return createHash('sha256').update(hashIds.join(','), 'utf8').digest('hex').slice(0, 32);
}

/** True when a JSON Lines line looks like a Mooncake request (an object with the trace's fields). */
export function isMooncakeLine(line: string): boolean {
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === 'object' && v !== null && !Array.isArray(v) && 'timestamp' in v && 'input_length' in v && 'output_length' in v;
  } catch {
    return false;
  }
}

interface Defaults {
  tenant: string;
  provider: string;
  model: string;
  userId?: string | undefined;
  startMs: number;
}

function short(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function mapLine(text: string, line: number, path: string, d: Defaults): ImportedRecord {
  const problems: string[] = [];
  const value: Record<string, unknown> = { event_id: eventIdOf('mooncake', path, line) };
  let row: Record<string, unknown> | null = null;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) row = parsed as Record<string, unknown>;
    else problems.push(`line is valid JSON but not an object: ${short(parsed)}`);
  } catch (err) {
    problems.push(`invalid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }

  if (row && 'timestamp' in row) {
    const t = row.timestamp;
    const ms = typeof t === 'number' ? d.startMs + Math.floor(t) : Number.NaN;
    if (Number.isSafeInteger(ms)) value.timestamp = ms;
    else {
      problems.push(`timestamp: not a number of milliseconds: ${short(t)}`);
      value.timestamp = t;
    }
  } else if (row) problems.push('timestamp: missing');
  value.tenant = d.tenant;
  if (d.userId !== undefined) value.user_id = d.userId;
  value.provider = d.provider;
  value.model = d.model;

  if (row) {
    for (const [from, to] of [
      ['input_length', 'input_tokens'],
      ['output_length', 'output_tokens'],
    ] as const) {
      if (!(from in row)) {
        problems.push(`${from}: missing`);
        continue;
      }
      const n = row[from];
      if (!Number.isSafeInteger(n)) problems.push(`${from}: not an integer: ${short(n)}`);
      value[to] = n;
    }

    const ids = row.hash_ids;
    if (ids !== undefined) {
      if (Array.isArray(ids) && ids.every((x) => Number.isSafeInteger(x))) {
        if (ids.length > 0) value.prompt_hash = mooncakePromptHash(ids as number[]);
        value.tags = { prefix_blocks: String(ids.length), ...prefixChain(ids as number[], row.input_length) };
      } else {
        problems.push(`hash_ids: not an array of integers: ${short(ids)}`);
      }
    }
  } else {
    value[RAW_LINE_FIELD] = clipRaw(text);
  }
  return { source: sourceOf(path, line), value: withProblems(value, problems) };
}

async function* read(path: string, options: ImporterOptions = {}): AsyncGenerator<ImportedRecord> {
  const defaults: Defaults = {
    tenant: options.tenant ?? 'mooncake',
    provider: options.provider ?? 'moonshot',
    model: options.model ?? 'kimi',
    userId: options.userId,
    startMs: startTimeMs(options.startTime, MOONCAKE_DEFAULT_START),
  };
  let file: Awaited<ReturnType<typeof open>>;
  try {
    file = await open(path, 'r');
  } catch (err) {
    throw new Error(`${path}: cannot open: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  // The read stream owns the handle (autoClose) and is iterated at once: no line is emitted before the loop starts.
  const input = file.createReadStream({ encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  try {
    for await (const raw of lines) {
      line += 1;
      const text = line === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (text.trim() === '') continue;
      yield mapLine(text, line, path, defaults);
    }
  } catch (err) {
    throw new Error(`${path}: cannot read JSON Lines: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  } finally {
    lines.close();
    input.destroy();
  }
}

export const mooncakeImporter: Importer = {
  format: 'mooncake',
  description:
    'Mooncake (Moonshot AI / Kimi) FAST25 request traces, JSON Lines: relative timestamp (ms), input_length, output_length, hash_ids (512-token prefix blocks) -> prompt_hash. Apache-2.0, cite Mooncake, FAST 2025.',
  read,
};
