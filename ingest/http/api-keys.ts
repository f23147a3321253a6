/**
 * API-key authentication shared by the ingest and read routes: the one place where a presented
 * key is matched (by the digest of the key, see digestLookup) and where the read-access rule lives.
 *
 * Keys and what they may do:
 * - an ingest key (config `ingest_keys`, `{ key, tenant }`) writes events of its tenant
 *   (`POST /v1/events`) and also reads that tenant, as a read key does (so a service that sends
 *   usage can ask for its own quotas and routing with the same key);
 * - a read key (config `api_keys`, role `read`, one tenant) reads that tenant only;
 * - an admin key (config `api_keys`, role `admin`, no tenant) reads every tenant.
 * Read and admin keys cannot ingest: the events route takes `ingest_keys` only.
 */
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { UnauthorizedError } from './errors.ts';

/** Log paths a logger must never print: API keys travel in these headers. */
export const REDACTED_HEADERS = ['req.headers.authorization', 'req.headers["x-api-key"]'];

/** A configured key and the tenant it belongs to (config `ingest_keys`). */
export interface ApiKey {
  key: string;
  tenant: string;
}

/**
 * A key of the read API (config `api_keys`, or an ingest key, which has no role and reads its
 * tenant). `tenant` is required unless the role is `admin`.
 */
export interface ReadApiKey {
  key: string;
  tenant?: string;
  /** Default `read`. */
  role?: 'read' | 'admin';
}

/** Who is calling a read route: an admin, or a reader of one tenant (NFC). */
export type Caller = { role: 'admin' } | { role: 'read'; tenant: string };

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * Lookup of a presented key among `entries` by its SHA-256 digest in a Map: one hash whatever the
 * number of keys (with 1,000 keys, comparing against every digest cost 40 µs per request; this
 * costs about 1 µs). Timing can only reveal how the digest of the caller's own guess relates to
 * stored digests, which says nothing usable about a key (SHA-256 is preimage-resistant), and the
 * key's length never enters a comparison. The first entry of a key wins.
 */
function digestLookup<T>(entries: ReadonlyArray<{ key: string; value: T }>): (presented: string) => T | undefined {
  const known = new Map<string, T>();
  for (const e of entries) {
    const digest = sha256(e.key).toString('base64');
    if (!known.has(digest)) known.set(digest, e.value);
  }
  return (presented) => known.get(sha256(presented).toString('base64'));
}

/** Find the tenant (NFC) of a presented ingest key by key digest (see digestLookup). */
export function keyMatcher(keys: ReadonlyArray<ApiKey>): (presented: string) => string | undefined {
  return digestLookup(keys.map((k) => ({ key: k.key, value: k.tenant.normalize('NFC') })));
}

/**
 * Find the caller of a presented read-API key by key digest (see digestLookup).
 * @throws TypeError when a non-admin key has no tenant (config/load.ts rejects such a config).
 */
export function callerMatcher(keys: ReadonlyArray<ReadApiKey>): (presented: string) => Caller | undefined {
  return digestLookup(
    keys.map((k, i): { key: string; value: Caller } => {
      if (k.role === 'admin') return { key: k.key, value: { role: 'admin' } };
      if (typeof k.tenant !== 'string' || k.tenant === '') throw new TypeError(`read API key #${i}: a read key needs its tenant`);
      return { key: k.key, value: { role: 'read', tenant: k.tenant.normalize('NFC') } };
    }),
  );
}

/** Whether `caller` may read `tenant` (NFC): an admin reads any tenant, a reader only its own. */
export function mayRead(caller: Caller, tenant: string): boolean {
  return caller.role === 'admin' || caller.tenant === tenant;
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

/** A refusal of a read route: the HTTP status and the `{ error: { code, message } }` body. */
export interface AccessDenied {
  ok: false;
  statusCode: 400 | 401 | 403;
  body: { error: { code: 'unauthorized' | 'forbidden' | 'tenant_required'; message: string } };
}

export type ReadAccess = { ok: true; caller: Caller; tenant: string } | AccessDenied;

const deny = (statusCode: AccessDenied['statusCode'], code: AccessDenied['body']['error']['code'], message: string): AccessDenied => ({
  ok: false,
  statusCode,
  body: { error: { code, message } },
});

/** 401 `unauthorized`: no key, or one that is not configured. The message never repeats the key. */
export const UNAUTHORIZED = deny(401, 'unauthorized', new UnauthorizedError().message);

/** 403 `forbidden`: a read key asked for another tenant's data. */
export const forbidden = (tenant: string): AccessDenied =>
  deny(403, 'forbidden', `this API key may not read tenant ${JSON.stringify(tenant)}: a read key reads its own tenant only`);

/**
 * The read-access check of every read route, built once per route plugin from the configured keys.
 * The plugin installs `onRequest` for all its routes (`app.addHook('onRequest', auth.onRequest)`):
 * it runs before the body is parsed and before any schema validation, so a missing or unknown key
 * is 401 whatever else is wrong with the request (as on HTTP ingest, ingest-auth.ts), and it
 * looks the key up once per request (one SHA-256, see digestLookup); `caller` and `tenant` reuse
 * that lookup.
 */
export interface ReadAuth {
  /**
   * The plugin's `onRequest` hook: answers 401 `unauthorized` (`UNAUTHORIZED`) for a missing or
   * unknown key, else remembers the caller of `request` and lets it through.
   */
  onRequest(request: FastifyRequest, reply: FastifyReply, done: () => void): void;
  /**
   * The caller `onRequest` found for `request`.
   * @throws Error when `onRequest` did not run for the request's route (a wiring mistake: 500).
   */
  caller(request: FastifyRequest): Caller;
  /**
   * The tenant `request` reads. `requested` (NFC-normalised here) is the tenant the request names
   * (path or query), undefined when it names none; then a reader reads its own tenant and an admin
   * must name one. Refusals: 403 `forbidden` (a reader naming another tenant), 400
   * `tenant_required` (an admin naming none; `hint` says where to); a missing or unknown key never
   * gets here (`onRequest` answered 401).
   * @throws Error when `onRequest` did not run for the request's route.
   */
  tenant(request: FastifyRequest, requested: string | undefined, hint: string): ReadAccess;
}

/**
 * The read-access check over `keys` (ingest keys read their own tenant; see the module comment).
 * @throws TypeError when a non-admin key has no tenant.
 */
export function readAuth(keys: ReadonlyArray<ReadApiKey>): ReadAuth {
  const match = callerMatcher(keys);
  // The caller of each request in flight, set by onRequest (the ingest gate keeps its tenants so).
  const callers = new WeakMap<FastifyRequest, Caller>();
  const caller = (request: FastifyRequest): Caller => {
    const c = callers.get(request);
    if (c === undefined) throw new Error(`readAuth: the onRequest hook did not run for ${request.method} ${request.routeOptions.url}`);
    return c;
  };
  return {
    onRequest(request, reply, done) {
      const key = presentedKey(request);
      const c = key === undefined ? undefined : match(key);
      // Answering from a callback hook: send and do not call done (fastify docs, Hooks).
      if (c === undefined) {
        void reply.code(UNAUTHORIZED.statusCode).send(UNAUTHORIZED.body);
        return;
      }
      callers.set(request, c);
      done();
    },
    caller,
    tenant(request, requested, hint) {
      const c = caller(request);
      if (requested === undefined) {
        if (c.role === 'read') return { ok: true, caller: c, tenant: c.tenant };
        return deny(400, 'tenant_required', `an admin API key reads any tenant, so it must name one: ${hint}`);
      }
      const tenant = requested.normalize('NFC');
      return mayRead(c, tenant) ? { ok: true, caller: c, tenant } : forbidden(tenant);
    },
  };
}
