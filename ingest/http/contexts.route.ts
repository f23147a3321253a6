/**
 * `POST /v1/contexts`: HTTP ingest of conversation context records v1 (schemas/context-record.ts)
 * into the context change stream (topic `contexts.topic`, default `quotaflow.context.v1`, key =
 * (tenant, user_id)). Reference: docs/contexts.md.
 *
 * Same contract as `POST /v1/events` (events.route.ts), whose pieces it reuses (ingest keys,
 * body decoding, coded errors): a 202 means the transport acknowledged every message of the
 * request, accepted records on the context topic and rejected ones on the dead-letter topic.
 * At-least-once: after a 503 a retry may send a record twice, which changes nothing (the
 * processor keeps one winner per message; an equal version is a duplicate).
 *
 * Content safety: the message text is never logged and never quoted in an error (reasons name
 * the field and the rule; JSON parse errors are reported without the parser's excerpt). For a
 * tenant whose `contexts.store_content` is false the text is replaced by its SHA-256 and length
 * here, before anything is produced, so it reaches neither Kafka nor ClickHouse nor a dead letter.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { contextDeadLetterRaw } from '../../domain/context-dead-letter.ts';
import { type FieldError, toWireRecord, validateContextRecord, withContentPolicy } from '../../domain/context-validation.ts';
import { deadLetter } from '../../domain/dead-letter.ts';
import { SOURCE_HEADER } from '../replay.ts';
import type { OutgoingMessage, Producer } from '../transport/transport.ts';
import type { ApiKey } from './api-keys.ts';
import { type DecodedItem, decodeBody, isPlainObject } from './decode-body.ts';
import {
  errorReply,
  IngestHttpError,
  InvalidBodyError,
  ProduceTimeoutError,
  UnavailableError,
  UnsupportedMediaTypeError,
} from './errors.ts';
import type { InFlightLimit } from './in-flight.ts';
import { ingestGate } from './ingest-auth.ts';
import { produceWithin } from './produce-within.ts';
import { ErrorResponse, FieldErrorSchema } from './schemas.ts';

export interface ContextsRouteOptions {
  /** Producer of the context topic. Owned by the caller: not closed here. */
  contextProducer: Producer;
  /** Producer of the dead-letter topic (the one usage events use). Owned by the caller. */
  dlqProducer: Producer;
  /** Ingest API keys (config `ingest_keys`): a key writes records of its tenant only. */
  keys: ReadonlyArray<ApiKey>;
  /** Config `contexts.max_records_per_request`: more -> 413 `too_many_records`, nothing produced. */
  maxRecordsPerRequest: number;
  /** Config `contexts.max_record_bytes`: a record whose JSON text is larger (UTF-8 bytes) is rejected alone. */
  maxRecordBytes: number;
  /** Config `contexts.store_content` as a lookup (schemas/contexts-config.ts `contentPolicy`). */
  storeContent: (tenant: string) => boolean;
  /** How long to wait for the transport to acknowledge a request's messages, ms; then 503. */
  produceTimeoutMs: number;
  /** Current time, epoch ms (validation's "now", dead letters' `received_at`). Default Date.now. */
  now?: () => number;
  /** How far past now created_at/updated_at may be, ms. Default: the validation's (10 min). */
  maxFutureSkewMs?: number;
  /** Bound on request bytes in flight, shared with the other ingest routes (in-flight.ts). Default none. */
  inFlight?: InFlightLimit;
}

/** 413: more records in one request than `maxRecordsPerRequest`. Nothing was produced. */
export class TooManyRecordsError extends IngestHttpError {
  constructor(
    readonly count: number,
    readonly limit: number,
  ) {
    super(
      413,
      'too_many_records',
      `the request holds ${count} records; at most ${limit} are accepted per request (contexts.max_records_per_request): split the batch`,
    );
  }
}

const Accepted = Type.Object(
  {
    index: Type.Integer({ minimum: 0, description: '0-based position of the record in the request.' }),
    status: Type.Literal('accepted'),
    conversation_id: Type.String(),
    message_id: Type.String(),
  },
  { additionalProperties: false },
);
const Rejected = Type.Object(
  {
    index: Type.Integer({ minimum: 0 }),
    status: Type.Literal('rejected'),
    message_id: Type.Optional(Type.String({ description: 'The message id as sent, when it was a string.' })),
    errors: Type.Array(FieldErrorSchema, { minItems: 1 }),
  },
  { additionalProperties: false },
);
/** 202 body: one result per record, in request order. */
export const ContextIngestResponse = Type.Object(
  {
    accepted: Type.Integer({ minimum: 0 }),
    rejected: Type.Integer({ minimum: 0 }),
    results: Type.Array(Type.Union([Accepted, Rejected])),
  },
  { additionalProperties: false },
);
type Result =
  | { index: number; status: 'accepted'; conversation_id: string; message_id: string }
  | {
      index: number;
      status: 'rejected';
      message_id?: string;
      errors: FieldError[];
    };

const FORMATS = { 'application/json': 'json', 'application/x-ndjson': 'ndjson' } as const;

function unsupportedType(contentType: unknown): UnsupportedMediaTypeError {
  const got =
    typeof contentType === 'string' ? `unsupported Content-Type ${JSON.stringify(contentType)}` : 'unsupported or missing Content-Type';
  return new UnsupportedMediaTypeError(`${got}: send ${Object.keys(FORMATS).join(' or ')}`);
}

/** A parser's words minus its excerpt of the input (V8 quotes the text around a JSON error). */
function withoutExcerpt(reason: string): string {
  return reason.replace(/(not valid JSON).*$/s, '$1');
}

/**
 * `{ "records": [...] }` (what `GET .../export` and `quotaflow context sync --to records` write)
 * is read as the array it holds.
 */
function unwrapRecords(items: DecodedItem[]): DecodedItem[] | undefined {
  const only = items.length === 1 ? items[0] : undefined;
  if (only?.kind !== 'event' || !isPlainObject(only.value) || !Array.isArray(only.value.records)) return undefined;
  return only.value.records.map((v: unknown): DecodedItem => {
    const text = JSON.stringify(v);
    return { kind: 'event', raw: text, value: v, text, errors: [] };
  });
}

/**
 * Registers `POST /v1/contexts`.
 *
 * Request: `Authorization: Bearer <key>` or `X-API-Key: <key>` (an ingest key), and a body of
 * `application/json` (a record, an array of records, or `{ "records": [...] }`) or
 * `application/x-ndjson` (a record per line). A record without `tenant` gets the key's tenant;
 * one naming another tenant is rejected.
 *
 * Replies (JSON; errors are `{ error: { code, message } }`):
 * - 202 `{ accepted, rejected, results: [{ index, status, conversation_id?, message_id?, errors? }] }`;
 *   a record larger than `maxRecordBytes` is rejected alone (field `(record)`);
 * - 400 `invalid_body` (unreadable body; kept as one dead letter, text withheld unless the tenant
 *   stores text and it fits `maxRecordBytes`), 401 `unauthorized`, 413 `payload_too_large` (over
 *   the app's body limit) or `too_many_records`, 415 `unsupported_media_type`;
 * - 503 `unavailable` + `Retry-After: 5`: a produce failed or took longer than `produceTimeoutMs`;
 *   503 `overloaded` + `Retry-After: 1`: the request does not fit under `inFlight` (nothing produced).
 */
export const contextsRoute: FastifyPluginAsync<ContextsRouteOptions> = async (fastify, opts) => {
  const now = opts.now ?? Date.now;
  const gate = ingestGate(opts.keys, opts.inFlight, new Set(Object.keys(FORMATS)));

  // This plugin's context only (encapsulation): keep the raw text of each record.
  fastify.removeAllContentTypeParsers();
  for (const [contentType, format] of Object.entries(FORMATS)) {
    fastify.addContentTypeParser(contentType, { parseAs: 'string' }, async (_request: FastifyRequest, text: string) => ({ format, text }));
  }

  fastify.setErrorHandler((err, request, reply) => {
    const contentType = request.headers['content-type'];
    // fastify's own 415 would list the events route's content types: this one reads two.
    const r = errorReply((err as { code?: unknown }).code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? unsupportedType(contentType) : err, {
      bodyLimitBytes: request.routeOptions.bodyLimit,
    });
    // Never the message of a 4xx in the log (it may describe the body): the code says enough.
    if (r.statusCode >= 500 && r.body.error.code !== 'overloaded') {
      request.log.error({ event: 'contexts.http_failed', err, code: r.body.error.code }, 'contexts_http_failed');
    } else {
      // Overload refusals are expected under load and counted on /metrics: debug, not one info line each.
      const level = r.body.error.code === 'overloaded' ? 'debug' : 'info';
      request.log[level]({ event: 'contexts.http_refused', code: r.body.error.code, status: r.statusCode }, 'contexts_http_refused');
    }
    if (r.retryAfterSeconds !== undefined) void reply.header('retry-after', String(r.retryAfterSeconds));
    return reply.code(r.statusCode).send(r.body);
  });

  const produce = async (records: OutgoingMessage[], dlq: OutgoingMessage[]): Promise<void> => {
    try {
      await produceWithin(
        [
          [opts.contextProducer, records],
          [opts.dlqProducer, dlq],
        ],
        opts.produceTimeoutMs,
      );
    } catch (err) {
      const why =
        err instanceof ProduceTimeoutError ? `did not acknowledge the records within ${err.timeoutMs} ms` : 'failed to store the records';
      throw new UnavailableError(`the context transport ${why}; retry later (a record sent twice is stored once)`, { cause: err });
    }
  };

  /** A dead-letter message for the authenticated tenant, the text withheld as the policy and the size limit say. */
  const deadLetterMessage = (
    tenant: string,
    nowMs: number,
    source: string,
    d: { reason: 'invalid_json' | 'invalid_event'; errors: FieldError[]; raw: string; messageId?: string },
  ): OutgoingMessage => {
    const fits = Buffer.byteLength(d.raw, 'utf8') <= opts.maxRecordBytes;
    const raw = contextDeadLetterRaw(d.raw, fits && opts.storeContent(tenant), opts.maxRecordBytes);
    const row = deadLetter({ reason: d.reason, errors: d.errors, raw, source, tenant, eventId: d.messageId ?? '', nowMs });
    return { key: tenant, value: JSON.stringify(row) };
  };

  /** Judge one record: a message for the context topic, or the errors of a rejection. */
  const judge = (
    item: DecodedItem,
    tenant: string,
    source: string,
    nowMs: number,
  ):
    | { ok: true; message: OutgoingMessage; conversationId: string; messageId: string }
    | {
        ok: false;
        reason: 'invalid_json' | 'invalid_event';
        errors: FieldError[];
        messageId?: string;
      } => {
    if (item.kind === 'rejected') {
      return { ok: false, reason: item.reason, errors: item.errors.map((e) => ({ ...e, reason: withoutExcerpt(e.reason) })) };
    }
    const value = item.value;
    const messageId = isPlainObject(value) && typeof value.message_id === 'string' ? value.message_id : undefined;
    const bytes = Buffer.byteLength(item.text, 'utf8');
    if (bytes > opts.maxRecordBytes) {
      const reason = `the record is ${bytes} bytes of JSON; at most ${opts.maxRecordBytes} are accepted (contexts.max_record_bytes)`;
      return {
        ok: false,
        reason: 'invalid_event',
        errors: [{ field: '(record)', reason }],
        ...(messageId === undefined ? {} : { messageId }),
      };
    }
    const errors: FieldError[] = [];
    let filled = value;
    if (isPlainObject(value)) {
      if (!Object.hasOwn(value, 'tenant')) filled = { ...value, tenant };
      else if (typeof value.tenant === 'string' && value.tenant.normalize('NFC') !== tenant) {
        errors.push({ field: 'tenant', reason: `this API key may only write records of tenant ${JSON.stringify(tenant)}` });
      }
    }
    const result = validateContextRecord(filled, { nowMs, maxFutureSkewMs: opts.maxFutureSkewMs });
    if (!result.ok) for (const e of result.errors) if (!errors.some((x) => x.field === e.field)) errors.push(e);
    if (!result.ok || errors.length > 0)
      return { ok: false, reason: 'invalid_event', errors, ...(messageId === undefined ? {} : { messageId }) };
    const record = withContentPolicy(result.record, opts.storeContent(tenant));
    return {
      ok: true,
      conversationId: record.conversation_id,
      messageId: record.message_id,
      message: {
        key: JSON.stringify([record.tenant, record.user_id]),
        value: JSON.stringify(toWireRecord(record)),
        headers: { [SOURCE_HEADER]: source },
      },
    };
  };

  fastify.post(
    '/v1/contexts',
    {
      schema: {
        tags: ['contexts'],
        summary: 'Ingest conversation context records v1 (JSON, NDJSON)',
        response: { 202: ContextIngestResponse, '4xx': ErrorResponse, '5xx': ErrorResponse },
      },
      onRequest: gate.onRequest,
      preHandler: gate.preHandler,
      onSend: gate.onSend,
    },
    async (request, reply) => {
      const tenant = gate.tenantOf(request);
      const body = request.body as { format?: unknown; text?: unknown } | undefined;
      if (!isPlainObject(body) || (body.format !== 'json' && body.format !== 'ndjson') || typeof body.text !== 'string') {
        throw unsupportedType(request.headers['content-type']);
      }
      const nowMs = now();
      const decoded = decodeBody(body.format, body.text, opts.maxRecordsPerRequest);
      if (decoded.kind === 'too_many') throw new TooManyRecordsError(decoded.count, opts.maxRecordsPerRequest);
      if (decoded.kind === 'invalid_body') {
        const message = withoutExcerpt(decoded.message);
        if (body.text.trim() !== '') {
          const errors = [{ field: '(payload)', reason: message }];
          await produce(
            [],
            [deadLetterMessage(tenant, nowMs, `http:${request.id}:body`, { reason: decoded.reason, errors, raw: body.text })],
          );
        }
        throw new InvalidBodyError(message);
      }
      const items = unwrapRecords(decoded.items) ?? decoded.items;
      if (items.length > opts.maxRecordsPerRequest) throw new TooManyRecordsError(items.length, opts.maxRecordsPerRequest);

      const accepted: OutgoingMessage[] = [];
      const dlq: OutgoingMessage[] = [];
      const results = items.map((item, index): Result => {
        const source = `http:${request.id}:${index}`;
        const j = judge(item, tenant, source, nowMs);
        if (j.ok) {
          accepted.push(j.message);
          return { index, status: 'accepted', conversation_id: j.conversationId, message_id: j.messageId };
        }
        dlq.push(deadLetterMessage(tenant, nowMs, source, { ...j, raw: item.raw }));
        return { index, status: 'rejected', ...(j.messageId === undefined ? {} : { message_id: j.messageId }), errors: j.errors };
      });
      await produce(accepted, dlq);
      request.log.info({ event: 'contexts.http_batch', tenant, accepted: accepted.length, rejected: dlq.length }, 'contexts_http_batch');
      return reply.code(202).send({ accepted: accepted.length, rejected: dlq.length, results });
    },
  );
};
