/**
 * The ingest routes' request gate (POST /v1/events, POST /v1/contexts): before the body is read,
 * answer with the request id, authenticate the ingest key, and refuse a compressed body.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type ApiKey, keyMatcher, presentedKey } from './api-keys.ts';
import { UnauthorizedError, UnsupportedMediaTypeError } from './errors.ts';

export interface IngestGate {
  /** The route's `onRequest` hook. @throws UnauthorizedError (401), UnsupportedMediaTypeError (415). */
  onRequest(request: FastifyRequest, reply: FastifyReply): Promise<void>;
  /** The tenant (NFC) the hook authenticated for `request`. @throws UnauthorizedError when it did not run. */
  tenantOf(request: FastifyRequest): string;
}

/** A gate over the configured ingest keys. */
export function ingestGate(keys: ReadonlyArray<ApiKey>): IngestGate {
  const tenantOfKey = keyMatcher(keys);
  const tenants = new WeakMap<FastifyRequest, string>();
  return {
    async onRequest(request, reply) {
      void reply.header('x-request-id', request.id);
      const key = presentedKey(request);
      const tenant = key === undefined ? undefined : tenantOfKey(key);
      if (tenant === undefined) throw new UnauthorizedError();
      tenants.set(request, tenant);
      // fastify does not decompress: a compressed body would be read as garbage text.
      const encoding = request.headers['content-encoding'];
      if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
        throw new UnsupportedMediaTypeError(`Content-Encoding ${JSON.stringify(encoding)} is not supported: send the body uncompressed`);
      }
    },
    tenantOf(request) {
      const tenant = tenants.get(request);
      if (tenant === undefined) throw new UnauthorizedError(); // unreachable: onRequest sets it first
      return tenant;
    },
  };
}
