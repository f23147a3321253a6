/**
 * The `all` and `api` roles under full load, as real processes (`node bin/quotaflow.js -c <file>
 * <role>`): peak RSS of each (sampled every 100 ms from /proc), and the `all` role's embedded
 * end-to-end rate over HTTP. The ingest and processor roles are measured by bench/kafka.bench.ts.
 *
 *   npm run bench:roles -- [events=200000] [seconds=10]
 *
 * 1. `all` (embedded: in-process transport, chDB in a temporary folder, API): `events` usage events
 *    as NDJSON requests of 5,000 (16 tenants, built before the clock), 4 in flight, as fast as it
 *    answers 202; end to end = until `quotaflow_rows_written_total{table="usage_events"}` on its
 *    /metrics counts them all. Ingest waits while the in-process transport holds
 *    `pipeline.transport_capacity` uncommitted events, which bounds what it buffers.
 * 2. `api` on the same folder (after `all` stopped; chDB lets one process own it): for `seconds`,
 *    autocannon with 64 connections on POST /v1/route (routing lookups from the in-memory snapshot)
 *    and at the same time 4 connections on GET /v1/usage (a ClickHouse aggregate query each).
 * Prints one JSON line (`"bench":"roles"`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { freePort, waitHttpOk } from '../test/helpers/roles.ts';
import { benchEvent } from './bench-event.ts';
import { rssOf } from './proc-stats.ts';

const args = process.argv.slice(2);
const total = Number(args[0] ?? 200_000);
const seconds = Number(args[1] ?? 10);
const REQUEST_EVENTS = 5_000;
const CONCURRENCY = 4;
const TENANTS = Array.from({ length: 16 }, (_, i) => `bench-${i}`);
const keyOf = (tenant: string) => `${tenant}-key-0123456789abcdef`;
const ADMIN_KEY = 'bench-admin-key-0123456789abcdef';
const log = (msg: string) => process.stderr.write(`[bench:roles] ${msg}\n`);

const dir = mkdtempSync(join(tmpdir(), 'qf-bench-roles-'));
const configFile = join(dir, 'quotaflow.yaml');
writeFileSync(
  configFile,
  [
    'transport: in-process',
    `clickhouse: { mode: embedded, path: ${JSON.stringify(join(dir, 'data'))} }`,
    'ingest_keys:',
    ...TENANTS.map((t) => `  - { key: ${keyOf(t)}, tenant: ${t} }`),
    'api_keys:',
    `  - { key: ${ADMIN_KEY}, role: admin }`,
    'routing:',
    '  candidates:',
    '    - { id: gpt-4o, provider: openai, model: gpt-4o, capabilities: [tools, vision] }',
    '    - { id: gpt-4o-mini, provider: openai, model: gpt-4o-mini, capabilities: [tools] }',
    '    - { id: gpt-4.1, provider: openai, model: gpt-4.1, capabilities: [tools, long_context] }',
    '    - { id: o4-mini, provider: openai, model: o4-mini, capabilities: [tools, reasoning] }',
    '',
  ].join('\n'),
);

interface Role {
  proc: ChildProcess;
  base: string;
  /** RSS once ready, before any load, bytes. */
  idleRss: number;
  peakRss: number;
  stop(): Promise<void>;
}

async function startRole(role: 'all' | 'api'): Promise<Role> {
  const port = await freePort();
  const proc = spawn('node', ['bin/quotaflow.js', '-c', configFile, role], {
    env: { ...process.env, HTTP_PORT: String(port), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-20_000);
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const r: Role = {
    proc,
    base: `http://127.0.0.1:${port}`,
    idleRss: 0,
    peakRss: 0,
    async stop() {
      clearInterval(timer);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await exited;
    },
  };
  const timer = setInterval(() => {
    r.peakRss = Math.max(r.peakRss, rssOf(proc.pid));
  }, 100);
  try {
    await waitHttpOk(`${r.base}/readyz`, 120_000);
  } catch (err) {
    await r.stop();
    throw new Error(`${role} did not become ready: ${(err as Error).message}\n${stderr}`);
  }
  r.idleRss = rssOf(proc.pid);
  return r;
}

const mb = (bytes: number) => Math.round(bytes / 2 ** 20);

async function rowsWritten(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = /^quotaflow_rows_written_total\{table="usage_events"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

// Request bodies, built before the clock starts.
const now = Date.now();
const requests = Array.from({ length: Math.ceil(total / REQUEST_EVENTS) }, (_, r) => {
  const tenant = TENANTS[r % TENANTS.length] as string;
  const lines: string[] = [];
  for (let k = 0; k < Math.min(REQUEST_EVENTS, total - r * REQUEST_EVENTS); k++) {
    const i = r * REQUEST_EVENTS + k;
    lines.push(JSON.stringify(benchEvent(i, `r-${i}`, tenant, now - 60_000 + (i % 60_000))));
  }
  return { tenant, text: lines.join('\n') };
});

const result: Record<string, unknown> = { bench: 'roles', events: total };
try {
  log('all: starting');
  const all = await startRole('all');
  try {
    log(`all: ${total} events`);
    const started = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < requests.length) {
        const r = requests[next++] as (typeof requests)[number];
        const res = await fetch(`${all.base}/v1/events`, {
          method: 'POST',
          headers: { authorization: `Bearer ${keyOf(r.tenant)}`, 'content-type': 'application/x-ndjson' },
          body: r.text,
        });
        if (res.status !== 202) throw new Error(`all answered ${res.status}: ${await res.text()}`);
        await res.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const accepted = (performance.now() - started) / 1000;
    const deadline = Date.now() + 300_000;
    while ((await rowsWritten(all.base)) < total) {
      if (Date.now() > deadline) throw new Error('all: the events were not all written within 5 minutes');
      await new Promise((r) => setTimeout(r, 50));
    }
    const done = (performance.now() - started) / 1000;
    result.all = {
      http_ingest_events_per_s: Math.round(total / accepted),
      end_to_end_events_per_s: Math.round(total / done),
      idle_rss_mb: mb(all.idleRss),
      peak_rss_mb: mb(all.peakRss),
    };
    log(`all: ${JSON.stringify(result.all)}`);
  } finally {
    await all.stop();
  }

  log('api: starting');
  const api = await startRole('api');
  try {
    const routeRequests = TENANTS.map((t) => ({
      method: 'POST' as const,
      path: '/v1/route',
      headers: { 'content-type': 'application/json', 'x-api-key': keyOf(t) },
      body: JSON.stringify({ estimated_input_tokens: 2_000, estimated_output_tokens: 400 }),
    }));
    const usagePath = `/v1/usage?from=${new Date(now - 3_600_000).toISOString()}&to=${new Date(now + 60_000).toISOString()}&window=minute`;
    const load = (opts: autocannon.Options) => autocannon({ duration: seconds, ...opts });
    const [route, usage] = await Promise.all([
      load({ url: api.base, connections: 64, requests: routeRequests }),
      load({ url: `${api.base}${usagePath}`, connections: 4, headers: { 'x-api-key': keyOf('bench-0') } }),
    ]);
    for (const [name, r] of [
      ['route', route],
      ['usage', usage],
    ] as const) {
      if (r.non2xx > 0 || r.errors > 0) throw new Error(`api ${name}: ${r.non2xx} non-2xx answers, ${r.errors} errors`);
    }
    result.api = {
      route_requests_per_s: Math.round(route.requests.average),
      route_p99_ms: route.latency.p99,
      usage_requests_per_s: Math.round(usage.requests.average),
      usage_p99_ms: usage.latency.p99,
      idle_rss_mb: mb(api.idleRss),
      peak_rss_mb: mb(api.peakRss),
    };
    log(`api: ${JSON.stringify(result.api)}`);
  } finally {
    await api.stop();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify({ ...result, node: process.version }));
