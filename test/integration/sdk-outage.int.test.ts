/**
 * Emitter SDK against the REAL HTTP ingest of `quotaflow all` (embedded: in-process transport and
 * chDB in a temp folder), across an outage:
 * 1. ingest down: 20,000 emits never throw, at most `maxBufferEvents` are held, the overflow is
 *    counted as `buffer_full` (stats and onDrop agree) and the heap stays bounded;
 * 2. events buffered while the ingest is down are delivered once it starts, exactly once
 *    (GET /v1/usage shows the exact request count and token sums);
 * 3. an event the ingest rejects (202 with a `rejected` result) is not resent and changes no totals;
 * 4. SIGTERM drains and exits 0.
 * The `it`s share one `quotaflow all` process and run in order.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { createEmitter, type DropInfo, type Emitter, type EmitterOptions } from '../../ingest/sdk/index.ts';
import { until } from '../helpers/kafka.ts';
import { freePort, type RoleProcess, startRoleProcess, waitHttpOk } from '../helpers/roles.ts';

const dir = mkdtempSync(join(tmpdir(), 'qf-sdk-outage-'));
const A = 'key-sdk-a-0123456789abcdef';
const B = 'key-sdk-b-0123456789abcdef';

let port = 0;
let base = '';
let proc: RoleProcess | undefined;
const emitters: Emitter[] = [];

afterAll(async () => {
  for (const e of emitters) await e.close();
  await proc?.kill9(); // only if a failed test left it running; the last test stops it with SIGTERM
  rmSync(dir, { recursive: true, force: true });
});

/** Short retries, no exit hook (the test closes every emitter). */
function emitterFor(options: Partial<EmitterOptions>): Emitter {
  const e = createEmitter({
    url: base,
    apiKey: A,
    maxRetries: Number.POSITIVE_INFINITY,
    retryBaseMs: 20,
    retryMaxDelayMs: 200,
    requestTimeoutMs: 5_000,
    closeTimeoutMs: 500,
    flushOnExit: false,
    ...options,
  });
  emitters.push(e);
  return e;
}

/** `gc()` in this process: the flag is set at run time and `gc` read from a fresh context. */
function gcFunction(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return existing;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

function retainedHeap(gc: () => void): number {
  gc();
  gc(); // a second pass collects what the first one only finalised
  return process.memoryUsage().heapUsed;
}

interface UsageRow {
  provider: string;
  model: string;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
  reasoning_tokens: number;
  cost_usd: string;
  unpriced_requests: number;
}

async function usage(key: string): Promise<{ tenant: string; rows: UsageRow[] }> {
  const res = await fetch(`${base}/v1/usage`, { headers: { authorization: `Bearer ${key}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as { tenant: string; rows: UsageRow[] };
}

/** Resolve `p`, or fail with a clear message instead of running into the test timeout. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** One POST /v1/events seen on the wire: the event ids sent and the ingest's answer (status 0: no answer). */
interface Post {
  ids: string[];
  status: number;
  body: string;
}

/**
 * Watch every POST /v1/events made through the global fetch (the emitter calls it per request)
 * until `restore()`. Passes requests and answers through unchanged.
 */
function watchPosts(): { posts: Post[]; restore(): void } {
  const posts: Post[] = [];
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    if (!String(input).endsWith('/v1/events')) return realFetch(input, init);
    const ids = String(init?.body ?? '')
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => String((JSON.parse(line) as { event_id?: unknown }).event_id));
    let res: Response;
    try {
      res = await realFetch(input, init);
    } catch (err) {
      posts.push({ ids, status: 0, body: '' });
      throw err;
    }
    posts.push({ ids, status: res.status, body: await res.clone().text() });
    return res;
  };
  return {
    posts,
    restore() {
      globalThis.fetch = realFetch;
    },
  };
}

/** gpt-4o: $2.50 per 1M input tokens, $10 per 1M output (config/prices.default.yaml, from 2024-10-02). */
function gpt4oCost(input: number, output: number): string {
  const units = BigInt(input) * 25n + BigInt(output) * 100n; // in 1e-7 USD
  const whole = units / 10_000_000n;
  const frac = (units % 10_000_000n).toString().padStart(7, '0').replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : `${whole}`;
}

// One recent minute, well inside the accepted time range (not before 2000, not in the future).
const TIMESTAMP = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 3_600_000).toISOString();
const OUTAGE_EVENTS = 500;
const expected = { input: 0, output: 0 };

describe('emitter SDK against quotaflow all: outage and recovery', () => {
  it('with the ingest down, 20,000 emits never throw, hold at most maxBufferEvents and count the overflow as buffer_full', async () => {
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const maxBufferEvents = 2_000;
    const total = 20_000;
    const drops: DropInfo[] = [];
    const errors: Error[] = [];
    const emitter = emitterFor({
      maxBufferEvents,
      maxBatchEvents: 200,
      maxBatchAgeMs: 20,
      onDrop: (d) => drops.push(d),
      onError: (e) => errors.push(e),
    });
    const gc = gcFunction();
    // fetch (undici) loads lazily on first use, ~1.5 MB: load it first so it is not counted below.
    await fetch(`${base}/v1/events`, { method: 'POST', body: '' }).catch(() => undefined);
    const heapBefore = retainedHeap(gc);
    let thrown = 0;
    let maxBuffered = 0;
    for (let i = 0; i < total; i++) {
      // Four unique 250-char tag values (~1 KB per event), so a buffer that kept every event would show in the heap.
      const tag = (k: string) => `${k}${i}`.padEnd(250, '.');
      try {
        emitter.emit({
          event_id: `down-${i}`,
          tenant: 'tenant-a',
          timestamp: TIMESTAMP,
          provider: 'openai',
          model: 'gpt-4o',
          input_tokens: 1_000 + i,
          output_tokens: 10,
          user_id: `user-${i % 100}`,
          tags: { a: tag('a'), b: tag('b'), c: tag('c'), d: tag('d') },
        });
      } catch {
        thrown++;
      }
      if (i % 1_000 === 999) {
        maxBuffered = Math.max(maxBuffered, emitter.stats().buffered);
        await new Promise((r) => setImmediate(r)); // let the sender try (and fail) meanwhile
      }
    }
    // The sender has met the outage: connection refused, retried, nothing sent.
    await until(() => emitter.stats().retries >= 2, 'the emitter to retry against the closed port', 10_000);
    const heapGrowth = retainedHeap(gc) - heapBefore;
    await Promise.resolve(); // coalesced onDrop reports run at the microtask checkpoint

    const s = emitter.stats();
    expect(thrown).toBe(0);
    expect(maxBuffered).toBeLessThanOrEqual(maxBufferEvents);
    expect(s).toMatchObject({ emitted: total, sent: 0, buffered: maxBufferEvents, dropped: total - maxBufferEvents });
    expect(s.droppedByReason).toEqual({
      buffer_full: total - maxBufferEvents,
      rejected_by_server: 0,
      retries_exhausted: 0,
      invalid: 0,
      closed: 0,
    });
    expect(drops.length).toBeGreaterThan(0);
    expect(drops.every((d) => d.reason === 'buffer_full')).toBe(true);
    expect(drops.reduce((n, d) => n + d.count, 0)).toBe(total - maxBufferEvents);
    expect(errors[0]?.message).toMatch(/request failed.*ECONNREFUSED/);
    // Bound: each held event retains ~1.4 KB (its four tag strings, ids and objects), so the 2,000
    // held ones plus one request body (200 events, ~250 KB while in flight) and the ring's slots
    // come to ~3 MB (measured 2.9 to 3.5 MB). A buffer that kept all 20,000 events retains ~32 MB
    // (measured with maxBufferEvents: 20_000), so 8 MB separates "bounded" from "keeps everything"
    // with room for noise; both measured after a forced gc.
    expect(heapGrowth).toBeLessThan(8 * 1024 * 1024);

    await emitter.close(); // the close deadline drops what is left, counted as closed
    expect(emitter.stats()).toMatchObject({ buffered: 0, sent: 0, dropped: total });
    expect(emitter.stats().droppedByReason.closed).toBe(maxBufferEvents);
    console.info(`sdk-outage: retained heap growth with the buffer full: ${(heapGrowth / 1024 / 1024).toFixed(2)} MB`);
  }, 60_000);

  it('delivers every event buffered during the outage exactly once after quotaflow all starts', async () => {
    const wire = watchPosts();
    try {
      await outageThenRecovery(wire.posts);
    } finally {
      wire.restore();
    }
  }, 90_000);

  async function outageThenRecovery(posts: Post[]): Promise<void> {
    const errors: Error[] = [];
    const drops: DropInfo[] = [];
    const emitter = emitterFor({
      maxBufferEvents: 10_000,
      maxBatchEvents: 100, // 5 batches, delivered in order after the outage
      maxBatchAgeMs: 20,
      onDrop: (d) => drops.push(d),
      onError: (e) => errors.push(e),
    });
    for (let i = 0; i < OUTAGE_EVENTS; i++) {
      const input = 100 + i;
      const output = 10 + (i % 7);
      expected.input += input;
      expected.output += output;
      emitter.emit({
        event_id: `outage-${i}`,
        tenant: 'tenant-a',
        timestamp: TIMESTAMP,
        provider: 'openai',
        model: 'gpt-4o',
        input_tokens: input,
        output_tokens: output,
      });
    }
    await until(() => emitter.stats().retries >= 3, 'the emitter to retry while the ingest is down', 10_000);
    expect(emitter.stats()).toMatchObject({ emitted: OUTAGE_EVENTS, sent: 0, dropped: 0, buffered: OUTAGE_EVENTS });
    expect(errors[0]?.message).toMatch(/request failed.*ECONNREFUSED/);

    proc = startRoleProcess('all', {
      CLICKHOUSE_PATH: join(dir, 'data'),
      HTTP_PORT: String(port),
      INGEST_API_KEYS: `${A}=tenant-a,${B}=tenant-b`,
      PIPELINE_BATCH_MAX_WAIT_MS: '50',
    });
    await within(emitter.flush(), 60_000, 'emitter.flush() after the ingest started');
    expect(emitter.stats()).toMatchObject({ emitted: OUTAGE_EVENTS, sent: OUTAGE_EVENTS, dropped: 0, buffered: 0 });
    expect(drops).toEqual([]);
    // On the wire: attempts while down got no answer; each event is in exactly one 202-answered
    // request (never resent after a 2xx), all accepted, and the batches left in emit order.
    expect(posts.filter((p) => p.status === 0).length).toBeGreaterThanOrEqual(3);
    const answered = posts.filter((p) => p.status !== 0);
    expect(
      answered.every((p) => p.status === 202 || p.status === 503),
      JSON.stringify(answered.map((p) => p.status)),
    ).toBe(true);
    const delivered = answered.filter((p) => p.status === 202);
    expect(delivered.flatMap((p) => p.ids)).toEqual(Array.from({ length: OUTAGE_EVENTS }, (_, i) => `outage-${i}`));
    for (const p of delivered) expect(JSON.parse(p.body)).toMatchObject({ accepted: p.ids.length, rejected: 0 });
    console.info(`sdk-outage: POST /v1/events answers during the outage and recovery: ${posts.map((p) => p.status || 'none').join(' ')}`);

    await until(async () => ((await usage(A)).rows[0]?.requests ?? 0) >= OUTAGE_EVENTS, `${OUTAGE_EVENTS} requests in /v1/usage`, 30_000);
    const a = await usage(A);
    expect(a.tenant).toBe('tenant-a');
    expect(expected).toEqual({ input: 174_750, output: 6_494 }); // 500 x 100 + sum(0..499); 500 x 10 + 71 x sum(0..6) + 0 + 1 + 2
    expect(a.rows).toEqual([
      {
        provider: 'openai',
        model: 'gpt-4o',
        requests: OUTAGE_EVENTS,
        input_tokens: expected.input,
        output_tokens: expected.output,
        cached_input_tokens: 0,
        reasoning_tokens: 0,
        cost_usd: gpt4oCost(expected.input, expected.output),
        unpriced_requests: 0,
      },
    ]);
    await emitter.close();
  }

  it('does not resend an event the ingest rejects (202 with a rejected result), and no totals change', async () => {
    expect(proc, 'quotaflow all started by the previous test').toBeDefined();
    await waitHttpOk(`${base}/readyz`, 30_000);
    const before = await usage(A);
    expect(before.rows[0]?.requests).toBe(OUTAGE_EVENTS);

    const wire = watchPosts();
    const posts = wire.posts;
    const drops: DropInfo[] = [];
    const errors: Error[] = [];
    try {
      const emitter = emitterFor({ maxBatchAgeMs: 20, onDrop: (d) => drops.push(d), onError: (e) => errors.push(e) });
      emitter.emit({
        event_id: 'invalid-negative',
        tenant: 'tenant-a',
        timestamp: TIMESTAMP,
        provider: 'openai',
        model: 'gpt-4o',
        input_tokens: -5,
        output_tokens: 10,
      });
      await within(emitter.flush(), 20_000, 'emitter.flush() of the invalid event');
      // docs/sdk.md: a 202 whose results mark an event rejected is a `rejected_by_server` drop (it is
      // in the dead-letter store), not `sent`, and it is never resent.
      expect(emitter.stats()).toEqual({
        emitted: 1,
        sent: 0,
        dropped: 1,
        buffered: 0,
        retries: 0,
        droppedByReason: { buffer_full: 0, rejected_by_server: 1, retries_exhausted: 0, invalid: 0, closed: 0 },
      });
      expect(posts).toHaveLength(1); // one request, no retry
      expect(posts[0]).toMatchObject({ ids: ['invalid-negative'], status: 202 });
      expect(JSON.parse(posts[0]!.body)).toMatchObject({
        accepted: 0,
        rejected: 1,
        results: [{ index: 0, status: 'rejected', errors: expect.arrayContaining([expect.objectContaining({ field: 'input_tokens' })]) }],
      });
      expect(errors).toEqual([]); // a delivered batch is not a failed attempt
      expect(drops).toEqual([{ count: 1, reason: 'rejected_by_server', error: expect.stringContaining('invalid-negative') }]);
      await emitter.close();
    } finally {
      wire.restore();
    }

    // A marker behind it on the same in-process usage log (one partition, FIFO): once tenant B's
    // marker is aggregated, anything the invalid event could have added would be visible too.
    const marker = emitterFor({ apiKey: B, maxBatchAgeMs: 20 });
    marker.emit({
      event_id: 'marker',
      tenant: 'tenant-b',
      timestamp: TIMESTAMP,
      provider: 'openai',
      model: 'gpt-4o',
      input_tokens: 1,
      output_tokens: 1,
    });
    await within(marker.flush(), 20_000, 'emitter.flush() of the marker');
    expect(marker.stats()).toMatchObject({ sent: 1, dropped: 0 });
    await until(async () => ((await usage(B)).rows[0]?.requests ?? 0) >= 1, "tenant B's marker in /v1/usage", 30_000);
    await marker.close();
    expect(await usage(A)).toEqual(before);
  }, 60_000);

  it('stops on SIGTERM with exit code 0', async () => {
    expect(proc, 'quotaflow all started by an earlier test').toBeDefined();
    const code = await within(proc!.stop(), 30_000, 'quotaflow all to exit after SIGTERM');
    expect(code, proc!.logs().slice(-3_000)).toBe(0);
    proc = undefined;
  }, 40_000);
});
