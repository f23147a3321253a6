/**
 * Signed webhook delivery (issue 4, quota alerts): POST a JSON body to one URL, with retries, from
 * a bounded in-memory queue that never blocks or throws into its caller.
 *
 * Request (docs/alerts.md):
 *   POST <url>
 *   Content-Type: application/json
 *   X-Quotaflow-Event-Id: <event id>          receivers de-duplicate on it (a retry repeats it)
 *   X-Quotaflow-Timestamp: <unix seconds>     when this attempt was signed
 *   X-Quotaflow-Signature: sha256=<hex>       HMAC-SHA256 keyed with the shared secret over
 *                                             "<timestamp>.<raw body bytes>"
 * Signing the timestamp together with the body lets a receiver check both that the sender knows
 * the secret and that the request is recent: it recomputes the HMAC over the header's timestamp
 * and the body exactly as received, compares in constant time, and rejects timestamps too far
 * from its own clock (replays). Each attempt is signed afresh with its own timestamp.
 *
 * Retry policy: a network error, a timeout, 408, 429 and 5xx are retried; any other status below
 * 200 or from 300 up is final (the receiver rejected it; redirects are not followed). Waits grow
 * exponentially with "equal jitter": before retry n (n = 1, 2, ...) wait d/2 + random x d/2 with
 * d = min(maxDelayMs, baseDelayMs x 2^(n-1)), or the response's Retry-After (seconds or HTTP
 * date), capped at maxDelayMs. At most maxAttempts attempts, each limited to timeoutMs.
 *
 * Delivery guarantee: at least once while the process runs (receivers dedupe on the event id), best
 * effort across a shutdown: what is still queued when stop()'s deadline passes is logged and dropped.
 */
import { createHmac } from 'node:crypto';
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { AlertsConfig } from '../schemas/alerts.ts';

/** Default wait before the first retry, ms (then doubled per retry). */
export const DEFAULT_BASE_DELAY_MS = 500;
/** Longest wait between attempts, ms; also caps a Retry-After. */
export const DEFAULT_MAX_DELAY_MS = 30_000;
/** Deliveries held in memory before new ones are dropped (and logged). */
export const DEFAULT_QUEUE_CAPACITY = 1_000;

export interface WebhookOptions {
  /** http(s) URL the events are POSTed to. */
  url: string;
  /** Shared HMAC key (config: at least 16 characters). */
  secret: string;
  /** Attempts per delivery, >= 1 (the first one included). */
  maxAttempts: number;
  /** Limit of one attempt (connect, send, response headers), ms. */
  timeoutMs: number;
  logger: Logger;
  queueCapacity?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Current time, epoch ms (the timestamp header). Default Date.now. */
  now?: () => number;
  /** Wait `ms`, rejecting when `signal` aborts. Default: node:timers/promises setTimeout. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Uniform in [0, 1), for the jitter. Default Math.random. */
  random?: () => number;
}

/** One event to deliver: its id (the X-Quotaflow-Event-Id header) and its JSON body. */
export interface WebhookEvent {
  id: string;
  body: unknown;
}

/** How a delivery ended. */
export type DeliveryResult =
  | { ok: true; attempts: number; status: number }
  | { ok: false; attempts: number; reason: 'rejected' | 'attempts_exhausted' | 'stopped'; status?: number; error?: string };

export interface WebhookSender {
  /** Queue an event; false (and a `webhook.dropped` log line) when the queue is full or the sender stopped. Never throws. */
  send(event: WebhookEvent): boolean;
  /** Resolves once the queue is empty and no delivery is in flight. */
  idle(): Promise<void>;
  /** Stop taking events, deliver what is queued until `deadlineMs` (default: one attempt's timeout), drop the rest. Idempotent. */
  stop(deadlineMs?: number): Promise<void>;
}

/** `sha256=<hex>`: HMAC-SHA256 keyed with `secret` over `<timestampS>.<body>` (body as UTF-8 bytes). */
export function webhookSignature(secret: string, timestampS: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestampS}.${body}`).digest('hex')}`;
}

/** Whether a response status is worth another attempt: 408, 429 and 5xx. */
export function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** IMF-fixdate, the HTTP date format senders must use (RFC 9110 section 5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`. */
const IMF_FIXDATE = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/**
 * A Retry-After header value as ms from `nowMs`: delta seconds ("120") or an IMF-fixdate HTTP date
 * (RFC 9110 section 10.2.3). Undefined when absent or unreadable; a date in the past gives 0.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!IMF_FIXDATE.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isFinite(at) ? Math.max(0, at - nowMs) : undefined;
}

/**
 * The wait before retry `retry` (1 for the first retry), ms: the Retry-After when given, else the
 * jittered exponential backoff (module doc); both capped at `maxDelayMs`.
 */
export function retryDelayMs(
  retry: number,
  retryAfterMs: number | undefined,
  o: { baseDelayMs: number; maxDelayMs: number; random: number },
): number {
  if (retryAfterMs !== undefined) return Math.min(o.maxDelayMs, retryAfterMs);
  const d = Math.min(o.maxDelayMs, o.baseDelayMs * 2 ** (retry - 1));
  return Math.round(d / 2 + o.random * (d / 2));
}

const errorText = (err: unknown) => {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  return e?.name === 'TimeoutError' ? 'timeout' : (e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err));
};

/**
 * Deliver one event with retries (see the module doc). Never throws: the outcome is the result,
 * and each failed attempt is logged (`webhook.retry`, warn). `stop` aborts the attempt in flight
 * and any wait (result reason `stopped`).
 */
export async function deliverWebhook(
  o: WebhookOptions,
  event: WebhookEvent,
  stop: AbortSignal = new AbortController().signal,
): Promise<DeliveryResult> {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? ((ms: number, signal: AbortSignal) => sleepFor(ms, undefined, { signal }));
  const random = o.random ?? Math.random;
  const backoff = { baseDelayMs: o.baseDelayMs ?? DEFAULT_BASE_DELAY_MS, maxDelayMs: o.maxDelayMs ?? DEFAULT_MAX_DELAY_MS };
  const body = JSON.stringify(event.body);
  let status: number | undefined;
  let error: string | undefined;
  for (let attempt = 1; attempt <= o.maxAttempts; attempt++) {
    if (stop.aborted) return { ok: false, attempts: attempt - 1, reason: 'stopped', ...(status ? { status } : {}) };
    const timestampS = Math.floor(now() / 1000);
    let retryAfterMs: number | undefined;
    status = undefined;
    error = undefined;
    try {
      const res = await fetch(o.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-quotaflow-event-id': event.id,
          'x-quotaflow-timestamp': String(timestampS),
          'x-quotaflow-signature': webhookSignature(o.secret, timestampS, body),
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.any([stop, AbortSignal.timeout(o.timeoutMs)]),
      });
      status = res.status;
      retryAfterMs = parseRetryAfter(res.headers.get('retry-after'), now());
      await res.body?.cancel().catch(() => undefined); // free the connection; the answer's body is not used
      if (status >= 200 && status < 300) return { ok: true, attempts: attempt, status };
      if (!retryableStatus(status)) return { ok: false, attempts: attempt, reason: 'rejected', status };
    } catch (err) {
      if (stop.aborted) return { ok: false, attempts: attempt, reason: 'stopped' };
      error = errorText(err);
    }
    if (attempt === o.maxAttempts) break;
    const delayMs = retryDelayMs(attempt, retryAfterMs, { ...backoff, random: random() });
    o.logger.warn(
      { event: 'webhook.retry', event_id: event.id, attempt, status, error, delay_ms: delayMs },
      'webhook attempt failed; retrying',
    );
    try {
      await sleep(delayMs, stop);
    } catch {
      return { ok: false, attempts: attempt, reason: 'stopped', ...(status ? { status } : {}) };
    }
  }
  return { ok: false, attempts: o.maxAttempts, reason: 'attempts_exhausted', ...(status ? { status } : {}), ...(error ? { error } : {}) };
}

/**
 * A sender with one delivery in flight at a time (events reach the receiver in send order) and a
 * queue of at most `queueCapacity` events. Outcomes are logged: `webhook.delivered` (info),
 * `webhook.failed` (error, with the reason), `webhook.dropped` (error: queue full or stopped).
 */
export function createWebhookSender(o: WebhookOptions): WebhookSender {
  if (!Number.isInteger(o.maxAttempts) || o.maxAttempts < 1)
    throw new RangeError(`maxAttempts must be an integer >= 1, got ${o.maxAttempts}`);
  if (!(o.timeoutMs > 0)) throw new RangeError(`timeoutMs must be > 0, got ${o.timeoutMs}`);
  if (!/^https?:\/\//.test(o.url)) throw new RangeError(`url must be an http(s) URL, got ${JSON.stringify(o.url)}`);
  const capacity = o.queueCapacity ?? DEFAULT_QUEUE_CAPACITY;
  const queue: WebhookEvent[] = [];
  const stopController = new AbortController();
  let stopped = false;
  let worker: Promise<void> | null = null;
  let stopping: Promise<void> | null = null;

  const drop = (e: WebhookEvent, reason: 'queue_full' | 'stopped') =>
    o.logger.error({ event: 'webhook.dropped', event_id: e.id, reason }, 'webhook delivery dropped');

  async function work(): Promise<void> {
    while (!stopController.signal.aborted) {
      const e = queue.shift();
      if (e === undefined) return;
      const r = await deliverWebhook(o, e, stopController.signal);
      if (r.ok) o.logger.info({ event: 'webhook.delivered', event_id: e.id, attempts: r.attempts, status: r.status });
      else o.logger.error({ event: 'webhook.failed', event_id: e.id, ...r }, 'webhook delivery failed');
    }
  }
  const kick = () => {
    worker ??= work().finally(() => {
      worker = null;
      if (queue.length > 0 && !stopController.signal.aborted) kick();
    });
  };

  return {
    send(event) {
      if (stopped) {
        drop(event, 'stopped');
        return false;
      }
      if (queue.length >= capacity) {
        drop(event, 'queue_full');
        return false;
      }
      queue.push(event);
      kick();
      return true;
    },
    async idle() {
      while (worker) await worker;
    },
    stop(deadlineMs = o.timeoutMs) {
      stopping ??= (async () => {
        stopped = true;
        const deadline = setTimeout(() => stopController.abort(), deadlineMs);
        try {
          while (worker) await worker;
        } finally {
          clearTimeout(deadline);
          stopController.abort();
        }
        for (const e of queue.splice(0)) drop(e, 'stopped');
      })();
      return stopping;
    },
  };
}

/**
 * The sender of config `alerts` (schemas/alerts.ts), or undefined when no `webhook_url` is set
 * (config guarantees a secret with a URL). Quota alerts and anomalies each hold one.
 */
export function webhookFromAlertsConfig(alerts: Readonly<AlertsConfig>, logger: Logger): WebhookSender | undefined {
  const { webhook_url, webhook_secret } = alerts;
  if (!webhook_url || !webhook_secret) return undefined;
  return createWebhookSender({
    url: webhook_url,
    secret: webhook_secret,
    maxAttempts: alerts.max_attempts,
    timeoutMs: alerts.timeout_ms,
    logger,
  });
}
