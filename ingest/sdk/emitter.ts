/**
 * Fire-and-forget usage-event emitter for TypeScript apps (SPEC.md sections 1, 5).
 *
 * Guarantees, and where they are enforced:
 * - `emit()` never throws and never blocks: it does a shallow type check, a shallow copy, fills
 *   `event_id`/`timestamp` and pushes onto a ring buffer (see `emit` below). JSON work and I/O happen
 *   later, off the caller's stack (setImmediate / timers).
 * - Bounded memory: at most `maxBufferEvents` events are held, the in-flight batch included. When
 *   full, the NEWEST event is dropped and counted (`buffer_full`): the oldest data is kept because it
 *   is the part an outage is most likely to lose for good.
 * - At-least-once: a batch leaves the buffer only when the ingest answered 2xx (delivered; the events
 *   it rejected are in its dead-letter store) or when it is dropped and counted (4xx, retries
 *   exhausted, close deadline). A retried batch is the same bytes with the same `event_id`s, so the
 *   processors' de-duplication makes a redelivery harmless.
 * - At most one request in flight; batches leave in emit order.
 * - Every drop is counted in `stats()` and reported through `onDrop`: nothing is lost silently.
 *
 * Wire contract (HTTP ingest): `POST {url}/v1/events`, `Authorization: Bearer <apiKey>`,
 * `Content-Type: application/x-ndjson`, one event per line. 202 `{ accepted, rejected, results }`;
 * 401, 413 and other 4xx are final; 408, 429 and 5xx are retried (honouring `Retry-After`).
 *
 * Only Node 20 built-ins are used (global fetch, AbortSignal.timeout/any, crypto.randomUUID).
 */
import { randomUUID } from 'node:crypto';
import type { UsageEventV1 } from '../../schemas/usage-event.ts';

/** Why events were dropped. A closed union: every drop carries exactly one of these. */
export type DropReason = 'buffer_full' | 'rejected_by_server' | 'retries_exhausted' | 'invalid' | 'closed';

export interface DropInfo {
  /** How many events this report covers (hot-path drops are coalesced per tick). */
  count: number;
  reason: DropReason;
  /** Server answer, network error or serialisation error, when there is one. */
  error?: string;
}

export interface EmitterOptions {
  /** Base URL of the quotaflow HTTP ingest, e.g. `http://127.0.0.1:8080` (`/v1/events` is appended). */
  url: string;
  /** Ingest API key, sent as `Authorization: Bearer <apiKey>`. */
  apiKey: string;
  /** Send as soon as this many events are buffered. Default 500. */
  maxBatchEvents?: number;
  /** Send a partial batch when its oldest event has waited this long, ms. Default 1000. */
  maxBatchAgeMs?: number;
  /** Most events held in memory (queued + in flight); beyond it the newest is dropped. Default 10 000. */
  maxBufferEvents?: number;
  /** Largest request body, bytes; a batch is cut short to fit. Default 1 MiB (the ingest accepts 5 MiB). */
  maxBatchBytes?: number;
  /** Largest serialised event, bytes; a bigger one is dropped as `invalid`. Default 64 KiB. */
  maxEventBytes?: number;
  /** Retries of one batch after its first attempt; then it is dropped (`retries_exhausted`). Default 10. */
  maxRetries?: number;
  /** First retry delay, ms; doubles per attempt, with jitter. Default 200. */
  retryBaseMs?: number;
  /** Cap on the computed retry delay, ms. Default 15 000. */
  retryMaxDelayMs?: number;
  /** Cap on a server-sent `Retry-After`, ms. Default 60 000. */
  maxRetryAfterMs?: number;
  /** Timeout of one HTTP request, ms. Default 10 000. */
  requestTimeoutMs?: number;
  /** How long `close()` and the exit flush may take before what is left is dropped (`closed`), ms. Default 10 000. */
  closeTimeoutMs?: number;
  /** Called when events are dropped. Exceptions it throws are swallowed. */
  onDrop?: (info: DropInfo) => void;
  /** Called on failed attempts and server refusals (diagnostics). Exceptions it throws are swallowed. */
  onError?: (err: Error) => void;
  /** Flush on `beforeExit` (bounded by `closeTimeoutMs`). Default true. */
  flushOnExit?: boolean;
}

/**
 * What `emit()` accepts: a v1 event whose `event_id` and `timestamp` may be left to the emitter and
 * whose `tenant` may be left to the ingest (it fills in the API key's tenant).
 */
export type UsageEventInput = Omit<UsageEventV1, 'event_id' | 'timestamp' | 'tenant'> &
  Partial<Pick<UsageEventV1, 'event_id' | 'timestamp' | 'tenant'>>;

export interface EmitterStats {
  /** Calls to `emit()`, whatever became of them. */
  emitted: number;
  /** Events the ingest accepted (2xx and not in its `rejected` results). */
  sent: number;
  /** Events dropped, all reasons. */
  dropped: number;
  /** Events held now: queued plus in flight. `emitted = sent + dropped + buffered` always. */
  buffered: number;
  /** Retry attempts made (all batches). */
  retries: number;
  droppedByReason: Record<DropReason, number>;
}

export interface Emitter {
  /** Queue one event. Never throws, never does I/O; a bad or unqueueable event is counted as dropped. */
  emit(event: UsageEventInput): void;
  /** Resolves once every event emitted before the call is delivered or dropped. Never rejects. */
  flush(): Promise<void>;
  /** Stop accepting events, flush (bounded by `closeTimeoutMs`), remove the exit hook. Idempotent; never rejects. */
  close(): Promise<void>;
  stats(): EmitterStats;
}

const DEFAULTS = {
  maxBatchEvents: 500,
  maxBatchAgeMs: 1_000,
  maxBufferEvents: 10_000,
  maxBatchBytes: 1_048_576,
  maxEventBytes: 65_536,
  maxRetries: 10,
  retryBaseMs: 200,
  retryMaxDelayMs: 15_000,
  maxRetryAfterMs: 60_000,
  requestTimeoutMs: 10_000,
  closeTimeoutMs: 10_000,
} as const;

type NumericOption = keyof typeof DEFAULTS;

/** Growable FIFO ring: O(1) push/shift, capacity doubles up to the buffer bound only when needed. */
class Ring<T> {
  private buf: (T | undefined)[];
  private head = 0;
  size = 0;
  constructor(initial: number) {
    this.buf = new Array(initial);
  }
  push(item: T): void {
    if (this.size === this.buf.length) this.grow();
    this.buf[(this.head + this.size) % this.buf.length] = item;
    this.size++;
  }
  shift(): T {
    const item = this.buf[this.head] as T;
    this.buf[this.head] = undefined; // let the event be collected
    this.head = (this.head + 1) % this.buf.length;
    this.size--;
    return item;
  }
  private grow(): void {
    const next = new Array<T | undefined>(this.buf.length * 2);
    for (let i = 0; i < this.size; i++) next[i] = this.buf[(this.head + i) % this.buf.length];
    this.buf = next;
    this.head = 0;
  }
}

/** One batch taken off the buffer: the request body and what it stands for. */
interface Batch {
  body: string;
  /** Events serialised into `body`. */
  lines: number;
  /** Event ids per line, to name rejected events in diagnostics. */
  ids: string[];
  /** Events taken off the buffer for this batch (lines + invalid ones), settled together. */
  taken: number;
  abort: AbortController;
}

type Outcome =
  | { kind: 'delivered'; rejected: number; error?: string }
  | { kind: 'retry'; error: string; retryAfterMs?: number }
  | { kind: 'final'; error: string };

/**
 * Create an emitter. Throws a TypeError on invalid options (a configuration bug, caught at start-up);
 * after that, nothing it returns throws into the app.
 */
export function createEmitter(options: EmitterOptions): Emitter {
  const endpoint = checkUrl(options.url);
  if (typeof options.apiKey !== 'string' || options.apiKey.length === 0) throw new TypeError('quotaflow emitter: apiKey is required');
  const opt = {} as Record<NumericOption, number>;
  for (const key of Object.keys(DEFAULTS) as NumericOption[]) opt[key] = checkNumber(key, options[key], DEFAULTS[key]);
  const maxBuffer = Math.max(1, opt.maxBufferEvents);
  const maxBatch = Math.max(1, Math.min(opt.maxBatchEvents, maxBuffer));
  const headers = { authorization: `Bearer ${options.apiKey}`, 'content-type': 'application/x-ndjson' };
  const onDrop = options.onDrop;
  const onError = options.onError;

  const queue = new Ring<Record<string, unknown>>(Math.min(maxBuffer, 1_024));
  const counters = { emitted: 0, sent: 0, dropped: 0, retries: 0 };
  const droppedByReason: Record<DropReason, number> = {
    buffer_full: 0,
    rejected_by_server: 0,
    retries_exhausted: 0,
    invalid: 0,
    closed: 0,
  };
  let inFlight = 0; // events of the batch being sent or retried
  let enqueued = 0; // events ever queued (the flush target is a count: batches settle in FIFO order)
  let settled = 0; // events ever taken off the buffer and finished (delivered or dropped)
  const waiters: { target: number; resolve: () => void }[] = [];

  let closed = false;
  let closing: Promise<void> | null = null;
  let exitDrain: Promise<void> | null = null;
  let keepAlive = 0; // > 0 while close()/exit flush runs: timers must then hold the process open
  let abortAll = false; // a close/exit deadline passed: drop instead of sending
  let running = false; // the send loop is active (at most one request in flight)
  let dueByAge = false;
  let ageTimer: NodeJS.Timeout | null = null;
  let kickScheduled = false;
  let sleepTimer: NodeJS.Timeout | null = null;
  let current: Batch | null = null;

  // Drops on the hot path are coalesced and reported once per microtask checkpoint, so a flood of
  // buffer_full drops costs a counter increment each, not a callback each.
  const pendingDrops = new Map<DropReason, { count: number; error?: string }>();
  let dropReportScheduled = false;

  function safeCall<A>(fn: ((arg: A) => void) | undefined, arg: A): void {
    if (!fn) return;
    try {
      fn(arg);
    } catch {
      // NOTE: user callbacks must not break the emitter or reach the app's stack.
    }
  }

  function countDrop(reason: DropReason, count: number): void {
    counters.dropped += count;
    droppedByReason[reason] += count;
  }

  function dropLater(reason: DropReason, error?: string): void {
    countDrop(reason, 1);
    if (!onDrop) return;
    const pending = pendingDrops.get(reason);
    if (pending) pending.count++;
    else pendingDrops.set(reason, error === undefined ? { count: 1 } : { count: 1, error });
    if (!dropReportScheduled) {
      dropReportScheduled = true;
      queueMicrotask(reportDrops);
    }
  }

  function reportDrops(): void {
    dropReportScheduled = false;
    const reports = [...pendingDrops];
    pendingDrops.clear();
    for (const [reason, { count, error }] of reports) safeCall(onDrop, error === undefined ? { count, reason } : { count, reason, error });
  }

  function dropNow(reason: DropReason, count: number, error?: string): void {
    if (count <= 0) return;
    countDrop(reason, count);
    safeCall(onDrop, error === undefined ? { count, reason } : { count, reason, error });
  }

  function emit(event: UsageEventInput): void {
    counters.emitted++;
    try {
      if (closed) {
        dropLater('closed');
        return;
      }
      if (typeof event !== 'object' || event === null || Array.isArray(event)) {
        dropLater('invalid', 'event must be an object');
        return;
      }
      if (queue.size + inFlight >= maxBuffer) {
        dropLater('buffer_full');
        return;
      }
      // Shallow copy: the app may reuse or mutate its object after emit(); an auto-filled id must
      // not stick to a reused template either. Nested objects (tags) are shared until send time.
      // TRICKY: V8 turns `{ ...event }` plus added keys (or `{ ...event, k: v }`) into a slow
      // dictionary object, ~1 us per emit (measured, Node 20). Object.assign onto an object that
      // already has both slots keeps a fast shape (~0.2 us with the UUID) and puts the ids first.
      const copy: Record<string, unknown> = Object.assign({ event_id: undefined, timestamp: undefined }, event);
      if (copy.event_id === undefined) copy.event_id = randomUUID();
      if (copy.timestamp === undefined) copy.timestamp = Date.now();
      queue.push(copy);
      enqueued++;
      if (queue.size >= maxBatch) {
        // TRICKY: never send from inside emit(): serialising and fetch() would run on the app's stack.
        if (!kickScheduled) {
          kickScheduled = true;
          setImmediate(onKick);
        }
      } else if (ageTimer === null) {
        startAgeTimer(); // once per batch, not per event
      }
    } catch (err) {
      // A Proxy or a throwing getter: count it, never rethrow.
      dropLater('invalid', errorText(err));
    }
  }

  function onKick(): void {
    kickScheduled = false;
    kick();
  }

  function startAgeTimer(): void {
    ageTimer = setTimeout(onAge, opt.maxBatchAgeMs);
    if (keepAlive === 0) ageTimer.unref(); // never keep the process alive just to send a partial batch
  }

  function onAge(): void {
    ageTimer = null;
    dueByAge = true;
    kick();
  }

  function shouldSend(): boolean {
    if (queue.size === 0) return false;
    return queue.size >= maxBatch || dueByAge || closed || abortAll || (waiters.length > 0 && waiters[0]!.target > settled);
  }

  function kick(): void {
    if (running) return;
    if (!shouldSend()) {
      if (queue.size > 0 && ageTimer === null) startAgeTimer();
      return;
    }
    running = true;
    if (ageTimer !== null) {
      clearTimeout(ageTimer);
      ageTimer = null;
    }
    void loop();
  }

  /** The single sender: takes batches in FIFO order and settles each before taking the next. */
  async function loop(): Promise<void> {
    try {
      while (shouldSend()) {
        dueByAge = false;
        const batch = takeBatch();
        if (abortAll) {
          dropNow('closed', batch.lines, 'close deadline passed');
        } else if (batch.lines > 0) {
          current = batch;
          await deliver(batch);
          current = null;
        }
        inFlight = 0;
        settle(batch.taken);
      }
    } catch (err) {
      // Defensive: deliver() handles its own failures; reaching here is a bug, and must not be fatal.
      safeCall(onError, asError(err));
      if (current) {
        dropNow('retries_exhausted', current.lines, errorText(err));
        settle(current.taken);
        current = null;
      }
      inFlight = 0;
    } finally {
      running = false;
    }
    // Events that arrived while the last request was in flight: send now if due, else arm the age timer.
    kick();
  }

  /** Serialise up to maxBatch events (within maxBatchBytes) off the front of the queue. */
  function takeBatch(): Batch {
    const lines: string[] = [];
    const ids: string[] = [];
    let bytes = 0;
    let taken = 0;
    while (queue.size > 0 && lines.length < maxBatch) {
      const event = queue.shift();
      taken++;
      let line: string | undefined;
      try {
        line = JSON.stringify(event);
      } catch (err) {
        dropLater('invalid', `not serialisable: ${errorText(err)}`); // cyclic, BigInt, throwing toJSON
        continue;
      }
      if (typeof line !== 'string') {
        dropLater('invalid', 'not serialisable');
        continue;
      }
      const size = Buffer.byteLength(line) + 1;
      if (size > opt.maxEventBytes) {
        dropLater('invalid', `event is ${size} bytes, over maxEventBytes ${opt.maxEventBytes}`);
        continue;
      }
      lines.push(line);
      ids.push(typeof event.event_id === 'string' ? event.event_id : String(event.event_id));
      bytes += size;
      // Peek-free byte cap: stop before the next event could overflow the body (max event size).
      if (bytes + opt.maxEventBytes > opt.maxBatchBytes) break;
    }
    inFlight = lines.length; // invalid ones are already counted as dropped
    return { body: lines.join('\n'), lines: lines.length, ids, taken, abort: new AbortController() };
  }

  function settle(count: number): void {
    settled += count;
    while (waiters.length > 0 && waiters[0]!.target <= settled) waiters.shift()!.resolve();
  }

  /** Send one batch until it is delivered or dropped. Never throws. */
  async function deliver(batch: Batch): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (abortAll || batch.abort.signal.aborted) return dropNow('closed', batch.lines, 'close deadline passed');
      const outcome = await post(batch);
      if (outcome.kind === 'delivered') {
        counters.sent += batch.lines - outcome.rejected;
        // NOTE: rejected events are kept in the ingest's dead-letter store: retrying them would only
        // add duplicates there. They are counted and reported, never resent.
        dropNow('rejected_by_server', outcome.rejected, outcome.error);
        return;
      }
      if (abortAll || batch.abort.signal.aborted) return dropNow('closed', batch.lines, outcome.error);
      safeCall(onError, new Error(`quotaflow emitter: ${outcome.error} (batch of ${batch.lines}, attempt ${attempt + 1})`));
      if (outcome.kind === 'final') return dropNow('rejected_by_server', batch.lines, outcome.error);
      if (attempt >= opt.maxRetries) return dropNow('retries_exhausted', batch.lines, outcome.error);
      counters.retries++;
      await sleep(retryDelay(attempt, outcome.retryAfterMs), batch.abort.signal);
    }
  }

  function retryDelay(attempt: number, retryAfterMs: number | undefined): number {
    if (retryAfterMs !== undefined) return Math.min(retryAfterMs, opt.maxRetryAfterMs);
    // Exponential backoff with "equal jitter": half fixed, half random, so clients that failed
    // together spread out but none retries immediately.
    const cap = Math.min(opt.retryMaxDelayMs, opt.retryBaseMs * 2 ** Math.min(attempt, 30));
    return cap / 2 + Math.random() * (cap / 2);
  }

  function sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        if (sleepTimer !== null) clearTimeout(sleepTimer);
        sleepTimer = null;
        signal.removeEventListener('abort', done);
        resolve();
      };
      sleepTimer = setTimeout(done, ms);
      if (keepAlive === 0) sleepTimer.unref();
      signal.addEventListener('abort', done, { once: true });
    });
  }

  async function post(batch: Batch): Promise<Outcome> {
    let res: Response;
    try {
      res = await fetch(endpoint, {
        method: 'POST',
        headers,
        body: batch.body,
        signal: AbortSignal.any([batch.abort.signal, AbortSignal.timeout(opt.requestTimeoutMs)]),
      });
    } catch (err) {
      return { kind: 'retry', error: `request failed: ${errorText(err)}` }; // refused, reset, DNS, timeout
    }
    let text = '';
    try {
      text = await res.text(); // always drain, so the keep-alive socket is reused
    } catch (err) {
      if (!res.ok) return { kind: 'retry', error: `HTTP ${res.status}, body unreadable: ${errorText(err)}` };
    }
    if (res.ok) return delivered(batch, text);
    const error = `HTTP ${res.status}${text ? `: ${text.slice(0, 300)}` : ''}`;
    if (res.status === 408 || res.status === 429 || res.status >= 500) {
      const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
      return retryAfterMs === undefined ? { kind: 'retry', error } : { kind: 'retry', error, retryAfterMs };
    }
    return { kind: 'final', error }; // 400, 401, 403, 413, ...: resending the same bytes cannot help
  }

  function delivered(batch: Batch, text: string): Outcome {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return { kind: 'delivered', rejected: 0 }; // 2xx: the ingest took the batch, whatever it said
    }
    const results = (body as { results?: unknown })?.results;
    if (!Array.isArray(results)) {
      const n = (body as { rejected?: unknown })?.rejected;
      const rejected = typeof n === 'number' && Number.isInteger(n) ? Math.max(0, Math.min(n, batch.lines)) : 0;
      return { kind: 'delivered', rejected };
    }
    const problems: string[] = [];
    let rejected = 0;
    for (const r of results as { index?: unknown; status?: unknown; errors?: unknown }[]) {
      if (r?.status !== 'rejected') continue;
      rejected++;
      if (problems.length < 3) {
        const id = typeof r.index === 'number' ? batch.ids[r.index] : undefined;
        problems.push(`${id ?? `line ${String(r.index)}`}: ${JSON.stringify(r.errors ?? null)}`);
      }
    }
    rejected = Math.min(rejected, batch.lines);
    return rejected === 0 ? { kind: 'delivered', rejected } : { kind: 'delivered', rejected, error: problems.join('; ').slice(0, 1_000) };
  }

  function flush(): Promise<void> {
    const target = enqueued;
    if (settled >= target) return Promise.resolve();
    const promise = new Promise<void>((resolve) => waiters.push({ target, resolve }));
    kick(); // a pending flush makes any non-empty buffer due now
    return promise;
  }

  /** Flush with a deadline; past it, what is left is dropped as `closed` (in FIFO order, by the loop). */
  async function drain(): Promise<void> {
    keepAlive++;
    // While draining, timers must hold the process open (the app may have nothing else left to do).
    sleepTimer?.ref();
    ageTimer?.ref();
    let deadline: NodeJS.Timeout | undefined;
    try {
      const flushed = flush();
      const timedOut = await Promise.race([
        flushed.then(() => false),
        new Promise<boolean>((resolve) => {
          deadline = setTimeout(() => resolve(true), opt.closeTimeoutMs);
        }),
      ]);
      if (timedOut) {
        abortAll = true;
        current?.abort.abort();
        kick();
        await flushed;
      }
    } finally {
      clearTimeout(deadline);
      abortAll = false;
      keepAlive--;
    }
  }

  function onBeforeExit(): void {
    // Fires when the event loop has emptied (not on process.exit() or signals: call close() there).
    // It fires again after this flush ends; with the buffer empty that is a no-op, so the process exits.
    if (closed || exitDrain !== null || queue.size + inFlight === 0) return;
    exitDrain = drain().finally(() => {
      exitDrain = null;
    });
  }

  const flushOnExit = options.flushOnExit ?? true;
  if (flushOnExit) process.on('beforeExit', onBeforeExit);

  function close(): Promise<void> {
    if (closing) return closing;
    closed = true;
    if (flushOnExit) process.off('beforeExit', onBeforeExit);
    closing = drain().then(() => {
      if (ageTimer !== null) clearTimeout(ageTimer);
      ageTimer = null;
    });
    return closing;
  }

  function stats(): EmitterStats {
    return { ...counters, buffered: queue.size + inFlight, droppedByReason: { ...droppedByReason } };
  }

  return { emit, flush, close, stats };
}

function checkUrl(url: unknown): string {
  let parsed: URL;
  try {
    parsed = new URL(String(url));
  } catch {
    throw new TypeError(`quotaflow emitter: url must be an absolute http(s) URL, got ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TypeError(`quotaflow emitter: url must be http(s), got ${parsed.protocol}`);
  }
  return `${parsed.href.replace(/\/+$/, '')}/v1/events`;
}

function checkNumber(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  // maxRetries may be Infinity (retry until close); every other option must be a finite integer.
  const ok = typeof value === 'number' && value >= 0 && (Number.isInteger(value) || (name === 'maxRetries' && value === Infinity));
  if (!ok) throw new TypeError(`quotaflow emitter: ${name} must be an integer >= 0, got ${String(value)}`);
  return value as number;
}

/** `Retry-After` is delta-seconds or an HTTP-date (RFC 9110 section 10.2.3). */
export function parseRetryAfter(header: string | null): number | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    const code = cause && typeof cause === 'object' && 'code' in cause ? ` (${String((cause as { code: unknown }).code)})` : '';
    return `${err.name}: ${err.message}${code}`;
  }
  return String(err);
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
