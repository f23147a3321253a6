/**
 * The ingest routes' bound on request bytes in flight (ingest/http/in-flight.ts): admission by
 * Content-Length (or the body limit when chunked), the 503 `overloaded` answer, and the counter
 * returning to 0 after every way a request can end. The producers are stubs whose `send()` the
 * test holds open: this is about HTTP admission, not about the transport.
 */
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { loadConfig } from '../../config/load.ts';
import { createInFlightLimit, type InFlightLimit } from '../../ingest/http/in-flight.ts';
import type { OutgoingMessage, Producer } from '../../ingest/transport/transport.ts';
import { createMetrics, type Metrics } from '../../observability/metrics.ts';
import { parseScrape } from '../helpers/prometheus.ts';

/** Injected "now": 2025-06-15T12:00:00.000Z. */
const NOW_MS = Date.UTC(2025, 5, 15, 12, 0, 0);
const KEY = 'acme-key-0123456789abcdef';
const AUTH = { authorization: `Bearer ${KEY}` };
const BODY_LIMIT = 64 * 1024;

/** One valid event as a JSON body of exactly `bytes` bytes (padded with spaces, which JSON allows). */
function eventBody(bytes: number, eventId = 'evt-1'): string {
  const text = JSON.stringify({
    event_id: eventId,
    timestamp: '2025-06-15T11:59:00Z',
    provider: 'openai',
    model: 'gpt-4o',
    input_tokens: 1_000,
    output_tokens: 200,
  });
  if (text.length > bytes) throw new Error(`an event needs ${text.length} bytes, asked for ${bytes}`);
  return text.padEnd(bytes, ' ');
}

/** A producer whose sends stay pending until `release()`; after that, sends resolve at once. */
class HeldProducer implements Producer {
  readonly messages: OutgoingMessage[] = [];
  private held = true;
  private waiting: Array<() => void> = [];
  /** Sends started (each request produces once per non-empty batch). */
  started = 0;
  async send(messages: readonly OutgoingMessage[]): Promise<void> {
    this.started += 1;
    if (this.held) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.messages.push(...messages);
  }
  release(): void {
    this.held = false;
    for (const resolve of this.waiting.splice(0)) resolve();
  }
  async close(): Promise<void> {}
}

/** Never acknowledges: the route answers 503 `unavailable` after produceTimeoutMs. */
const hangingProducer = (): Producer => ({ send: () => new Promise<void>(() => {}), close: async () => {} });

let apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.map((a) => a.close()));
  apps = [];
});

interface Setup {
  maxBytes: number;
  usageProducer?: Producer;
  produceTimeoutMs?: number;
  metrics?: Metrics;
  requestTimeoutMs?: number;
}

/** The app with both ingest routes sharing one limit; `seen` lists every value the gauge was set to. */
function setup(s: Setup) {
  const usage = new HeldProducer();
  const dlq = new HeldProducer();
  dlq.release(); // dead letters are acknowledged at once unless a test says otherwise
  const seen: number[] = [];
  const limit: InFlightLimit = createInFlightLimit({
    maxBytes: s.maxBytes,
    metrics: {
      inFlightBytes: (b) => {
        seen.push(b);
        s.metrics?.ingest.inFlightBytes(b);
      },
    },
  });
  const app = buildApp({
    logger: false,
    bodyLimitBytes: BODY_LIMIT,
    ...(s.requestTimeoutMs ? { requestTimeoutMs: s.requestTimeoutMs } : {}),
    readiness: {},
    ...(s.metrics ? { metrics: s.metrics } : {}),
    ingest: {
      usageProducer: s.usageProducer ?? usage,
      dlqProducer: dlq,
      keys: [{ key: KEY, tenant: 'acme' }],
      maxEventsPerRequest: 5,
      produceTimeoutMs: s.produceTimeoutMs ?? 10_000,
      now: () => NOW_MS,
      inFlight: limit,
    },
    contexts: {
      contextProducer: usage,
      dlqProducer: dlq,
      keys: [{ key: KEY, tenant: 'acme' }],
      maxRecordsPerRequest: 5,
      maxRecordBytes: 4_096,
      storeContent: () => true,
      produceTimeoutMs: s.produceTimeoutMs ?? 10_000,
      now: () => NOW_MS,
      inFlight: limit,
    },
  });
  apps.push(app);
  const post = (payload: string | Readable, headers: Record<string, string> = {}, url = '/v1/events') =>
    app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', ...AUTH, ...headers }, payload });
  return { app, usage, dlq, limit, seen, post };
}

/** Let the responses' 'close' events (emitted on the next tick after the end) run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function expectOverloaded(res: { statusCode: number; headers: Record<string, unknown>; json: () => unknown }, max: number) {
  expect(res.statusCode).toBe(503);
  expect(res.headers['retry-after']).toBe('1');
  const body = res.json() as { error: { code: string; message: string } };
  expect(body.error.code).toBe('overloaded');
  expect(body.error.message).toContain(`the limit is ${max} bytes (http.max_in_flight_bytes)`);
  return body.error.message;
}

describe('ingest bound on request bytes in flight', () => {
  it('refuses what does not fit with 503 overloaded + Retry-After, produces nothing, admits again once requests finish', async () => {
    // Bodies of 1,000 bytes; limit 2,500: two fit (2,000), a third would make 3,000.
    const { usage, dlq, limit, seen, post } = setup({ maxBytes: 2_500 });
    const first = post(eventBody(1_000, 'a'));
    const second = post(eventBody(1_000, 'b'));
    await vi.waitFor(() => expect(usage.started).toBe(2));
    expect(limit.bytes()).toBe(2_000);
    expect(limit.requests()).toBe(2);

    const refused = await post(eventBody(1_000, 'c'));
    const message = expectOverloaded(refused, 2_500);
    expect(message).toContain('holds 2000 bytes of requests in flight and this one may take 1000 more');
    // The bound is shared: the contexts route is refused too (2,000 + 600 > 2,500).
    expectOverloaded(await post('[]'.padEnd(600, ' '), {}, '/v1/contexts'), 2_500);
    expect(usage.started).toBe(2); // nothing of the refused requests reached a producer
    expect(dlq.messages).toEqual([]);

    usage.release();
    expect((await first).statusCode).toBe(202);
    expect((await second).statusCode).toBe(202);
    await settle();
    expect(limit.bytes()).toBe(0);
    const again = await post(eventBody(1_000, 'c'));
    expect(again.statusCode).toBe(202);
    await settle();
    expect(limit.requests()).toBe(0);
    expect(usage.messages.map((m) => JSON.parse(m.value).event_id).sort()).toEqual(['a', 'b', 'c']);
    // Gauge values in order: +1000, +1000, -1000, -1000 (either first), +1000, -1000.
    expect(seen).toEqual([1_000, 2_000, 1_000, 0, 1_000, 0]);
  });

  it('admits a request larger than the limit when nothing else is in flight, and only then', async () => {
    const { usage, limit, post } = setup({ maxBytes: 1_500 });
    const small = post(eventBody(500, 'small'));
    await vi.waitFor(() => expect(usage.started).toBe(1));
    // 500 held + 2,000 > 1,500: refused.
    const message = expectOverloaded(await post(eventBody(2_000, 'big')), 1_500);
    expect(message).toContain('holds 500 bytes of requests in flight and this one may take 2000 more');
    usage.release();
    expect((await small).statusCode).toBe(202);
    await settle();
    // Nothing in flight: the 2,000-byte body passes alone.
    expect((await post(eventBody(2_000, 'big'))).statusCode).toBe(202);
    await settle();
    expect(limit.bytes()).toBe(0);
  });

  it('while the bound is full, a body over the body limit, a type the route does not parse and an empty body get their own answers, not 503', async () => {
    const { usage, limit, post } = setup({ maxBytes: 1_000 });
    const held = post(eventBody(900, 'held'));
    await vi.waitFor(() => expect(usage.started).toBe(1));
    expectOverloaded(await post(eventBody(200, 'x')), 1_000); // the bound is full
    // Final answers a retry cannot change: answered as such, and never counted.
    const tooLarge = await post('x'.repeat(BODY_LIMIT + 1));
    expect([tooLarge.statusCode, tooLarge.json().error.code]).toEqual([413, 'payload_too_large']);
    const wrongType = await post(eventBody(200, 'y'), { 'content-type': 'text/plain' });
    expect([wrongType.statusCode, wrongType.json().error.code]).toEqual([415, 'unsupported_media_type']);
    // Nothing to hold: an empty body is judged, not refused for load.
    const empty = await post('', { 'content-length': '0' });
    expect(empty.statusCode).toBe(400);
    expect(empty.json().error.code).toBe('invalid_body');
    expect(limit.bytes()).toBe(900);
    usage.release();
    expect((await held).statusCode).toBe(202);
    await settle();
    expect(limit.bytes()).toBe(0);
  });

  it('counts a chunked request (no Content-Length) as the route body limit', async () => {
    const { usage, limit, post } = setup({ maxBytes: 100_000 });
    const chunked = post(Readable.from([Buffer.from(eventBody(300))]));
    await vi.waitFor(() => expect(usage.started).toBe(1));
    expect(limit.bytes()).toBe(BODY_LIMIT); // 65,536, not 300
    // 65,536 + 40,000 > 100,000
    expectOverloaded(await post(eventBody(40_000, 'x')), 100_000);
    usage.release();
    expect((await chunked).statusCode).toBe(202);
    await settle();
    expect(limit.bytes()).toBe(0);
  });

  it('returns to 0 after 4xx answers, holding each request meanwhile', async () => {
    const { usage, limit, seen, post } = setup({ maxBytes: 1_000_000 });
    usage.release();
    const cases: Array<[string | Readable, Record<string, string>, number, number | null]> = [
      // [body, headers, status, bytes held (null: never counted, answered without reading the body)]
      ['{"broken', {}, 400, 8], // invalid_body, kept as a dead letter first
      [JSON.stringify(Array.from({ length: 6 }, () => ({}))), {}, 413, 19], // too_many_events (6 > 5)
      ['x'.repeat(70_000), {}, 413, null], // payload_too_large: Content-Length 70,000 over the body limit
      ['{}', { 'content-type': 'text/plain' }, 415, null], // unsupported_media_type
    ];
    for (const [body, headers, status, bytes] of cases) {
      seen.length = 0;
      const res = await post(body, headers);
      expect(res.statusCode).toBe(status);
      await settle();
      expect(seen).toEqual(bytes === null ? [] : [bytes, 0]);
      expect(limit.bytes()).toBe(0);
      expect(limit.requests()).toBe(0);
    }
    // Refused before admission (401): never held.
    seen.length = 0;
    const res = await post('{}', { authorization: 'Bearer not-a-key-0123456789' });
    expect(res.statusCode).toBe(401);
    expect(seen).toEqual([]);
  });

  it('returns to 0 after a 503 produce timeout', async () => {
    const { limit, seen, post } = setup({ maxBytes: 10_000, usageProducer: hangingProducer(), produceTimeoutMs: 50 });
    const res = await post(eventBody(700));
    expect(res.statusCode).toBe(503);
    expect((res.json() as { error: { code: string } }).error.code).toBe('unavailable');
    await settle();
    expect(seen).toEqual([700, 0]);
    expect(limit.bytes()).toBe(0);
  });

  it('counts overloaded requests and exposes the bytes in flight as metrics', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const { app, usage, post } = setup({ maxBytes: 1_000, metrics });
    const scrape = async () => parseScrape((await app.inject({ method: 'GET', url: '/metrics' })).body);
    expect((await scrape()).value('quotaflow_ingest_requests_total', { result: 'overloaded' })).toBe(0);
    const held = post(eventBody(600));
    await vi.waitFor(() => expect(usage.started).toBe(1));
    expectOverloaded(await post(eventBody(600, 'b')), 1_000);
    expectOverloaded(await post(eventBody(600, 'c')), 1_000);
    const during = await scrape();
    expect(during.value('quotaflow_ingest_in_flight_bytes')).toBe(600);
    expect(during.value('quotaflow_ingest_requests_total', { result: 'overloaded' })).toBe(2);
    usage.release();
    expect((await held).statusCode).toBe(202);
    await settle();
    expect((await scrape()).value('quotaflow_ingest_in_flight_bytes')).toBe(0);
  });
});

describe('ingest bound on request bytes in flight: client aborts (real sockets)', () => {
  /** Listen on a free local port; the server-side reply of each request is pushed to `replies`. */
  async function listening(s: Setup) {
    const t = setup(s);
    const replies: FastifyReply[] = [];
    t.app.addHook('onRequest', async (_request, reply) => {
      replies.push(reply);
    });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = t.app.server.address() as AddressInfo;
    /** Start a POST that sends the headers and `sent` of the body, declaring `contentLength`. */
    const open = (sent: string, contentLength: number) => {
      const req = httpRequest({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/events',
        headers: { 'content-type': 'application/json', 'content-length': String(contentLength), ...AUTH },
      });
      req.on('error', () => {}); // the abort below
      req.write(sent);
      return req;
    };
    const closed = (reply: FastifyReply) =>
      reply.raw.destroyed ? Promise.resolve() : new Promise<void>((resolve) => reply.raw.once('close', () => resolve()));
    return { ...t, replies, open, closed };
  }

  it('a client that gives up while its request waits for the transport: held until the handler is done, then 0', async () => {
    const { usage, limit, replies, open, closed } = await listening({ maxBytes: 10_000 });
    const body = eventBody(800);
    const req = open(body, 800);
    req.end();
    await vi.waitFor(() => expect(usage.started).toBe(1));
    expect(limit.bytes()).toBe(800);
    req.destroy();
    await closed(replies[0] as FastifyReply);
    // The socket is gone but the handler still holds the body and its messages.
    expect(limit.bytes()).toBe(800);
    usage.release();
    await vi.waitFor(() => expect(limit.bytes()).toBe(0), { timeout: 5_000 });
    expect(limit.requests()).toBe(0);
  });

  it('a client that stalls while sending the body is cut off after http.request_timeout_ms: 0, nothing produced', async () => {
    const { usage, dlq, limit, open } = await listening({ maxBytes: 100_000, requestTimeoutMs: 1_000 });
    const req = open('[{"event_id":', 50_000); // then silence: the rest of the body never comes
    const cutOff = new Promise<void>((resolve) => req.once('close', () => resolve()));
    await vi.waitFor(() => expect(limit.bytes()).toBe(50_000));
    const t0 = Date.now();
    await cutOff;
    // Node cuts the request off after 1 s, checking every 250 ms; held at most until then.
    expect(Date.now() - t0).toBeLessThan(4_000);
    await vi.waitFor(() => expect(limit.bytes()).toBe(0), { timeout: 2_000 });
    expect(usage.started).toBe(0);
    expect(dlq.messages).toEqual([]);
  });

  it('a client that gives up while sending the body: 0, nothing produced', async () => {
    const { usage, dlq, limit, replies, open, closed } = await listening({ maxBytes: 100_000 });
    const req = open('[{"event_id":', 50_000);
    await vi.waitFor(() => expect(limit.bytes()).toBe(50_000));
    req.destroy();
    await closed(replies[0] as FastifyReply);
    await vi.waitFor(() => expect(limit.bytes()).toBe(0), { timeout: 5_000 });
    expect(limit.requests()).toBe(0);
    expect(usage.started).toBe(0);
    expect(dlq.messages).toEqual([]);
  });
});

describe('createInFlightLimit and config', () => {
  it('refuses a limit that is not a positive whole number of bytes', () => {
    for (const maxBytes of [0, -1, 1.5, Number.NaN]) {
      expect(() => createInFlightLimit({ maxBytes }), String(maxBytes)).toThrow(/maxBytes must be a positive whole number of bytes/);
    }
  });

  it('http.max_in_flight_bytes defaults to 32 MiB; HTTP_MAX_IN_FLIGHT_BYTES overrides it; a value under 1 KiB is refused', () => {
    expect(loadConfig(undefined, {}).config.http.max_in_flight_bytes).toBe(33_554_432);
    expect(loadConfig(undefined, { HTTP_MAX_IN_FLIGHT_BYTES: '1048576' }).config.http.max_in_flight_bytes).toBe(1_048_576);
    expect(() => loadConfig(undefined, { HTTP_MAX_IN_FLIGHT_BYTES: '10' })).toThrow(/HTTP_MAX_IN_FLIGHT_BYTES/);
  });
});
