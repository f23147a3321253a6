/**
 * Emitter SDK against a real local HTTP server standing in for the quotaflow ingest
 * (`POST /v1/events`, NDJSON in, 202 `{ accepted, rejected, results }` out). No fake timers: the
 * emitter's timers, retries and fetch run for real, with short delays, and tests poll instead of sleeping.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createEmitter, type DropInfo, type Emitter, type EmitterOptions, type UsageEventInput } from '../../ingest/sdk/index.ts';

interface Received {
  at: number;
  headers: IncomingMessage['headers'];
  events: Record<string, unknown>[];
}

type Handler = (req: Received, res: ServerResponse) => void;

/** Accept everything: 202 with one accepted result per line. */
const acceptAll: Handler = (req, res) =>
  reply(
    res,
    202,
    ingestAnswer(req.events, () => null),
  );

function ingestAnswer(events: Record<string, unknown>[], reject: (e: Record<string, unknown>) => unknown) {
  const results = events.map((e, index) => {
    const errors = reject(e);
    return errors ? { index, status: 'rejected', errors } : { index, status: 'accepted', event_id: e.event_id };
  });
  const rejected = results.filter((r) => r.status === 'rejected').length;
  return { accepted: events.length - rejected, rejected, results };
}

function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

interface Ingest {
  url: string;
  port: number;
  requests: Received[];
  /** Events received, in order, across requests. */
  events(): Record<string, unknown>[];
  handler: Handler;
  stop(): Promise<void>;
  /** Listen again on the same port (after stop()). */
  restart(): Promise<void>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function startIngest(handler: Handler = acceptAll, port = 0): Promise<Ingest> {
  const requests: Received[] = [];
  let server: Server;
  const ingest: Ingest = {
    url: '',
    port,
    requests,
    handler,
    events: () => requests.flatMap((r) => r.events),
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
    },
    async restart() {
      await listen(ingest.port);
    },
  };
  async function listen(p: number): Promise<void> {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const events = text.split('\n').flatMap((l) => (l ? [JSON.parse(l) as Record<string, unknown>] : []));
        const received = { at: performance.now(), headers: req.headers, events };
        requests.push(received);
        ingest.handler(received, res);
      });
    });
    await new Promise<void>((done) => server.listen(p, '127.0.0.1', () => done()));
    ingest.port = (server.address() as AddressInfo).port;
    ingest.url = `http://127.0.0.1:${ingest.port}`;
  }
  await listen(port);
  cleanups.push(() => (server.listening ? ingest.stop() : undefined));
  return ingest;
}

/** A port nothing listens on: connections are refused. */
async function unusedPort(): Promise<number> {
  const ingest = await startIngest();
  await ingest.stop();
  return ingest.port;
}

function emitterFor(url: string, options: Partial<EmitterOptions> = {}): Emitter {
  const emitter = createEmitter({ url, apiKey: 'test-key-0123456789', flushOnExit: false, ...options });
  cleanups.push(async () => {
    await emitter.close();
  });
  return emitter;
}

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

function event(i: number, extra: Partial<UsageEventInput> = {}): UsageEventInput {
  return { tenant: 'acme', provider: 'openai', model: 'gpt-4o', input_tokens: 100 + i, output_tokens: 10, ...extra };
}

function expectBalanced(emitter: Emitter): void {
  const s = emitter.stats();
  expect(s.emitted).toBe(s.sent + s.dropped + s.buffered);
}

describe('emitter: batching and delivery', () => {
  it('sends NDJSON with the bearer key, batching by size', async () => {
    const ingest = await startIngest();
    const emitter = emitterFor(ingest.url, { maxBatchEvents: 10, maxBatchAgeMs: 60_000 });
    for (let i = 0; i < 25; i++) emitter.emit(event(i));
    // Wait for the client to see both answers (the server may have the requests before that).
    await until(() => ingest.requests.length === 2 && emitter.stats().sent === 20);
    expect(ingest.requests.map((r) => r.events.length)).toEqual([10, 10]);
    expect(ingest.requests[0]!.headers.authorization).toBe('Bearer test-key-0123456789');
    expect(ingest.requests[0]!.headers['content-type']).toBe('application/x-ndjson');
    expect(emitter.stats()).toMatchObject({ emitted: 25, sent: 20, buffered: 5, dropped: 0 });

    await emitter.flush(); // the 5 left over go now, not after the 60 s age
    expect(ingest.requests.map((r) => r.events.length)).toEqual([10, 10, 5]);
    expect(ingest.events().map((e) => e.input_tokens)).toEqual(Array.from({ length: 25 }, (_, i) => 100 + i)); // in order
    expect(emitter.stats()).toMatchObject({ emitted: 25, sent: 25, buffered: 0, dropped: 0, retries: 0 });
  });

  it('sends a partial batch once it is maxBatchAgeMs old', async () => {
    const ingest = await startIngest();
    const emitter = emitterFor(ingest.url, { maxBatchEvents: 500, maxBatchAgeMs: 50 });
    const started = performance.now();
    for (let i = 0; i < 3; i++) emitter.emit(event(i));
    await until(() => ingest.requests.length === 1);
    expect(ingest.requests[0]!.at - started).toBeGreaterThanOrEqual(40);
    expect(ingest.requests[0]!.events).toHaveLength(3);
    await until(() => emitter.stats().sent === 3);
  });

  it('fills event_id and timestamp when absent, keeps them when given, and never mutates the caller object', async () => {
    const ingest = await startIngest();
    const emitter = emitterFor(ingest.url);
    const template = event(0);
    const before = Date.now();
    emitter.emit(template);
    emitter.emit(template); // a reused object must not share an id
    emitter.emit(event(1, { event_id: 'mine-1', timestamp: '2026-01-01T00:00:00Z' }));
    await emitter.flush();
    const [a, b, c] = ingest.events();
    expect(template).not.toHaveProperty('event_id');
    expect(a!.event_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(b!.event_id).not.toBe(a!.event_id);
    expect(a!.timestamp).toBeGreaterThanOrEqual(before);
    expect(Number.isInteger(a!.timestamp)).toBe(true);
    expect(c).toMatchObject({ event_id: 'mine-1', timestamp: '2026-01-01T00:00:00Z' });
  });

  it('flush() resolves at once when nothing is buffered, and close() flushes what is left', async () => {
    const ingest = await startIngest();
    const emitter = emitterFor(ingest.url, { maxBatchEvents: 500, maxBatchAgeMs: 60_000, flushOnExit: true });
    await emitter.flush();
    const listeners = process.listenerCount('beforeExit');
    for (let i = 0; i < 7; i++) emitter.emit(event(i));
    await emitter.close();
    expect(ingest.events()).toHaveLength(7);
    expect(process.listenerCount('beforeExit')).toBe(listeners - 1); // the exit hook is removed
    await emitter.close(); // idempotent
    emitter.emit(event(8));
    await Promise.resolve();
    expect(emitter.stats()).toMatchObject({ emitted: 8, sent: 7, dropped: 1, buffered: 0 });
    expect(emitter.stats().droppedByReason.closed).toBe(1);
  });
});

describe('emitter: never throws', () => {
  it('swallows garbage, cyclic objects, throwing getters and emits after close', async () => {
    const ingest = await startIngest();
    const drops: DropInfo[] = [];
    const emitter = emitterFor(ingest.url, { onDrop: (d) => drops.push(d) });
    const cyclic: Record<string, unknown> = { ...event(1) };
    cyclic.self = cyclic;
    const hostile = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error('boom');
        },
      },
    );
    const garbage: unknown[] = [null, undefined, 42, 'text', [], () => 1, Symbol('x'), hostile];
    expect(() => {
      for (const g of garbage) emitter.emit(g as never);
      emitter.emit(cyclic as never);
      emitter.emit({ ...event(2), big: 10n } as never);
      emitter.emit(event(3));
    }).not.toThrow();
    await emitter.flush();
    // The good event in the same batch as the cyclic and BigInt ones is delivered.
    expect(ingest.events().map((e) => e.input_tokens)).toEqual([103]);
    expect(emitter.stats()).toMatchObject({ emitted: 11, sent: 1, dropped: 10, buffered: 0 });
    expect(emitter.stats().droppedByReason.invalid).toBe(10);
    expect(drops.filter((d) => d.reason === 'invalid').reduce((n, d) => n + d.count, 0)).toBe(10);

    await emitter.close();
    expect(() => emitter.emit(event(4))).not.toThrow();
    expect(() => emitter.emit(null as never)).not.toThrow();
    expect(emitter.stats().droppedByReason.closed).toBe(2);
  });

  it('survives callbacks that throw', async () => {
    const port = await unusedPort();
    const emitter = emitterFor(`http://127.0.0.1:${port}`, {
      maxRetries: 1,
      retryBaseMs: 1,
      onDrop: () => {
        throw new Error('bad onDrop');
      },
      onError: () => {
        throw new Error('bad onError');
      },
    });
    emitter.emit(event(1));
    emitter.emit(null as never);
    await expect(emitter.flush()).resolves.toBeUndefined();
    expect(emitter.stats()).toMatchObject({ dropped: 2, retries: 1 });
  });

  it('rejects bad options at creation, not at emit time', () => {
    expect(() => createEmitter({ url: 'not a url', apiKey: 'k' })).toThrow(TypeError);
    expect(() => createEmitter({ url: 'ftp://x', apiKey: 'k' })).toThrow(/http/);
    expect(() => createEmitter({ url: 'http://x', apiKey: '' })).toThrow(/apiKey/);
    expect(() => createEmitter({ url: 'http://x', apiKey: 'k', maxBatchEvents: -1 })).toThrow(/maxBatchEvents/);
  });
});

describe('emitter: bounded memory and outages', () => {
  it('keeps at most maxBufferEvents with the ingest down, dropping the newest and counting them', async () => {
    const port = await unusedPort();
    let reported = 0;
    const emitter = emitterFor(`http://127.0.0.1:${port}`, {
      maxBufferEvents: 1_000,
      maxBatchEvents: 100,
      maxRetries: 1_000,
      retryBaseMs: 5,
      retryMaxDelayMs: 20,
      closeTimeoutMs: 200,
      onDrop: (d) => {
        if (d.reason === 'buffer_full') reported += d.count;
      },
    });
    const heapBefore = process.memoryUsage().heapUsed;
    for (let i = 0; i < 100_000; i++) {
      emitter.emit(event(i, { user_id: `user-${i % 100}`, tags: { team: 'core' } }));
      if (i % 10_000 === 0) await new Promise((r) => setImmediate(r)); // let sends and retries run meanwhile
    }
    const s = emitter.stats();
    expect(s.buffered).toBeLessThanOrEqual(1_000);
    expect(s.buffered).toBeGreaterThan(0);
    expect(s.sent).toBe(0);
    expect(s.droppedByReason.buffer_full).toBeGreaterThanOrEqual(99_000);
    expect(s.emitted).toBe(100_000);
    expectBalanced(emitter);
    await Promise.resolve();
    expect(reported).toBe(s.droppedByReason.buffer_full); // coalesced reports add up
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(50 * 1024 * 1024);

    await emitter.close(); // the deadline drops what is left, counted as closed
    expect(emitter.stats()).toMatchObject({ buffered: 0, sent: 0, dropped: 100_000 });
    expect(emitter.stats().droppedByReason.closed).toBe(s.buffered);
  });

  it('delivers events buffered during an outage once the ingest is back', async () => {
    const ingest = await startIngest();
    const errors: Error[] = [];
    const emitter = emitterFor(ingest.url, {
      maxBatchEvents: 10,
      maxBatchAgeMs: 10,
      maxRetries: 10_000,
      retryBaseMs: 5,
      retryMaxDelayMs: 30,
      onError: (e) => errors.push(e),
    });
    emitter.emit(event(0));
    await until(() => emitter.stats().sent === 1);
    await ingest.stop(); // connections refused from here on
    for (let i = 1; i <= 45; i++) emitter.emit(event(i));
    await until(() => emitter.stats().retries >= 3);
    expect(emitter.stats()).toMatchObject({ sent: 1, buffered: 45, dropped: 0 });
    expect(errors[0]!.message).toMatch(/request failed/);
    await ingest.restart();
    await until(() => emitter.stats().sent === 46);
    expect(ingest.events().map((e) => e.input_tokens)).toEqual(Array.from({ length: 46 }, (_, i) => 100 + i));
    expect(emitter.stats()).toMatchObject({ buffered: 0, dropped: 0 });
  });

  it('drops a batch after maxRetries, counted as retries_exhausted, and flush() still resolves', async () => {
    const port = await unusedPort();
    const drops: DropInfo[] = [];
    const emitter = emitterFor(`http://127.0.0.1:${port}`, { maxRetries: 2, retryBaseMs: 1, onDrop: (d) => drops.push(d) });
    for (let i = 0; i < 5; i++) emitter.emit(event(i));
    await expect(emitter.flush()).resolves.toBeUndefined();
    expect(emitter.stats()).toMatchObject({ sent: 0, dropped: 5, buffered: 0, retries: 2 });
    expect(drops).toEqual([{ count: 5, reason: 'retries_exhausted', error: expect.stringMatching(/request failed/) }]);
  });
});

describe('emitter: ingest answers', () => {
  it('honours Retry-After on 503 and then delivers', async () => {
    let calls = 0;
    const ingest = await startIngest((req, res) => {
      calls++;
      if (calls === 1) reply(res, 503, { error: 'broker unreachable' }, { 'retry-after': '1' });
      else acceptAll(req, res);
    });
    const emitter = emitterFor(ingest.url, { retryBaseMs: 1 });
    for (let i = 0; i < 3; i++) emitter.emit(event(i));
    await emitter.flush();
    expect(ingest.requests).toHaveLength(2);
    expect(ingest.requests[1]!.at - ingest.requests[0]!.at).toBeGreaterThanOrEqual(950); // not the 1 ms backoff
    expect(ingest.requests[1]!.events).toEqual(ingest.requests[0]!.events); // same events, same ids
    expect(emitter.stats()).toMatchObject({ sent: 3, retries: 1, dropped: 0 });
  });

  it.each([429, 500, 502])('retries the whole batch on %i', async (status) => {
    let calls = 0;
    const ingest = await startIngest((req, res) => {
      calls++;
      if (calls <= 2) reply(res, status, { error: 'try later' });
      else acceptAll(req, res);
    });
    const emitter = emitterFor(ingest.url, { retryBaseMs: 2 });
    for (let i = 0; i < 4; i++) emitter.emit(event(i));
    await emitter.flush();
    expect(ingest.requests.map((r) => r.events.length)).toEqual([4, 4, 4]);
    expect(emitter.stats()).toMatchObject({ sent: 4, retries: 2, dropped: 0 });
  });

  it.each([400, 401, 413])('drops the batch on %i without retrying (rejected_by_server)', async (status) => {
    const ingest = await startIngest((_req, res) => reply(res, status, { error: 'no' }));
    const drops: DropInfo[] = [];
    const errors: Error[] = [];
    const emitter = emitterFor(ingest.url, { retryBaseMs: 1, onDrop: (d) => drops.push(d), onError: (e) => errors.push(e) });
    for (let i = 0; i < 3; i++) emitter.emit(event(i));
    await emitter.flush();
    expect(ingest.requests).toHaveLength(1);
    expect(drops).toEqual([{ count: 3, reason: 'rejected_by_server', error: expect.stringContaining(`HTTP ${status}`) }]);
    expect(errors).toHaveLength(1);
    expect(emitter.stats()).toMatchObject({ sent: 0, dropped: 3, retries: 0, buffered: 0 });
  });

  it('never resends the events a 202 reports as rejected (they are in the dead-letter store)', async () => {
    const ingest = await startIngest((req, res) =>
      reply(
        res,
        202,
        ingestAnswer(req.events, (e) => (e.tenant === 'bad' ? [{ field: 'tenant', reason: 'not allowed for this key' }] : null)),
      ),
    );
    const drops: DropInfo[] = [];
    const emitter = emitterFor(ingest.url, { onDrop: (d) => drops.push(d) });
    emitter.emit(event(0));
    emitter.emit(event(1, { tenant: 'bad', event_id: 'bad-1' }));
    emitter.emit(event(2));
    await emitter.flush();
    await new Promise((r) => setTimeout(r, 50)); // give a wrong retry the chance to show up
    expect(ingest.requests).toHaveLength(1);
    expect(emitter.stats()).toMatchObject({ sent: 2, dropped: 1, retries: 0, buffered: 0 });
    expect(drops).toEqual([{ count: 1, reason: 'rejected_by_server', error: expect.stringContaining('bad-1') }]);
  });

  it('keeps one request in flight and sends batches in order', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const ingest = await startIngest((req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => {
        inFlight--;
        acceptAll(req, res);
      }, 10);
    });
    const emitter = emitterFor(ingest.url, { maxBatchEvents: 5 });
    for (let i = 0; i < 40; i++) emitter.emit(event(i));
    await emitter.flush();
    expect(maxInFlight).toBe(1);
    expect(ingest.events().map((e) => e.input_tokens)).toEqual(Array.from({ length: 40 }, (_, i) => 100 + i));
  });
});

describe('emitter: process exit', () => {
  const root = resolve(import.meta.dirname, '../..');
  /** Runs an app script in a child process; the script's last stdout line is parsed as JSON (its stats). */
  function runScript(source: string): Promise<{ code: number | null; stderr: string; stats: Record<string, unknown> }> {
    const dir = mkdtempSync(join(tmpdir(), 'qf-sdk-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'app.ts');
    writeFileSync(file, source);
    return new Promise((done) => {
      const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      child.on('close', (code) => done({ code, stderr, stats: JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') }));
    });
  }
  const sdk = JSON.stringify(join(root, 'ingest/sdk/index.ts'));

  it('flushes on beforeExit when the app just ends', async () => {
    const ingest = await startIngest();
    const run = await runScript(`
      import { createEmitter } from ${sdk};
      const emitter = createEmitter({ url: ${JSON.stringify(ingest.url)}, apiKey: 'k', maxBatchAgeMs: 60_000 });
      for (let i = 0; i < 3; i++) emitter.emit({ tenant: 't', provider: 'openai', model: 'm', input_tokens: i, output_tokens: 1 });
      process.on('exit', () => console.log(JSON.stringify(emitter.stats())));
    `);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(ingest.events().map((e) => e.input_tokens)).toEqual([0, 1, 2]);
    expect(run.stats).toMatchObject({ emitted: 3, sent: 3, buffered: 0 });
  }, 20_000);

  it('does not hold the process past closeTimeoutMs when the ingest is down', async () => {
    const port = await unusedPort();
    const run = await runScript(`
      import { createEmitter } from ${sdk};
      const emitter = createEmitter({ url: 'http://127.0.0.1:${port}', apiKey: 'k', maxRetries: Infinity, retryBaseMs: 10, closeTimeoutMs: 300 });
      emitter.emit({ tenant: 't', provider: 'openai', model: 'm', input_tokens: 1, output_tokens: 1 });
      process.on('exit', () => console.log(JSON.stringify(emitter.stats())));
    `);
    expect(run.code).toBe(0);
    // It kept retrying until the deadline (the exit flush held the process), then dropped and exited.
    expect(run.stats).toMatchObject({ emitted: 1, sent: 0, dropped: 1, buffered: 0, droppedByReason: { closed: 1 } });
    expect(run.stats.retries).toBeGreaterThan(3);
  }, 20_000);
});
