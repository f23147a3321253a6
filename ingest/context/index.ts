/**
 * Platform formats <-> context records, by format name: the normalisers' one entry point for the
 * read API (`platform=`) and the `quotaflow context sync` command. See formats.ts for the
 * one-record-per-text rule and the positional message ids.
 */
import type { ContextRecord } from '../../schemas/context-record.ts';
import { fromAnthropic, toAnthropic } from './anthropic.ts';
import type { ContextFormat, ConversionNote, Normalised, RecordStamp, RenderableRecord, Rendered } from './formats.ts';
import { fromOpenAIChat, toOpenAIChat } from './openai-chat.ts';
import { fromOpenAIResponses, toOpenAIResponses } from './openai-responses.ts';

export {
  CONTEXT_FORMATS,
  type ContextFormat,
  ContextFormatError,
  type ConversionNote,
  type Normalised,
  type RecordSource,
  type RecordStamp,
} from './formats.ts';

const FROM: Record<ContextFormat, (payload: unknown, stamp: RecordStamp) => Normalised> = {
  openai: fromOpenAIChat,
  'openai-responses': fromOpenAIResponses,
  anthropic: fromAnthropic,
};
const TO: Record<ContextFormat, (records: readonly RenderableRecord[]) => Rendered<object>> = {
  openai: toOpenAIChat,
  'openai-responses': toOpenAIResponses,
  anthropic: toAnthropic,
};

/**
 * Records (wire form) of one conversation given in `format`, with where each came from, the notes
 * of what records cannot carry and the problems of input that is not valid in the format (the
 * records must not be used when there is any: formats.ts).
 * @throws ContextFormatError when the payload is not of the format at all (no message array).
 */
export function platformToRecords(format: ContextFormat, payload: unknown, stamp: RecordStamp): Normalised {
  return FROM[format](payload, stamp);
}

/** One conversation's records, already in order, as a payload of `format`. */
export function renderConversation(format: ContextFormat, records: readonly RenderableRecord[]): Rendered<object> {
  return TO[format](records);
}

/** A note of a rendering, placed by conversation and message. */
export interface RenderNote {
  conversation_id: string;
  message_id: string;
  reason: string;
}

/** Conversation order: created_at, then message id (positional ids sort by position). */
export function compareInConversation(a: ContextRecord, b: ContextRecord): number {
  if (a.created_at_ms !== b.created_at_ms) return a.created_at_ms - b.created_at_ms;
  return a.message_id < b.message_id ? -1 : a.message_id > b.message_id ? 1 : 0;
}

/**
 * Render the live (not deleted) records per conversation in `format`: conversations in
 * conversation_id order, messages in (created_at, message_id) order.
 * @returns `conversations` (each `{ conversation_id, ...payload }`) and the notes of what was left out.
 */
export function renderConversations(
  format: ContextFormat,
  records: readonly ContextRecord[],
): { conversations: Array<Record<string, unknown> & { conversation_id: string }>; notes: RenderNote[] } {
  const byConversation = new Map<string, ContextRecord[]>();
  for (const r of records) {
    if (r.deleted) continue;
    const list = byConversation.get(r.conversation_id) ?? [];
    list.push(r);
    byConversation.set(r.conversation_id, list);
  }
  const notes: RenderNote[] = [];
  const conversations = [...byConversation.keys()].sort().map((conversation_id) => {
    const list = (byConversation.get(conversation_id) as ContextRecord[]).sort(compareInConversation);
    const rendered = renderConversation(
      format,
      list.map((r) => ({
        role: r.role,
        ...(r.content === null ? {} : { content: r.content }),
        ...(r.tool_call_id === '' ? {} : { tool_call_id: r.tool_call_id }),
      })),
    );
    for (const n of rendered.notes) notes.push({ conversation_id, message_id: messageIdOf(n, list), reason: n.reason });
    return { conversation_id, ...(rendered.payload as Record<string, unknown>) };
  });
  return { conversations, notes };
}

function messageIdOf(note: ConversionNote, list: readonly ContextRecord[]): string {
  const i = /^records\[(\d+)\]$/.exec(note.path)?.[1];
  return i === undefined ? '' : (list[Number(i)]?.message_id ?? '');
}
