/**
 * Last-write-wins merge of conversation context records (issue 8; the brief's "最后写入优先").
 *
 * Identity: a message is (tenant, user_id, conversation_id, message_id). Of all versions of one
 * message, the winner is the one with the greatest version, compared in this order:
 *   1. the later `updated_at` (epoch ms) wins;
 *   2. at the same `updated_at`, a tombstone (`deleted`) wins over a live version: a delete and
 *      an edit stamped the same millisecond resolve to "deleted", the safe side of a "forget this";
 *   3. then the greater record digest wins: SHA-256 over every stored field of the version
 *      (role, platform, content hash and length, whether the text is held, tool_call_id,
 *      created_at, deleted, token_count). Two versions with the same digest are the same version.
 * The order depends on the versions only, never on arrival order, so every replica, a replay of
 * the topic and any interleaving of two platforms' writes end with the same winner.
 *
 * The order is packed into one unsigned integer (`contextVersion`), the version column of the
 * ClickHouse ReplacingMergeTree (schemas/clickhouse/0008), so the table keeps the same winner as
 * this module: `updated_at_ms * 2^129 + deleted * 2^128 + (first 128 bits of the digest)`.
 * It fits a UInt256 (updated_at_ms < 2^63). Two different versions of one message stamped the
 * same millisecond tie on the 128-bit digest prefix with probability about 2^-128.
 */
import { createHash } from 'node:crypto';
import type { ContextRecord } from '../schemas/context-record.ts';

/** The fields of a version that the digest covers (everything stored except the key and updated_at). */
function canonical(r: ContextRecord): string {
  return JSON.stringify([
    r.role,
    r.platform,
    r.content_sha256,
    r.content_length,
    r.content !== null,
    r.tool_call_id,
    r.created_at_ms,
    r.deleted,
    r.token_count,
  ]);
}

/** The record digest: lower-case hex SHA-256 of the canonical form of the version (tie-break 3). */
export function contextDigest(r: ContextRecord): string {
  return createHash('sha256').update(canonical(r), 'utf8').digest('hex');
}

const DELETED_BIT = 1n << 128n;
const TIME_SHIFT = 129n;

/**
 * The merge order of `r` as one integer (see the module comment): a greater version wins.
 * @param digest `contextDigest(r)`, when already computed.
 */
export function contextVersion(r: ContextRecord, digest: string = contextDigest(r)): bigint {
  return (BigInt(r.updated_at_ms) << TIME_SHIFT) | (r.deleted ? DELETED_BIT : 0n) | BigInt(`0x${digest.slice(0, 32)}`);
}

/** The message identity within the store: tenant, user, conversation, message (NUL-separated). */
export function contextKey(r: Pick<ContextRecord, 'tenant' | 'user_id' | 'conversation_id' | 'message_id'>): string {
  return `${r.tenant}\u0000${r.user_id}\u0000${r.conversation_id}\u0000${r.message_id}`;
}

/** The history identity: one user of one tenant (the change-sequence and partitioning unit). */
export function userKey(tenant: string, userId: string): string {
  return `${tenant}\u0000${userId}`;
}

/** -1, 0 or 1 as `a` loses to, ties with, or beats `b`. */
export function compareVersions(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The winner of each message among `records`, by `contextKey` (the in-memory form of what the
 * store keeps; the order of `records` does not matter). Tombstones are kept: they are winners too.
 */
export function mergeLastWriteWins(records: Iterable<ContextRecord>): Map<string, ContextRecord> {
  const best = new Map<string, { record: ContextRecord; version: bigint }>();
  for (const record of records) {
    const key = contextKey(record);
    const version = contextVersion(record);
    const current = best.get(key);
    if (current === undefined || version > current.version) best.set(key, { record, version });
  }
  return new Map([...best].map(([k, v]) => [k, v.record]));
}
