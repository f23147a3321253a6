/**
 * Anthropic messages (content blocks) <-> context records.
 * https://docs.anthropic.com/en/api/messages (`system`, `messages`)
 *
 * In: `{ system?, messages }` or the `messages` array itself. `system` (a string, or text
 * blocks: one record per block) comes first. Messages are `user` or `assistant`; their content is
 * a string or blocks: `text` -> a record of the message's role; `tool_result` -> tool, with
 * `tool_call_id` = `tool_use_id` (its string content, or one record per text block inside).
 * `tool_use`, `thinking`, images, documents and other blocks are notes.
 * Out: `{ system?, messages }`. Anthropic has no system role inside `messages`: system records
 * go to the top-level `system` (one text block each); one that followed another message is moved
 * there with a note (its place in the order is lost). A tool record becomes a `user` message with
 * one `tool_result` block. Consecutive messages of one role are left as they are (the API joins
 * consecutive turns of one role).
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

export type AnthropicMessage =
  | { role: 'user' | 'assistant'; content: string }
  | { role: 'user'; content: [{ type: 'tool_result'; tool_use_id: string; content: string }] };

export interface AnthropicPayload {
  system?: Array<{ type: 'text'; text: string }>;
  messages: AnthropicMessage[];
}

/**
 * Records from an Anthropic `system` + `messages` (one conversation).
 * @throws ContextFormatError when there is no message array.
 */
export function fromAnthropic(payload: unknown, stamp: RecordStamp): Normalised {
  const messages = Array.isArray(payload) ? payload : isObject(payload) ? payload.messages : undefined;
  if (!Array.isArray(messages))
    throw new ContextFormatError('messages', 'expected an array of messages (or { "system": ..., "messages": [...] })');
  const b = new RecordBuilder(stamp, DEFAULT_PLATFORM.anthropic);
  const system = isObject(payload) ? payload.system : undefined;
  if (typeof system === 'string') b.add('system', system);
  else if (Array.isArray(system)) {
    for (const [j, blk] of system.entries()) {
      if (isObject(blk) && blk.type === 'text' && typeof blk.text === 'string') b.add('system', blk.text);
      else b.note(`system[${j}]`, `${partType(blk)} skipped (records carry text only)`);
    }
  } else if (system !== undefined) b.note('system', 'neither a string nor text blocks: skipped');

  for (const [i, m] of (messages as unknown[]).entries()) {
    const at = `messages[${i}]`;
    const role = isObject(m) && (m.role === 'user' || m.role === 'assistant') ? m.role : undefined;
    if (!isObject(m) || role === undefined) {
      b.note(isObject(m) ? `${at}.role` : at, isObject(m) ? 'unknown role: message skipped' : 'not an object: skipped');
      continue;
    }
    const content = m.content;
    if (typeof content === 'string') b.add(role, content);
    else if (!Array.isArray(content)) b.note(`${at}.content`, 'no text: message skipped');
    else for (const [j, blk] of content.entries()) addBlock(b, role, blk, `${at}.content[${j}]`);
  }
  return b.result();
}

/** One content block of a message: text of the message's role, a tool result's texts, or a note. */
function addBlock(b: RecordBuilder, role: 'user' | 'assistant', blk: unknown, path: string): void {
  if (isObject(blk) && blk.type === 'text' && typeof blk.text === 'string') {
    b.add(role, blk.text);
    return;
  }
  if (!isObject(blk) || blk.type !== 'tool_result') {
    b.note(path, `${partType(blk)} skipped (records carry text only)`);
    return;
  }
  const callId = typeof blk.tool_use_id === 'string' ? blk.tool_use_id : undefined;
  const inner = blk.content;
  if (typeof inner === 'string' || inner === undefined) b.add('tool', inner ?? '', callId);
  else if (!Array.isArray(inner)) b.note(`${path}.content`, 'no text: tool result skipped');
  else {
    for (const [k, p] of inner.entries()) {
      if (isObject(p) && p.type === 'text' && typeof p.text === 'string') b.add('tool', p.text, callId);
      else b.note(`${path}.content[${k}]`, `${partType(p)} skipped (records carry text only)`);
    }
  }
}

/** Anthropic `system` + `messages` from one conversation's live records, in order. */
export function toAnthropic(records: readonly RenderableRecord[]): Rendered<AnthropicPayload> {
  const notes: Rendered<unknown>['notes'] = [];
  const system: Array<{ type: 'text'; text: string }> = [];
  const messages: AnthropicMessage[] = [];
  for (const [r, i] of renderable(records, notes)) {
    const text = r.content as string;
    if (r.role === 'system') {
      if (messages.length > 0) {
        notes.push({
          path: `records[${i}]`,
          reason: 'system message moved to the top-level system prompt (Anthropic has no system role in messages)',
        });
      }
      system.push({ type: 'text', text });
    } else if (r.role === 'tool') {
      notes.push(toolResultNote(i));
      messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: r.tool_call_id ?? '', content: text }] });
    } else {
      messages.push({ role: r.role, content: text });
    }
  }
  return { payload: { ...(system.length > 0 ? { system } : {}), messages }, notes };
}
