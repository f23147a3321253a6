import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
});
