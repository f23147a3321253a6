/**
 * Webhook delivery against a local node:http server: the signature verifies with the documented
 * scheme (recomputed here with node:crypto), retries on 408/429/5xx and network errors, none on
 * other 4xx, gives up after max_attempts. Waits go through an injected sleep that records them,
 * so no test waits for a backoff.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createWebhookSender,
  deliverWebhook,
  parseRetryAfter,
  retryDelayMs,
  type WebhookOptions,
  webhookSignature,
} from '../../processors/webhook.ts';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}
/** What the server answers to the next requests; 'hang' never answers; when empty, 200. */
type Reply = { status: number; headers?: Record<string, string> } | 'hang';

let server: Server;
let url: string;
let received: Received[] = [];
let replies: Reply[] = [];
const hanging: ServerResponse[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const reply = replies.shift() ?? { status: 200 };
      if (reply === 'hang') {
        hanging.push(res);
        return;
      }
      res.writeHead(reply.status, reply.headers ?? {});
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/quota`;
});
afterEach(() => {
  received = [];
  replies = [];
  for (const res of hanging.splice(0)) res.destroy();
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const SECRET = 'whsec-0123456789abcdef';
const NOW = Date.UTC(2026, 10, 29, 10, 30, 0, 250); // unix seconds 1795948200

/** Options with a recording sleep, a fixed jitter draw and a log capture. */
function options(over: Partial<WebhookOptions> = {}) {
  const sleeps: number[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const o: WebhookOptions = {
    url,
    secret: SECRET,
    maxAttempts: 5,
    timeoutMs: 2_000,
    logger,
    baseDelayMs: 100,
    maxDelayMs: 30_000,
    now: () => NOW,
    random: () => 0.5,
    sleep: async (ms) => void sleeps.push(ms),
    ...over,
  };
  return { o, sleeps, logs };
}

const EVENT = { id: 'a1b2c3', body: { type: 'quota.alert', alert: { alert_id: 'a1b2c3', kind: 'soft', used: 8_500 } } };

describe('deliverWebhook: request and signature', () => {
  it('POSTs the JSON body with the event id, timestamp and a signature that verifies over "<timestamp>.<raw body>"', async () => {
    const { o } = options();
    expect(await deliverWebhook(o, EVENT)).toEqual({ ok: true, attempts: 1, status: 200 });
    expect(received).toHaveLength(1);
    const [r] = received;
    expect(r?.headers['content-type']).toBe('application/json');
    expect(r?.headers['x-quotaflow-event-id']).toBe('a1b2c3');
    expect(r?.headers['x-quotaflow-timestamp']).toBe('1795948200');
    expect(JSON.parse(r?.body ?? '')).toEqual(EVENT.body);
    // A receiver's check, written from the documented scheme.
    const expected = `sha256=${createHmac('sha256', SECRET).update(`1795948200.${r?.body}`).digest('hex')}`;
    const got = String(r?.headers['x-quotaflow-signature']);
    expect(got).toBe(expected);
    expect(timingSafeEqual(Buffer.from(got), Buffer.from(expected))).toBe(true);
    // Another secret or a changed body does not verify.
    expect(webhookSignature('another-secret-0123456', 1795948200, r?.body ?? '')).not.toBe(got);
    expect(webhookSignature(SECRET, 1795948200, (r?.body ?? '').replace('8500', '8501'))).not.toBe(got);
  });

  it('webhookSignature matches a value computed by hand', () => {
    // HMAC-SHA256(key "k", "1.{}") computed with node:crypto separately: one fixed vector.
    const v = createHmac('sha256', 'k').update('1.{}').digest('hex');
    expect(webhookSignature('k', 1, '{}')).toBe(`sha256=${v}`);
    expect(v).toHaveLength(64);
  });
});

describe('deliverWebhook: retries', () => {
  it('retries on 503 then succeeds: two requests with the same event id, one backoff of 75 ms', async () => {
    replies = [{ status: 503 }];
    const { o, sleeps, logs } = options();
    expect(await deliverWebhook(o, EVENT)).toEqual({ ok: true, attempts: 2, status: 200 });
    expect(received.map((r) => r.headers['x-quotaflow-event-id'])).toEqual(['a1b2c3', 'a1b2c3']);
    // retry 1: d = min(30,000, 100 x 2^0) = 100; wait d/2 + 0.5 x d/2 = 75.
    expect(sleeps).toEqual([75]);
    expect(logs.filter((l) => l.event === 'webhook.retry').map((l) => [l.attempt, l.status, l.delay_ms])).toEqual([[1, 503, 75]]);
  });

  it('retries 408 and 429, and waits the Retry-After (seconds or HTTP date) instead of the backoff', async () => {
    replies = [
      { status: 429, headers: { 'retry-after': '3' } },
      { status: 408 },
      { status: 503, headers: { 'retry-after': new Date(NOW + 10_000).toUTCString() } },
    ];
    const { o, sleeps } = options();
    expect(await deliverWebhook(o, EVENT)).toEqual({ ok: true, attempts: 4, status: 200 });
    // 3 s; then the backoff of retry 2 (d = 200: 100 + 50 = 150); then the date, 10:30:10 GMT, which
    // is 9,750 ms after NOW (10:30:00.250; an HTTP date has whole seconds).
    expect(sleeps).toEqual([3_000, 150, 9_750]);
  });

  it('does not retry a 400 (nor any other 4xx but 408 and 429)', async () => {
    replies = [{ status: 400 }];
    const { o, sleeps } = options();
    expect(await deliverWebhook(o, EVENT)).toEqual({ ok: false, attempts: 1, reason: 'rejected', status: 400 });
    expect(received).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it('gives up after max_attempts: three 500s, backoffs of 50 and 100 ms with the lowest jitter draw', async () => {
    replies = [{ status: 500 }, { status: 500 }, { status: 500 }, { status: 200 }];
    const { o, sleeps } = options({ maxAttempts: 3, random: () => 0 });
    expect(await deliverWebhook(o, EVENT)).toEqual({ ok: false, attempts: 3, reason: 'attempts_exhausted', status: 500 });
    expect(received).toHaveLength(3);
    expect(sleeps).toEqual([50, 100]);
  });

  it('retries a refused connection and reports the network error', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const { o, sleeps } = options({ url: `http://127.0.0.1:${port}/`, maxAttempts: 2 });
    expect(await deliverWebhook(o, EVENT)).toEqual({ ok: false, attempts: 2, reason: 'attempts_exhausted', error: 'ECONNREFUSED' });
    expect(sleeps).toEqual([75]);
  });

  it('an attempt that gets no answer within timeout_ms counts as a failed attempt', async () => {
    replies = ['hang'];
    const { o } = options({ timeoutMs: 200, maxAttempts: 1 });
    expect(await deliverWebhook(o, EVENT)).toEqual({ ok: false, attempts: 1, reason: 'attempts_exhausted', error: 'timeout' });
  });
});

describe('retry policy helpers', () => {
  it.each<[string, number, number | undefined, number, number]>([
    ['retry 1, lowest draw', 1, undefined, 0, 250],
    ['retry 1, highest draw', 1, undefined, 1, 500],
    ['retry 3: 500 x 4 = 2,000, draw 0.5', 3, undefined, 0.5, 1_500],
    ['retry 10: capped at 30,000, draw 0', 10, undefined, 0, 15_000],
    ['Retry-After wins over the backoff', 2, 4_000, 0, 4_000],
    ['Retry-After is capped at maxDelayMs', 1, 120_000, 0, 30_000],
  ])('retryDelayMs: %s', (_label, retry, retryAfter, random, expected) => {
    expect(retryDelayMs(retry, retryAfter, { baseDelayMs: 500, maxDelayMs: 30_000, random })).toBe(expected);
  });

  it.each<[string | null, number | undefined]>([
    [null, undefined],
    ['0', 0],
    ['120', 120_000],
    [' 7 ', 7_000],
    ['Sun, 29 Nov 2026 10:31:00 GMT', 59_750],
    ['Sun, 29 Nov 2026 10:00:00 GMT', 0],
    ['soon', undefined],
    ['-5', undefined],
    ['2026-11-29T10:31:00Z', undefined], // not an HTTP date
  ])('parseRetryAfter(%j)', (value, expected) => {
    expect(parseRetryAfter(value, NOW)).toBe(expected);
  });
});

describe('createWebhookSender', () => {
  it('delivers in send order, one at a time, and logs each outcome', async () => {
    replies = [{ status: 200 }, { status: 400 }];
    const { o, logs } = options();
    const sender = createWebhookSender(o);
    expect(sender.send({ id: 'e1', body: { n: 1 } })).toBe(true);
    expect(sender.send({ id: 'e2', body: { n: 2 } })).toBe(true);
    await sender.idle();
    expect(received.map((r) => r.headers['x-quotaflow-event-id'])).toEqual(['e1', 'e2']);
    expect(logs.filter((l) => String(l.event).startsWith('webhook.')).map((l) => [l.event, l.event_id])).toEqual([
      ['webhook.delivered', 'e1'],
      ['webhook.failed', 'e2'],
    ]);
    await sender.stop();
  });

  it('drops (and logs) what does not fit the queue, without blocking the caller', async () => {
    replies = ['hang'];
    const { o, logs } = options({ queueCapacity: 1, timeoutMs: 300, maxAttempts: 1 });
    const sender = createWebhookSender(o);
    expect(sender.send({ id: 'e1', body: {} })).toBe(true); // in flight (the server holds it)
    expect(sender.send({ id: 'e2', body: {} })).toBe(true); // queued
    expect(sender.send({ id: 'e3', body: {} })).toBe(false); // queue full
    await sender.idle();
    expect(received.map((r) => r.headers['x-quotaflow-event-id'])).toEqual(['e1', 'e2']);
    expect(logs.filter((l) => l.event === 'webhook.dropped').map((l) => [l.event_id, l.reason])).toEqual([['e3', 'queue_full']]);
    await sender.stop();
  });

  it('after stop, send is refused and logged; stop is idempotent', async () => {
    const { o, logs } = options();
    const sender = createWebhookSender(o);
    await Promise.all([sender.stop(), sender.stop()]);
    expect(sender.send({ id: 'late', body: {} })).toBe(false);
    expect(logs.filter((l) => l.event === 'webhook.dropped').map((l) => [l.event_id, l.reason])).toEqual([['late', 'stopped']]);
    expect(received).toEqual([]);
  });

  it('stop aborts a pending retry wait at its deadline and drops what is still queued', async () => {
    replies = [{ status: 503 }];
    const { o, logs } = options({ sleep: undefined, baseDelayMs: 60_000, maxDelayMs: 60_000 });
    const sender = createWebhookSender(o);
    sender.send({ id: 'e1', body: {} });
    sender.send({ id: 'e2', body: {} });
    while (received.length === 0) await new Promise((r) => setTimeout(r, 5));
    await sender.stop(50);
    const outcomes = logs.filter((l) => l.event === 'webhook.failed' || l.event === 'webhook.dropped');
    expect(outcomes.map((l) => [l.event, l.event_id, l.reason])).toEqual([
      ['webhook.failed', 'e1', 'stopped'],
      ['webhook.dropped', 'e2', 'stopped'],
    ]);
  });

  it('rejects bad options with the field named', () => {
    const { o } = options();
    expect(() => createWebhookSender({ ...o, maxAttempts: 0 })).toThrow('maxAttempts must be an integer >= 1, got 0');
    expect(() => createWebhookSender({ ...o, url: 'ftp://x' })).toThrow('url must be an http(s) URL');
  });
});
