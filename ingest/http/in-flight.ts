/**
 * Admission control of the ingest routes (POST /v1/events, POST /v1/contexts): a bound on the
 * request body bytes in flight, so the ingest role's memory stays bounded however many clients
 * send at once (SPEC.md section 5: back-pressure instead of unbounded memory).
 *
 * A request is admitted, before its body is read, when `held + size <= maxBytes`, where `size` is
 * its Content-Length or, without one (chunked), the route's body limit. A request is also
 * admitted when nothing is held, so a legal body larger than `maxBytes` still passes, alone; and
 * a request of 0 bytes always is. A request whose Content-Length is over the body limit is not
 * counted at all: fastify answers it 413 without reading it, and load must not turn that final
 * answer into a 503 the client would retry. A refused request gets 503 `overloaded` (errors.ts
 * `OverloadedError`); nothing of it is read or produced.
 *
 * An admitted request holds its bytes until both (a) its response is over (sent, or the
 * connection closed) and (b) its handler, if it started, has sent its reply. (b) matters when a
 * client gives up while its request waits for the transport: the handler still holds the body and
 * the messages built from it until the produce settles (at most `kafka.produce_timeout_ms`), so
 * the bytes are released only then, not when the socket closes.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IngestMetrics } from '../../observability/metrics.ts';
import { OverloadedError } from './errors.ts';

export interface InFlightLimitOptions {
  /** Most request body bytes held at once by the routes sharing the limit (config `http.max_in_flight_bytes`). */
  maxBytes: number;
  /** Told the bytes held after every change (the `quotaflow_ingest_in_flight_bytes` gauge). Default none. */
  metrics?: Pick<IngestMetrics, 'inFlightBytes'>;
}

/** One limit shared by every ingest route of a process (the routes take it as `inFlight`). */
export interface InFlightLimit {
  /** The limit, bytes. */
  readonly maxBytes: number;
  /** Bytes held now by admitted requests. */
  bytes(): number;
  /** Admitted requests that hold bytes now. */
  requests(): number;
  /**
   * Admit `request` (call from its onRequest hook, before the body is read) and hold its size
   * until its response is over and its handler done.
   * @throws OverloadedError (503) when it does not fit; nothing is held then.
   */
  admit(request: FastifyRequest, reply: FastifyReply): void;
  /** The request's handler starts (preHandler hook): its bytes stay held until `handlerDone`. */
  handlerStarted(request: FastifyRequest): void;
  /** The request's handler (or the error handler) sends its reply (onSend hook). */
  handlerDone(request: FastifyRequest): void;
}

interface Reservation {
  bytes: number;
  /** The response is over: the 'close' event of the raw response was emitted. */
  closed: boolean;
  handlerRunning: boolean;
  released: boolean;
}

/**
 * Bytes a request may hold: its Content-Length, at most the route's body limit; the body limit
 * when it has none (chunked transfer). Node's HTTP parser has already refused a malformed
 * Content-Length (400), so the header here is digits.
 */
export function requestBytes(request: FastifyRequest): number {
  const limit = request.routeOptions.bodyLimit ?? Number.POSITIVE_INFINITY;
  const declared = declaredLength(request);
  return declared === undefined ? limit : Math.min(declared, limit);
}

/** The request's Content-Length, bytes, or undefined without one. */
function declaredLength(request: FastifyRequest): number | undefined {
  const header = request.headers['content-length'];
  return typeof header === 'string' && /^\d+$/.test(header) ? Number(header) : undefined;
}

/**
 * @throws RangeError when `maxBytes` is not a positive safe integer.
 */
export function createInFlightLimit(options: InFlightLimitOptions): InFlightLimit {
  const { maxBytes, metrics } = options;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
    throw new RangeError(`maxBytes must be a positive whole number of bytes, got ${maxBytes}`);
  }
  let held = 0;
  let count = 0;
  const reservations = new WeakMap<FastifyRequest, Reservation>();

  const releaseIfDone = (r: Reservation): void => {
    if (r.released || !r.closed || r.handlerRunning) return;
    r.released = true;
    held -= r.bytes;
    count -= 1;
    metrics?.inFlightBytes(held);
  };

  return {
    maxBytes,
    bytes: () => held,
    requests: () => count,
    admit(request, reply) {
      const declared = declaredLength(request);
      if (declared !== undefined && declared > (request.routeOptions.bodyLimit ?? Number.POSITIVE_INFINITY)) return;
      const bytes = requestBytes(request);
      if (bytes > 0 && held > 0 && held + bytes > maxBytes) throw new OverloadedError(bytes, held, maxBytes);
      const r: Reservation = { bytes, closed: false, handlerRunning: false, released: false };
      reservations.set(request, r);
      held += bytes;
      count += 1;
      metrics?.inFlightBytes(held);
      const onClose = () => {
        r.closed = true;
        releaseIfDone(r);
      };
      // A response already destroyed will not emit 'close' again.
      if (reply.raw.destroyed) onClose();
      else reply.raw.once('close', onClose);
    },
    handlerStarted(request) {
      const r = reservations.get(request);
      if (r !== undefined && !r.released) r.handlerRunning = true;
    },
    handlerDone(request) {
      const r = reservations.get(request);
      if (r === undefined) return;
      r.handlerRunning = false;
      releaseIfDone(r);
    },
  };
}
