/**
 * OpenAI Responses API input items <-> context records.
 * https://platform.openai.com/docs/api-reference/responses/create (`input`, `instructions`)
 *
 * In: `{ instructions?, input }`, the `input` array itself, or a string (one user message).
 * `instructions` -> a system record first. Message items (`{ role, content }`, `type` absent or
 * `message`): `system`/`developer` -> system, `user`, `assistant`; text is `content` as a string
 * or its `input_text`/`output_text`/`text` (and `refusal`) parts. `function_call_output` and
 * `custom_tool_call_output` -> tool with `tool_call_id` = `call_id`. Other items (function
 * calls, reasoning, images, files, item references) are notes. Problems (not Responses input at
 * all): an item that is not an object or whose `type` is not a string, a message with a missing or
 * unknown role or with content that is neither a string nor parts, a tool output that is neither
 * a string nor parts, a part that is not a typed object, a text part whose text is not a string,
 * `instructions` that is not a string.
 * Out: `{ input }`, one item per record: `{ type: 'message', role, content }`, or
 * `{ type: 'function_call_output', call_id, output }` for a tool result.
 */
import type { ContextRole } from '../../schemas/context-record.ts';
import {
  ContextFormatError,
  DEFAULT_PLATFORM,
  isObject,
  kindOf,
  type Normalised,
  RecordBuilder,
  type RecordStamp,
  type RenderableRecord,
  type Rendered,
  renderable,
  skipPart,
  type ToolCallRef,
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

/** The field holding a part's text: `text` for the text part types, `refusal` for a refusal; else undefined. */
function textField(p: Record<string, unknown>): 'text' | 'refusal' | undefined {
  if (typeof p.type === 'string' && TEXT_PARTS.has(p.type)) return 'text';
  return p.type === 'refusal' ? 'refusal' : undefined;
}

/** The texts of a part list (`content` or `output`), one record each; other parts are notes or problems. */
function addParts(b: RecordBuilder, role: ContextRole, parts: unknown[], path: string, callId?: ToolCallRef): void {
  for (const [j, p] of parts.entries()) {
    const at = `${path}[${j}]`;
    const field = isObject(p) ? textField(p) : undefined;
    if (field === undefined || !isObject(p)) skipPart(b, p, at);
    else if (typeof p[field] === 'string') b.add(role, p[field] as string, `${at}.${field}`, callId);
    else b.problem(`${at}.${field}`, `expected a string, got ${kindOf(p[field])}`);
  }
}

/** One input item: a message, a tool output, a note or a problem. */
function addItem(b: RecordBuilder, item: unknown, at: string): void {
  if (!isObject(item)) {
    b.problem(at, `expected an input item object, got ${kindOf(item)}`);
    return;
  }
  const type = item.type;
  if (type !== undefined && typeof type !== 'string') {
    b.problem(`${at}.type`, `expected a string, got ${kindOf(type)}`);
    return;
  }
  if (type !== undefined && TOOL_OUTPUTS.has(type)) {
    const callId = { id: typeof item.call_id === 'string' ? item.call_id : undefined, path: `${at}.call_id` };
    const output = item.output;
    if (typeof output === 'string') b.add('tool', output, `${at}.output`, callId);
    else if (Array.isArray(output)) addParts(b, 'tool', output, `${at}.output`, callId);
    else b.problem(`${at}.output`, `expected a string or an array of content parts, got ${kindOf(output)}`);
    return;
  }
  if (type !== undefined && type !== 'message') {
    b.note(at, `${type.slice(0, 40)} item skipped (records carry text only)`);
    return;
  }
  const role = typeof item.role === 'string' ? ROLES[item.role] : undefined;
  const content = item.content;
  if (role === undefined)
    b.problem(`${at}.role`, `${item.role === undefined ? 'missing' : 'unknown role'}; one of ${Object.keys(ROLES).join(', ')}`);
  else if (typeof content === 'string') b.add(role, content, `${at}.content`);
  else if (Array.isArray(content)) addParts(b, role, content, `${at}.content`);
  else b.problem(`${at}.content`, `expected a string or an array of content parts, got ${kindOf(content)}`);
}

/**
 * Records from a Responses `input` (one conversation).
 * @throws ContextFormatError when there is no input string or item array.
 */
export function fromOpenAIResponses(payload: unknown, stamp: RecordStamp): Normalised {
  const b = new RecordBuilder(stamp, DEFAULT_PLATFORM['openai-responses']);
  let input: unknown = payload;
  if (isObject(payload)) {
    const instructions = payload.instructions;
    if (typeof instructions === 'string') b.add('system', instructions, 'instructions');
    else if (instructions !== undefined && instructions !== null)
      b.problem('instructions', `expected a string, got ${kindOf(instructions)}`);
    input = payload.input;
  }
  if (typeof input === 'string') {
    b.add('user', input, 'input');
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
