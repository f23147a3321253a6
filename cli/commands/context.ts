/**
 * `quotaflow context sync --from A --to B --in FILE --out FILE`: move a user's conversation
 * history between platform formats through files (docs/contexts.md). Pure file conversion: no
 * config, no store. Formats: openai (chat completions), openai-responses, anthropic, and records
 * (context records v1, as `GET /v1/contexts/:user/export` answers and `POST /v1/contexts` takes).
 *
 * A platform file holds one user's conversations: `{ "user_id": ..., "conversations": [{
 * "conversation_id": ..., <the platform's payload: messages / system + messages / input> }] }`,
 * or one conversation's payload alone (then `--conversation` names it, default `default`).
 * A records file is `{ "records": [...] }` or the array; several versions of one message are
 * merged last-write-wins first, and tombstones are left out of a platform file.
 * What a conversion leaves out (images, tool calls, texts held only as a hash) is printed to
 * stderr as notes, by place, never with the text. Input that is not valid (a message that is not
 * an object, an unknown role, content of the wrong type, a record that fails validation) is a
 * problem: every one is listed by its place in the input file (`conversations[0].messages[1].content`)
 * or the option that set the field (`--at`), nothing is written, and the command exits 1.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { mergeLastWriteWins } from '../../domain/context-merge.ts';
import { rfc3339, toWireRecord, validateContextRecord } from '../../domain/context-validation.ts';
import { parseRfc3339 } from '../../domain/usage-event-validation.ts';
import {
  CONTEXT_FORMATS,
  type ContextFormat,
  ContextFormatError,
  compareInConversation,
  platformToRecords,
  type RecordSource,
  renderConversations,
} from '../../ingest/context/index.ts';
import type { ContextRecord } from '../../schemas/context-record.ts';

export const SYNC_FORMATS = [...CONTEXT_FORMATS, 'records'] as const;
export type SyncFormat = (typeof SYNC_FORMATS)[number];

export interface SyncOptions {
  from: SyncFormat;
  to: SyncFormat;
  /** The user of the history (default: the file's `user_id`, else `default`); with records, picks one user. */
  userId?: string;
  /** The conversation id of a file holding one conversation's payload alone. Default `default`. */
  conversationId?: string;
  /** RFC 3339: created_at/updated_at of records made from a platform file. Default now. */
  at?: string;
  /** `platform` of records made from a platform file. Default: the format's (openai, anthropic). */
  platform?: string;
  /** Epoch ms (validation's now). */
  nowMs: number;
}

/** A note of a conversion: where (conversation, message or input path) and why. */
export interface SyncNote {
  where: string;
  reason: string;
}

/** The input is not a history of the format; every problem is listed. */
export class ContextSyncError extends Error {
  constructor(readonly problems: string[]) {
    super(`cannot convert the history:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ContextSyncError';
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Raw records to validate, each with the place of a field in the input (for a problem). */
interface RawRecords {
  userId: string | undefined;
  records: unknown[];
  /** Where `field` of `records[i]` came from: a JSON path of the input file, or an option. */
  placeOf: (i: number, field: string) => string;
  /** Problems found before validation (payloads not of the format). */
  problems: string[];
}

const join = (prefix: string, path: string) => (prefix === '' ? path : `${prefix}.${path}`);

/** The records of a platform file (see the module comment), with the places their fields came from. */
function fromPlatformFile(format: ContextFormat, input: unknown, o: SyncOptions, notes: SyncNote[]): RawRecords {
  const fileUser = isObject(input) && typeof input.user_id === 'string' ? input.user_id : undefined;
  const userId = o.userId ?? fileUser ?? 'default';
  const at = o.at ?? rfc3339(o.nowMs);
  const conversations: Array<{ id: string; payload: unknown; where: string }> =
    isObject(input) && Array.isArray(input.conversations)
      ? input.conversations.map((c: unknown, i) => ({
          id: isObject(c) && typeof c.conversation_id === 'string' ? c.conversation_id : '',
          payload: c,
          where: `conversations[${i}]`,
        }))
      : [{ id: o.conversationId ?? 'default', payload: input, where: '' }];
  const problems: string[] = [];
  const records: unknown[] = [];
  const places: Array<{ where: string; source: RecordSource }> = [];
  for (const c of conversations) {
    if (c.id === '') {
      problems.push(`${c.where}.conversation_id: expected a non-empty string`);
      continue;
    }
    try {
      const n = platformToRecords(format, c.payload, {
        user_id: userId,
        conversation_id: c.id,
        at,
        ...(o.platform === undefined ? {} : { platform: o.platform }),
      });
      records.push(...n.records);
      for (const source of n.sources) places.push({ where: c.where, source });
      for (const note of n.notes) notes.push({ where: join(c.where, note.path), reason: note.reason });
      for (const p of n.problems) problems.push(`${join(c.where, p.path)}: ${p.reason}`);
    } catch (err) {
      if (!(err instanceof ContextFormatError)) throw err;
      problems.push(join(c.where, err.message));
    }
  }
  const placeOf = (i: number, field: string): string => {
    const { where, source } = places[i] as { where: string; source: RecordSource };
    if (field === 'content') return join(where, source.content);
    if (field === 'tool_call_id') return join(where, source.tool_call_id ?? source.content);
    if (field === 'user_id') return o.userId !== undefined ? '--user' : fileUser !== undefined ? 'user_id' : '(default user)';
    if (field === 'conversation_id') return where === '' ? '--conversation' : `${where}.conversation_id`;
    if (field === 'created_at' || field === 'updated_at') return '--at';
    if (field === 'platform') return '--platform';
    return `${join(where, source.content)} (record field ${field})`;
  };
  return { userId, records, placeOf, problems };
}

/** The records of a records file (`{ records }` or the array). */
function fromRecordsFile(input: unknown, o: SyncOptions): RawRecords {
  const list = Array.isArray(input) ? input : isObject(input) ? input.records : undefined;
  if (!Array.isArray(list)) throw new ContextSyncError(['records: expected an array of context records (or { "records": [...] })']);
  return { userId: o.userId, records: list, placeOf: (i, field) => `records[${i}].${field}`, problems: [] };
}

/**
 * Convert a parsed history file (see the module comment).
 * @returns the output document and the notes of what was left out.
 * @throws ContextSyncError listing every problem, each once, by place (a payload not of the
 *   format, an invalid message or record, several users in a records file without `userId`).
 */
export function convertHistory(input: unknown, o: SyncOptions): { output: Record<string, unknown>; notes: SyncNote[] } {
  const notes: SyncNote[] = [];
  const raw = o.from === 'records' ? fromRecordsFile(input, o) : fromPlatformFile(o.from, input, o, notes);
  const problems = [...raw.problems];
  const records: ContextRecord[] = [];
  raw.records.forEach((v, i) => {
    const r = validateContextRecord(v, { nowMs: o.nowMs, tenantOptional: true });
    if (r.ok) records.push(r.record);
    else for (const e of r.errors) problems.push(`${raw.placeOf(i, e.field)}: ${e.reason}`);
  });
  if (problems.length > 0) throw new ContextSyncError([...new Set(problems)]);
  let userId = raw.userId;
  const users = [...new Set(records.map((r) => r.user_id))];
  if (userId === undefined) {
    if (users.length > 1) throw new ContextSyncError([`the records hold ${users.length} users: pick one with --user`]);
    userId = users[0] ?? 'default';
  }
  const mine = [...mergeLastWriteWins(records.filter((r) => r.user_id === userId)).values()];

  if (o.to === 'records') {
    const sorted = mine.sort((a, b) =>
      a.conversation_id === b.conversation_id ? compareInConversation(a, b) : a.conversation_id < b.conversation_id ? -1 : 1,
    );
    return { output: { user_id: userId, records: sorted.map(toWireRecord) }, notes };
  }
  const r = renderConversations(o.to, mine);
  for (const n of r.notes)
    notes.push({ where: `conversation ${JSON.stringify(n.conversation_id)} message ${JSON.stringify(n.message_id)}`, reason: n.reason });
  return { output: { user_id: userId, conversations: r.conversations }, notes };
}

/** Count the messages of a converted document (records, or rendered messages/input items). */
function countOf(output: Record<string, unknown>): number {
  if (Array.isArray(output.records)) return output.records.length;
  const conversations = (output.conversations ?? []) as Array<Record<string, unknown>>;
  return conversations.reduce((n, c) => {
    const list = Array.isArray(c.messages) ? c.messages : Array.isArray(c.input) ? c.input : [];
    return n + list.length + (Array.isArray(c.system) ? c.system.length : 0);
  }, 0);
}

/**
 * The command: read `inPath`, convert, write `outPath` (JSON, 2-space indent). Notes go to stderr,
 * a one-line summary to stdout.
 * @throws ContextSyncError (bad input), or the file system's error.
 */
export function runContextSync(o: Omit<SyncOptions, 'nowMs'> & { inPath: string; outPath: string }): void {
  if (o.at !== undefined && parseRfc3339(o.at) === null)
    throw new ContextSyncError([`--at: not an RFC 3339 date-time with a zone: ${o.at}`]);
  let input: unknown;
  try {
    input = JSON.parse(readFileSync(o.inPath, 'utf8'));
  } catch (err) {
    // Only the kind of failure: a parse error's excerpt would print the history's text.
    const what = err instanceof SyntaxError ? 'not valid JSON' : (err as Error).message;
    throw new ContextSyncError([`${o.inPath}: ${what}`]);
  }
  const { output, notes } = convertHistory(input, { ...o, nowMs: Date.now() });
  writeFileSync(o.outPath, `${JSON.stringify(output, null, 2)}\n`);
  for (const n of notes) process.stderr.write(`quotaflow: note: ${n.where}: ${n.reason}\n`);
  const conversations = Array.isArray(output.conversations)
    ? output.conversations.length
    : new Set(((output.records ?? []) as Array<{ conversation_id: string }>).map((r) => r.conversation_id)).size;
  process.stdout.write(
    `wrote ${o.outPath}: ${o.to}, user ${JSON.stringify(output.user_id)}, ${conversations} conversation(s), ${countOf(output)} message(s), ${notes.length} note(s)\n`,
  );
}

/**
 * Register `quotaflow context sync` on the CLI. A ContextSyncError is printed as
 * `quotaflow: <problems>` and the exit code set to 1; other errors propagate to the CLI's handler.
 */
export function registerContextCommand(program: Command): void {
  const context = program.command('context').description('conversation context sync between LLM platforms (docs/contexts.md)');
  context
    .command('sync')
    .description("convert a user's conversation history between platform formats, file to file")
    .addOption(new Option('--from <format>', 'format of --in').choices(SYNC_FORMATS).makeOptionMandatory())
    .addOption(new Option('--to <format>', 'format of --out').choices(SYNC_FORMATS).makeOptionMandatory())
    .requiredOption('--in <file>', 'history file to read (JSON)')
    .requiredOption('--out <file>', 'file to write (JSON)')
    .option('--user <user_id>', "the user (default: the file's user_id); picks one user of a records file")
    .option('--conversation <id>', 'conversation id of a file holding one conversation alone (default: default)')
    .option('--at <time>', 'RFC 3339 created_at/updated_at of records made from a platform file (default: now)')
    .option('--platform <name>', 'platform written into records made from a platform file (default: openai or anthropic)')
    .action(
      (o: {
        from: SyncFormat;
        to: SyncFormat;
        in: string;
        out: string;
        user?: string;
        conversation?: string;
        at?: string;
        platform?: string;
      }) => {
        try {
          runContextSync({
            from: o.from,
            to: o.to,
            inPath: o.in,
            outPath: o.out,
            ...(o.user === undefined ? {} : { userId: o.user }),
            ...(o.conversation === undefined ? {} : { conversationId: o.conversation }),
            ...(o.at === undefined ? {} : { at: o.at }),
            ...(o.platform === undefined ? {} : { platform: o.platform }),
          });
        } catch (err) {
          if (!(err instanceof ContextSyncError)) throw err;
          process.stderr.write(`quotaflow: ${err.message}\n`);
          process.exitCode = 1;
        }
      },
    );
}
