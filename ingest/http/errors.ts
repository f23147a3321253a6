/**
 * Coded errors of the HTTP ingest endpoint. Each carries the HTTP status and a stable `code`
 * (the `error.code` of the JSON error body); clients branch on `code`, never on `message`.
 *
 * Fastify's own errors met on this endpoint are mapped to the same body shape by
 * `errorReply()`: `FST_ERR_CTP_BODY_TOO_LARGE` -> 413 `payload_too_large`,
 * `FST_ERR_CTP_INVALID_MEDIA_TYPE` -> 415 `unsupported_media_type`.
 */

/** Every `error.code` the endpoint can answer with. */
export type IngestErrorCode =
  | 'unauthorized'
  | 'invalid_body'
  | 'payload_too_large'
  | 'too_many_events'
  | 'too_many_records'
  | 'unsupported_media_type'
  | 'unavailable'
  | 'overloaded'
  | 'not_found'
  | 'bad_request'
  | 'internal';

/** Base class: an error that becomes `statusCode` + `{ error: { code, message } }`. */
export class IngestHttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: IngestErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** 401: no API key, or one that is not configured. The message never repeats the key. */
export class UnauthorizedError extends IngestHttpError {
  constructor() {
    super(401, 'unauthorized', 'missing or unknown API key: send "Authorization: Bearer <key>" or "X-API-Key: <key>"');
  }
}

/** 400: the body cannot be read as the declared content type at all (nothing per event to say). */
export class InvalidBodyError extends IngestHttpError {
  constructor(message: string) {
    super(400, 'invalid_body', message);
  }
}

/** 413: more events in one request than `maxEventsPerRequest`. Nothing was produced. */
export class TooManyEventsError extends IngestHttpError {
  constructor(
    readonly count: number,
    readonly limit: number,
  ) {
    super(413, 'too_many_events', `the request holds ${count} events; at most ${limit} are accepted per request: split the batch`);
  }
}

/** 415: a content type (or content encoding) the endpoint does not read. */
export class UnsupportedMediaTypeError extends IngestHttpError {
  constructor(message: string) {
    super(415, 'unsupported_media_type', message);
  }
}

/**
 * 503 (with `Retry-After`): the transport did not acknowledge every message in time, or failed.
 * Some messages may have been written: a retry may duplicate them, which the processor absorbs
 * (it de-duplicates by (tenant, event_id)).
 */
export class UnavailableError extends IngestHttpError {
  /** Seconds a client should wait before retrying (the `Retry-After` header). */
  readonly retryAfterSeconds = 5;
  constructor(message: string, options?: ErrorOptions) {
    super(503, 'unavailable', message, options);
  }
}

/**
 * 503 (with `Retry-After: 1`): admitting the request would put more request body bytes in flight
 * than the ingest routes may hold (`http.max_in_flight_bytes`, ingest/http/in-flight.ts). Refused
 * before the body is read: nothing was produced, and a retry is safe.
 */
export class OverloadedError extends IngestHttpError {
  /**
   * Seconds a client should wait before retrying (the `Retry-After` header). 1 is the smallest
   * whole number the header can say (RFC 9110 section 10.2.3); requests in flight usually end in
   * milliseconds, at worst after `kafka.produce_timeout_ms`.
   */
  readonly retryAfterSeconds = 1;
  /**
   * @param requestBytes what the request would hold: its Content-Length, or the body limit without one.
   * @param inFlightBytes what the requests already admitted hold.
   * @param maxBytes the limit (`http.max_in_flight_bytes`).
   */
  constructor(
    readonly requestBytes: number,
    readonly inFlightBytes: number,
    readonly maxBytes: number,
  ) {
    super(
      503,
      'overloaded',
      `the server holds ${inFlightBytes} bytes of requests in flight and this one may take ${requestBytes} more; ` +
        `the limit is ${maxBytes} bytes (http.max_in_flight_bytes). Nothing was stored: retry later`,
    );
  }
}

/** A produce call that did not settle within the timeout (wrapped into `UnavailableError`). */
export class ProduceTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`the transport did not acknowledge within ${timeoutMs} ms`);
    this.name = 'ProduceTimeoutError';
  }
}

/** The JSON error body, also declared as a route response schema (`ErrorResponse`). */
export interface ErrorBody {
  error: { code: IngestErrorCode; message: string };
}

/**
 * Map any error raised while handling an ingest request to a status and the error body.
 * Unknown errors become 500 `internal` with a generic message (details go to the log only).
 * @param request the request's Content-Type header and body limit (bytes), named in 415 and 413 messages.
 */
export function errorReply(
  err: unknown,
  request: { contentType?: string; bodyLimitBytes?: number } = {},
): { statusCode: number; body: ErrorBody; retryAfterSeconds?: number } {
  if (err instanceof IngestHttpError) {
    const retryAfterSeconds = err instanceof UnavailableError || err instanceof OverloadedError ? err.retryAfterSeconds : undefined;
    return { statusCode: err.statusCode, body: { error: { code: err.code, message: err.message } }, retryAfterSeconds };
  }
  const e = err as { code?: unknown; statusCode?: unknown; message?: unknown };
  const message = typeof e.message === 'string' ? e.message : 'bad request';
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        statusCode: 413,
        body: {
          error: {
            code: 'payload_too_large',
            message:
              request.bodyLimitBytes === undefined
                ? 'the request body is too large'
                : `the request body is larger than ${request.bodyLimitBytes} bytes (http.body_limit_bytes): split the batch`,
          },
        },
      };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { statusCode: 415, body: { error: { code: 'unsupported_media_type', message: unsupportedTypeMessage(request.contentType) } } };
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { statusCode: e.statusCode, body: { error: { code: 'bad_request', message } } };
  }
  return { statusCode: 500, body: { error: { code: 'internal', message: 'internal error' } } };
}

/** The content types the endpoint reads, in the words of the 415 message. */
export const SUPPORTED_CONTENT_TYPES = [
  'application/json',
  'application/x-ndjson',
  'application/cloudevents+json',
  'application/cloudevents-batch+json',
] as const;

export function unsupportedTypeMessage(contentType: string | undefined): string {
  const got = contentType ? `unsupported Content-Type ${JSON.stringify(contentType)}` : 'unsupported or missing Content-Type';
  return `${got}: send one of ${SUPPORTED_CONTENT_TYPES.join(', ')}`;
}
