import { describe, expect, it } from 'vitest';
import {
  contextChangesQuery,
  contextExportQuery,
  contextLastSeqQuery,
  contextVersionsQuery,
  fromReadRow,
} from '../../storage/queries/contexts.ts';

const COLUMNS = `conversation_id, message_id, platform, role, content, content_stored, content_sha256, content_length,
  tool_call_id, toUnixTimestamp64Milli(created_at) AS created_at_ms, toUnixTimestamp64Milli(updated_at) AS updated_at_ms,
  deleted, token_count, seq`;
const WINNERS = `SELECT ${COLUMNS} FROM contexts FINAL WHERE tenant = {tenant:String} AND user_id = {user_id:String}`;

describe('context read queries', () => {
  it('changes: the winners of one user (FINAL inside), filtered on seq outside, in seq order', () => {
    expect(contextChangesQuery({ tenant: 'acme', userId: 'u/1', afterSeq: 7, limit: 101 })).toEqual({
      query: `SELECT * FROM (${WINNERS}) WHERE seq > {after_seq:UInt64} ORDER BY seq LIMIT {limit:UInt32}`,
      query_params: { tenant: 'acme', user_id: 'u/1', after_seq: 7, limit: 101 },
    });
  });

  it('export: every winner of the user, optionally one conversation, in conversation order', () => {
    expect(contextExportQuery({ tenant: 'acme', userId: 'u1' })).toEqual({
      query: `SELECT * FROM (${WINNERS}) ORDER BY conversation_id, created_at_ms, message_id`,
      query_params: { tenant: 'acme', user_id: 'u1' },
    });
    expect(contextExportQuery({ tenant: 'acme', userId: 'u1', conversationId: "c'1" })).toEqual({
      query: `SELECT * FROM (${WINNERS} AND conversation_id = {conversation_id:String}) ORDER BY conversation_id, created_at_ms, message_id`,
      query_params: { tenant: 'acme', user_id: 'u1', conversation_id: "c'1" },
    });
  });
});

describe('context look-ups of the processor', () => {
  const keys = [
    { tenant: 'acme', user_id: 'u1', conversation_id: 'c1', message_id: '000001' },
    { tenant: 'acme', user_id: 'u1', conversation_id: 'c2', message_id: '000001' },
    { tenant: 'globex', user_id: 'u1', conversation_id: 'c1', message_id: '000002' },
  ];

  it('versions: one array parameter per key column, distinct values, max(version) as text', () => {
    expect(contextVersionsQuery(keys)).toEqual({
      query: `SELECT tenant, user_id, conversation_id, message_id, toString(max(version)) AS version FROM contexts
WHERE tenant IN {tenants:Array(String)} AND user_id IN {users:Array(String)}
  AND conversation_id IN {conversations:Array(String)} AND message_id IN {messages:Array(String)}
GROUP BY tenant, user_id, conversation_id, message_id`,
      query_params: { tenants: ['acme', 'globex'], users: ['u1'], conversations: ['c1', 'c2'], messages: ['000001', '000002'] },
    });
  });

  it('last change number per user', () => {
    expect(contextLastSeqQuery(keys)).toEqual({
      query: `SELECT tenant, user_id, max(seq) AS seq FROM contexts
WHERE tenant IN {tenants:Array(String)} AND user_id IN {users:Array(String)}
GROUP BY tenant, user_id`,
      query_params: { tenants: ['acme', 'globex'], users: ['u1'] },
    });
  });
});

describe('fromReadRow', () => {
  const row = {
    conversation_id: 'c1',
    message_id: '000001',
    platform: 'openai',
    role: 'user',
    content: 'hi',
    content_stored: 1,
    content_sha256: 'a'.repeat(64),
    content_length: 2,
    tool_call_id: '',
    created_at_ms: '1749988800000',
    updated_at_ms: 1749988800001,
    deleted: 0,
    token_count: null,
    seq: '12',
  };

  it('reads 64-bit numbers given as text (a server) or numbers (chDB)', () => {
    expect(fromReadRow('acme', 'u1', row)).toEqual({
      seq: 12,
      record: {
        tenant: 'acme',
        user_id: 'u1',
        conversation_id: 'c1',
        message_id: '000001',
        platform: 'openai',
        role: 'user',
        content: 'hi',
        content_sha256: 'a'.repeat(64),
        content_length: 2,
        tool_call_id: '',
        created_at_ms: 1749988800000,
        updated_at_ms: 1749988800001,
        deleted: false,
        token_count: null,
      },
    });
  });

  it('a text not stored and a tombstone read as no content', () => {
    expect(fromReadRow('acme', 'u1', { ...row, content: '', content_stored: 0 }).record.content).toBeNull();
    expect(fromReadRow('acme', 'u1', { ...row, deleted: 1 }).record).toMatchObject({ content: null, deleted: true });
  });
});
