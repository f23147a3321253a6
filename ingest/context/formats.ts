/**
 * What the platform normalisers share: the format names, the options that stamp records, the
 * note type for what a conversion leaves out, and the positional message id.
 *
 * One record per text: a message with one text becomes one record; a message with several text
 * parts or blocks becomes one record per part, in order. Message ids are positions in that
 * flattened list (`000000`, `000001`, ...), counted the same way by every normaliser, so the
 * same conversation read from OpenAI or from Anthropic gets the same ids and its versions merge
 * (last-write-wins) instead of piling up. What is not text (images, files, tool calls, reasoning)
 * takes no position and is reported as a note, never silently dropped.
 */
import type { ContextRecordV1, ContextRole } from '../../schemas/context-record.ts';

/**
 * Platform message formats: OpenAI chat completions (`messages`), OpenAI Responses (`input`
 * items, `instructions`), Anthropic messages (`system` + `messages` with content blocks).
 */
export const CONTEXT_FORMATS = ['openai', 'openai-responses', 'anthropic'] as const;
export type ContextFormat = (typeof CONTEXT_FORMATS)[number];

/** The `platform` a normaliser writes into its records unless told otherwise. */
export const DEFAULT_PLATFORM: Record<ContextFormat, string> = {
  openai: 'openai',
  'openai-responses': 'openai',
  anthropic: 'anthropic',
};

/** Something a conversion left out or changed, at a JSON path of the input (`messages[3].content[1]`). Never quotes text. */
export interface ConversionNote {
  path: string;
  reason: string;
}

/** The stamp of the records a normaliser makes (all records of one call share it). */
export interface RecordStamp {
  user_id: string;
  conversation_id: string;
  /** RFC 3339 with a zone: `updated_at` of every record, and `created_at` unless given. */
  at: string;
  created_at?: string;
  /** Default: DEFAULT_PLATFORM of the format. */
  platform?: string;
  /** Omitted from the records when absent (the ingest API fills it from the key). */
  tenant?: string;
}

export interface Normalised {
  records: ContextRecordV1[];
  notes: ConversionNote[];
}

/** A record as the renderers need it: role and text, and the tool call a tool result answers. */
export type RenderableRecord = Pick<ContextRecordV1, 'role' | 'content' | 'tool_call_id'> & { message_id?: string };

/** A platform payload rendered from records, with what could not be rendered. */
export interface Rendered<T> {
  payload: T;
  notes: ConversionNote[];
}

/** A payload that is not of the format at all (e.g. `messages` is not an array). */
export class ContextFormatError extends Error {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`${path}: ${reason}`);
    this.name = 'ContextFormatError';
  }
}

/** The id of the record at position `index` of a conversation: 6 digits, zero-padded, so ids sort by position. */
export function positionalId(index: number): string {
  return String(index).padStart(6, '0');
}

/** Collects the records of one conversation in order, numbering them. */
export class RecordBuilder {
  readonly records: ContextRecordV1[] = [];
  readonly notes: ConversionNote[] = [];
  constructor(
    private readonly stamp: RecordStamp,
    private readonly defaultPlatform: string,
  ) {}

  add(role: ContextRole, content: string, toolCallId?: string): void {
    const s = this.stamp;
    this.records.push({
      ...(s.tenant === undefined ? {} : { tenant: s.tenant }),
      user_id: s.user_id,
      conversation_id: s.conversation_id,
      message_id: positionalId(this.records.length),
      platform: s.platform ?? this.defaultPlatform,
      role,
      content,
      ...(role === 'tool' && toolCallId ? { tool_call_id: toolCallId } : {}),
      created_at: s.created_at ?? s.at,
      updated_at: s.at,
    });
  }

  note(path: string, reason: string): void {
    this.notes.push({ path, reason });
  }

  result(): Normalised {
    return { records: this.records, notes: this.notes };
  }
}

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The `type` of a part/block for a note ('part without a type' when absent). */
export function partType(v: unknown): string {
  return isObject(v) && typeof v.type === 'string' ? `${v.type.slice(0, 40)} part` : 'part without a type';
}

/**
 * Notes for records a renderer cannot show: tombstones are skipped silently (the caller passes
 * live records), a text held only as a hash is left out with a note.
 * @returns the records to render with their index in `records`.
 */
export function renderable(records: readonly RenderableRecord[], notes: ConversionNote[]): Array<[RenderableRecord, number]> {
  const out: Array<[RenderableRecord, number]> = [];
  records.forEach((r, i) => {
    if ((r as { deleted?: boolean }).deleted === true) return;
    if (typeof r.content !== 'string') {
      notes.push({ path: `records[${i}]`, reason: 'text not stored (only its hash): left out' });
      return;
    }
    out.push([r, i]);
  });
  return out;
}

/** The note of a tool result rendered without its tool call (v1 records carry text only). */
export function toolResultNote(i: number): ConversionNote {
  return {
    path: `records[${i}]`,
    reason: 'tool result rendered without its tool call (records carry text only); an API may refuse the history until the call is added',
  };
}
