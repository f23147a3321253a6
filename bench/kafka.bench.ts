/**
 * Kafka-mode benchmark: end-to-end events/s (HTTP -> ingest -> Kafka -> processor -> ClickHouse)
 * and event-to-aggregate freshness, beside the broker's own producer perf tool
 * (org.apache.kafka.tools.ProducerPerformance from the same jars) in the same run.
 *
 *   npm run bench:kafka -- [events=200000]
 *
 * Uses KAFKA_BROKERS if set, else starts the local broker (scripts/kafka-local.sh) and stops it
 * after. The processor owns a temporary embedded chDB folder. Prints one JSON line.
 *
 * Phase 1 sends `events` as fast as ingest accepts them (throughput; freshness then measures the
 * backlog). Phase 2 offers a steady 10,000 events/s (BENCH_PACED_RATE) for 10 s: freshness below
 * saturation.
 *
 * Freshness: after each acknowledged HTTP request the bench records every partition's high
 * watermark; the request's events are "fresh" when the processor's committed offsets reach
 * them. The processor commits only after ClickHouse acknowledged the insert that also writes
 * the minute aggregates, so this is an upper bound of event-to-aggregate latency.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import { freePort, startRoleProcess, waitHttpOk } from '../test/helpers/roles.ts';

const total = Number(process.argv[2] ?? 200_000);
const REQUEST_EVENTS = 5_000;
const CONCURRENCY = 4;
/** Phase 2 offers this steady rate (events/s) for this long, below saturation, to measure freshness. */
const PACED_RATE = Number(process.env.BENCH_PACED_RATE ?? 10_000);
const PACED_SECONDS = 10;
/** Four tenants, one ingest key each: keyed by tenant, they spread over the topic's partitions. */
const TENANTS = ['bench-0', 'bench-1', 'bench-2', 'bench-3'];
const keyOf = (tenant: string) => `${tenant}-key-0123456789abcdef`;

let brokers = process.env.KAFKA_BROKERS;
if (!brokers) {
  // Starts the local broker unless it runs already; the bench never stops it (others may use it).
  const out = execFileSync('scripts/kafka-local.sh', ['start'], { encoding: 'utf8' });
  brokers = /KAFKA_BROKERS=(\S+)/.exec(out)?.[1] as string;
}
const run = Date.now().toString(36);
const topics = { usage: `bench.usage.${run}`, dlq: `bench.dlq.${run}`, group: `bench.proc.${run}` };

function producerPerf(records: number): { records_per_s: number; avg_latency_ms: number } {
  const cp = execFileSync('scripts/kafka-local.sh', ['perf-classpath'], { encoding: 'utf8' }).trim();
  const r = spawnSync(
    'java',
    [
      '-Xmx512m',
      '-cp',
      cp,
      'org.apache.kafka.tools.ProducerPerformance',
      '--topic',
      `bench.perf.${run}`,
      '--num-records',
      String(records),
      '--record-size',
      '250',
      '--throughput',
      '-1',
      '--command-property',
      `bootstrap.servers=${brokers}`,
      'acks=all',
      'linger.ms=5',
      'batch.size=262144',
    ],
    { encoding: 'utf8' },
  );
  const last = /([\d.]+) records\/sec .*?([\d.]+) ms avg latency/.exec(r.stdout.trim().split('\n').pop() ?? '');
  if (!last) throw new Error(`ProducerPerformance output not understood:\n${r.stdout}\n${r.stderr}`);
  return { records_per_s: Math.round(Number(last[1])), avg_latency_ms: Number(last[2]) };
}

const admin = new kafkajs.Kafka({ brokers: brokers.split(','), clientId: 'bench', logLevel: kafkajs.logLevel.NOTHING }).admin();
const highs = async () => new Map((await admin.fetchTopicOffsets(topics.usage)).map((p) => [p.partition, Number(p.high)]));
const committed = async () =>
  new Map(
    ((await admin.fetchOffsets({ groupId: topics.group, topics: [topics.usage] }))[0]?.partitions ?? []).map((p) => [
      p.partition,
      Math.max(0, Number(p.offset)), // -1 = nothing committed yet
    ]),
  );

/** CPU time (user + system) of a process so far, ms; 0 when it is gone. */
const cpuMsOf = (pid: number | undefined): number => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
};
const brokerPid = (): number | undefined => {
  try {
    return Number(readFileSync('.kafka/broker.pid', 'utf8').trim());
  } catch {
    return undefined;
  }
};
const machineCpu = () => {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busyMs: ((f.reduce((a, b) => a + b, 0) - idle) * 1000) / 100 };
};

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

const data = mkdtempSync(join(tmpdir(), 'qf-bench-kafka-'));
const port = await freePort();
const env = {
  QUOTAFLOW_TRANSPORT: 'kafka',
  KAFKA_BROKERS: brokers,
  KAFKA_USAGE_TOPIC: topics.usage,
  KAFKA_DLQ_TOPIC: topics.dlq,
  KAFKA_CONSUMER_GROUP: topics.group,
  INGEST_API_KEYS: TENANTS.map((t) => `${keyOf(t)}=${t}`).join(','),
  LOG_LEVEL: 'warn',
};
const log = (msg: string) => process.stderr.write(`[bench:kafka] ${msg}\n`);
log(`producer perf test, ${total} records`);
const perf = producerPerf(total);
log(`producer perf: ${JSON.stringify(perf)}`);
const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
const ingest = startRoleProcess('ingest', { ...env, HTTP_PORT: String(port) }, profile);
const processor = startRoleProcess(
  'processor',
  { ...env, CLICKHOUSE_PATH: data },
  profile,
);
let peakProcessorRss = 0;
let peakIngestRss = 0;
const rssOf = (pid: number | undefined) => {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return 0; // the process is gone
  }
};
try {
  await admin.connect();
  await waitHttpOk(`http://127.0.0.1:${port}/readyz`);
  const rss = setInterval(() => {
    peakProcessorRss = Math.max(peakProcessorRss, rssOf(processor.proc.pid));
    peakIngestRss = Math.max(peakIngestRss, rssOf(ingest.proc.pid));
  }, 200);
  // Warm-up: the processor must own its partitions before the clock starts.
  await fetch(`http://127.0.0.1:${port}/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${keyOf('bench-0')}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      event_id: 'warmup',
      timestamp: Date.now(),
      provider: 'openai',
      model: 'gpt-4o',
      input_tokens: 1,
      output_tokens: 1,
    }),
  });
  log('waiting for the processor to own its partitions');
  const warmupDeadline = Date.now() + 120_000;
  for (;;) {
    const c = await committed();
    if ([...c.values()].some((o) => o > 0)) break;
    if (Date.now() > warmupDeadline) throw new Error(`processor did not commit the warm-up event:\n${processor.logs().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  log('sending');

  /** Freshness tracker: call `sent()` after each acknowledged request, `finish()` to get the latencies. */
  const tracker = () => {
    const pending: Array<{ sentAt: number; highs: Map<number, number> }> = [];
    const fresh: number[] = [];
    let stop = false;
    const loop = (async () => {
      while (!stop || pending.length > 0) {
        const c = await committed();
        const now = performance.now();
        while (pending.length > 0 && [...(pending[0] as (typeof pending)[number]).highs].every(([p, h]) => (c.get(p) ?? 0) >= h)) {
          fresh.push(now - (pending.shift() as (typeof pending)[number]).sentAt);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    return {
      async sent(sentAt: number) {
        pending.push({ sentAt, highs: await highs() });
        pending.sort((x, y) => x.sentAt - y.sentAt);
      },
      async finish() {
        stop = true;
        await loop;
        return fresh.sort((x, y) => x - y);
      },
    };
  };

  let nextId = 0;
  /** POST `count` events of one tenant as NDJSON; resolves when ingest acknowledged them (202). */
  const post = async (count: number, tenant: string): Promise<void> => {
    const lines: string[] = [];
    const now = Date.now();
    for (let k = 0; k < count; k++) {
      const i = nextId++;
      lines.push(
        JSON.stringify({
          event_id: `b-${run}-${i}`,
          timestamp: now,
          tenant,
          user_id: `u${i % 200}`,
          task_id: `t${i % 50}`,
          provider: 'openai',
          model: i % 3 ? 'gpt-4o' : 'gpt-4o-mini',
          input_tokens: 500 + (i % 1000),
          output_tokens: 20 + (i % 300),
          latency_ms: 300 + (i % 900),
        }),
      );
    }
    const res = await fetch(`http://127.0.0.1:${port}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keyOf(tenant)}`, 'content-type': 'application/x-ndjson' },
      body: lines.join('\n'),
    });
    if (res.status !== 202) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
    await res.arrayBuffer();
  };

  // Phase 1, throughput: `total` events as fast as ingest takes them, 4 requests in flight.
  log(`phase 1: ${total} events, saturating`);
  const t1 = tracker();
  const cpuAt = () => ({
    ingest: cpuMsOf(ingest.proc.pid),
    processor: cpuMsOf(processor.proc.pid),
    broker: cpuMsOf(brokerPid()),
    bench: cpuMsOf(process.pid),
    machine: machineCpu().busyMs,
  });
  const cpu0 = cpuAt();
  const started = performance.now();
  let requests = 0;
  const worker = async () => {
    while (requests * REQUEST_EVENTS < total) {
      const tenant = TENANTS[requests % TENANTS.length] as string;
      const count = Math.min(REQUEST_EVENTS, total - requests * REQUEST_EVENTS);
      requests++;
      const sentAt = performance.now();
      await post(count, tenant);
      await t1.sent(sentAt);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const ingestSeconds = (performance.now() - started) / 1000;
  const saturated = await t1.finish();
  const seconds = (performance.now() - started) / 1000;
  const cpu1 = cpuAt();
  const cpuUsPerEvent = Object.fromEntries(
    Object.entries(cpu1).map(([k, v]) => [k, Number((((v - cpu0[k as keyof typeof cpu0]) * 1000) / total).toFixed(1))]),
  );

  // Phase 2, freshness below saturation: PACED_RATE events/s for PACED_SECONDS.
  log(`phase 2: ${PACED_RATE} events/s for ${PACED_SECONDS} s`);
  const t2 = tracker();
  const perTick = PACED_RATE / 10;
  const inFlight: Promise<void>[] = [];
  for (let tick = 0; tick < PACED_SECONDS * 10; tick++) {
    const due = performance.now() + 100;
    const sentAt = performance.now();
    inFlight.push(post(perTick, TENANTS[tick % TENANTS.length] as string).then(() => t2.sent(sentAt)));
    await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
  }
  await Promise.all(inFlight);
  const paced = await t2.finish();
  clearInterval(rss);

  const e2e = Math.round(total / seconds);
  const q = (xs: number[]) => ({ p50: Math.round(percentile(xs, 0.5)), p99: Math.round(percentile(xs, 0.99)), requests: xs.length });
  console.log(
    JSON.stringify({
      bench: 'kafka-end-to-end',
      events: total,
      http_ingest_events_per_s: Math.round(total / ingestSeconds),
      end_to_end_events_per_s: e2e,
      freshness_ms_saturated: q(saturated),
      freshness_ms_paced: { rate_events_per_s: PACED_RATE, ...q(paced) },
      cpu_us_per_event_phase1: cpuUsPerEvent,
      producer_perf_test: perf,
      ratio_end_to_end_to_producer_perf: Number((e2e / perf.records_per_s).toFixed(3)),
      peak_rss_mb: { ingest: Math.round(peakIngestRss / 2 ** 20), processor: Math.round(peakProcessorRss / 2 ** 20) },
      node: process.version,
    }),
  );
} finally {
  await admin.disconnect().catch(() => undefined);
  await processor.stop();
  await ingest.stop();
  rmSync(data, { recursive: true, force: true });
}
