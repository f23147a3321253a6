/**
 * Anthropic messages (content blocks) <-> context records.
 * https://docs.anthropic.com/en/api/messages (`system`, `messages`)
 *
 * In: `{ system?, messages }` or the `messages` array itself. `system` (a string, or text
 * blocks: one record per block) comes first. Messages are `user` or `assistant`; their content is
 * a string or blocks: `text` -> a record of the message's role; `tool_result` -> tool, with
 * `tool_call_id` = `tool_use_id` (its string content, or one record per text block inside).
 * `tool_use`, `thinking`, images, documents and other blocks are notes. Problems (not Anthropic
 * messages at all): a message that is not an object, a role other than user or assistant, content
 * that is neither a string nor blocks, a block that is not a typed object, a text block whose text
 * is not a string, a tool result whose content is neither a string nor blocks, a `system` that is
 * neither a string nor blocks.
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
  if (typeof system === 'string') b.add('system', system, 'system');
  else if (Array.isArray(system)) {
    for (const [j, blk] of system.entries()) addText(b, 'system', blk, `system[${j}]`);
  } else if (system !== undefined && system !== null)
    b.problem('system', `expected a string or an array of text blocks, got ${kindOf(system)}`);

  for (const [i, m] of (messages as unknown[]).entries()) {
    const at = `messages[${i}]`;
    if (!isObject(m)) {
      b.problem(at, `expected a message object, got ${kindOf(m)}`);
      continue;
    }
    const role = m.role === 'user' || m.role === 'assistant' ? m.role : undefined;
    if (role === undefined) {
      b.problem(
        `${at}.role`,
        `${m.role === undefined ? 'missing' : 'unknown role'}; user or assistant (system goes in the top-level system)`,
      );
      continue;
    }
    const content = m.content;
    if (typeof content === 'string') b.add(role, content, `${at}.content`);
    else if (Array.isArray(content)) for (const [j, blk] of content.entries()) addBlock(b, role, blk, `${at}.content[${j}]`);
    else b.problem(`${at}.content`, `expected a string or an array of content blocks, got ${kindOf(content)}`);
  }
  return b.result();
}

/** A text block: a record of `role`; another block: a note or a problem (formats.ts `skipPart`). */
function addText(b: RecordBuilder, role: 'system' | 'user' | 'assistant' | 'tool', blk: unknown, path: string, callId?: ToolCallRef) {
  if (!isObject(blk) || blk.type !== 'text') skipPart(b, blk, path);
  else if (typeof blk.text === 'string') b.add(role, blk.text, `${path}.text`, callId);
  else b.problem(`${path}.text`, `expected a string, got ${kindOf(blk.text)}`);
}

/** One content block of a message: text of the message's role, a tool result's texts, or a note / problem. */
function addBlock(b: RecordBuilder, role: 'user' | 'assistant', blk: unknown, path: string): void {
  if (!isObject(blk) || blk.type !== 'tool_result') {
    addText(b, role, blk, path);
    return;
  }
  const callId = { id: typeof blk.tool_use_id === 'string' ? blk.tool_use_id : undefined, path: `${path}.tool_use_id` };
  const inner = blk.content;
  if (typeof inner === 'string' || inner === undefined) b.add('tool', inner ?? '', `${path}.content`, callId);
  else if (Array.isArray(inner)) for (const [k, p] of inner.entries()) addText(b, 'tool', p, `${path}.content[${k}]`, callId);
  else b.problem(`${path}.content`, `expected a string or an array of content blocks, got ${kindOf(inner)}`);
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
