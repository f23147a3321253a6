/**
 * OpenAI chat completions messages <-> context records.
 * https://platform.openai.com/docs/api-reference/chat/create (the `messages` parameter)
 *
 * In: `{ messages: [...] }` or the array itself. Roles: `system` and `developer` -> system,
 * `user`, `assistant`, `tool` (and the deprecated `function`) -> tool with its `tool_call_id`.
 * Text is `content` as a string, or its `text` (and assistant `refusal`) parts; a message's
 * `refusal` field is the assistant's text when `content` is null. Images, audio, files and
 * `tool_calls` are notes.
 * Out: `{ messages }`, one message per record, `content` a string.
 */
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
      b.note(at, 'not an object: skipped');
      continue;
    }
    const role = typeof m.role === 'string' ? ROLES[m.role] : undefined;
    if (role === undefined) {
      b.note(`${at}.role`, 'unknown role: message skipped');
      continue;
    }
    const callId = typeof m.tool_call_id === 'string' ? m.tool_call_id : undefined;
    const hasToolCalls = Array.isArray(m.tool_calls) && m.tool_calls.length > 0;
    if (hasToolCalls) b.note(`${at}.tool_calls`, `${(m.tool_calls as unknown[]).length} tool call(s) skipped (records carry text only)`);
    if (m.audio !== undefined && m.audio !== null) b.note(`${at}.audio`, 'audio skipped (records carry text only)');
    const content = m.content;
    if (typeof content === 'string') {
      // An empty content beside tool calls is no text of its own.
      if (content !== '' || !hasToolCalls) b.add(role, content, callId);
    } else if (Array.isArray(content)) {
      for (const [j, p] of content.entries()) {
        if (isObject(p) && p.type === 'text' && typeof p.text === 'string') b.add(role, p.text, callId);
        else if (isObject(p) && p.type === 'refusal' && typeof p.refusal === 'string') b.add(role, p.refusal, callId);
        else b.note(`${at}.content[${j}]`, `${partType(p)} skipped (records carry text only)`);
      }
    } else if (typeof m.refusal === 'string') {
      b.add(role, m.refusal, callId);
    } else if (!hasToolCalls) {
      b.note(`${at}.content`, 'no text: message skipped');
    }
  }
  return b.result();
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
