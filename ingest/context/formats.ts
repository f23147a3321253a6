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
 *
 * Notes and problems: a note is something valid in the platform's format that records cannot
 * carry (an image part, a tool call); a problem is input that is not valid in the format at all (a
 * message that is not an object, an unknown role, content of the wrong type). Both name the JSON
 * path and never quote the text. A caller must not use the records of a payload with problems
 * (`quotaflow context sync` lists them all and exits 1).
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

/** Where in the input a record came from: JSON paths of its text and of its tool call id. */
export interface RecordSource {
  /** `messages[1].content`, `messages[2].content[0].text`, `system`, `instructions`, ... */
  content: string;
  /** `messages[3].tool_call_id`, `input[4].call_id`, `messages[2].content[0].tool_use_id`; absent without one. */
  tool_call_id?: string;
}

export interface Normalised {
  records: ContextRecordV1[];
  /** `sources[i]`: where `records[i]` came from in the payload. */
  sources: RecordSource[];
  /** Valid input that records cannot carry (see the module comment). */
  notes: ConversionNote[];
  /** Input that is not valid in the format: the records must not be used when there is any. */
  problems: ConversionNote[];
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

/** A tool result's call id and the JSON path it was read from. */
export interface ToolCallRef {
  id: string | undefined;
  path: string;
}

/** Collects the records of one conversation in order, numbering them, with their sources, notes and problems. */
export class RecordBuilder {
  readonly records: ContextRecordV1[] = [];
  readonly sources: RecordSource[] = [];
  readonly notes: ConversionNote[] = [];
  readonly problems: ConversionNote[] = [];
  constructor(
    private readonly stamp: RecordStamp,
    private readonly defaultPlatform: string,
  ) {}

  /** A record of `role` with the text read at `path`; a tool result's call id from `toolCall`. */
  add(role: ContextRole, content: string, path: string, toolCall?: ToolCallRef): void {
    const toolCallId = toolCall?.id;
    this.sources.push({ content: path, ...(role === 'tool' && toolCallId ? { tool_call_id: toolCall?.path } : {}) });
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

  /** Valid input that records cannot carry. */
  note(path: string, reason: string): void {
    this.notes.push({ path, reason });
  }

  /** Input that is not valid in the format. */
  problem(path: string, reason: string): void {
    this.problems.push({ path, reason });
  }

  result(): Normalised {
    return { records: this.records, sources: this.sources, notes: this.notes, problems: this.problems };
  }
}

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The `type` of a part/block for a note ('part without a type' when absent). */
export function partType(v: unknown): string {
  return isObject(v) && typeof v.type === 'string' ? `${v.type.slice(0, 40)} part` : 'part without a type';
}

/** A JSON value's kind for a problem, never its content: `a number`, `null`, `an array`, ... */
export function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v === undefined) return 'nothing';
  const t = typeof v;
  return t === 'object' ? 'an object' : `a ${t}`;
}

/**
 * A part or block that holds no text records can carry: a problem when it is not a typed object
 * (not valid in any format), else a note naming its type.
 */
export function skipPart(b: RecordBuilder, part: unknown, path: string): void {
  if (!isObject(part)) b.problem(path, `expected a content part object, got ${kindOf(part)}`);
  else if (typeof part.type !== 'string') b.problem(`${path}.type`, `expected a string, got ${kindOf(part.type)}`);
  else b.note(path, `${partType(part)} skipped (records carry text only)`);
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
