/**
 * Peak memory of HTTP ingest under many concurrent large requests, with and without the bound on
 * request bytes in flight (ingest/http/in-flight.ts, config `http.max_in_flight_bytes`).
 *
 * A child process serves `POST /v1/events` (the real app, body limit 5 MiB) over a stub producer
 * that acknowledges each send after `delayMs` (a slow broker). This process fires `n` concurrent
 * requests of an NDJSON body of about `size` bytes (small usage events) and reports the answers,
 * the child's peak RSS (VmHWM from /proc) and its peak heap. With `retry=1` a refused client waits
 * the Retry-After and sends again until it gets a 202. `limit=none` serves without the bound.
 * Heap limits go to the child through NODE_OPTIONS (e.g. NODE_OPTIONS=--max-old-space-size=512).
 *
 *   npm run bench:ingest-in-flight -- [n=200 size=1048576 limit=33554432|none retry=0 delayMs=2000]
 *
 * Not a test: it reports what it measures, whatever it is. Linux only (/proc).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { buildApp } from '../api/app.ts';
import { createInFlightLimit } from '../ingest/http/in-flight.ts';
import type { Producer } from '../ingest/transport/transport.ts';

const KEY = 'bench-key-0123456789abcdef';
const args = Object.fromEntries(process.argv.slice(2).map((a) => a.split('=') as [string, string]));
const MB = 1_048_576;

/** Child: serve, print the port; on SIGTERM print the peak of each process.memoryUsage() field (sampled every 50 ms). */
async function serve(): Promise<void> {
  const delayMs = Number(args.delayMs ?? 2_000);
  const slow: Producer = { send: () => new Promise((resolve) => setTimeout(resolve, delayMs)), close: async () => {} };
  const app = buildApp({
    logger: false,
    bodyLimitBytes: 5 * MB,
    readiness: {},
    ingest: {
      usageProducer: slow,
      dlqProducer: slow,
      keys: [{ key: KEY, tenant: 'bench' }],
      maxEventsPerRequest: 10_000,
      produceTimeoutMs: 30_000,
      ...(args.limit === 'none' ? {} : { inFlight: createInFlightLimit({ maxBytes: Number(args.limit) }) }),
    },
  });
  const peak: Record<string, number> = {};
  setInterval(() => {
    for (const [k, v] of Object.entries(process.memoryUsage())) peak[k] = Math.max(peak[k] ?? 0, v);
  }, 50).unref();
  process.on('SIGTERM', () => {
    process.stdout.write(`${JSON.stringify({ heap_used_mb: Math.round((peak.heapUsed ?? 0) / MB) })}\n`);
    process.exit(0);
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  process.stdout.write(`${typeof address === 'object' && address ? address.port : 0}\n`);
}

async function main(): Promise<void> {
  const n = Number(args.n ?? 200);
  const size = Number(args.size ?? MB);
  const limit = args.limit ?? String(32 * MB);
  let body = '';
  for (let i = 0; body.length < size; i++) {
    const event = {
      event_id: `e-${i}`,
      timestamp: Date.now() - 60_000,
      provider: 'openai',
      model: 'gpt-4o',
      input_tokens: 1_000,
      output_tokens: 200,
    };
    body += `${JSON.stringify({ ...event, tags: { team: 'search' } })}\n`;
  }
  const payload = Buffer.from(body);
  const childArgs = ['--import', 'tsx', fileURLToPath(import.meta.url), 'serve', `limit=${limit}`, `delayMs=${args.delayMs ?? 2_000}`];
  const child = spawn(process.execPath, childArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  child.stdout.on('data', (d) => lines.push(...String(d).trim().split('\n')));
  while (lines.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
  const port = Number(lines.shift());
  const status = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]);
  const idleKb = status('VmRSS');

  const post = () =>
    new Promise<number>((resolve, reject) => {
      const headers = { 'content-type': 'application/x-ndjson', 'content-length': payload.length, 'x-api-key': KEY };
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/events', agent: false, headers }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(payload);
    });
  let retries = 0;
  const send = async (): Promise<number> => {
    for (;;) {
      const code = await post();
      if (code !== 503 || args.retry !== '1') return code;
      retries += 1;
      await new Promise((resolve) => setTimeout(resolve, 1_000)); // Retry-After: 1
    }
  };
  const started = performance.now();
  const codes = await Promise.all(Array.from({ length: n }, send));
  const wallMs = Math.round(performance.now() - started);
  const peakKb = status('VmHWM');
  child.kill('SIGTERM');
  while (lines.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
  const answers: Record<number, number> = {};
  for (const c of codes) answers[c] = (answers[c] ?? 0) + 1;
  const report = {
    limit_bytes: limit,
    requests: n,
    body_bytes: payload.length,
    answers,
    retries,
    idle_rss_mb: Math.round(idleKb / 1_024),
    peak_rss_mb: Math.round(peakKb / 1_024),
    ...JSON.parse(lines[0] as string),
    wall_ms: wallMs,
  };
  console.log(JSON.stringify(report));
}

await (process.argv[2] === 'serve' ? serve() : main());
