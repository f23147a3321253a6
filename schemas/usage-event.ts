/**
 * Usage event v1: one event per LLM API call (SPEC.md section 2).
 *
 * Field names follow the OpenTelemetry GenAI semantic conventions where they exist
 * (`gen_ai.provider.name` -> `provider`, `gen_ai.usage.input_tokens` -> `input_tokens`, ...):
 * https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/
 *
 * This file holds the wire shape (what a client sends) as a TypeBox schema, which is also
 * exported as JSON Schema in `usage-event.schema.json` (`npm run schemas`). Rules that JSON
 * Schema cannot express (subset rules, time bounds, NFC) live in `domain/usage-event-validation.ts`.
 */
import { type Static, Type } from '@sinclair/typebox';

/** Upper bound on tokens in one call; larger values are rejected as absurd, never clamped. */
export const MAX_TOKENS_PER_CALL = 10_000_000;
/** Upper bound on a caller-supplied cost for one call, USD. */
export const MAX_COST_USD_PER_CALL = 100_000;
/** Upper bound on latency, ms (24 h): a call that took longer is a clock bug. */
export const MAX_LATENCY_MS = 86_400_000;
/** Length caps, in UTF-16 code units after NFC normalisation. */
export const LIMITS = {
  event_id: 128,
  tenant: 128,
  user_id: 256,
  task_id: 256,
  provider: 64,
  model: 128,
  operation: 64,
  finish_reason: 64,
  prompt_hash: 128,
  tag_key: 64,
  tag_value: 256,
  tags: 32,
} as const;

export const STATUSES = ['ok', 'error', 'rate_limited', 'timeout', 'cancelled'] as const;
export type UsageStatus = (typeof STATUSES)[number];

const Tokens = (description: string) => Type.Integer({ minimum: 0, maximum: MAX_TOKENS_PER_CALL, description });
const Id = (maxLength: number, description: string) => Type.String({ minLength: 1, maxLength, description });

/** The v1 event as sent by a client (before normalisation). */
export const UsageEventV1 = Type.Object(
  {
    event_id: Id(LIMITS.event_id, 'Idempotency key (UUID/ULID or any unique string); unique per tenant.'),
    timestamp: Type.Union(
      [
        Type.String({ minLength: 1, maxLength: 40, description: 'RFC 3339 date-time with a zone (Z or +hh:mm).' }),
        Type.Integer({ minimum: 0, description: 'Epoch milliseconds, UTC.' }),
      ],
      { description: 'When the call finished (event time).' },
    ),
    tenant: Id(LIMITS.tenant, 'Organisation/team/project that owns the quota.'),
    user_id: Type.Optional(Id(LIMITS.user_id, 'End user or developer.')),
    task_id: Type.Optional(Id(LIMITS.task_id, 'Unit of work (a session, a job).')),
    provider: Id(LIMITS.provider, 'gen_ai.provider.name: openai, anthropic, deepseek, ... (lower-cased at ingest).'),
    model: Id(LIMITS.model, 'Requested or served model.'),
    operation: Type.Optional(Id(LIMITS.operation, 'gen_ai.operation.name: chat, completion, embeddings, ... (default chat).')),
    input_tokens: Tokens('All prompt tokens, cached ones included.'),
    output_tokens: Tokens('All completion tokens, reasoning ones included.'),
    cached_input_tokens: Type.Optional(Tokens('Subset of input_tokens served from the provider cache.')),
    reasoning_tokens: Type.Optional(Tokens('Subset of output_tokens.')),
    latency_ms: Type.Optional(Type.Number({ minimum: 0, maximum: MAX_LATENCY_MS, description: 'Call latency, ms.' })),
    status: Type.Optional(
      Type.Union(
        STATUSES.map((s) => Type.Literal(s)),
        { description: 'Default ok.' },
      ),
    ),
    finish_reason: Type.Optional(Id(LIMITS.finish_reason, 'stop, length (truncated by max_tokens), tool_calls, ...')),
    max_tokens: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TOKENS_PER_CALL, description: 'Requested output cap.' })),
    prompt_hash: Type.Optional(Id(LIMITS.prompt_hash, 'Hash of the normalised prompt (never the prompt).')),
    cost_usd: Type.Optional(
      Type.Number({ minimum: 0, maximum: MAX_COST_USD_PER_CALL, description: 'USD; if absent, priced from the price table.' }),
    ),
    tags: Type.Optional(
      Type.Record(Type.String({ minLength: 1, maxLength: LIMITS.tag_key }), Type.String({ maxLength: LIMITS.tag_value }), {
        maxProperties: LIMITS.tags,
        description: 'Free-form string dimensions.',
      }),
    ),
  },
  {
    $id: 'https://quotaflow.dev/schemas/usage-event.v1.json',
    title: 'quotaflow usage event v1',
    additionalProperties: false,
  },
);
export type UsageEventV1 = Static<typeof UsageEventV1>;

/**
 * A validated, normalised event: ids in NFC, timestamp as epoch ms (UTC), defaults filled,
 * provider lower-cased, `cost_usd` as an exact decimal string (or null: price it).
 */
export interface UsageEvent {
  event_id: string;
  timestamp_ms: number;
  tenant: string;
  user_id: string;
  task_id: string;
  provider: string;
  model: string;
  operation: string;
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
  reasoning_tokens: number;
  latency_ms: number | null;
  status: UsageStatus;
  finish_reason: string;
  max_tokens: number | null;
  prompt_hash: string;
  cost_usd: string | null;
  tags: Record<string, string>;
}
