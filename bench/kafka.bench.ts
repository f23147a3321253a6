/**
 * Kafka-mode benchmark: end-to-end events/s (HTTP -> `quotaflow ingest` -> Kafka -> `quotaflow
 * processor` -> ClickHouse) and event-to-aggregate freshness, beside the broker's own perf tools
 * (org.apache.kafka.tools.ProducerPerformance and ConsumerPerformance, from the same jars as the
 * broker) run in the same command: the ceiling.
 *
 *   npm run bench:kafka -- [events=200000] [perfRecords=1000000]
 *
 * Uses KAFKA_BROKERS if set, else starts the local broker (scripts/kafka-local.sh start) if it is
 * not running; it never stops it. The processor owns a temporary embedded chDB folder. Prints one
 * JSON line (`"bench":"kafka-end-to-end"`).
 *
 * Ceiling: ProducerPerformance writes `perfRecords` 250-byte records (acks=all, idempotent, the
 * Java client's defaults plus linger.ms=5 and batch.size=256 KiB) to a 4-partition topic, then
 * ConsumerPerformance reads them back. Records/s of each, and the broker's CPU per record.
 *
 * Load: 16 tenants (one ingest key each; keyed by tenant they spread over the 4 partitions),
 * NDJSON requests of 5,000 events, 4 in flight. Every request body is built before the clock
 * starts, so the load generator's JSON work is not on the clock (ProducerPerformance also
 * prepares its payload first). A warm-up of `events / 10` runs first (JIT, group join).
 * - Phase 1 sends `events` as fast as ingest accepts them: end-to-end events/s = events / (time
 *   until the processor committed the last one); freshness then measures the backlog.
 * - Phase 2 offers a steady BENCH_PACED_RATE events/s (default 10,000) for 10 s: freshness below
 *   saturation.
 * Freshness: after each acknowledged HTTP request the bench records every partition's high
 * watermark; the request's events are fresh when the processor's committed offsets reach them.
 * The processor commits only after ClickHouse acknowledged the insert that also writes the
 * minute aggregates, so this is an upper bound of event-to-aggregate latency.
 *
 * Also reported: CPU per event of each process during phase 1 (ingest, processor with chDB's
 * threads, broker JVM, this load generator, and the whole machine, from /proc), and the RSS of
 * the ingest and processor roles once ready (idle) and at peak over both phases (sampled every
 * 100 ms).
 * BENCH_PROFILE=<dir> runs both roles with --cpu-prof into that folder.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import { freePort, startRoleProcess, waitHttpOk } from '../test/helpers/roles.ts';
import { benchEvent } from './bench-event.ts';
import { brokerPid, cpuMsOf, machineBusyMs, rssOf } from './proc-stats.ts';

const total = Number(process.argv[2] ?? 200_000);
const perfRecords = Number(process.argv[3] ?? 1_000_000);
const REQUEST_EVENTS = 5_000;
const CONCURRENCY = 4;
const PARTITIONS = 4;
/** Phase 2 offers this steady rate (events/s) for this long, below saturation, to measure freshness. */
const PACED_RATE = Number(process.env.BENCH_PACED_RATE ?? 10_000);
const PACED_SECONDS = 10;
const TENANTS = Array.from({ length: 16 }, (_, i) => `bench-${i}`);
const keyOf = (tenant: string) => `${tenant}-key-0123456789abcdef`;

let brokers = process.env.KAFKA_BROKERS;
if (!brokers) {
  const out = execFileSync('scripts/kafka-local.sh', ['start'], { encoding: 'utf8' });
  brokers = /KAFKA_BROKERS=(\S+)/.exec(out)?.[1] as string;
}
const run = Date.now().toString(36);
const topics = { usage: `bench.usage.${run}`, dlq: `bench.dlq.${run}`, group: `bench.proc.${run}` };
const log = (msg: string) => process.stderr.write(`[bench:kafka] ${msg}\n`);
const admin = new kafkajs.Kafka({ brokers: brokers.split(','), clientId: 'bench', logLevel: kafkajs.logLevel.NOTHING }).admin();
await admin.connect();

/** Run one of Kafka's perf tools; returns its stdout and the broker's CPU ms during the run. */
function perfTool(main: string, args: string[]): { stdout: string; brokerCpuMs: number } {
  const cp = execFileSync('scripts/kafka-local.sh', ['perf-classpath'], { encoding: 'utf8' }).trim();
  const pid = brokerPid();
  const before = cpuMsOf(pid);
  const r = spawnSync('java', ['-Xmx512m', '-cp', cp, main, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${main} failed:\n${r.stdout}\n${r.stderr}`);
  return { stdout: r.stdout, brokerCpuMs: cpuMsOf(pid) - before };
}

async function perfCeiling() {
  const topic = `bench.perf.${run}`;
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }] });
  const p = perfTool('org.apache.kafka.tools.ProducerPerformance', [
    '--topic',
    topic,
    '--num-records',
    String(perfRecords),
    '--record-size',
    '250',
    '--throughput',
    '-1',
    '--command-property',
    `bootstrap.servers=${brokers}`,
    'acks=all',
    'linger.ms=5',
    'batch.size=262144',
  ]);
  const last = /([\d.]+) records\/sec .*?([\d.]+) ms avg latency/.exec(p.stdout.trim().split('\n').pop() ?? '');
  if (!last) throw new Error(`ProducerPerformance output not understood:\n${p.stdout}`);
  const c = perfTool('org.apache.kafka.tools.ConsumerPerformance', [
    '--bootstrap-server',
    brokers as string,
    '--topic',
    topic,
    '--num-records',
    String(perfRecords),
    '--group',
    `${topic}.g`,
    '--hide-header',
  ]);
  // CSV: start, end, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...
  const fields = (c.stdout.trim().split('\n').pop() ?? '').split(',').map((f) => f.trim());
  const consumed = Number(fields[5]);
  if (!Number.isFinite(consumed)) throw new Error(`ConsumerPerformance output not understood:\n${c.stdout}`);
  const perRecordUs = (ms: number) => Number(((ms * 1000) / perfRecords).toFixed(2));
  return {
    records: perfRecords,
    producer_records_per_s: Math.round(Number(last[1])),
    producer_avg_latency_ms: Number(last[2]),
    producer_broker_cpu_us_per_record: perRecordUs(p.brokerCpuMs),
    consumer_records_per_s: Math.round(consumed),
    consumer_broker_cpu_us_per_record: perRecordUs(c.brokerCpuMs),
  };
}

const highs = async () => new Map((await admin.fetchTopicOffsets(topics.usage)).map((p) => [p.partition, Number(p.high)]));
const committed = async () =>
  new Map(
    ((await admin.fetchOffsets({ groupId: topics.group, topics: [topics.usage] }))[0]?.partitions ?? []).map((p) => [
      p.partition,
      Math.max(0, Number(p.offset)), // -1 = nothing committed yet
    ]),
  );
const caughtUp = async () => {
  const [h, c] = await Promise.all([highs(), committed()]);
  return [...h].every(([p, high]) => (c.get(p) ?? 0) >= high);
};

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

let nextId = 0;
/** An NDJSON body of `count` events of one tenant (built ahead of the clock). */
function body(count: number, tenant: string, timestamp: number): string {
  const lines: string[] = [];
  for (let k = 0; k < count; k++) {
    const i = nextId++;
    lines.push(JSON.stringify(benchEvent(i, `b-${run}-${i}`, tenant, timestamp)));
  }
  return lines.join('\n');
}

log(`perf tools, ${perfRecords} records`);
const ceiling = await perfCeiling();
log(`ceiling: ${JSON.stringify(ceiling)}`);

const data = mkdtempSync(join(tmpdir(), 'qf-bench-kafka-'));
const env = {
  QUOTAFLOW_TRANSPORT: 'kafka',
  KAFKA_BROKERS: brokers,
  KAFKA_USAGE_TOPIC: topics.usage,
  KAFKA_DLQ_TOPIC: topics.dlq,
  KAFKA_CONSUMER_GROUP: topics.group,
  KAFKA_PARTITIONS: String(PARTITIONS),
  INGEST_API_KEYS: TENANTS.map((t) => `${keyOf(t)}=${t}`).join(','),
  LOG_LEVEL: 'warn',
};
const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
const ingestPort = await freePort();
const ingest = startRoleProcess('ingest', { ...env, HTTP_PORT: String(ingestPort) }, profile);
const processorPort = await freePort();
const processor = startRoleProcess('processor', { ...env, CLICKHOUSE_PATH: data, HTTP_PORT: String(processorPort) }, profile);
const base = `http://127.0.0.1:${ingestPort}`;
const peak = { ingest: 0, processor: 0 };
const rssTimer = setInterval(() => {
  peak.ingest = Math.max(peak.ingest, rssOf(ingest.proc.pid));
  peak.processor = Math.max(peak.processor, rssOf(processor.proc.pid));
}, 100);

/** POST one prepared body; resolves when ingest acknowledged it (202). */
async function post(text: string, tenant: string): Promise<void> {
  const res = await fetch(`${base}/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${keyOf(tenant)}`, 'content-type': 'application/x-ndjson' },
    body: text,
  });
  if (res.status !== 202) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
  await res.arrayBuffer();
}

/** Freshness tracker: call `sent()` after each acknowledged request, `finish()` to get the latencies. */
function tracker() {
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
}

/** Send prepared requests, `CONCURRENCY` in flight; `onAck` after each 202. */
async function sendAll(requests: Array<{ text: string; tenant: string }>, onAck?: (sentAt: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < requests.length) {
      const r = requests[next++] as (typeof requests)[number];
      const sentAt = performance.now();
      await post(r.text, r.tenant);
      await onAck?.(sentAt);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

async function until(cond: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${processor.logs().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const requestsOf = (events: number, timestamp: number) =>
  Array.from({ length: Math.ceil(events / REQUEST_EVENTS) }, (_, r) => {
    const tenant = TENANTS[r % TENANTS.length] as string;
    return { tenant, text: body(Math.min(REQUEST_EVENTS, events - r * REQUEST_EVENTS), tenant, timestamp) };
  });

try {
  await waitHttpOk(`${base}/readyz`, 120_000);
  await waitHttpOk(`http://127.0.0.1:${processorPort}/readyz`, 120_000);
  const idle = { ingest: rssOf(ingest.proc.pid), processor: rssOf(processor.proc.pid) };
  const now = Date.now();
  // Warm-up: JIT, group membership, the processor's first inserts.
  log(`warm-up: ${Math.round(total / 10)} events`);
  await sendAll(requestsOf(Math.round(total / 10), now));
  await until(caughtUp, 'the processor to commit the warm-up', 180_000);

  log(`phase 1: ${total} events, saturating`);
  const phase1 = requestsOf(total, now);
  const t1 = tracker();
  const cpuAt = () => ({
    ingest: cpuMsOf(ingest.proc.pid),
    processor: cpuMsOf(processor.proc.pid),
    broker: cpuMsOf(brokerPid()),
    load_generator: cpuMsOf(process.pid),
    machine: machineBusyMs(),
  });
  const cpu0 = cpuAt();
  const started = performance.now();
  await sendAll(phase1, (sentAt) => t1.sent(sentAt));
  const ingestSeconds = (performance.now() - started) / 1000;
  const saturated = await t1.finish();
  const seconds = (performance.now() - started) / 1000;
  const cpu1 = cpuAt();
  const cpuUsPerEvent = Object.fromEntries(
    (Object.keys(cpu1) as Array<keyof typeof cpu1>).map((k) => [k, Number((((cpu1[k] - cpu0[k]) * 1000) / total).toFixed(1))]),
  );

  log(`phase 2: ${PACED_RATE} events/s for ${PACED_SECONDS} s`);
  const perTick = PACED_RATE / 10;
  const phase2 = Array.from({ length: PACED_SECONDS * 10 }, (_, tick) => {
    const tenant = TENANTS[tick % TENANTS.length] as string;
    return { tenant, text: body(perTick, tenant, Date.now()) };
  });
  const t2 = tracker();
  const cpu2 = cpuAt();
  const inFlight: Promise<void>[] = [];
  for (const r of phase2) {
    const due = performance.now() + 100;
    const sentAt = performance.now();
    inFlight.push(post(r.text, r.tenant).then(() => t2.sent(sentAt)));
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
  }
  await Promise.all(inFlight);
  const paced = await t2.finish();
  const cpu3 = cpuAt();
  const pacedEvents = perTick * phase2.length;
  const cpuUsPerEventPaced = Object.fromEntries(
    (Object.keys(cpu3) as Array<keyof typeof cpu3>).map((k) => [k, Number((((cpu3[k] - cpu2[k]) * 1000) / pacedEvents).toFixed(1))]),
  );
  clearInterval(rssTimer);

  const e2e = Math.round(total / seconds);
  const q = (xs: number[]) => ({ p50: Math.round(percentile(xs, 0.5)), p99: Math.round(percentile(xs, 0.99)), requests: xs.length });
  console.log(
    JSON.stringify({
      bench: 'kafka-end-to-end',
      events: total,
      tenants: TENANTS.length,
      partitions: PARTITIONS,
      http_ingest_events_per_s: Math.round(total / ingestSeconds),
      end_to_end_events_per_s: e2e,
      freshness_ms_saturated: q(saturated),
      freshness_ms_paced: { rate_events_per_s: PACED_RATE, ...q(paced) },
      cpu_us_per_event_phase1: cpuUsPerEvent,
      cpu_us_per_event_paced: cpuUsPerEventPaced,
      perf_tools: ceiling,
      ratio_end_to_end_to_producer_perf: Number((e2e / ceiling.producer_records_per_s).toFixed(3)),
      ratio_end_to_end_to_consumer_perf: Number((e2e / ceiling.consumer_records_per_s).toFixed(3)),
      idle_rss_mb: { ingest: Math.round(idle.ingest / 2 ** 20), processor: Math.round(idle.processor / 2 ** 20) },
      peak_rss_mb: { ingest: Math.round(peak.ingest / 2 ** 20), processor: Math.round(peak.processor / 2 ** 20) },
      node: process.version,
    }),
  );
} finally {
  clearInterval(rssTimer);
  await admin.disconnect().catch(() => undefined);
  await processor.stop();
  await ingest.stop();
  rmSync(data, { recursive: true, force: true });
}
