/**
 * Emitter SDK overhead: what `emit()` costs the app.
 *
 *   npx tsx bench/emit.bench.ts [calls=1000000] [rateSeconds=5]
 *
 * 1. `emit_absent`: ns per emit() over `calls` calls with no ingest listening and batches so large
 *    that nothing is sent (the pure hot path: check, shallow copy, id + timestamp, ring push).
 *    Run as rounds of 10 000 calls (the default maxBufferEvents) on fresh emitters: each round ends
 *    with a full buffer, never a drop, and the cost of holding that many live events is included.
 * 2. `emit_buffer_full`: ns per emit() when the buffer is full (the drop path during an outage).
 * 3. `emit_with_sink`: ns per emit() with a local sink (a child process answering 202) and default
 *    batching, so serialisation and sends run between the app's chunks of 1 000 emits (the app waits
 *    while more than 5 000 are buffered: without that pause a tight loop outruns one request in
 *    flight and the bounded buffer drops, by design); plus the whole process's CPU per event
 *    (emit + JSON + HTTP client), which is the SDK's full cost, and the sustained events/s.
 * 4. `loop_delay_at_10k_per_s`: event-loop delay (perf_hooks.monitorEventLoopDelay) while emitting
 *    100 events every 10 ms for `rateSeconds`, against a baseline with the same timer and no emits.
 *
 * Not a test: figures depend on the machine. Prints one JSON line (`"bench":"emit"`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createEmitter, type UsageEventInput } from '../ingest/sdk/index.ts';

const calls = Number(process.argv[2] ?? 1_000_000);
const rateSeconds = Number(process.argv[3] ?? 5);

const models = ['gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4-5', 'o4-mini'];
const events: UsageEventInput[] = Array.from({ length: 1_024 }, (_, i) => ({
  tenant: `tenant-${i % 8}`,
  user_id: `user-${i % 100}`,
  task_id: `task-${i % 50}`,
  provider: i % 2 ? 'openai' : 'anthropic',
  model: models[i % models.length]!,
  input_tokens: 500 + i,
  cached_input_tokens: i % 200,
  output_tokens: 40 + (i % 300),
  latency_ms: 300 + i,
  finish_reason: 'stop',
  tags: { team: `team-${i % 4}` },
}));

async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

/** The ingest stand-in runs in its own process so its parsing does not count as the app's CPU. */
async function startSink(): Promise<{ url: string; child: ChildProcess }> {
  const source = `
    const http = require('node:http');
    let total = 0;
    const server = http.createServer((req, res) => {
      let n = 0;
      req.on('data', (c) => { for (const b of c) if (b === 10) n++; });
      req.on('end', () => {
        n++; total += n;
        const results = Array.from({ length: n }, (_, index) => ({ index, status: 'accepted' }));
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ accepted: n, rejected: 0, results }));
      });
    });
    server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;
  const child = spawn(process.execPath, ['-e', source], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((done) => child.stdout!.once('data', (d: Buffer) => done(d.toString().trim())));
  return { url: `http://127.0.0.1:${port}`, child };
}

function nsPerOp(start: bigint, n: number): number {
  return Number(process.hrtime.bigint() - start) / n;
}

const round = (x: number, digits = 1) => Number(x.toFixed(digits));

// 1. Pure hot path, nothing sent.
const absentUrl = `http://127.0.0.1:${await unusedPort()}`;
const quiet = { maxBatchAgeMs: 3_600_000, maxRetries: 0, closeTimeoutMs: 100, flushOnExit: false } as const;
const perRound = 10_000;
const rounds = Math.ceil(calls / perRound);
const absentRounds: number[] = [];
for (let r = -5; r < rounds; r++) {
  // rounds below 0 are warm-up (JIT), not reported
  const emitter = createEmitter({ url: absentUrl, apiKey: 'bench', maxBatchEvents: perRound, maxBufferEvents: perRound, ...quiet });
  const start = process.hrtime.bigint();
  for (let i = 0; i < perRound; i++) emitter.emit(events[i & 1_023]!);
  if (r >= 0) absentRounds.push(nsPerOp(start, perRound));
  if (emitter.stats().sent !== 0 || emitter.stats().dropped !== 0) throw new Error('hot-path round sent or dropped events');
  await emitter.close(); // outside the timed region; drops what it cannot send
}
absentRounds.sort((a, b) => a - b);

// 2. Buffer full: every call is a counted drop.
const full = createEmitter({ url: absentUrl, apiKey: 'bench', maxBatchEvents: 1_000, maxBufferEvents: 1_000, ...quiet });
for (let i = 0; i < 1_000; i++) full.emit(events[i & 1_023]!);
let start = process.hrtime.bigint();
for (let i = 0; i < calls; i++) full.emit(events[i & 1_023]!);
const bufferFullNs = nsPerOp(start, calls);
await full.close();

// 3. With a sink: default batching (500 events / 1 s), the app yields every 1 000 emits.
const sink = await startSink();
const emitter = createEmitter({ url: sink.url, apiKey: 'bench', flushOnExit: false });
let emitNs = 0n;
const cpuBefore = process.cpuUsage();
const wallStart = process.hrtime.bigint();
for (let i = 0; i < calls; i += 1_000) {
  start = process.hrtime.bigint();
  for (let j = i; j < Math.min(calls, i + 1_000); j++) emitter.emit(events[j & 1_023]!);
  emitNs += process.hrtime.bigint() - start;
  await new Promise((done) => setImmediate(done));
  while (emitter.stats().buffered > 5_000) await new Promise((done) => setTimeout(done, 1));
}
await emitter.flush();
const wallMs = Number(process.hrtime.bigint() - wallStart) / 1e6;
const cpu = process.cpuUsage(cpuBefore);
const sinkStats = emitter.stats();
await emitter.close();

// 4. Event-loop delay at 10 000 emits/s (100 every 10 ms), against the same timer without emits.
async function loopDelay(emitPerTick: number): Promise<{ p50_ms: number; p99_ms: number; max_ms: number }> {
  const e = createEmitter({ url: sink.url, apiKey: 'bench', flushOnExit: false });
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  let n = 0;
  await new Promise<void>((done) => {
    const timer = setInterval(() => {
      for (let i = 0; i < emitPerTick; i++) e.emit(events[n++ & 1_023]!);
    }, 10);
    setTimeout(() => {
      clearInterval(timer);
      done();
    }, rateSeconds * 1_000);
  });
  h.disable();
  await e.close();
  if (emitPerTick > 0 && e.stats().sent !== n) throw new Error(`loop-delay run lost events: ${JSON.stringify(e.stats())}`);
  return { p50_ms: round(h.percentile(50) / 1e6, 3), p99_ms: round(h.percentile(99) / 1e6, 3), max_ms: round(h.max / 1e6, 3) };
}
const baseline = await loopDelay(0);
const loaded = await loopDelay(100);
sink.child.kill();

if (sinkStats.sent !== calls) throw new Error(`sink run: expected ${calls} sent, got ${JSON.stringify(sinkStats)}`);
console.log(
  JSON.stringify({
    bench: 'emit',
    node: process.version,
    calls,
    emit_absent_ns_per_op: {
      rounds: `${rounds} x ${perRound}`,
      mean: round(absentRounds.reduce((a, b) => a + b, 0) / rounds),
      median: round(absentRounds[Math.floor(rounds / 2)]!),
      p90: round(absentRounds[Math.floor(rounds * 0.9)]!),
      min: round(absentRounds[0]!),
    },
    emit_buffer_full_ns_per_op: round(bufferFullNs),
    emit_with_sink: {
      emit_ns_per_op: round(Number(emitNs) / calls),
      process_cpu_ns_per_event: round(((cpu.user + cpu.system) * 1_000) / calls),
      wall_ms: round(wallMs),
      sustained_events_per_s: Math.round(calls / (wallMs / 1_000)),
      requests: Math.ceil(calls / 500),
      sent: sinkStats.sent,
      retries: sinkStats.retries,
    },
    loop_delay_at_10k_per_s: {
      seconds: rateSeconds,
      baseline,
      with_emits: loaded,
      added_p99_ms: round(loaded.p99_ms - baseline.p99_ms, 3),
    },
  }),
);
