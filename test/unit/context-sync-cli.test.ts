import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ContextSyncError, convertHistory } from '../../cli/commands/context.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'qf-context-sync-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NOW_MS = Date.UTC(2025, 5, 15, 12, 0, 0);
const AT = '2025-06-15T11:00:00Z';

/** A user's OpenAI history: two conversations. */
const OPENAI_HISTORY = {
  user_id: 'alice',
  conversations: [
    {
      conversation_id: 'trip',
      messages: [
        { role: 'system', content: 'You plan trips.' },
        { role: 'user', content: 'Three days in Kyoto?' },
        { role: 'assistant', content: 'Day 1: Fushimi Inari.' },
      ],
    },
    {
      conversation_id: 'code',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Fix this' },
            { type: 'image_url', image_url: { url: 'x' } },
          ],
        },
      ],
    },
  ],
};

describe('convertHistory', () => {
  it('openai -> anthropic: each conversation rendered, system on top, notes say what was left out', () => {
    const { output, notes } = convertHistory(OPENAI_HISTORY, { from: 'openai', to: 'anthropic', at: AT, nowMs: NOW_MS });
    expect(output).toEqual({
      user_id: 'alice',
      conversations: [
        { conversation_id: 'code', messages: [{ role: 'user', content: 'Fix this' }] },
        {
          conversation_id: 'trip',
          system: [{ type: 'text', text: 'You plan trips.' }],
          messages: [
            { role: 'user', content: 'Three days in Kyoto?' },
            { role: 'assistant', content: 'Day 1: Fushimi Inari.' },
          ],
        },
      ],
    });
    expect(notes).toEqual([
      { where: 'conversations[1].messages[0].content[1]', reason: 'image_url part skipped (records carry text only)' },
    ]);
  });

  it('openai -> records -> openai keeps the conversations', () => {
    const records = convertHistory(OPENAI_HISTORY, { from: 'openai', to: 'records', at: AT, nowMs: NOW_MS }).output;
    expect((records.records as unknown[]).length).toBe(4);
    expect((records.records as Array<Record<string, unknown>>)[1]).toEqual({
      user_id: 'alice',
      conversation_id: 'trip',
      message_id: '000000',
      platform: 'openai',
      role: 'system',
      content: 'You plan trips.',
      created_at: '2025-06-15T11:00:00.000Z',
      updated_at: '2025-06-15T11:00:00.000Z',
    });
    const back = convertHistory(records, { from: 'records', to: 'openai', nowMs: NOW_MS }).output;
    expect(back).toEqual({
      user_id: 'alice',
      conversations: [
        { conversation_id: 'code', messages: [{ role: 'user', content: 'Fix this' }] },
        { conversation_id: 'trip', messages: OPENAI_HISTORY.conversations[0]?.messages },
      ],
    });
  });

  it('a records file with several versions of a message: the last write wins; tombstones stay out of a platform file', () => {
    const v = (content: string, updated_at: string, extra: Record<string, unknown> = {}) => ({
      user_id: 'alice',
      conversation_id: 'c',
      message_id: '000000',
      platform: 'openai',
      role: 'user',
      content,
      created_at: AT,
      updated_at,
      ...extra,
    });
    const input = {
      records: [
        v('new', '2025-06-15T11:00:02Z'),
        v('old', '2025-06-15T11:00:01Z'),
        { ...v('gone', '2025-06-15T11:00:00Z'), message_id: '000001' },
        { ...v('', '2025-06-15T11:00:05Z', { deleted: true }), message_id: '000001', content: undefined },
      ],
    };
    expect(convertHistory(input, { from: 'records', to: 'openai-responses', nowMs: NOW_MS }).output).toEqual({
      user_id: 'alice',
      conversations: [{ conversation_id: 'c', input: [{ type: 'message', role: 'user', content: 'new' }] }],
    });
  });

  it('bad input lists every problem; several users need --user', () => {
    expect(() =>
      convertHistory(
        { conversations: [{ messages: [] }, { conversation_id: 'x', input: [] }] },
        { from: 'openai', to: 'records', nowMs: NOW_MS },
      ),
    ).toThrow(
      new ContextSyncError([
        'conversations[0].conversation_id: expected a non-empty string',
        'conversations[1].messages: expected an array of chat messages (or { "messages": [...] })',
      ]),
    );
    const two = {
      records: [{ user_id: 'a' }, { user_id: 'b' }].map((u) => ({
        ...u,
        conversation_id: 'c',
        message_id: '1',
        platform: 'p',
        role: 'user',
        content: 'x',
        created_at: AT,
        updated_at: AT,
      })),
    };
    expect(() => convertHistory(two, { from: 'records', to: 'openai', nowMs: NOW_MS })).toThrow(/hold 2 users: pick one with --user/);
    expect(convertHistory(two, { from: 'records', to: 'openai', userId: 'b', nowMs: NOW_MS }).output.user_id).toBe('b');
    expect(() => convertHistory({ records: [{ user_id: 'a', role: 'user' }] }, { from: 'records', to: 'openai', nowMs: NOW_MS })).toThrow(
      /records\[0\]\.conversation_id: expected required property/,
    );
  });
});

/** The new user's file: an unknown role, a lone surrogate, a message without a role, a number. */
const BAD_OPENAI = {
  messages: [
    { role: 'wizard', content: 'secret text' },
    { role: 'user', content: 'hi \ud800 there' },
    { foo: 1 },
    42,
    { role: 'assistant', content: 7 },
    { role: 'user', content: [{ type: 'text', text: 'ok' }, { type: 'text', text: null }, 'loose', { type: 'image_url' }] },
  ],
};
const CHAT_ROLES = 'system, developer, user, assistant, tool, function';

describe('convertHistory: every problem, by its place in the input', () => {
  it('openai: bad messages are problems, not notes; a record problem names the message it came from', () => {
    expect(() => convertHistory(BAD_OPENAI, { from: 'openai', to: 'records', at: AT, nowMs: NOW_MS })).toThrow(
      new ContextSyncError([
        `messages[0].role: unknown role; one of ${CHAT_ROLES}`,
        `messages[2].role: missing; one of ${CHAT_ROLES}`,
        'messages[3]: expected a message object, got a number',
        'messages[4].content: expected a string or an array of content parts, got a number',
        'messages[5].content[1].text: expected a string, got null',
        'messages[5].content[2]: expected a content part object, got a string',
        // Not records[0].content: the record came from the second message.
        'messages[1].content: contains an unpaired UTF-16 surrogate (not valid Unicode)',
      ]),
    );
  });

  it('in a user file, places carry the conversation; fields set by options name the option', () => {
    const file = {
      user_id: 'alice',
      conversations: [
        { conversation_id: 'ok', messages: [{ role: 'user', content: 'fine' }] },
        { conversation_id: 'bad', messages: [{ role: 'user', content: [{ type: 'text', text: 'x\udc00' }] }, null] },
      ],
    };
    expect(() => convertHistory(file, { from: 'openai', to: 'anthropic', at: '2025-06-15T11:00:00', nowMs: NOW_MS })).toThrow(
      new ContextSyncError([
        'conversations[1].messages[1]: expected a message object, got null',
        // Each record's created_at and updated_at come from --at: listed once.
        '--at: must be an RFC 3339 date-time string with a zone (e.g. 2025-06-15T12:00:00Z)',
        'conversations[1].messages[0].content[0].text: contains an unpaired UTF-16 surrogate (not valid Unicode)',
      ]),
    );
  });

  it('anthropic and openai-responses: the same kinds of problems; valid non-text blocks stay notes', () => {
    const anthropic = {
      system: 5,
      messages: [
        { role: 'system', content: 'x' },
        { role: 'user', content: [{ type: 'tool_use', id: 't', name: 'f', input: {} }, { text: 'no type' }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: 3 }] },
        { role: 'assistant' },
      ],
    };
    expect(() => convertHistory(anthropic, { from: 'anthropic', to: 'records', at: AT, nowMs: NOW_MS })).toThrow(
      new ContextSyncError([
        'system: expected a string or an array of text blocks, got a number',
        'messages[0].role: unknown role; user or assistant (system goes in the top-level system)',
        'messages[1].content[1].type: expected a string, got nothing',
        'messages[2].content[0].content: expected a string or an array of content blocks, got a number',
        'messages[3].content: expected a string or an array of content blocks, got nothing',
      ]),
    );
    const responses = {
      instructions: ['no'],
      input: [
        { type: 'reasoning', summary: [] },
        { role: 'critic', content: 'x' },
        { type: 'function_call_output', call_id: 'c', output: { x: 1 } },
        { type: 9 },
        { role: 'user', content: [{ type: 'input_text', text: 1 }] },
      ],
    };
    expect(() => convertHistory(responses, { from: 'openai-responses', to: 'records', at: AT, nowMs: NOW_MS })).toThrow(
      new ContextSyncError([
        'instructions: expected a string, got an array',
        'input[1].role: unknown role; one of system, developer, user, assistant',
        'input[2].output: expected a string or an array of content parts, got an object',
        'input[3].type: expected a string, got a number',
        'input[4].content[0].text: expected a string, got a number',
      ]),
    );
  });
});

describe('quotaflow context sync (the command)', () => {
  it('converts a file to a file, prints a summary and the notes, exit 0; bad input exits 1 without echoing text', async () => {
    const input = join(dir, 'openai.json');
    const output = join(dir, 'anthropic.json');
    writeFileSync(input, JSON.stringify(OPENAI_HISTORY));
    const { stdout, stderr } = await run('node', [
      'bin/quotaflow.js',
      'context',
      'sync',
      '--from',
      'openai',
      '--to',
      'anthropic',
      '--in',
      input,
      '--out',
      output,
      '--at',
      AT,
    ]);
    expect(stdout).toBe(`wrote ${output}: anthropic, user "alice", 2 conversation(s), 4 message(s), 1 note(s)\n`);
    expect(stderr).toBe('quotaflow: note: conversations[1].messages[0].content[1]: image_url part skipped (records carry text only)\n');
    expect(JSON.parse(readFileSync(output, 'utf8')).conversations[1].system).toEqual([{ type: 'text', text: 'You plan trips.' }]);

    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"messages": [{"role": "user", "content": "top secret');
    const failed = await run('node', [
      'bin/quotaflow.js',
      'context',
      'sync',
      '--from',
      'openai',
      '--to',
      'anthropic',
      '--in',
      broken,
      '--out',
      output,
    ]).catch((e: { code: number; stderr: string }) => e);
    expect(failed).toMatchObject({ code: 1, stderr: `quotaflow: cannot convert the history:\n  - ${broken}: not valid JSON\n` });
  });

  it('bad messages: exit 1, every problem listed by place, no text quoted, nothing written', async () => {
    const input = join(dir, 'bad-messages.json');
    const output = join(dir, 'never-written.json');
    writeFileSync(input, JSON.stringify(BAD_OPENAI));
    const failed = await run('node', [
      'bin/quotaflow.js',
      'context',
      'sync',
      '--from',
      'openai',
      '--to',
      'records',
      '--in',
      input,
      '--out',
      output,
    ]).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(failed.code).toBe(1);
    expect(failed.stdout).toBe('');
    expect(failed.stderr).toMatch(/^quotaflow: cannot convert the history:\n/);
    expect(failed.stderr).toContain(`  - messages[0].role: unknown role; one of ${CHAT_ROLES}\n`);
    expect(failed.stderr).toContain('  - messages[1].content: contains an unpaired UTF-16 surrogate (not valid Unicode)\n');
    expect(failed.stderr).toContain('  - messages[3]: expected a message object, got a number\n');
    expect(failed.stderr.match(/^ {2}- /gm)).toHaveLength(7);
    expect(failed.stderr).not.toContain('secret text');
    expect(existsSync(output)).toBe(false);
  });
});
