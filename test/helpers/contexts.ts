/**
 * Context-sync test helpers: a deterministic workload of competing writes (two platforms editing
 * and deleting the same messages, ties and late arrivals), and a reader that follows a user's
 * change sequence page by page, checking that no change comes twice.
 */
import { contextKey } from '../../domain/context-merge.ts';
import { sha256Hex, toWireRecord } from '../../domain/context-validation.ts';
import type { ContextRecord, ContextRecordV1 } from '../../schemas/context-record.ts';

/** Base time of the workloads: 2025-06-15T12:00:00Z. */
export const T0 = Date.UTC(2025, 5, 15, 12, 0, 0);

/**
 * A small deterministic PRNG (mulberry32, 32-bit integer arithmetic via Math.imul, so it is exact
 * in JS doubles): the same seed, the same workload. Returns an integer in [0, n).
 */
export function rng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
}

/** A normalised record with text (`content` given) or a tombstone. */
export function record(p: {
  tenant?: string;
  user_id: string;
  conversation_id: string;
  message_id: string;
  platform: string;
  role?: ContextRecord['role'];
  content?: string;
  deleted?: boolean;
  updatedMs: number;
  createdMs?: number;
}): ContextRecord {
  const deleted = p.deleted === true;
  const content = deleted ? null : (p.content ?? '');
  return {
    tenant: p.tenant ?? 'acme',
    user_id: p.user_id,
    conversation_id: p.conversation_id,
    message_id: p.message_id,
    platform: p.platform,
    role: p.role ?? 'user',
    content,
    content_sha256: content === null ? '' : sha256Hex(content),
    content_length: content === null ? 0 : Buffer.byteLength(content, 'utf8'),
    tool_call_id: '',
    created_at_ms: p.createdMs ?? T0,
    updated_at_ms: p.updatedMs,
    deleted,
    token_count: null,
  };
}

/**
 * `count` writes over 2 users x 2 conversations x 4 messages from 2 platforms: updated_at drawn
 * from a 40 ms range (many ties), 20% deletes, in an order unrelated to updated_at (late writes).
 */
export function competingWrites(count: number, seed: number, tenant = 'acme'): ContextRecord[] {
  const r = rng(seed);
  const out: ContextRecord[] = [];
  for (let i = 0; i < count; i++) {
    const platform = r(2) === 0 ? 'openai' : 'anthropic';
    out.push(
      record({
        tenant,
        user_id: `u${r(2)}`,
        conversation_id: `c${r(2)}`,
        message_id: `00000${r(4)}`,
        platform,
        deleted: r(5) === 0,
        content: `v${r(3)} from ${platform}`,
        updatedMs: T0 + r(40),
      }),
    );
  }
  return out;
}

/** The wire JSON of a record, as the ingest route produces it. */
export const wire = (r: ContextRecord): string => JSON.stringify(toWireRecord(r));

/** One page of changes as a reader sees it: records (wire form, with `seq`), the next cursor, more or not. */
export interface ChangesPage {
  records: Array<ContextRecordV1 & { seq: number }>;
  next_cursor: string;
  has_more: boolean;
}

/**
 * Follow a user's changes from `cursor` until no page has more, applying each change to `state`
 * (key -> record in wire form). Throws if one page sequence returns the same message twice.
 * @returns the cursor to continue from and the messages received, in order.
 */
export async function followChanges(
  page: (cursor: string | undefined) => Promise<ChangesPage>,
  cursor: string | undefined,
  state: Map<string, ContextRecordV1 & { seq: number }> = new Map(),
): Promise<{ cursor: string | undefined; received: string[] }> {
  const received: string[] = [];
  let c = cursor;
  for (let guard = 0; guard < 10_000; guard++) {
    const p = await page(c);
    for (const r of p.records) {
      const key = contextKey({ tenant: r.tenant ?? '', user_id: r.user_id, conversation_id: r.conversation_id, message_id: r.message_id });
      if (received.includes(key)) throw new Error(`message ${key} returned twice`);
      received.push(key);
      state.set(key, r);
    }
    c = p.next_cursor;
    if (!p.has_more) return { cursor: c, received };
  }
  throw new Error('did not reach the end of the changes');
}
