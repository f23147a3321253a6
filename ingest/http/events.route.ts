/**
 * `POST /v1/events`: HTTP ingest of usage events v1 for clients in any language (SPEC.md
 * sections 1, 2 and 5). Reference: docs/http-ingest.md.
 *
 * Delivery guarantee: a 202 means the transport (Kafka: the broker) acknowledged every message
 * of the request, accepted events on the usage topic and rejected ones on the dead-letter topic.
 * Nothing answered 202 (or 400 for an unreadable body) is lost. It is at-least-once: when a
 * produce fails or times out the answer is 503 although some messages may already be written,
 * so a client that retries after a 503 or a timeout may send duplicates; the processor
 * de-duplicates by (tenant, event_id), so they count once.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { deadLetter } from '../../domain/dead-letter.ts';
import { echoText } from '../../domain/echo.ts';
import { type FieldError, validateUsageEvent } from '../../domain/usage-event-validation.ts';
import type { IngestMetrics } from '../../observability/metrics.ts';
import { SOURCE_HEADER } from '../replay.ts';
import type { OutgoingMessage, Producer } from '../transport/transport.ts';
import type { ApiKey } from './api-keys.ts';
import { BODY_FORMATS, type BodyFormat, type DecodedItem, decodeBody, insertTenant, isPlainObject } from './decode-body.ts';
import {
  errorReply,
  InvalidBodyError,
  ProduceTimeoutError,
  TooManyEventsError,
  UnavailableError,
  UnsupportedMediaTypeError,
  unsupportedTypeMessage,
} from './errors.ts';
import type { InFlightLimit } from './in-flight.ts';
import { ingestGate } from './ingest-auth.ts';
import { produceWithin } from './produce-within.ts';
import { ErrorResponse, type EventResult, IngestResponse } from './schemas.ts';

/** One ingest API key and the only tenant it may write events for (config `ingest_keys`). */
export type IngestKey = ApiKey;

export interface EventsRouteOptions {
  /** Producer of the usage topic (`quotaflow.usage.v1`). Owned by the caller: not closed here. */
  usageProducer: Producer;
  /** Producer of the dead-letter topic. Owned by the caller: not closed here. */
  dlqProducer: Producer;
  /** Accepted API keys. An empty list rejects every request with 401. */
  keys: ReadonlyArray<IngestKey>;
  /** Most events in one request; more -> 413 `too_many_events`, nothing produced. */
  maxEventsPerRequest: number;
  /** How long to wait for the transport to acknowledge a request's messages, ms; then 503. */
  produceTimeoutMs: number;
  /** Current time, epoch ms (validation's "now" and the dead letters' `received_at`). Default `Date.now`. */
  now?: () => number;
  /** How far past now an event time may be, ms. Default: validateUsageEvent's (10 min). */
  maxFutureSkewMs?: number;
  /** Requests by result, events acknowledged, produce latency (observability/metrics.ts). Default none. */
  metrics?: IngestMetrics;
  /** Bound on request bytes in flight, shared with the other ingest routes (in-flight.ts). Default none. */
  inFlight?: InFlightLimit;
}

/** What the content-type parsers hand to the handler: the body text, not a parsed value. */
interface RawBody {
  format: BodyFormat;
  text: string;
}

function isRawBody(body: unknown): body is RawBody {
  return isPlainObject(body) && typeof body.format === 'string' && typeof body.text === 'string';
}

type Outcome =
  | { status: 'accepted'; eventId: string; message: OutgoingMessage }
  | { status: 'rejected'; eventId?: string; errors: FieldError[]; reason: 'invalid_json' | 'invalid_event'; raw: string };

/**
 * Registers `POST /v1/events`.
 *
 * Request: `Authorization: Bearer <key>` or `X-API-Key: <key>`, and a body of
 * `application/json` (an event or an array of events), `application/x-ndjson` (an event per
 * line), `application/cloudevents+json` (one CloudEvent 1.0 of type `quotaflow.usage.v1`, the
 * event in `data`) or `application/cloudevents-batch+json` (an array of them). UTF-8 only.
 *
 * Each event without `tenant` gets the key's tenant; one naming another tenant is rejected.
 * Valid events go to `usageProducer` as `{ key: tenant, value: <event JSON as sent, tenant
 * filled in>, headers: { 'qf-source': 'http:<request id>:<index>' } }`; rejected ones go to
 * `dlqProducer` as a dead letter (`{ key: tenant, value: JSON of DeadLetterRow }`).
 *
 * Replies (JSON; errors are `{ error: { code, message } }`):
 * - 202 `{ accepted, rejected, results: [{ index, status, event_id?, errors? }] }`: every message
 *   (accepted and rejected) was acknowledged by the transport. Rejected events will not become
 *   valid by retrying them: fix and resend.
 * - 400 `invalid_body`: the body is unreadable as its content type (e.g. broken JSON). The raw
 *   body was kept as one dead letter (reason `invalid_json`, or `invalid_event` for a CloudEvents
 *   batch that is not an array; source `http:<request id>:body`) unless it was empty; if that
 *   dead letter cannot be produced the answer is 503, never a 400 about a body not kept.
 * - 401 `unauthorized`, 413 `payload_too_large` (body over the app's bodyLimit) or
 *   `too_many_events` (over `maxEventsPerRequest`), 415 `unsupported_media_type`: nothing produced.
 * - 503 `unavailable` + `Retry-After: 5`: a produce failed or took longer than `produceTimeoutMs`;
 *   retry (duplicates are harmless, see the file comment).
 * - 503 `overloaded` + `Retry-After: 1`: the request does not fit under `inFlight` (refused before
 *   its body is read, nothing produced); retry.
 *
 * The `X-Request-Id` response header carries the request id used in the `qf-source` header and
 * the dead letters' `source`.
 */
export const eventsRoute: FastifyPluginAsync<EventsRouteOptions> = async (fastify, opts) => {
  const now = opts.now ?? Date.now;
  const gate = ingestGate(opts.keys, opts.inFlight, new Set(Object.keys(BODY_FORMATS)));

  // Only this plugin's context is affected (encapsulation): the parsers keep the raw text so
  // each event can be produced and dead-lettered byte for byte.
  fastify.removeAllContentTypeParsers();
  for (const [contentType, format] of Object.entries(BODY_FORMATS)) {
    fastify.addContentTypeParser(contentType, { parseAs: 'string' }, async (_request: FastifyRequest, text: string) => ({ format, text }));
  }

  fastify.setErrorHandler((err, request, reply) => {
    const contentType = request.headers['content-type'];
    const r = errorReply(err, {
      contentType: typeof contentType === 'string' ? contentType : undefined,
      bodyLimitBytes: request.routeOptions.bodyLimit,
    });
    opts.metrics?.request(r.body.error.code);
    if (r.statusCode >= 500 && r.body.error.code !== 'overloaded') {
      request.log.error({ event: 'ingest.http_failed', err, code: r.body.error.code }, 'ingest_http_failed');
    } else {
      // Overload refusals are expected under load and counted on /metrics: debug, not one info line each.
      const level = r.body.error.code === 'overloaded' ? 'debug' : 'info';
      request.log[level]({ event: 'ingest.http_refused', code: r.body.error.code, status: r.statusCode }, 'ingest_http_refused');
    }
    if (r.retryAfterSeconds !== undefined) void reply.header('retry-after', String(r.retryAfterSeconds));
    return reply.code(r.statusCode).send(r.body);
  });

  /** Send both batches; resolve only when both are acknowledged within the timeout. */
  const produce = async (usage: OutgoingMessage[], dlq: OutgoingMessage[]): Promise<void> => {
    const started = performance.now();
    try {
      await produceWithin(
        [
          [opts.usageProducer, usage],
          [opts.dlqProducer, dlq],
        ],
        opts.produceTimeoutMs,
      );
      opts.metrics?.produced((performance.now() - started) / 1000, true);
    } catch (err) {
      opts.metrics?.produced((performance.now() - started) / 1000, false);
      const why =
        err instanceof ProduceTimeoutError ? `did not acknowledge the events within ${err.timeoutMs} ms` : 'failed to store the events';
      throw new UnavailableError(
        `the event transport ${why}; retry later. Some events may already be stored: a retry is safe, duplicates are counted once by (tenant, event_id)`,
        { cause: err },
      );
    }
  };

  const deadLetterMessage = (
    tenant: string,
    nowMs: number,
    source: string,
    d: { reason: 'invalid_json' | 'invalid_event'; errors: FieldError[]; raw: string; eventId?: string | undefined },
  ): OutgoingMessage => {
    // The dead letter belongs to the authenticated tenant, also when the event named another
    // one: a key must not write into another tenant's dead letters.
    const row = deadLetter({ reason: d.reason, errors: d.errors, raw: d.raw, source, tenant, eventId: d.eventId ?? '', nowMs });
    return { key: tenant, value: JSON.stringify(row) };
  };

  /** Fill in or check the tenant, validate, and build the message to produce. */
  const judge = (item: DecodedItem, tenant: string, source: string, nowMs: number): Outcome => {
    if (item.kind === 'rejected')
      return { status: 'rejected', eventId: item.eventId, errors: item.errors, reason: item.reason, raw: item.raw };
    const errors = [...item.errors];
    let value = item.value;
    let text = item.text;
    let eventId: string | undefined;
    if (isPlainObject(value)) {
      if (typeof value.event_id === 'string') eventId = value.event_id;
      if (!Object.hasOwn(value, 'tenant')) {
        text = insertTenant(text, value, tenant);
        value = { ...value, tenant };
      } else if (typeof value.tenant === 'string' && value.tenant.normalize('NFC') !== tenant) {
        errors.push({ field: 'tenant', reason: `this API key may only write events of tenant "${tenant}"` });
      }
    }
    const result = validateUsageEvent(value, { nowMs, maxFutureSkewMs: opts.maxFutureSkewMs });
    if (!result.ok) {
      for (const e of result.errors) {
        // A field filled from a CloudEvent attribute (timestamp from `time`) is reported as sent.
        const field = item.sentAs?.[e.field] ?? e.field;
        if (!errors.some((x) => x.field === field)) errors.push({ field, reason: e.reason });
      }
    }
    if (!result.ok || errors.length > 0) return { status: 'rejected', eventId, errors, reason: 'invalid_event', raw: item.raw };
    return {
      status: 'accepted',
      eventId: result.event.event_id,
      message: { key: result.event.tenant, value: text, headers: { [SOURCE_HEADER]: source } },
    };
  };

  fastify.post(
    '/v1/events',
    {
      schema: {
        summary: 'Ingest usage events v1 (JSON, NDJSON, CloudEvents)',
        response: { 202: IngestResponse, '4xx': ErrorResponse, '5xx': ErrorResponse },
      },
      onRequest: gate.onRequest,
      preHandler: gate.preHandler,
      onSend: gate.onSend,
    },
    async (request, reply) => {
      const tenant = gate.tenantOf(request);
      const body = request.body;
      // A POST without Content-Type and without a body skips the parsers.
      if (!isRawBody(body)) throw new UnsupportedMediaTypeError(unsupportedTypeMessage(undefined));
      const nowMs = now();

      const decoded = decodeBody(body.format, body.text, opts.maxEventsPerRequest);
      if (decoded.kind === 'too_many') throw new TooManyEventsError(decoded.count, opts.maxEventsPerRequest);
      if (decoded.kind === 'invalid_body') {
        // Keep what was sent before saying no (an empty body holds nothing to keep).
        if (body.text.trim() !== '') {
          const errors = [{ field: '(payload)', reason: decoded.message }];
          const letter = deadLetterMessage(tenant, nowMs, `http:${request.id}:body`, { reason: decoded.reason, errors, raw: body.text });
          await produce([], [letter]);
        }
        throw new InvalidBodyError(decoded.message);
      }

      const usage: OutgoingMessage[] = [];
      const dlq: OutgoingMessage[] = [];
      const results: EventResult[] = decoded.items.map((item, index): EventResult => {
        const source = `http:${request.id}:${index}`;
        const o = judge(item, tenant, source, nowMs);
        if (o.status === 'accepted') {
          usage.push(o.message);
          return { index, status: 'accepted', event_id: o.eventId };
        }
        dlq.push(deadLetterMessage(tenant, nowMs, source, o));
        // The id is repeated as sent, cut short when absurdly long (domain/echo.ts); the dead letter keeps it whole.
        return o.eventId === undefined
          ? { index, status: 'rejected', errors: o.errors }
          : { index, status: 'rejected', event_id: echoText(o.eventId), errors: o.errors };
      });

      await produce(usage, dlq);
      opts.metrics?.request('accepted');
      opts.metrics?.events(usage.length, dlq.length);
      request.log.info({ event: 'ingest.http_batch', tenant, accepted: usage.length, rejected: dlq.length }, 'ingest_http_batch');
      return reply.code(202).send({ accepted: usage.length, rejected: dlq.length, results });
    },
  );
};
