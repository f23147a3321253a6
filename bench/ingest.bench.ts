/**
 * Embedded-mode ingest benchmark: N synthetic events -> in-process transport -> processor
 * (validate, de-duplicate, price, window) -> chDB (raw table + id index + minute/hour/day views).
 * Prints events/s end to end (first send to last commit) and peak RSS.
 *
 *   npm run bench:ingest -- [events=200000] [batch=config default]
 *
 * Not a test: figures depend on the machine. Uses a fresh temporary data folder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config/load.ts';
import { createInProcessTransport } from '../ingest/transport/in-process.transport.ts';
import type { OutgoingMessage } from '../ingest/transport/transport.ts';
import { createUsageStore } from '../processors/clickhouse-writer.ts';
import { createUsageRunner } from '../processors/runner.ts';
import { openClickHouse } from '../storage/clickhouse.ts';
import { migrate } from '../storage/migrate.ts';

const { prices, config } = loadConfig(undefined, {});
const total = Number(process.argv[2] ?? 200_000);
const batch = Number(process.argv[3] ?? config.pipeline.batch_max_messages);
const dir = mkdtempSync(join(tmpdir(), 'qf-bench-'));
const client = await openClickHouse({ mode: 'embedded', path: dir });
await migrate(client);

const models = ['gpt-4o', 'gpt-4o-mini', 'o3', 'gpt-4.1'];
const base = Date.UTC(2026, 10, 1);
function event(i: number): OutgoingMessage {
  const tenant = `tenant-${i % 20}`;
  const e = {
    event_id: `bench-${i}`,
    timestamp: base + i * 7,
    tenant,
    user_id: `user-${i % 500}`,
    task_id: `task-${i % 2000}`,
    provider: 'openai',
    model: models[i % models.length],
    input_tokens: 500 + (i % 3000),
    cached_input_tokens: i % 200,
    output_tokens: 50 + (i % 700),
    reasoning_tokens: i % 3 === 0 ? 10 : 0,
    latency_ms: 200 + (i % 5000),
    prompt_hash: `p${i % 5000}`,
  };
  return { key: tenant, value: JSON.stringify(e) };
}

const transport = createInProcessTransport({ capacity: config.pipeline.transport_capacity });
const producer = transport.producer('bench');
const runner = createUsageRunner({
  consumer: transport.consumer({ topic: 'bench', groupId: 'bench', maxBatchMessages: batch, maxBatchWaitMs: 200 }),
  store: createUsageStore(client),
  prices,
});
let peakRss = process.memoryUsage().rss;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 50);

const cpu0 = process.cpuUsage();
const started = performance.now();
const running = runner.run();
for (let i = 0; i < total; i += 1_000) {
  const chunk: OutgoingMessage[] = [];
  for (let j = i; j < Math.min(total, i + 1_000); j++) chunk.push(event(j));
  await producer.send(chunk);
}
await producer.close();
await running;
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpu0);
clearInterval(sampler);
peakRss = Math.max(peakRss, process.memoryUsage().rss);

const rs = await client.query({ query: 'SELECT sum(requests) AS n FROM usage_minute', format: 'JSONEachRow' });
const [{ n }] = (await rs.json<{ n: string }>()) as [{ n: string }];
await client.close();
rmSync(dir, { recursive: true, force: true });

if (Number(n) !== total || runner.stats.accepted !== total) throw new Error(`expected ${total} events stored, got ${n}`);
console.log(
  JSON.stringify({
    bench: 'ingest-embedded',
    events: total,
    batch,
    cpu_us_per_event: Number(((cpu.user + cpu.system) / total).toFixed(1)),
    seconds: Number(seconds.toFixed(2)),
    events_per_s: Math.round(total / seconds),
    peak_rss_mb: Math.round(peakRss / 2 ** 20),
    node: process.version,
  }),
);
