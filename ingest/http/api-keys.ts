/**
 * API-key authentication shared by the ingest and read routes: a key maps to one tenant, and
 * a request can only act as that tenant.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

/** Log paths a logger must never print: API keys travel in these headers. */
export const REDACTED_HEADERS = ['req.headers.authorization', 'req.headers["x-api-key"]'];

/** A configured key and the tenant it belongs to (config `ingest_keys`). */
export interface ApiKey {
  key: string;
  tenant: string;
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * Find the tenant of a presented key in constant time. Both sides are compared as SHA-256
 * digests so `timingSafeEqual` always gets equal-length buffers and the key length does not
 * leak; every configured key is compared, with no early exit.
 */
export function keyMatcher(keys: ReadonlyArray<ApiKey>): (presented: string) => string | undefined {
  const known = keys.map((k) => ({ digest: sha256(k.key), tenant: k.tenant.normalize('NFC') }));
  return (presented) => {
    const digest = sha256(presented);
    let tenant: string | undefined;
    for (const k of known) if (timingSafeEqual(digest, k.digest) && tenant === undefined) tenant = k.tenant;
    return tenant;
  };
}

/** The key from `Authorization: Bearer <key>`, else from `X-API-Key`. */
export function presentedKey(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m?.[1]) return m[1];
  }
  const apiKey = request.headers['x-api-key'];
  return typeof apiKey === 'string' && apiKey.trim() !== '' ? apiKey.trim() : undefined;
}
