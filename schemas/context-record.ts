/**
 * Conversation context record v1: one message of one user's conversation, normalised from any
 * platform's format (OpenAI chat completions, OpenAI Responses, Anthropic messages). It is the
 * unit of the cross-platform context sync (docs/contexts.md; the brief's "knowledge hub":
 * histories in one JSON format, synchronised incrementally, merged last-write-wins).
 *
 * This file holds the wire shape (what a client sends to `POST /v1/contexts` and what the read
 * API returns) as a TypeBox schema, exported as JSON Schema in `context-record.schema.json`
 * (`npm run schemas`). Rules JSON Schema cannot express (content XOR hash, time order, NFC, byte
 * sizes) live in `domain/context-validation.ts`.
 */
import { type Static, Type } from '@sinclair/typebox';
import { MAX_TOKENS_PER_CALL } from './usage-event.ts';

export const CONTEXT_ROLES = ['system', 'user', 'assistant', 'tool'] as const;
export type ContextRole = (typeof CONTEXT_ROLES)[number];

/**
 * Length caps. Ids: UTF-16 code units after NFC normalisation. `content_bytes`: UTF-8 bytes of
 * the text (the config's `contexts.max_record_bytes` usually bounds a record well below it).
 * `content_length`: largest declared size of content that was hashed instead of stored (UInt32 column).
 */
export const CONTEXT_LIMITS = {
  tenant: 128,
  user_id: 256,
  conversation_id: 256,
  message_id: 256,
  platform: 64,
  tool_call_id: 256,
  content_bytes: 1_048_576,
  content_length: 4_294_967_295,
} as const;

const Id = (maxLength: number, description: string) => Type.String({ minLength: 1, maxLength, description });
const Time = (description: string) => Type.String({ minLength: 1, maxLength: 40, description });

/** The v1 record as sent by a client (before normalisation). */
export const ContextRecordV1 = Type.Object(
  {
    tenant: Type.Optional(Id(CONTEXT_LIMITS.tenant, 'Owner of the history; filled in from the API key when absent.')),
    user_id: Id(CONTEXT_LIMITS.user_id, 'The user whose history this is.'),
    conversation_id: Id(CONTEXT_LIMITS.conversation_id, 'The conversation, unique per user.'),
    message_id: Id(
      CONTEXT_LIMITS.message_id,
      'The message, unique per conversation. The normalisers use its position, zero-padded (000000, 000001, ...).',
    ),
    platform: Id(CONTEXT_LIMITS.platform, 'Platform that wrote this version: openai, anthropic, deepseek, ... (lower-cased at ingest).'),
    role: Type.Union(
      CONTEXT_ROLES.map((r) => Type.Literal(r)),
      { description: 'system | user | assistant | tool (a tool result).' },
    ),
    content: Type.Optional(
      Type.String({
        maxLength: CONTEXT_LIMITS.content_bytes,
        description: 'The message text, byte-exact (not normalised). Absent when only its hash is sent, and on a tombstone.',
      }),
    ),
    content_sha256: Type.Optional(
      Type.String({ pattern: '^[0-9a-f]{64}$', description: 'Lower-case hex SHA-256 of the UTF-8 text, when the text is not sent.' }),
    ),
    content_length: Type.Optional(
      Type.Integer({ minimum: 0, maximum: CONTEXT_LIMITS.content_length, description: 'UTF-8 bytes of the text (with content_sha256).' }),
    ),
    tool_call_id: Type.Optional(Id(CONTEXT_LIMITS.tool_call_id, 'For role tool: the tool call this result answers.')),
    created_at: Time('RFC 3339 date-time with a zone: when the message was first written.'),
    updated_at: Time('RFC 3339 date-time with a zone: when this version was written; the later one wins.'),
    deleted: Type.Optional(Type.Boolean({ description: 'A tombstone: the message was deleted at updated_at. Default false.' })),
    token_count: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_TOKENS_PER_CALL, description: 'Tokens of the message, if known.' })),
  },
  {
    $id: 'https://quotaflow.dev/schemas/context-record.v1.json',
    title: 'quotaflow conversation context record v1',
    additionalProperties: false,
  },
);
export type ContextRecordV1 = Static<typeof ContextRecordV1>;

/**
 * A validated, normalised record: ids in NFC, times as epoch ms (UTC), platform lower-cased.
 * `content` is null when the text is not held (sent as a hash, withheld by the tenant's
 * `contexts.store_content`, or a tombstone); `content_sha256`/`content_length` are always set
 * for a live record ('' and 0 on a tombstone).
 */
export interface ContextRecord {
  tenant: string;
  user_id: string;
  conversation_id: string;
  message_id: string;
  platform: string;
  role: ContextRole;
  content: string | null;
  content_sha256: string;
  /** UTF-8 bytes. */
  content_length: number;
  tool_call_id: string;
  created_at_ms: number;
  updated_at_ms: number;
  deleted: boolean;
  token_count: number | null;
}
