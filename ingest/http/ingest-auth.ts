/**
 * The ingest routes' request gate (POST /v1/events, POST /v1/contexts): before the body is read,
 * answer with the request id, authenticate the ingest key, refuse a compressed body, and admit the
 * request under the bound on bytes in flight (in-flight.ts), in that order: a request refused for
 * another reason never counts against the bound, and only an authenticated client learns of load.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type ApiKey, keyMatcher, presentedKey } from './api-keys.ts';
import { UnauthorizedError, UnsupportedMediaTypeError } from './errors.ts';
import type { InFlightLimit } from './in-flight.ts';

/** The gate's hooks: a route passes all three (`onRequest`, `preHandler`, `onSend` route options). */
export interface IngestGate {
  /**
   * The route's `onRequest` hook.
   * @throws UnauthorizedError (401), UnsupportedMediaTypeError (415), OverloadedError (503).
   */
  onRequest(request: FastifyRequest, reply: FastifyReply): Promise<void>;
  /** The route's `preHandler` hook: the handler starts holding the request's bytes. */
  preHandler(request: FastifyRequest, reply: FastifyReply, done: () => void): void;
  /** The route's `onSend` hook: the reply is sent, the handler holds nothing more. */
  onSend(request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void): void;
  /** The tenant (NFC) the hook authenticated for `request`. @throws UnauthorizedError when it did not run. */
  tenantOf(request: FastifyRequest): string;
}

/**
 * A gate over the configured ingest keys.
 * @param inFlight the bound on bytes in flight shared by the ingest routes; none: no bound.
 * @param mediaTypes the Content-Types the route parses (lower case, no parameters). A request of
 *   another type is not counted against `inFlight`: fastify answers it 415 without reading its
 *   body, and load must not turn that final answer into a 503 the client would retry.
 */
export function ingestGate(keys: ReadonlyArray<ApiKey>, inFlight?: InFlightLimit, mediaTypes?: ReadonlySet<string>): IngestGate {
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
      if (inFlight && (mediaTypes === undefined || mediaTypes.has(mediaTypeOf(request)))) inFlight.admit(request, reply);
    },
    preHandler(request, _reply, done) {
      inFlight?.handlerStarted(request);
      done();
    },
    onSend(request, _reply, payload, done) {
      inFlight?.handlerDone(request);
      done(null, payload);
    },
    tenantOf(request) {
      const tenant = tenants.get(request);
      if (tenant === undefined) throw new UnauthorizedError(); // unreachable: onRequest sets it first
      return tenant;
    },
  };
}

/** The request's Content-Type without parameters, lower case ('' without one). */
function mediaTypeOf(request: FastifyRequest): string {
  return (request.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
}
