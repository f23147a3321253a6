/**
 * OpenAI Responses API input items <-> context records.
 * https://platform.openai.com/docs/api-reference/responses/create (`input`, `instructions`)
 *
 * In: `{ instructions?, input }`, the `input` array itself, or a string (one user message).
 * `instructions` -> a system record first. Message items (`{ role, content }`, `type` absent or
 * `message`): `system`/`developer` -> system, `user`, `assistant`; text is `content` as a string
 * or its `input_text`/`output_text`/`text` (and `refusal`) parts. `function_call_output` and
 * `custom_tool_call_output` -> tool with `tool_call_id` = `call_id`. Other items (function
 * calls, reasoning, images, files, item references) are notes.
 * Out: `{ input }`, one item per record: `{ type: 'message', role, content }`, or
 * `{ type: 'function_call_output', call_id, output }` for a tool result.
 */
import type { ContextRole } from '../../schemas/context-record.ts';
import {
  ContextFormatError,
  DEFAULT_PLATFORM,
  isObject,
  type Normalised,
  partType,
  RecordBuilder,
  type RecordStamp,
  type RenderableRecord,
  type Rendered,
  renderable,
  toolResultNote,
} from './formats.ts';

const ROLES: Record<string, 'system' | 'user' | 'assistant'> = {
  system: 'system',
  developer: 'system',
  user: 'user',
  assistant: 'assistant',
};
const TEXT_PARTS = new Set(['input_text', 'output_text', 'text']);
const TOOL_OUTPUTS = new Set(['function_call_output', 'custom_tool_call_output']);

export type OpenAIResponsesItem =
  | { type: 'message'; role: 'system' | 'user' | 'assistant'; content: string }
  | { type: 'function_call_output'; call_id: string; output: string };

function partText(p: unknown): string | undefined {
  if (!isObject(p)) return undefined;
  if (typeof p.type === 'string' && TEXT_PARTS.has(p.type) && typeof p.text === 'string') return p.text;
  if (p.type === 'refusal' && typeof p.refusal === 'string') return p.refusal;
  return undefined;
}

/** The texts of a part list (`content` or `output`), one record each; other parts are notes. */
function addParts(b: RecordBuilder, role: ContextRole, parts: unknown[], path: string, callId?: string): void {
  for (const [j, p] of parts.entries()) {
    const text = partText(p);
    if (text === undefined) b.note(`${path}[${j}]`, `${partType(p)} skipped (records carry text only)`);
    else b.add(role, text, callId);
  }
}

/** One input item: a message, a tool output, or a note. */
function addItem(b: RecordBuilder, item: unknown, at: string): void {
  if (!isObject(item)) {
    b.note(at, 'not an object: skipped');
    return;
  }
  const type = item.type;
  if (typeof type === 'string' && TOOL_OUTPUTS.has(type)) {
    const callId = typeof item.call_id === 'string' ? item.call_id : undefined;
    const output = item.output;
    if (typeof output === 'string') b.add('tool', output, callId);
    else if (Array.isArray(output)) addParts(b, 'tool', output, `${at}.output`, callId);
    else b.note(`${at}.output`, 'no text: item skipped');
    return;
  }
  if (type !== undefined && type !== 'message') {
    b.note(at, `${typeof type === 'string' ? type.slice(0, 40) : 'unknown'} item skipped (records carry text only)`);
    return;
  }
  const role = typeof item.role === 'string' ? ROLES[item.role] : undefined;
  const content = item.content;
  if (role === undefined) b.note(`${at}.role`, 'unknown role: item skipped');
  else if (typeof content === 'string') b.add(role, content);
  else if (Array.isArray(content)) addParts(b, role, content, `${at}.content`);
  else b.note(`${at}.content`, 'no text: item skipped');
}

/**
 * Records from a Responses `input` (one conversation).
 * @throws ContextFormatError when there is no input string or item array.
 */
export function fromOpenAIResponses(payload: unknown, stamp: RecordStamp): Normalised {
  const b = new RecordBuilder(stamp, DEFAULT_PLATFORM['openai-responses']);
  let input: unknown = payload;
  if (isObject(payload)) {
    if (typeof payload.instructions === 'string') b.add('system', payload.instructions);
    input = payload.input;
  }
  if (typeof input === 'string') {
    b.add('user', input);
    return b.result();
  }
  if (!Array.isArray(input)) throw new ContextFormatError('input', 'expected a string or an array of input items (or { "input": ... })');
  for (const [i, item] of (input as unknown[]).entries()) addItem(b, item, `input[${i}]`);
  return b.result();
}

/** A Responses `input` from one conversation's live records, in order. */
export function toOpenAIResponses(records: readonly RenderableRecord[]): Rendered<{ input: OpenAIResponsesItem[] }> {
  const notes: Rendered<unknown>['notes'] = [];
  const input = renderable(records, notes).map(([r, i]): OpenAIResponsesItem => {
    if (r.role !== 'tool') return { type: 'message', role: r.role, content: r.content as string };
    notes.push(toolResultNote(i));
    return { type: 'function_call_output', call_id: r.tool_call_id ?? '', output: r.content as string };
  });
  return { payload: { input }, notes };
}
