/**
 * Provider normalisers: a provider's raw response (or stream) -> the usage part of a v1 event
 * (SPEC.md section 2). Pure functions, no I/O; they do not throw on malformed or partial JSON (any
 * decoded value is accepted, wrong-typed fields are ignored): a missing `usage` gives zero
 * counts plus `tags.usage_missing = "true"` (the call is still recorded and visibly flagged), a
 * missing model gives `"unknown"` (flagged by pricing, never priced 0). Counts are passed through
 * as the provider sent them: the ingest rejects impossible values, nothing here clamps them.
 *
 * The app adds identity and spreads the result:
 *
 *   emitter.emit({ tenant: 'acme', user_id, ...fromOpenAIChatCompletion(completion) });
 *
 * Field names below are those of the providers' API references:
 * - OpenAI Chat Completions: https://platform.openai.com/docs/api-reference/chat/object
 *   and the streaming chunk object (https://platform.openai.com/docs/api-reference/chat-streaming).
 * - OpenAI Responses: https://platform.openai.com/docs/api-reference/responses/object
 * - Anthropic Messages: https://docs.anthropic.com/en/api/messages and streaming
 *   (https://docs.anthropic.com/en/docs/build-with-claude/streaming).
 *
 * The input types are deliberately loose structural types (every field optional, nullable): the
 * official SDKs' `ChatCompletion`, `Response` and `Message` types are assignable to them, and so is
 * a JSON.parse'd body, without this module depending on either SDK.
 */
import type { UsageEventV1 } from '../../schemas/usage-event.ts';

/** The usage part of a v1 event, ready to spread into `emit({ tenant, ...usage })`. */
export type ProviderUsage = Pick<UsageEventV1, 'provider' | 'model' | 'input_tokens' | 'output_tokens'> &
  Partial<Pick<UsageEventV1, 'operation' | 'cached_input_tokens' | 'reasoning_tokens' | 'status' | 'finish_reason' | 'tags'>>;

export interface NormaliseOptions {
  /**
   * `provider` to report. Defaults to `openai` / `anthropic`; set it when an OpenAI- or
   * Anthropic-compatible API serves the call (`deepseek`, `vllm`, `azure-openai`, `bedrock`, ...).
   */
  provider?: string;
}

/** What a stream accumulator ends with. */
export interface StreamUsageResult {
  /** The usage part of the event, or null when the stream never reported usage (see `reason`). */
  usage: ProviderUsage | null;
  /** True when the stream's final usage report arrived (OpenAI: the usage chunk; Anthropic: `message_delta`). */
  complete: boolean;
  model?: string;
  finish_reason?: string;
  /** Why `usage` is null or incomplete. */
  reason?: string;
}

export interface StreamUsageAccumulator<Chunk> {
  /** Feed one parsed chunk/event, in stream order. Never throws; unknown chunks are ignored. */
  push(chunk: Chunk): void;
  /** The usage so far. Call it once the stream ended (or was interrupted). */
  result(): StreamUsageResult;
}

type Nullable<T> = T | null | undefined;

// ---------------------------------------------------------------------------------------------
// OpenAI Chat Completions
// ---------------------------------------------------------------------------------------------

/** `usage` of a chat completion (`CompletionUsage`). */
export interface OpenAIChatUsageLike {
  prompt_tokens?: Nullable<number>;
  completion_tokens?: Nullable<number>;
  total_tokens?: Nullable<number>;
  prompt_tokens_details?: Nullable<{ cached_tokens?: Nullable<number> }>;
  completion_tokens_details?: Nullable<{ reasoning_tokens?: Nullable<number> }>;
}

export interface OpenAIChatCompletionLike {
  model?: Nullable<string>;
  choices?: Nullable<ReadonlyArray<{ index?: Nullable<number>; finish_reason?: Nullable<string> }>>;
  usage?: Nullable<OpenAIChatUsageLike>;
}

/**
 * Chat Completions response (`object: "chat.completion"`). Mapping:
 * - `usage.prompt_tokens` -> `input_tokens` (includes cached tokens)
 * - `usage.completion_tokens` -> `output_tokens` (includes reasoning tokens)
 * - `usage.prompt_tokens_details.cached_tokens` -> `cached_input_tokens` (a subset of prompt_tokens)
 * - `usage.completion_tokens_details.reasoning_tokens` -> `reasoning_tokens` (a subset of completion_tokens)
 * - `model` -> `model` (the served model, e.g. `gpt-4o-2024-08-06`)
 * - `choices[0].finish_reason` -> `finish_reason` (`stop`, `length`, `tool_calls`, `content_filter`;
 *   the deprecated `function_call` becomes `tool_calls`)
 */
export function fromOpenAIChatCompletion(response: OpenAIChatCompletionLike, options: NormaliseOptions = {}): ProviderUsage {
  const r = asRecord(response);
  const usage = asRecord(r.usage);
  const out: ProviderUsage = {
    provider: options.provider ?? 'openai',
    model: str(r.model) ?? 'unknown',
    operation: 'chat',
    input_tokens: num(usage.prompt_tokens) ?? 0,
    output_tokens: num(usage.completion_tokens) ?? 0,
    status: 'ok',
  };
  const cached = num(asRecord(usage.prompt_tokens_details).cached_tokens);
  if (cached !== undefined) out.cached_input_tokens = cached;
  const reasoning = num(asRecord(usage.completion_tokens_details).reasoning_tokens);
  if (reasoning !== undefined) out.reasoning_tokens = reasoning;
  const finish = openAIFinishReason(firstChoiceFinishReason(r.choices));
  if (finish !== undefined) out.finish_reason = finish;
  if (r.usage === undefined || r.usage === null) out.tags = { usage_missing: 'true' };
  return out;
}

function firstChoiceFinishReason(choices: unknown): string | undefined {
  if (!Array.isArray(choices)) return undefined;
  const first = choices.find((c) => asRecord(c).index === 0) ?? choices[0];
  return str(asRecord(first).finish_reason);
}

function openAIFinishReason(reason: string | undefined): string | undefined {
  return reason === 'function_call' ? 'tool_calls' : reason;
}

/** A streamed chunk (`object: "chat.completion.chunk"`). */
export interface OpenAIChatChunkLike {
  model?: Nullable<string>;
  choices?: Nullable<ReadonlyArray<{ index?: Nullable<number>; finish_reason?: Nullable<string> }>>;
  usage?: Nullable<OpenAIChatUsageLike>;
}

/**
 * Accumulates a streamed chat completion. Usage is reported ONLY when the request set
 * `stream_options: { include_usage: true }`: then one extra chunk, just before `data: [DONE]`, carries
 * `usage` for the whole request and an empty `choices` array; every earlier chunk has `usage: null`.
 * If the stream is cut before that chunk, there is no usage at all: `result().usage` is null and
 * `reason` says why. `model` is taken from the chunks, `finish_reason` from the last choice that set one.
 */
export function openAIChatStreamUsage(options: NormaliseOptions = {}): StreamUsageAccumulator<OpenAIChatChunkLike> {
  let model: string | undefined;
  let finishReason: string | undefined;
  let usage: Record<string, unknown> | undefined;
  return {
    push(chunk) {
      try {
        const c = asRecord(chunk);
        model = str(c.model) ?? model;
        if (Array.isArray(c.choices)) {
          for (const choice of c.choices) {
            const fr = str(asRecord(choice).finish_reason);
            // With n > 1, choice 0 decides (as in the non-stream mapping); others only fill a gap.
            if (fr !== undefined && (asRecord(choice).index === 0 || finishReason === undefined)) finishReason = fr;
          }
        }
        if (c.usage !== null && typeof c.usage === 'object') usage = c.usage as Record<string, unknown>;
      } catch {
        // never throw into the app's stream loop
      }
    },
    result() {
      const fr = openAIFinishReason(finishReason);
      if (usage === undefined) {
        return {
          usage: null,
          complete: false,
          ...(model !== undefined && { model }),
          ...(fr !== undefined && { finish_reason: fr }),
          reason:
            'no usage chunk received: set stream_options: { include_usage: true } on the request; ' +
            'without it, or if the stream was interrupted before its last chunk, OpenAI reports no usage',
        };
      }
      const ev = fromOpenAIChatCompletion({ model, choices: fr === undefined ? [] : [{ index: 0, finish_reason: fr }], usage }, options);
      return { usage: ev, complete: true, model: ev.model, ...(fr !== undefined && { finish_reason: fr }) };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// OpenAI Responses
// ---------------------------------------------------------------------------------------------

export interface OpenAIResponseLike {
  model?: Nullable<string>;
  /** `completed`, `incomplete`, `failed`, `cancelled`, `in_progress`, `queued`. */
  status?: Nullable<string>;
  incomplete_details?: Nullable<{ reason?: Nullable<string> }>;
  error?: Nullable<{ code?: Nullable<string>; message?: Nullable<string> }>;
  output?: Nullable<ReadonlyArray<{ type?: Nullable<string> }>>;
  usage?: Nullable<{
    input_tokens?: Nullable<number>;
    output_tokens?: Nullable<number>;
    total_tokens?: Nullable<number>;
    input_tokens_details?: Nullable<{ cached_tokens?: Nullable<number> }>;
    output_tokens_details?: Nullable<{ reasoning_tokens?: Nullable<number> }>;
  }>;
}

/**
 * Responses API response (`object: "response"`; in a stream, the `response` of the
 * `response.completed` / `response.incomplete` / `response.failed` event). Mapping:
 * - `usage.input_tokens` -> `input_tokens`; `usage.input_tokens_details.cached_tokens` -> `cached_input_tokens`
 * - `usage.output_tokens` -> `output_tokens`; `usage.output_tokens_details.reasoning_tokens` -> `reasoning_tokens`
 * - `model` -> `model`
 * - `status`: `completed` -> status ok, finish_reason `tool_calls` when an output item is a
 *   `function_call`, else `stop`; `incomplete` -> status ok with `incomplete_details.reason`
 *   `max_output_tokens` -> `length`, `content_filter` -> `content_filter`; `failed` -> status `error`
 *   (`rate_limited` when `error.code` is `rate_limit_exceeded`); `cancelled` -> `cancelled`.
 */
export function fromOpenAIResponse(response: OpenAIResponseLike, options: NormaliseOptions = {}): ProviderUsage {
  const r = asRecord(response);
  const usage = asRecord(r.usage);
  const out: ProviderUsage = {
    provider: options.provider ?? 'openai',
    model: str(r.model) ?? 'unknown',
    operation: 'chat',
    input_tokens: num(usage.input_tokens) ?? 0,
    output_tokens: num(usage.output_tokens) ?? 0,
  };
  const cached = num(asRecord(usage.input_tokens_details).cached_tokens);
  if (cached !== undefined) out.cached_input_tokens = cached;
  const reasoning = num(asRecord(usage.output_tokens_details).reasoning_tokens);
  if (reasoning !== undefined) out.reasoning_tokens = reasoning;
  switch (str(r.status)) {
    case 'completed': {
      const output = Array.isArray(r.output) ? r.output : [];
      out.status = 'ok';
      out.finish_reason = output.some((item) => asRecord(item).type === 'function_call') ? 'tool_calls' : 'stop';
      break;
    }
    case 'incomplete': {
      const reason = str(asRecord(r.incomplete_details).reason);
      out.status = 'ok';
      out.finish_reason = reason === 'max_output_tokens' ? 'length' : (reason ?? 'incomplete');
      break;
    }
    case 'failed':
      out.status = str(asRecord(r.error).code) === 'rate_limit_exceeded' ? 'rate_limited' : 'error';
      break;
    case 'cancelled':
      out.status = 'cancelled';
      break;
    default:
      break; // queued / in_progress: not finished, no status claimed
  }
  if (r.usage === undefined || r.usage === null) out.tags = { usage_missing: 'true' };
  return out;
}

// ---------------------------------------------------------------------------------------------
// Anthropic Messages
// ---------------------------------------------------------------------------------------------

export interface AnthropicUsageLike {
  input_tokens?: Nullable<number>;
  output_tokens?: Nullable<number>;
  cache_creation_input_tokens?: Nullable<number>;
  cache_read_input_tokens?: Nullable<number>;
  /** Cache writes split by TTL (their sum is cache_creation_input_tokens). */
  cache_creation?: Nullable<{ ephemeral_5m_input_tokens?: Nullable<number>; ephemeral_1h_input_tokens?: Nullable<number> }>;
}

export interface AnthropicMessageLike {
  model?: Nullable<string>;
  stop_reason?: Nullable<string>;
  usage?: Nullable<AnthropicUsageLike>;
}

/**
 * Messages API response (`type: "message"`). Anthropic reports cache reads and writes BESIDE
 * `input_tokens` (which counts only the uncached prompt tokens after the last cache breakpoint), so:
 * - `input_tokens` = `usage.input_tokens` + `usage.cache_creation_input_tokens` + `usage.cache_read_input_tokens`
 *   (v1 input_tokens counts every prompt token)
 * - `cached_input_tokens` = `usage.cache_read_input_tokens`
 * - `tags.cache_creation_input_tokens` = `usage.cache_creation_input_tokens` as a string (cache writes
 *   are priced above plain input; kept so they are not lost), plus `tags.cache_creation_1h_input_tokens`
 *   when `usage.cache_creation.ephemeral_1h_input_tokens` is non-zero (1-hour writes cost more)
 * - `output_tokens` = `usage.output_tokens` (includes extended-thinking tokens; Anthropic reports no split)
 * - `stop_reason`: `end_turn` / `stop_sequence` -> `stop`, `max_tokens` -> `length`, `tool_use` ->
 *   `tool_calls`, `refusal` -> `content_filter`; anything else (`pause_turn`, ...) passes through.
 */
export function fromAnthropicMessage(message: AnthropicMessageLike, options: NormaliseOptions = {}): ProviderUsage {
  const m = asRecord(message);
  const usage = asRecord(m.usage);
  const uncached = num(usage.input_tokens) ?? 0;
  const cacheWrite = num(usage.cache_creation_input_tokens) ?? 0;
  const cacheRead = num(usage.cache_read_input_tokens) ?? 0;
  const out: ProviderUsage = {
    provider: options.provider ?? 'anthropic',
    model: str(m.model) ?? 'unknown',
    operation: 'chat',
    input_tokens: uncached + cacheWrite + cacheRead,
    output_tokens: num(usage.output_tokens) ?? 0,
    status: 'ok',
  };
  if (num(usage.cache_read_input_tokens) !== undefined) out.cached_input_tokens = cacheRead;
  const finish = anthropicFinishReason(str(m.stop_reason));
  if (finish !== undefined) out.finish_reason = finish;
  const tags: Record<string, string> = {};
  if (cacheWrite > 0) tags.cache_creation_input_tokens = String(cacheWrite);
  const oneHour = num(asRecord(usage.cache_creation).ephemeral_1h_input_tokens);
  if (oneHour !== undefined && oneHour > 0) tags.cache_creation_1h_input_tokens = String(oneHour);
  if (m.usage === undefined || m.usage === null) tags.usage_missing = 'true';
  if (Object.keys(tags).length > 0) out.tags = tags;
  return out;
}

const ANTHROPIC_STOP: Record<string, string> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  max_tokens: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
};

function anthropicFinishReason(reason: string | undefined): string | undefined {
  return reason === undefined ? undefined : (ANTHROPIC_STOP[reason] ?? reason);
}

/** A parsed server-sent event of a streamed message (the `data:` JSON; its `type` names the event). */
export interface AnthropicStreamEventLike {
  type?: Nullable<string>;
  message?: Nullable<AnthropicMessageLike>;
  // `type` is listed so content_block_delta deltas ({ type, text }) stay assignable (weak-type rule).
  delta?: Nullable<{ type?: Nullable<string>; stop_reason?: Nullable<string> }>;
  usage?: Nullable<AnthropicUsageLike>;
  error?: Nullable<{ type?: Nullable<string>; message?: Nullable<string> }>;
}

const USAGE_FIELDS = ['input_tokens', 'output_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens'] as const;

/**
 * Accumulates a streamed message:
 * - `message_start`: `message.model`, and `message.usage` with `input_tokens`, the cache fields and
 *   an initial `output_tokens` (usually a placeholder such as 1).
 * - `message_delta`: `delta.stop_reason`, and `usage` whose counts are CUMULATIVE totals for the
 *   message so far: the latest value replaces the previous one, it is never added (two deltas with
 *   output_tokens 10 then 25 mean 25). A delta may also restate input/cache counts; they replace too.
 * - `error` (e.g. `overloaded_error`, `rate_limit_error` mid-stream): status `error` / `rate_limited`.
 * `complete` is true once a `message_delta` with usage arrived; before that `output_tokens` is only
 * the initial count from `message_start`.
 */
export function anthropicStreamUsage(options: NormaliseOptions = {}): StreamUsageAccumulator<AnthropicStreamEventLike> {
  let model: string | undefined;
  let stopReason: string | undefined;
  let started = false;
  let complete = false;
  let errorType: string | undefined;
  const usage: Partial<Record<(typeof USAGE_FIELDS)[number], number>> & { cache_creation?: unknown } = {};

  function take(source: unknown): void {
    const u = asRecord(source);
    for (const f of USAGE_FIELDS) {
      const v = num(u[f]);
      if (v !== undefined) usage[f] = v; // replace, never add: every report is a running total
    }
    if (u.cache_creation !== null && typeof u.cache_creation === 'object') usage.cache_creation = u.cache_creation;
  }

  return {
    push(event) {
      try {
        const e = asRecord(event);
        switch (e.type) {
          case 'message_start': {
            const message = asRecord(e.message);
            started = true;
            model = str(message.model) ?? model;
            take(message.usage);
            break;
          }
          case 'message_delta':
            stopReason = str(asRecord(e.delta).stop_reason) ?? stopReason;
            if (e.usage !== null && typeof e.usage === 'object') {
              take(e.usage);
              complete = true;
            }
            break;
          case 'error':
            errorType = str(asRecord(e.error).type) ?? 'error';
            break;
          default:
            break; // ping, content_block_*, message_stop: no usage
        }
      } catch {
        // never throw into the app's stream loop
      }
    },
    result() {
      const finish = anthropicFinishReason(stopReason);
      if (!started && !complete) {
        return {
          usage: null,
          complete: false,
          ...(finish !== undefined && { finish_reason: finish }),
          reason: 'no message_start or message_delta event received: the stream reported no usage',
        };
      }
      const ev = fromAnthropicMessage({ model, stop_reason: stopReason, usage: usage as AnthropicUsageLike }, options);
      if (errorType !== undefined) ev.status = errorType === 'rate_limit_error' ? 'rate_limited' : 'error';
      return {
        usage: ev,
        complete,
        model: ev.model,
        ...(finish !== undefined && { finish_reason: finish }),
        ...(!complete && {
          reason: 'stream ended before message_delta: output_tokens is the initial count from message_start',
        }),
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------

function asRecord(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : {};
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' ? value : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}
