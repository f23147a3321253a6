/**
 * Provider normalisers on sample payloads shaped like the providers' documented objects (OpenAI chat
 * completion and chunk, OpenAI Responses `response`, Anthropic `message` and stream events). Every
 * resulting event must pass the v1 validator once identity and time are added.
 */
import { describe, expect, it } from 'vitest';
import { validateUsageEvent } from '../../domain/usage-event-validation.ts';
import {
  type AnthropicStreamEventLike,
  anthropicStreamUsage,
  fromAnthropicMessage,
  fromOpenAIChatCompletion,
  fromOpenAIResponse,
  type OpenAIChatChunkLike,
  openAIChatStreamUsage,
  type ProviderUsage,
} from '../../ingest/sdk/index.ts';

const NOW = Date.UTC(2026, 0, 15, 12);

/** The usage part must make a valid v1 event once the app adds tenant, id and time. */
function expectValid(usage: ProviderUsage): void {
  const result = validateUsageEvent({ event_id: 'evt-1', timestamp: NOW - 1_000, tenant: 'acme', user_id: 'u1', ...usage }, { nowMs: NOW });
  expect(result.ok ? [] : result.errors).toEqual([]);
}

describe('fromOpenAIChatCompletion', () => {
  // A reasoning model's completion whose prompt was mostly served from the prompt cache.
  const completion = {
    id: 'chatcmpl-AxQ7v2',
    object: 'chat.completion',
    created: 1_767_000_000,
    model: 'o4-mini-2025-04-16',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: 'The function returns early when...', refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: {
      prompt_tokens: 2_310,
      completion_tokens: 1_187,
      total_tokens: 3_497,
      prompt_tokens_details: { cached_tokens: 2_048, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 896, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    },
    service_tier: 'default',
    system_fingerprint: 'fp_3e1a2b',
  };

  it('maps prompt/completion tokens and their cached/reasoning subsets', () => {
    const usage = fromOpenAIChatCompletion(completion);
    expect(usage).toEqual({
      provider: 'openai',
      model: 'o4-mini-2025-04-16',
      operation: 'chat',
      input_tokens: 2_310, // cached tokens are inside prompt_tokens already: not added
      cached_input_tokens: 2_048,
      output_tokens: 1_187, // reasoning tokens are inside completion_tokens already
      reasoning_tokens: 896,
      finish_reason: 'stop',
      status: 'ok',
    });
    expectValid(usage);
  });

  it('keeps length and tool_calls finish reasons, maps the deprecated function_call, and takes a provider override', () => {
    const truncated = { ...completion, choices: [{ index: 0, finish_reason: 'length' }] };
    expect(fromOpenAIChatCompletion(truncated).finish_reason).toBe('length');
    expect(fromOpenAIChatCompletion({ ...completion, choices: [{ index: 0, finish_reason: 'function_call' }] }).finish_reason).toBe(
      'tool_calls',
    );
    const deepseek = fromOpenAIChatCompletion({ ...completion, model: 'deepseek-chat' }, { provider: 'deepseek' });
    expect(deepseek).toMatchObject({ provider: 'deepseek', model: 'deepseek-chat' });
  });

  it('flags a response without usage instead of throwing', () => {
    const usage = fromOpenAIChatCompletion({ model: 'gpt-4o', choices: [] });
    expect(usage).toMatchObject({ input_tokens: 0, output_tokens: 0, tags: { usage_missing: 'true' } });
    expectValid(usage);
    expect(() => fromOpenAIChatCompletion(null as never)).not.toThrow();
    expect(fromOpenAIChatCompletion(null as never).model).toBe('unknown');
  });
});

describe('fromOpenAIResponse (Responses API)', () => {
  const base = {
    id: 'resp_0a1b2c',
    object: 'response',
    created_at: 1_767_000_000,
    model: 'gpt-5-2025-08-07',
    error: null,
    incomplete_details: null,
    usage: {
      input_tokens: 5_120,
      input_tokens_details: { cached_tokens: 4_096 },
      output_tokens: 700,
      output_tokens_details: { reasoning_tokens: 512 },
      total_tokens: 5_820,
    },
  };

  it('maps a completed response', () => {
    const usage = fromOpenAIResponse({
      ...base,
      status: 'completed',
      output: [
        { type: 'reasoning', id: 'rs_1', summary: [] },
        { type: 'message', id: 'msg_1', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Done.' }] },
      ],
    } as never);
    expect(usage).toEqual({
      provider: 'openai',
      model: 'gpt-5-2025-08-07',
      operation: 'chat',
      input_tokens: 5_120,
      cached_input_tokens: 4_096,
      output_tokens: 700,
      reasoning_tokens: 512,
      status: 'ok',
      finish_reason: 'stop',
    });
    expectValid(usage);
  });

  it('maps incomplete (max_output_tokens) to finish_reason length', () => {
    const usage = fromOpenAIResponse({
      ...base,
      status: 'incomplete',
      incomplete_details: { reason: 'max_output_tokens' },
      output: [{ type: 'reasoning' }],
    });
    expect(usage).toMatchObject({ status: 'ok', finish_reason: 'length', output_tokens: 700 });
    expectValid(usage);
    expect(fromOpenAIResponse({ ...base, status: 'incomplete', incomplete_details: { reason: 'content_filter' } }).finish_reason).toBe(
      'content_filter',
    );
  });

  it('maps function calls, failures and cancellations', () => {
    const tool = fromOpenAIResponse({ ...base, status: 'completed', output: [{ type: 'function_call' }] });
    expect(tool.finish_reason).toBe('tool_calls');
    const limited = fromOpenAIResponse({ ...base, status: 'failed', error: { code: 'rate_limit_exceeded', message: 'slow down' } });
    expect(limited.status).toBe('rate_limited');
    expect(fromOpenAIResponse({ ...base, status: 'failed', error: { code: 'server_error' } }).status).toBe('error');
    expect(fromOpenAIResponse({ ...base, status: 'cancelled' }).status).toBe('cancelled');
    for (const u of [tool, limited]) expectValid(u);
  });
});

describe('fromAnthropicMessage', () => {
  // A message whose long system prompt was partly read from the cache and partly written to it.
  const message = {
    id: 'msg_01XFDUDYJgAACzvnptvVoYEL',
    type: 'message',
    role: 'assistant',
    model: 'claude-sonnet-4-5-20250929',
    content: [{ type: 'text', text: 'Here is the summary...' }],
    stop_reason: 'max_tokens',
    stop_sequence: null,
    usage: {
      input_tokens: 37,
      cache_creation_input_tokens: 1_850,
      cache_read_input_tokens: 11_200,
      cache_creation: { ephemeral_5m_input_tokens: 1_850, ephemeral_1h_input_tokens: 0 },
      output_tokens: 1_024,
      service_tier: 'standard',
    },
  };

  it('adds cache reads and writes to input_tokens (Anthropic reports them beside it)', () => {
    const usage = fromAnthropicMessage(message);
    expect(usage).toEqual({
      provider: 'anthropic',
      model: 'claude-sonnet-4-5-20250929',
      operation: 'chat',
      input_tokens: 37 + 1_850 + 11_200,
      cached_input_tokens: 11_200,
      output_tokens: 1_024,
      finish_reason: 'length',
      status: 'ok',
      tags: { cache_creation_input_tokens: '1850' },
    });
    expectValid(usage);
  });

  it.each([
    ['end_turn', 'stop'],
    ['stop_sequence', 'stop'],
    ['tool_use', 'tool_calls'],
    ['max_tokens', 'length'],
    ['refusal', 'content_filter'],
    ['pause_turn', 'pause_turn'],
  ])('maps stop_reason %s to finish_reason %s', (stop, finish) => {
    expect(fromAnthropicMessage({ ...message, stop_reason: stop }).finish_reason).toBe(finish);
  });

  it('handles a message without caching and notes 1-hour cache writes', () => {
    const plain = fromAnthropicMessage({
      model: 'claude-haiku-4-5',
      stop_reason: 'end_turn',
      usage: { input_tokens: 12, output_tokens: 40 },
    });
    expect(plain).toEqual({
      provider: 'anthropic',
      model: 'claude-haiku-4-5',
      operation: 'chat',
      input_tokens: 12,
      output_tokens: 40,
      finish_reason: 'stop',
      status: 'ok',
    });
    const nulls = fromAnthropicMessage({
      model: 'claude-haiku-4-5',
      usage: { input_tokens: 12, output_tokens: 40, cache_creation_input_tokens: null, cache_read_input_tokens: null },
    });
    expect(nulls.input_tokens).toBe(12);
    const hour = fromAnthropicMessage({
      ...message,
      usage: { ...message.usage, cache_creation: { ephemeral_5m_input_tokens: 850, ephemeral_1h_input_tokens: 1_000 } },
    });
    expect(hour.tags).toEqual({ cache_creation_input_tokens: '1850', cache_creation_1h_input_tokens: '1000' });
    for (const u of [plain, hour]) expectValid(u);
  });
});

describe('openAIChatStreamUsage', () => {
  const head = { id: 'chatcmpl-s1', object: 'chat.completion.chunk', created: 1_767_000_000, model: 'gpt-4o-2024-08-06' };
  // Plain objects (not annotated): the loose input types accept any extra fields a real chunk has.
  const rawChunks = [
    { ...head, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }], usage: null },
    { ...head, choices: [{ index: 0, delta: { content: 'Hello' }, finish_reason: null }], usage: null },
    { ...head, choices: [{ index: 0, delta: {}, finish_reason: 'length' }], usage: null },
  ];
  const chunks: OpenAIChatChunkLike[] = rawChunks;
  // With stream_options.include_usage: one last chunk, empty choices, usage for the whole request.
  const usageChunk = {
    ...head,
    choices: [],
    usage: { prompt_tokens: 1_540, completion_tokens: 256, total_tokens: 1_796, prompt_tokens_details: { cached_tokens: 1_280 } },
  };

  it('takes usage from the final chunk only', () => {
    const acc = openAIChatStreamUsage();
    for (const c of [...chunks, usageChunk]) acc.push(c);
    const r = acc.result();
    expect(r).toEqual({
      complete: true,
      model: 'gpt-4o-2024-08-06',
      finish_reason: 'length',
      usage: {
        provider: 'openai',
        model: 'gpt-4o-2024-08-06',
        operation: 'chat',
        input_tokens: 1_540,
        cached_input_tokens: 1_280,
        output_tokens: 256,
        finish_reason: 'length',
        status: 'ok',
      },
    });
    expectValid(r.usage!);
  });

  it('says clearly that usage never arrived when include_usage was not set', () => {
    const acc = openAIChatStreamUsage();
    for (const c of chunks) acc.push(c);
    const r = acc.result();
    expect(r).toMatchObject({ usage: null, complete: false, model: 'gpt-4o-2024-08-06', finish_reason: 'length' });
    expect(r.reason).toMatch(/include_usage/);
  });

  it('ignores junk pushed into it', () => {
    const acc = openAIChatStreamUsage();
    expect(() => {
      acc.push(null as never);
      acc.push('[DONE]' as never);
      acc.push({ choices: 'x' } as never);
    }).not.toThrow();
    expect(acc.result().usage).toBeNull();
  });
});

describe('anthropicStreamUsage', () => {
  const start: AnthropicStreamEventLike = {
    type: 'message_start',
    message: {
      id: 'msg_stream_1',
      type: 'message',
      role: 'assistant',
      model: 'claude-opus-4-1-20250805',
      content: [],
      stop_reason: null,
      usage: { input_tokens: 52, cache_creation_input_tokens: 0, cache_read_input_tokens: 3_000, output_tokens: 1 },
    } as AnthropicStreamEventLike['message'],
  };
  const rawBody = [
    { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
    { type: 'ping' },
    { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Checking the weather' } },
    { type: 'content_block_stop', index: 0 },
  ];
  const body: AnthropicStreamEventLike[] = rawBody;

  it('treats message_delta usage as cumulative: 10 then 25 means 25, not 35', () => {
    const acc = anthropicStreamUsage();
    acc.push(start);
    for (const e of body) acc.push(e);
    acc.push({ type: 'message_delta', delta: { stop_reason: null }, usage: { output_tokens: 10 } });
    acc.push({ type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 25 } });
    acc.push({ type: 'message_stop' });
    const r = acc.result();
    expect(r).toEqual({
      complete: true,
      model: 'claude-opus-4-1-20250805',
      finish_reason: 'tool_calls',
      usage: {
        provider: 'anthropic',
        model: 'claude-opus-4-1-20250805',
        operation: 'chat',
        input_tokens: 52 + 3_000,
        cached_input_tokens: 3_000,
        output_tokens: 25,
        finish_reason: 'tool_calls',
        status: 'ok',
      },
    });
    expectValid(r.usage!);
  });

  it('lets a message_delta restate input counts (replacing, not adding)', () => {
    const acc = anthropicStreamUsage();
    acc.push({ ...start, message: { ...start.message, usage: { input_tokens: 0, output_tokens: 1 } } });
    acc.push({ type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { input_tokens: 90, output_tokens: 14 } });
    expect(acc.result().usage).toMatchObject({ input_tokens: 90, output_tokens: 14, finish_reason: 'stop' });
  });

  it('reports an interrupted stream as incomplete and a mid-stream error in status', () => {
    const cut = anthropicStreamUsage();
    cut.push(start);
    cut.push(body[0]!);
    const r = cut.result();
    expect(r.complete).toBe(false);
    expect(r.usage).toMatchObject({ input_tokens: 3_052, output_tokens: 1 });
    expect(r.reason).toMatch(/message_delta/);

    const failed = anthropicStreamUsage();
    failed.push(start);
    failed.push({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
    expect(failed.result().usage?.status).toBe('error');
    const limited = anthropicStreamUsage();
    limited.push(start);
    limited.push({ type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } });
    expect(limited.result().usage?.status).toBe('rate_limited');
  });

  it('returns null usage when the stream reported none', () => {
    const acc = anthropicStreamUsage();
    acc.push({ type: 'ping' });
    acc.push(undefined as never);
    expect(acc.result()).toMatchObject({ usage: null, complete: false, reason: expect.stringMatching(/message_start/) });
  });
});
