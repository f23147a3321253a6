/**
 * Routing API benchmark (issue 4): `POST /v1/route` over HTTP, served by the real fastify app
 * (api/app.ts: API-key check, TypeBox body validation, decide(), JSON serialisation) in a child
 * process, so the server has one JS thread on one core while autocannon loads it from this one.
 *
 * Setup: 1,000 tenants, each with its own API key and its own compiled snapshot of 20 candidates
 * (varied latency, error rate, quota state), as api/routing-snapshot.ts builds them. Requests
 * rotate over the tenants, with a token estimate and, one in three, required tags.
 * The ClickHouse client given to the app throws if touched: a lookup never queries the store.
 *
 * Prints, for `GET /bench/static` (a fixed JSON answer through the same app: the HTTP floor; the
 * ceiling of the target ratio), for `GET /bench/static-sized` (one real routing answer, about 2 KB,
 * served as is: what the answer's size costs without the lookup), for `POST /bench/static-post`
 * (the lookups' request bodies, read and parsed, answered with the small fixed answer: what the
 * request side costs without the lookup) and for `POST /v1/route`: requests/s (autocannon mean), client latency p50/p99 (ms), server-side
 * latency p50/p99 (µs, from onRequest to onResponse, node:perf_hooks histogram), and the server's
 * CPU time per request (process.cpuUsage over the run / requests) with the one-core capacity it
 * implies (1 s / CPU per request). On this 2-core machine autocannon takes one core and the server
 * the other, so req/s is bounded by the load generator too; the CPU figure is the server's own cost.
 * Then a light load (2,000 requests/s paced over 4 keep-alive connections of node:http, 5 s per
 * endpoint) gives the client-side latency below saturation, measured per request here (64
 * connections measure queueing, not the service; Node's fetch client added millisecond stalls of
 * its own to the static route as much as to the route).
 *
 *   npm run bench:route [-- seconds=10 connections=64]
 *
 * Not a test: figures depend on the machine. Target (issue 4): >= 20,000 lookups/s, p99 <= 2 ms.
 */
import { type ChildProcess, fork } from 'node:child_process';
import http from 'node:http';
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { buildApp } from '../api/app.ts';
import { RouteResponse } from '../api/routes/route.route.ts';
import { type CandidateLive, compileSnapshot, type RoutingCandidate, type RoutingSnapshot } from '../domain/routing.ts';
import type { ClickHouseClient } from '../storage/clickhouse.ts';

const TENANTS = 1_000;
const CANDIDATES = 20;
const args = Object.fromEntries(process.argv.slice(2).map((a) => a.split('=') as [string, string]));
const seconds = Number(args.seconds ?? 10);
const connections = Number(args.connections ?? 64);
/** The light-load run (client-side latency below saturation): clients and seconds per endpoint. */
const LIGHT_CONNECTIONS = 4;
const LIGHT_SECONDS = 5;
/** The light run's offered rate, requests/s over all its connections: a tenth of the route's capacity here. */
const LIGHT_RATE = 2_000;
const keyOf = (t: number) => `bench-key-${String(t).padStart(4, '0')}-0123456789abcdef`;

function candidates(): RoutingCandidate[] {
  const caps = ['tools', 'vision', 'json_mode', 'long_context', 'audio', 'reasoning'];
  const comps = ['gdpr', 'soc2', 'eu_residency', 'no_training'];
  return Array.from({ length: CANDIDATES }, (_, i) => ({
    id: `cand-${String(i).padStart(2, '0')}`,
    provider: ['openai', 'anthropic', 'google', 'mistral'][i % 4]!,
    model: `model-${i}`,
    capabilities: caps.filter((_, k) => (i + k) % 3 !== 0),
    compliance: comps.filter((_, k) => (i * 7 + k) % 4 !== 0),
    price: { input_per_1m: 0.15 + (i % 7) * 0.9, output_per_1m: 0.6 + (i % 5) * 3.1 },
    ...(i % 5 === 0 ? { min_remaining_tokens: 8_000 } : {}),
  }));
}

/** One tenant's live state: deterministic variety of latency, errors and quota use. */
function liveFor(tenant: number, cands: RoutingCandidate[]): Map<string, CandidateLive> {
  return new Map(
    cands.map((c, i) => {
      const x = (tenant * 31 + i * 17) % 100;
      return [
        c.id,
        {
          p95_latency_ms: i === 19 ? null : 300 + ((i * 137 + tenant) % 2500),
          error_rate: (x % 6) * 0.03,
          requests: 50 + i * 100,
          quota_remaining_ratio: x % 3 === 0 ? null : x / 100,
          quota_exhausted: x === 4,
          breaker_open: x === 11,
          retry_after_s: x === 4 || x === 11 ? 300 : null,
          remaining_tokens: x % 2 === 0 ? x * 200 : null,
          quota_soft: x > 80,
        },
      ];
    }),
  );
}

/** Child: build the app and listen on an ephemeral port; report the port and answer stats requests. */
async function serve(): Promise<void> {
  const cands = candidates();
  const snapshots = new Map<string, RoutingSnapshot>();
  const keys = [];
  for (let t = 0; t < TENANTS; t++) {
    const tenant = `tenant-${t}`;
    snapshots.set(tenant, compileSnapshot(cands, liveFor(t, cands)));
    keys.push({ key: keyOf(t), tenant });
  }
  const untouchable = new Proxy({} as ClickHouseClient, {
    get: (_t, prop) => {
      throw new Error(`the routing path must not touch ClickHouse (called .${String(prop)})`);
    },
  });
  const app = buildApp({
    logger: false,
    bodyLimitBytes: 1_048_576,
    readiness: {},
    api: {
      clickhouse: untouchable,
      keys,
      routing: { current: (tenant) => snapshots.get(tenant)!, remaining: () => [] },
    },
  });
  const hist: Record<string, RecordableHistogram> = {
    route: createHistogram(),
    static: createHistogram(),
    static_sized: createHistogram(),
    static_post: createHistogram(),
  };
  const byUrl = new Map([
    ['/v1/route', hist.route],
    ['/bench/static', hist.static],
    ['/bench/static-sized', hist.static_sized],
    ['/bench/static-post', hist.static_post],
  ]);
  const started = new WeakMap<object, bigint>();
  app.addHook('onRequest', async (req) => {
    started.set(req, process.hrtime.bigint());
  });
  app.addHook('onResponse', async (req) => {
    const t0 = started.get(req);
    const h = byUrl.get(req.url);
    if (t0 !== undefined && h) h.record(Math.max(1, Number(process.hrtime.bigint() - t0)));
  });
  const STATIC = { chosen: { id: 'cand-00', provider: 'openai', model: 'model-0' }, fallbacks: [], excluded: [], retry_after_s: null };
  app.get('/bench/static', async () => STATIC);
  // The request side of a lookup without the lookup: the same POST bodies (read and JSON-parsed by
  // fastify), the same small fixed answer as /bench/static.
  app.post('/bench/static-post', async () => STATIC);
  // The same answer bytes as a lookup, without the lookup: one real decision, made once and
  // served as is (through the route's own compiled serialiser). Separates what the answer's size
  // costs (serialising and writing about 2 KB) from what the lookup itself costs.
  let sized: unknown;
  app.get('/bench/static-sized', { schema: { response: { 200: RouteResponse } } }, async () => sized);
  // Server CPU (user + system) since the last stats call: CPU per request gives the one-core
  // capacity whatever the load generator manages (on 2 cores it shares the machine with the server).
  let cpu = process.cpuUsage();
  app.get('/bench/stats', async () => {
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    const cpuUs = used.user + used.system;
    const out = Object.fromEntries(
      Object.entries(hist).map(([k, h]) => [
        k,
        {
          count: h.count,
          p50_us: h.percentile(50) / 1000,
          p99_us: h.percentile(99) / 1000,
          max_us: h.max / 1000,
          cpu_us_per_request: h.count > 0 ? cpuUs / h.count : 0,
        },
      ]),
    );
    for (const h of Object.values(hist)) h.reset();
    return out;
  });
  await app.ready();
  const one = await app.inject({
    method: 'POST',
    url: '/v1/route',
    headers: { 'content-type': 'application/json', 'x-api-key': keyOf(6) },
    payload: {
      estimated_input_tokens: 4_000,
      estimated_output_tokens: 400,
      required_compliance: ['gdpr'],
      required_capabilities: ['tools'],
    },
  });
  sized = one.json();
  await app.listen({ host: '127.0.0.1', port: 0 });
  // A clean exit (so `node --cpu-prof` writes its profile when the run stops the server).
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void app.close().then(() => process.exit(0)));
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  if (process.send) process.send({ port });
  else console.log(`listening on 127.0.0.1:${port} (run without --serve to load it)`);
}

async function load(url: string, opts: Partial<autocannon.Options>): Promise<autocannon.Result> {
  return autocannon({ url, connections, duration: seconds, pipelining: 1, ...opts });
}

async function main(): Promise<void> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--serve'], {
    // BENCH_PROFILE=<dir>: CPU profile of the server (written when the run stops it).
    execArgv: ['--import', 'tsx', ...(process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [])],
    stdio: 'inherit',
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  const stats = async () =>
    (await fetch(`${base}/bench/stats`)).json() as Promise<Record<string, { p50_us: number; p99_us: number; cpu_us_per_request: number }>>;
  let n = 0;
  const routeRequest = (): autocannon.Request => {
    const t = n++ % TENANTS;
    const body: Record<string, unknown> = { estimated_input_tokens: 1_000 + (t % 7) * 500, estimated_output_tokens: 400 };
    if (t % 3 === 0) body.required_capabilities = ['tools'];
    if (t % 6 === 0) body.required_compliance = ['gdpr'];
    if (t % 4 === 0) body.task_class = 'simple';
    return {
      method: 'POST',
      path: '/v1/route',
      headers: { 'content-type': 'application/json', 'x-api-key': keyOf(t) },
      body: JSON.stringify(body),
    };
  };
  // Pre-built requests (one per tenant), cycled by every connection: no client JS per request.
  const routeOpts: Partial<autocannon.Options> = { requests: Array.from({ length: TENANTS }, () => routeRequest()) };

  const sizedBytes = Buffer.byteLength(await (await fetch(`${base}/bench/static-sized`)).text());
  console.log(`warm-up 3 s ...`);
  await autocannon({ url: base, connections, duration: 3, ...routeOpts });
  await stats();

  const rows: string[][] = [];
  const figures: Record<string, Record<string, number>> = {};
  for (const [name, key, opts] of [
    ['GET /bench/static', 'static', { url: `${base}/bench/static` }],
    [
      'POST /bench/static-post',
      'static_post',
      { url: base, requests: routeOpts.requests?.map((q) => ({ ...q, path: '/bench/static-post' })) },
    ],
    ['GET /bench/static-sized', 'static_sized', { url: `${base}/bench/static-sized` }],
    ['POST /v1/route', 'route', { url: base, ...routeOpts }],
  ] as const) {
    const r = await load(opts.url, opts);
    const s = (await stats())[key]!;
    if (r.non2xx > 0 || r.errors > 0) throw new Error(`${name}: ${r.non2xx} non-2xx answers, ${r.errors} errors`);
    figures[key] = {
      requests_per_s: Math.round(r.requests.average),
      client_p50_ms: r.latency.p50,
      client_p99_ms: r.latency.p99,
      server_p50_us: Number(s.p50_us.toFixed(1)),
      server_p99_us: Number(s.p99_us.toFixed(1)),
      server_cpu_us_per_request: Number(s.cpu_us_per_request.toFixed(1)),
      one_core_capacity_per_s: Math.round(1e6 / s.cpu_us_per_request),
    };
    rows.push([
      name,
      Math.round(r.requests.average).toLocaleString('en-US'),
      String(r.latency.p50),
      String(r.latency.p99),
      s.p50_us.toFixed(1),
      s.p99_us.toFixed(1),
      s.cpu_us_per_request.toFixed(1),
      Math.round(1e6 / s.cpu_us_per_request).toLocaleString('en-US'),
    ]);
  }
  // Light load: LIGHT_RATE requests/s, paced over LIGHT_CONNECTIONS keep-alive connections;
  // latency per request measured here (ns resolution; autocannon reports whole milliseconds), from
  // the moment the request is sent, for the client-side p99 below saturation.
  const agent = new http.Agent({ keepAlive: true, maxSockets: LIGHT_CONNECTIONS });
  const { port: serverPort } = new URL(base);
  const send = (q: autocannon.Request): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: serverPort, path: q.path, method: q.method, headers: q.headers as Record<string, string>, agent },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(q.body as string | undefined);
    });
  const light: Record<string, Record<string, number>> = {};
  for (const name of ['static', 'route'] as const) {
    const reqs =
      name === 'static'
        ? [{ method: 'GET', path: '/bench/static', headers: {}, body: undefined }]
        : (routeOpts.requests as autocannon.Request[]);
    const h = createHistogram();
    const started = performance.now();
    const until = started + LIGHT_SECONDS * 1000;
    const intervalMs = (1000 * LIGHT_CONNECTIONS) / LIGHT_RATE;
    let count = 0;
    const worker = async (w: number) => {
      for (let k = 0, i = w; ; k++, i += LIGHT_CONNECTIONS) {
        const due = started + (w / LIGHT_CONNECTIONS + k) * intervalMs;
        if (due >= until) break;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const q = reqs[i % reqs.length] as autocannon.Request;
        const t0 = process.hrtime.bigint();
        const status = await send(q);
        h.record(Math.max(1, Number(process.hrtime.bigint() - t0)));
        if (status !== 200) throw new Error(`${q.path} answered ${status}`);
        count++;
      }
    };
    await Promise.all(Array.from({ length: LIGHT_CONNECTIONS }, (_, w) => worker(w)));
    const s = (await stats())[name] as { p50_us: number; p99_us: number };
    light[name] = {
      requests_per_s: Math.round(count / LIGHT_SECONDS),
      client_p50_ms: Number((h.percentile(50) / 1e6).toFixed(3)),
      client_p99_ms: Number((h.percentile(99) / 1e6).toFixed(3)),
      server_p50_us: Number(s.p50_us.toFixed(1)),
      server_p99_us: Number(s.p99_us.toFixed(1)),
    };
  }
  agent.destroy();
  console.log(
    `light load, ${LIGHT_RATE} requests/s over ${LIGHT_CONNECTIONS} connections for ${LIGHT_SECONDS} s each:`,
    JSON.stringify(light),
  );
  child.kill('SIGTERM');
  console.log(
    `\n${TENANTS} tenants, ${CANDIDATES} candidates, ${connections} connections, ${seconds} s per run, server on one Node thread`,
  );
  const head = [
    'endpoint',
    'req/s',
    'client p50 ms',
    'client p99 ms',
    'server p50 µs',
    'server p99 µs',
    'server CPU µs/req',
    'one-core capacity req/s',
  ];
  console.table(rows.map((r) => Object.fromEntries(head.map((h, i) => [h, r[i]]))));
  const ratio = (k: string, base = 'static') => Number(((figures.route?.[k] ?? 0) / (figures[base]?.[k] ?? 1)).toFixed(3));
  console.log(
    JSON.stringify({
      bench: 'route',
      tenants: TENANTS,
      candidates: CANDIDATES,
      connections,
      seconds,
      ...figures,
      light: { connections: LIGHT_CONNECTIONS, rate_per_s: LIGHT_RATE, seconds: LIGHT_SECONDS, ...light },
      ratio_requests_per_s: ratio('requests_per_s'),
      ratio_one_core_capacity: ratio('one_core_capacity_per_s'),
      static_sized_answer_bytes: sizedBytes,
      ratio_requests_per_s_to_sized: ratio('requests_per_s', 'static_sized'),
      ratio_requests_per_s_to_post: ratio('requests_per_s', 'static_post'),
      node: process.version,
    }),
  );
}

if (process.argv.includes('--serve')) await serve();
else await main();
