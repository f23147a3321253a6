/**
 * The incremental-sync cursor of `GET /v1/contexts/:user` (docs/contexts.md).
 *
 * A cursor is a position in one user's change sequence: `seq`, the number the processor gives a
 * write when it becomes the message's winner (1, 2, 3, ... per (tenant, user_id); see
 * processors/context.processor.ts). A reader holding cursor `seq = s` has seen every winning
 * write numbered <= s; the next page holds the current winners numbered > s.
 *
 * Why not (updated_at, message key)? A write can reach the store after writes with a later
 * updated_at (a platform that was offline, a slow producer). If it wins (its updated_at beats the
 * stored version of its own message) its (updated_at, key) position lies behind every reader
 * that already read past that time, and they would never see it. The sequence number is given at
 * store time, so a late winner gets a number after every reader's cursor and is returned once.
 * A late write that loses changes nothing and is not returned.
 *
 * Wire form: base64url (no padding) of `c1.<seq>.<user tag>`; the user tag (first 12 hex digits
 * of SHA-256 over tenant and user) catches a cursor replayed against another user, whose numbers
 * mean something else. Clients treat the text as opaque.
 */
import { createHash } from 'node:crypto';

const PREFIX = 'c1';

function userTag(tenant: string, userId: string): string {
  return createHash('sha256').update(`${tenant}\u0000${userId}`, 'utf8').digest('hex').slice(0, 12);
}

/** The cursor after a change numbered `seq` (an integer >= 0; 0 = before the first change). */
export function encodeCursor(seq: number, tenant: string, userId: string): string {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`cursor seq must be a safe integer >= 0, got ${seq}`);
  return Buffer.from(`${PREFIX}.${seq}.${userTag(tenant, userId)}`, 'utf8').toString('base64url');
}

export type DecodedCursor = { ok: true; seq: number } | { ok: false; reason: string };

/**
 * Read a cursor given by a client for (tenant, userId).
 * @returns the seq, or the reason the text is not a cursor of this user (for a 400 `bad_request`).
 */
export function decodeCursor(text: string, tenant: string, userId: string): DecodedCursor {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(text)) return { ok: false, reason: 'not a cursor returned by this API (expected base64url text)' };
  const m = /^c1\.(0|[1-9]\d{0,15})\.([0-9a-f]{12})$/.exec(Buffer.from(text, 'base64url').toString('utf8'));
  if (!m) return { ok: false, reason: 'not a cursor returned by this API' };
  const seq = Number(m[1]);
  if (!Number.isSafeInteger(seq)) return { ok: false, reason: 'not a cursor returned by this API' };
  if (m[2] !== userTag(tenant, userId)) return { ok: false, reason: "belongs to another user's history" };
  return { ok: true, seq };
}
