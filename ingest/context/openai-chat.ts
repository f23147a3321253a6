/**
 * OpenAI chat completions messages <-> context records.
 * https://platform.openai.com/docs/api-reference/chat/create (the `messages` parameter)
 *
 * In: `{ messages: [...] }` or the array itself. Roles: `system` and `developer` -> system,
 * `user`, `assistant`, `tool` (and the deprecated `function`) -> tool with its `tool_call_id`.
 * Text is `content` as a string, or its `text` (and assistant `refusal`) parts; a message's
 * `refusal` field is the assistant's text when `content` is null. Images, audio, files,
 * `tool_calls` and `function_call` are notes. Problems (not chat messages at all): a message that
 * is not an object, a missing or unknown role, `content` that is neither a string, nor parts,
 * nor null beside tool calls or a refusal, a part that is not a typed object, a text or refusal
 * part whose text is not a string.
 * Out: `{ messages }`, one message per record, `content` a string.
 */
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

const ROLES: Record<string, 'system' | 'user' | 'assistant' | 'tool'> = {
  system: 'system',
  developer: 'system',
  user: 'user',
  assistant: 'assistant',
  tool: 'tool',
  function: 'tool',
};

export interface OpenAIChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  tool_call_id?: string;
}

/** The message roles in, for a problem. */
const ROLE_NAMES = Object.keys(ROLES).join(', ');

/**
 * Records from OpenAI chat messages (one conversation).
 * @throws ContextFormatError when the payload has no message array.
 */
export function fromOpenAIChat(payload: unknown, stamp: RecordStamp): Normalised {
  const messages = Array.isArray(payload) ? payload : isObject(payload) ? payload.messages : undefined;
  if (!Array.isArray(messages)) throw new ContextFormatError('messages', 'expected an array of chat messages (or { "messages": [...] })');
  const b = new RecordBuilder(stamp, DEFAULT_PLATFORM.openai);
  for (const [i, m] of (messages as unknown[]).entries()) {
    const at = `messages[${i}]`;
    if (!isObject(m)) {
      b.problem(at, `expected a message object, got ${kindOf(m)}`);
      continue;
    }
    const role = typeof m.role === 'string' ? ROLES[m.role] : undefined;
    if (role === undefined) {
      b.problem(`${at}.role`, m.role === undefined ? `missing; one of ${ROLE_NAMES}` : `unknown role; one of ${ROLE_NAMES}`);
      continue;
    }
    const toolCall = { id: typeof m.tool_call_id === 'string' ? m.tool_call_id : undefined, path: `${at}.tool_call_id` };
    const hasToolCalls = Array.isArray(m.tool_calls) && m.tool_calls.length > 0;
    if (hasToolCalls) b.note(`${at}.tool_calls`, `${(m.tool_calls as unknown[]).length} tool call(s) skipped (records carry text only)`);
    const hasFunctionCall = isObject(m.function_call);
    if (hasFunctionCall) b.note(`${at}.function_call`, 'function call skipped (records carry text only)');
    if (m.audio !== undefined && m.audio !== null) b.note(`${at}.audio`, 'audio skipped (records carry text only)');
    const content = m.content;
    if (typeof content === 'string') {
      // An empty content beside tool calls is no text of its own.
      if (content !== '' || !hasToolCalls) b.add(role, content, `${at}.content`, toolCall);
    } else if (Array.isArray(content)) {
      for (const [j, p] of content.entries()) addPart(b, role, p, `${at}.content[${j}]`, toolCall);
    } else if ((content === null || content === undefined) && typeof m.refusal === 'string') {
      b.add(role, m.refusal, `${at}.refusal`, toolCall);
    } else if ((content === null || content === undefined) && (hasToolCalls || hasFunctionCall)) {
      // A call without text: noted above.
    } else {
      b.problem(`${at}.content`, `expected a string or an array of content parts, got ${kindOf(content)}`);
    }
  }
  return b.result();
}

/** One content part: a text or refusal record, or a note / problem (formats.ts `skipPart`). */
function addPart(b: RecordBuilder, role: OpenAIChatMessage['role'], p: unknown, path: string, toolCall: ToolCallRef): void {
  const field = isObject(p) ? (p.type === 'text' ? 'text' : p.type === 'refusal' ? 'refusal' : undefined) : undefined;
  if (field === undefined || !isObject(p)) skipPart(b, p, path);
  else if (typeof p[field] === 'string') b.add(role, p[field] as string, `${path}.${field}`, toolCall);
  else b.problem(`${path}.${field}`, `expected a string, got ${kindOf(p[field])}`);
}

/** OpenAI chat messages from one conversation's live records, in order. */
export function toOpenAIChat(records: readonly RenderableRecord[]): Rendered<{ messages: OpenAIChatMessage[] }> {
  const notes: Rendered<unknown>['notes'] = [];
  const messages = renderable(records, notes).map(([r, i]): OpenAIChatMessage => {
    if (r.role !== 'tool') return { role: r.role, content: r.content as string };
    notes.push(toolResultNote(i));
    return { role: 'tool', ...(r.tool_call_id ? { tool_call_id: r.tool_call_id } : {}), content: r.content as string };
  });
  return { payload: { messages }, notes };
}
