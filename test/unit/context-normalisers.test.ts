import { describe, expect, it } from 'vitest';
import { validateContextRecord } from '../../domain/context-validation.ts';
import { fromAnthropic, toAnthropic } from '../../ingest/context/anthropic.ts';
import { ContextFormatError, type RecordStamp } from '../../ingest/context/formats.ts';
import { renderConversations } from '../../ingest/context/index.ts';
import { fromOpenAIChat, toOpenAIChat } from '../../ingest/context/openai-chat.ts';
import { fromOpenAIResponses, toOpenAIResponses } from '../../ingest/context/openai-responses.ts';
import type { ContextRecord, ContextRecordV1 } from '../../schemas/context-record.ts';

const AT = '2025-06-15T12:00:00Z';
const stamp: RecordStamp = { user_id: 'u1', conversation_id: 'c1', at: AT };
const brief = (records: ContextRecordV1[]) => records.map((r) => [r.message_id, r.role, r.content, r.tool_call_id ?? null]);

/** A chat with the four roles, as an OpenAI client sends it. */
const OPENAI_CHAT = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'What is 2+2?' },
  { role: 'assistant', content: '4.' },
  { role: 'user', content: 'And 3+3? 用中文回答。' },
  { role: 'assistant', content: '六。' },
];

describe('OpenAI chat completions -> records', () => {
  it('one record per message, positional ids, the platform and times stamped', () => {
    const { records, notes } = fromOpenAIChat({ messages: OPENAI_CHAT }, stamp);
    expect(notes).toEqual([]);
    expect(brief(records)).toEqual([
      ['000000', 'system', 'You are terse.', null],
      ['000001', 'user', 'What is 2+2?', null],
      ['000002', 'assistant', '4.', null],
      ['000003', 'user', 'And 3+3? 用中文回答。', null],
      ['000004', 'assistant', '六。', null],
    ]);
    expect(records[0]).toEqual({
      user_id: 'u1',
      conversation_id: 'c1',
      message_id: '000000',
      platform: 'openai',
      role: 'system',
      content: 'You are terse.',
      created_at: AT,
      updated_at: AT,
    });
    // Every record the normaliser makes is a valid record v1.
    for (const r of records) expect(validateContextRecord(r, { nowMs: Date.parse(AT), tenantOptional: true }).ok).toBe(true);
  });

  it('developer is system, tool results keep their call id, text parts split, the rest is noted; an unknown role is a problem', () => {
    const { records, sources, notes, problems } = fromOpenAIChat(
      [
        { role: 'developer', content: 'Be brief.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Look:' },
            { type: 'image_url', image_url: { url: 'https://x/y.png' } },
            { type: 'text', text: 'what is it?' },
          ],
        },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'a cat' },
        { role: 'assistant', content: null, refusal: 'I cannot say.' },
        { role: 'narrator', content: 'x' },
      ],
      stamp,
    );
    expect(brief(records)).toEqual([
      ['000000', 'system', 'Be brief.', null],
      ['000001', 'user', 'Look:', null],
      ['000002', 'user', 'what is it?', null],
      ['000003', 'tool', 'a cat', 'call_1'],
      ['000004', 'assistant', 'I cannot say.', null],
    ]);
    expect(notes).toEqual([
      { path: 'messages[1].content[1]', reason: 'image_url part skipped (records carry text only)' },
      { path: 'messages[2].tool_calls', reason: '1 tool call(s) skipped (records carry text only)' },
    ]);
    expect(problems).toEqual([
      { path: 'messages[5].role', reason: 'unknown role; one of system, developer, user, assistant, tool, function' },
    ]);
    // Where each record came from, for a validation problem's place.
    expect(sources).toEqual([
      { content: 'messages[0].content' },
      { content: 'messages[1].content[0].text' },
      { content: 'messages[1].content[2].text' },
      { content: 'messages[3].content', tool_call_id: 'messages[3].tool_call_id' },
      { content: 'messages[4].refusal' },
    ]);
  });

  it('a payload without messages is a format error naming the path', () => {
    expect(() => fromOpenAIChat({ input: [] }, stamp)).toThrow(ContextFormatError);
    expect(() => fromOpenAIChat({ input: [] }, stamp)).toThrow(/^messages: expected an array/);
  });

  it('records -> chat messages; a text held only as a hash is left out with a note', () => {
    const { payload, notes } = toOpenAIChat([
      { role: 'system', content: 's' },
      { role: 'user', content: 'u' },
      { role: 'assistant' },
      { role: 'tool', content: 't', tool_call_id: 'call_9' },
    ]);
    expect(payload).toEqual({
      messages: [
        { role: 'system', content: 's' },
        { role: 'user', content: 'u' },
        { role: 'tool', tool_call_id: 'call_9', content: 't' },
      ],
    });
    expect(notes.map((n) => n.path)).toEqual(['records[2]', 'records[3]']);
    expect(notes[0]?.reason).toMatch(/only its hash/);
  });
});

describe('OpenAI Responses input -> records', () => {
  it('instructions first, messages with string or part content, tool outputs; calls and reasoning noted', () => {
    const { records, notes } = fromOpenAIResponses(
      {
        instructions: 'Answer in French.',
        input: [
          { role: 'user', content: 'Hi' },
          { type: 'message', role: 'assistant', id: 'msg_1', content: [{ type: 'output_text', text: 'Salut', annotations: [] }] },
          { type: 'reasoning', id: 'rs_1', summary: [] },
          { type: 'function_call', call_id: 'call_2', name: 'weather', arguments: '{}' },
          { type: 'function_call_output', call_id: 'call_2', output: '12 C' },
          {
            role: 'user',
            content: [
              { type: 'input_text', text: 'Merci' },
              { type: 'input_image', image_url: 'x' },
            ],
          },
        ],
      },
      stamp,
    );
    expect(brief(records)).toEqual([
      ['000000', 'system', 'Answer in French.', null],
      ['000001', 'user', 'Hi', null],
      ['000002', 'assistant', 'Salut', null],
      ['000003', 'tool', '12 C', 'call_2'],
      ['000004', 'user', 'Merci', null],
    ]);
    expect(notes.map((n) => n.path)).toEqual(['input[2]', 'input[3]', 'input[5].content[1]']);
    expect(fromOpenAIResponses('just a question', stamp).records.map((r) => [r.role, r.content])).toEqual([['user', 'just a question']]);
  });

  it('records -> input items', () => {
    expect(
      toOpenAIResponses([
        { role: 'system', content: 's' },
        { role: 'assistant', content: 'a' },
        { role: 'tool', content: 'out', tool_call_id: 'call_2' },
      ]).payload,
    ).toEqual({
      input: [
        { type: 'message', role: 'system', content: 's' },
        { type: 'message', role: 'assistant', content: 'a' },
        { type: 'function_call_output', call_id: 'call_2', output: 'out' },
      ],
    });
  });
});

describe('Anthropic messages -> records', () => {
  it('system first (a string or one record per text block), blocks in order, tool results as tool', () => {
    const { records, notes } = fromAnthropic(
      {
        system: [
          { type: 'text', text: 'Rule one.' },
          { type: 'text', text: 'Rule two.', cache_control: { type: 'ephemeral' } },
        ],
        messages: [
          { role: 'user', content: 'Weather?' },
          {
            role: 'assistant',
            content: [
              { type: 'thinking', thinking: '...', signature: 's' },
              { type: 'text', text: 'Let me check.' },
              { type: 'tool_use', id: 'toolu_1', name: 'weather', input: {} },
            ],
          },
          {
            role: 'user',
            content: [
              { type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: '12 C' }] },
              { type: 'text', text: 'Thanks' },
            ],
          },
        ],
      },
      stamp,
    );
    expect(brief(records)).toEqual([
      ['000000', 'system', 'Rule one.', null],
      ['000001', 'system', 'Rule two.', null],
      ['000002', 'user', 'Weather?', null],
      ['000003', 'assistant', 'Let me check.', null],
      ['000004', 'tool', '12 C', 'toolu_1'],
      ['000005', 'user', 'Thanks', null],
    ]);
    expect(records.every((r) => r.platform === 'anthropic')).toBe(true);
    expect(notes).toEqual([
      { path: 'messages[1].content[0]', reason: 'thinking part skipped (records carry text only)' },
      { path: 'messages[1].content[2]', reason: 'tool_use part skipped (records carry text only)' },
    ]);
    expect(brief(fromAnthropic({ system: 'Be kind.', messages: [] }, stamp).records)).toEqual([['000000', 'system', 'Be kind.', null]]);
  });

  it('records -> system + messages; a system message after the start is moved up with a note', () => {
    const { payload, notes } = toAnthropic([
      { role: 'user', content: 'u' },
      { role: 'system', content: 'late rule' },
      { role: 'assistant', content: 'a' },
      { role: 'tool', content: 'r', tool_call_id: 'toolu_1' },
    ]);
    expect(payload).toEqual({
      system: [{ type: 'text', text: 'late rule' }],
      messages: [
        { role: 'user', content: 'u' },
        { role: 'assistant', content: 'a' },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'r' }] },
      ],
    });
    expect(notes[0]).toEqual({ path: 'records[1]', reason: expect.stringMatching(/moved to the top-level system prompt/) });
  });
});

describe('round trips keep role order and text', () => {
  it('OpenAI -> records -> Anthropic -> records: the same ids, roles and texts', () => {
    const first = fromOpenAIChat(OPENAI_CHAT, stamp).records;
    const anthropic = toAnthropic(first);
    expect(anthropic.notes).toEqual([]);
    const second = fromAnthropic(anthropic.payload, { ...stamp, at: '2025-06-16T00:00:00Z' }).records;
    expect(brief(second)).toEqual(brief(first));
    expect(second.map((r) => r.platform)).toEqual(Array(5).fill('anthropic'));
  });

  it('with tool results and multi-part messages, through every pair of formats', () => {
    const first = fromAnthropic(
      {
        system: 'sys',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'a' },
              { type: 'text', text: 'b' },
            ],
          },
          { role: 'assistant', content: 'c' },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: 'd' }] },
          { role: 'assistant', content: 'e' },
        ],
      },
      stamp,
    ).records;
    const via = {
      openai: (r: ContextRecordV1[]) => fromOpenAIChat(toOpenAIChat(r).payload, stamp).records,
      responses: (r: ContextRecordV1[]) => fromOpenAIResponses(toOpenAIResponses(r).payload, stamp).records,
      anthropic: (r: ContextRecordV1[]) => fromAnthropic(toAnthropic(r).payload, stamp).records,
    };
    for (const a of Object.values(via)) for (const b of Object.values(via)) expect(brief(b(a(first)))).toEqual(brief(first));
  });
});

describe('renderConversations', () => {
  const rec = (conversation_id: string, message_id: string, patch: Partial<ContextRecord> = {}): ContextRecord => ({
    tenant: 'acme',
    user_id: 'u1',
    conversation_id,
    message_id,
    platform: 'openai',
    role: 'user',
    content: `${conversation_id}/${message_id}`,
    content_sha256: '',
    content_length: 0,
    tool_call_id: '',
    created_at_ms: 1_000,
    updated_at_ms: 2_000,
    deleted: false,
    token_count: null,
    ...patch,
  });

  it('per conversation, in (created_at, message_id) order, without tombstones; hash-only texts noted by message', () => {
    const out = renderConversations('openai', [
      rec('b', '000001'),
      rec('a', '000002'),
      rec('a', '000001', { created_at_ms: 1_500 }),
      rec('a', '000000'),
      rec('a', '000003', { deleted: true }),
      rec('b', '000000', { content: null }),
    ]);
    expect(out.conversations).toEqual([
      {
        conversation_id: 'a',
        messages: [
          { role: 'user', content: 'a/000000' },
          { role: 'user', content: 'a/000002' },
          { role: 'user', content: 'a/000001' },
        ],
      },
      { conversation_id: 'b', messages: [{ role: 'user', content: 'b/000001' }] },
    ]);
    expect(out.notes).toEqual([{ conversation_id: 'b', message_id: '000000', reason: 'text not stored (only its hash): left out' }]);
  });
});
