/**
 * Query builders over `contexts` (schemas/clickhouse/0008): the processor's look-ups before a
 * batch and the read API's incremental sync and export. Each returns `{ query, query_params }`
 * with bound `{name:Type}` placeholders; input is never interpolated.
 *
 * Reads are exact before background merges: `FINAL` keeps the winning version of each message
 * (greatest `version`) in a subquery restricted to one user by the sorting-key prefix; filters on
 * other columns (seq, deleted) are applied outside it, after the merge, so they can never let an
 * older version of a message show through.
 * https://clickhouse.com/docs/sql-reference/statements/select/from#final-modifier
 */
import type { ContextRecord, ContextRole } from '../../schemas/context-record.ts';
import type { BuiltQuery } from './usage-summary.ts';

export type { BuiltQuery };

/** The columns a read returns (`ContextReadRow`). */
const READ_COLUMNS = `conversation_id, message_id, platform, role, content, content_stored, content_sha256, content_length,
  tool_call_id, toUnixTimestamp64Milli(created_at) AS created_at_ms, toUnixTimestamp64Milli(updated_at) AS updated_at_ms,
  deleted, token_count, seq`;

/** One row of a read. 64-bit integers arrive as numbers (chDB) or strings (a server): read them with Number(). */
export interface ContextReadRow {
  conversation_id: string;
  message_id: string;
  platform: string;
  role: string;
  content: string;
  content_stored: number;
  content_sha256: string;
  content_length: number;
  tool_call_id: string;
  created_at_ms: number | string;
  updated_at_ms: number | string;
  deleted: number;
  token_count: number | null;
  seq: number | string;
}

/** The winners of one user's messages (tombstones included), as a subquery. */
function winners(tenant: string, userId: string, conversationId?: string): BuiltQuery {
  const conversation = conversationId === undefined ? '' : ' AND conversation_id = {conversation_id:String}';
  return {
    query: `SELECT ${READ_COLUMNS} FROM contexts FINAL WHERE tenant = {tenant:String} AND user_id = {user_id:String}${conversation}`,
    query_params: { tenant, user_id: userId, ...(conversationId === undefined ? {} : { conversation_id: conversationId }) },
  };
}

/**
 * The changes of one user after change number `afterSeq`, in change order, at most `limit`
 * (ask for one more than a page to learn whether more follow).
 */
export function contextChangesQuery(p: { tenant: string; userId: string; afterSeq: number; limit: number }): BuiltQuery {
  const inner = winners(p.tenant, p.userId);
  return {
    query: `SELECT * FROM (${inner.query}) WHERE seq > {after_seq:UInt64} ORDER BY seq LIMIT {limit:UInt32}`,
    query_params: { ...inner.query_params, after_seq: p.afterSeq, limit: p.limit },
  };
}

/**
 * Every current message of one user (optionally one conversation), tombstones included (the
 * caller drops them after reading the last change number), in conversation order.
 */
export function contextExportQuery(p: { tenant: string; userId: string; conversationId?: string }): BuiltQuery {
  const inner = winners(p.tenant, p.userId, p.conversationId);
  return {
    query: `SELECT * FROM (${inner.query}) ORDER BY conversation_id, created_at_ms, message_id`,
    query_params: inner.query_params,
  };
}

/**
 * The stored winner's version of each given message. Matches on each column separately (a
 * superset of the wanted keys; the caller keeps the wanted ones) to stay within plain array
 * parameters. `version` is returned as a decimal string (UInt256).
 */
export function contextVersionsQuery(
  keys: ReadonlyArray<Pick<ContextRecord, 'tenant' | 'user_id' | 'conversation_id' | 'message_id'>>,
): BuiltQuery {
  const distinct = (f: (k: (typeof keys)[number]) => string) => [...new Set(keys.map(f))];
  return {
    query: `SELECT tenant, user_id, conversation_id, message_id, toString(max(version)) AS version FROM contexts
WHERE tenant IN {tenants:Array(String)} AND user_id IN {users:Array(String)}
  AND conversation_id IN {conversations:Array(String)} AND message_id IN {messages:Array(String)}
GROUP BY tenant, user_id, conversation_id, message_id`,
    query_params: {
      tenants: distinct((k) => k.tenant),
      users: distinct((k) => k.user_id),
      conversations: distinct((k) => k.conversation_id),
      messages: distinct((k) => k.message_id),
    },
  };
}

/** The last change number of each given user (a superset, as in contextVersionsQuery). */
export function contextLastSeqQuery(users: ReadonlyArray<{ tenant: string; user_id: string }>): BuiltQuery {
  return {
    query: `SELECT tenant, user_id, max(seq) AS seq FROM contexts
WHERE tenant IN {tenants:Array(String)} AND user_id IN {users:Array(String)}
GROUP BY tenant, user_id`,
    query_params: { tenants: [...new Set(users.map((u) => u.tenant))], users: [...new Set(users.map((u) => u.user_id))] },
  };
}

/** A read row as a normalised record of (tenant, userId), and its change number. */
export function fromReadRow(tenant: string, userId: string, row: ContextReadRow): { record: ContextRecord; seq: number } {
  const deleted = Number(row.deleted) === 1;
  return {
    seq: Number(row.seq),
    record: {
      tenant,
      user_id: userId,
      conversation_id: row.conversation_id,
      message_id: row.message_id,
      platform: row.platform,
      role: row.role as ContextRole,
      content: deleted || Number(row.content_stored) !== 1 ? null : row.content,
      content_sha256: row.content_sha256,
      content_length: Number(row.content_length),
      tool_call_id: row.tool_call_id,
      created_at_ms: Number(row.created_at_ms),
      updated_at_ms: Number(row.updated_at_ms),
      deleted,
      token_count: row.token_count === null ? null : Number(row.token_count),
    },
  };
}
