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
 * Freshness: after each acknowledged HTTP request the bench records every partition's high
 * watermark; the request's events are "fresh" when the processor's committed offsets reach
 * them. The processor commits only after ClickHouse acknowledged the insert that also writes
 * the minute aggregates, so this is an upper bound of event-to-aggregate latency.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import { freePort, startRoleProcess, waitHttpOk } from '../test/helpers/roles.ts';

const total = Number(process.argv[2] ?? 200_000);
const REQUEST_EVENTS = 5_000;
const CONCURRENCY = 4;
const KEY = 'bench-key-0123456789abcdef';

let startedBroker = false;
let brokers = process.env.KAFKA_BROKERS;
if (!brokers) {
  const out = execFileSync('scripts/kafka-local.sh', ['start'], { encoding: 'utf8' });
  brokers = /KAFKA_BROKERS=(\S+)/.exec(out)?.[1] as string;
  startedBroker = !/already running/.test(out);
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
      Number(p.offset),
    ]),
  );

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
  INGEST_API_KEYS: `${KEY}=bench`,
  LOG_LEVEL: 'warn',
};
const perf = producerPerf(total);
const ingest = startRoleProcess('ingest', { ...env, HTTP_PORT: String(port) });
const processor = startRoleProcess('processor', { ...env, CLICKHOUSE_PATH: data });
let peakProcessorRss = 0;
let peakIngestRss = 0;
const rssOf = (pid: number | undefined) => {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(execFileSync('cat', [`/proc/${pid}/status`], { encoding: 'utf8' }))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
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
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      event_id: 'warmup',
      timestamp: Date.now(),
      provider: 'openai',
      model: 'gpt-4o',
      input_tokens: 1,
      output_tokens: 1,
    }),
  });
  for (;;) {
    const c = await committed();
    if ([...c.values()].some((o) => o > 0)) break;
    await new Promise((r) => setTimeout(r, 100));
  }

  const pending: Array<{ sentAt: number; highs: Map<number, number> }> = [];
  const fresh: number[] = [];
  let stopPoll = false;
  const poller = (async () => {
    while (!stopPoll || pending.length > 0) {
      const c = await committed();
      const now = performance.now();
      while (pending.length > 0 && [...(pending[0] as (typeof pending)[number]).highs].every(([p, h]) => (c.get(p) ?? 0) >= h)) {
        fresh.push(now - (pending.shift() as (typeof pending)[number]).sentAt);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();

  const started = performance.now();
  let next = 0;
  const worker = async () => {
    for (;;) {
      const from = next;
      next += REQUEST_EVENTS;
      if (from >= total) return;
      const lines: string[] = [];
      const now = Date.now();
      for (let i = from; i < Math.min(total, from + REQUEST_EVENTS); i++) {
        lines.push(
          JSON.stringify({
            event_id: `b-${run}-${i}`,
            timestamp: now,
            tenant: 'bench',
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
      const sentAt = performance.now();
      const res = await fetch(`http://127.0.0.1:${port}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/x-ndjson' },
        body: lines.join('\n'),
      });
      if (res.status !== 202) throw new Error(`ingest answered ${res.status}`);
      await res.arrayBuffer();
      pending.push({ sentAt, highs: await highs() });
      pending.sort((a, b) => a.sentAt - b.sentAt);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const ingestSeconds = (performance.now() - started) / 1000;
  stopPoll = true;
  await poller;
  const seconds = (performance.now() - started) / 1000;
  clearInterval(rss);
  fresh.sort((a, b) => a - b);
  const e2e = Math.round(total / seconds);
  console.log(
    JSON.stringify({
      bench: 'kafka-end-to-end',
      events: total,
      http_ingest_events_per_s: Math.round(total / ingestSeconds),
      end_to_end_events_per_s: e2e,
      freshness_ms: { p50: Math.round(percentile(fresh, 0.5)), p99: Math.round(percentile(fresh, 0.99)), requests: fresh.length },
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
  if (startedBroker) execFileSync('scripts/kafka-local.sh', ['stop'], { stdio: 'ignore' });
}
