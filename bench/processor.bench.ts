/**
 * The usage processor's cost per event, phase by phase, on the embedded engine (chDB), without
 * Kafka: decode (JSON parse, validation, fingerprint), id lookup, transform (de-duplicate, price,
 * window), write (one insert into `usage_events` with its 4 materialized views).
 *
 *   npm run bench:processor -- [batch=25000] [batches=12] [prefill=0] [idChars=36]
 *
 * Batches of `batch` events shaped like bench:kafka's (16 tenants, 200 users, 2 models), the
 * first 2 as warm-up. Per phase: wall time and process CPU (user + system, every thread: chDB
 * works in its own threads) per event. Then, on its own: the decode phase split into JSON parse,
 * validation and fingerprint (CPU per event over 200,000 events).
 *
 * `prefill=N` first fills the id index with N keys of random UUIDs (as a real client's event ids
 * are), to show how the id lookup grows with the index: a batch's keys are spread over the whole
 * index, so each lookup reads most of it.
 *
 * `idChars=N` makes every event id (and the pre-filled ones) N characters long: a random UUID
 * padded with `x` (N >= 36).
 *
 * Prints one JSON line (`"bench":"processor"`). Not a test: figures depend on the machine.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config/load.ts';
import { validateUsageEvent } from '../domain/usage-event-validation.ts';
import { createUsageStore } from '../processors/clickhouse-writer.ts';
import { decodeBatch, keysToLookUp, type RawMessage, transform, usageFingerprint } from '../processors/usage.processor.ts';
import { openClickHouse } from '../storage/clickhouse.ts';
import { migrate } from '../storage/migrate.ts';
import { benchEvent } from './bench-event.ts';

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.split('=') as [string, string]));
const BATCH = Number(args.batch ?? 25_000);
const BATCHES = Number(args.batches ?? 12);
const WARM_UP = 2;
const PREFILL = Number(args.prefill ?? 0);
const ID_CHARS = Math.max(36, Number(args.idChars ?? 36));
const PAD = 'x'.repeat(ID_CHARS - 36);

const { prices } = loadConfig(undefined, {});
const dir = mkdtempSync(join(tmpdir(), 'qf-bench-processor-'));
const client = await openClickHouse({ mode: 'embedded', path: dir });
await migrate(client);
const store = createUsageStore(client);

if (PREFILL > 0) {
  await client.command({
    query: `INSERT INTO usage_event_ids (tenant, event_id, fingerprint, timestamp)
            SELECT concat('bench-', toString(number % 16)), concat(toString(generateUUIDv4(number)), '${PAD}'), 'f', now64(3) FROM numbers(${PREFILL})`,
  });
  await client.command({ query: 'OPTIMIZE TABLE usage_event_ids FINAL' });
}

let nextId = 0;
const timestamp = Date.now() - 60_000;
function message(): RawMessage {
  const i = nextId++;
  const value = JSON.stringify(benchEvent(i, `${crypto.randomUUID()}${PAD}`, `bench-${i % 16}`, timestamp));
  return { value, source: `bench/0/${i}` };
}

const phases = {
  decode: { wallMs: 0, cpuMs: 0 },
  lookup: { wallMs: 0, cpuMs: 0 },
  transform: { wallMs: 0, cpuMs: 0 },
  write: { wallMs: 0, cpuMs: 0 },
};
async function timed<T>(phase: keyof typeof phases, counted: boolean, fn: () => T | Promise<T>): Promise<T> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const out = await fn();
  const cpu = process.cpuUsage(cpu0);
  if (counted) {
    phases[phase].wallMs += performance.now() - t0;
    phases[phase].cpuMs += (cpu.user + cpu.system) / 1000;
  }
  return out;
}

for (let b = 0; b < BATCHES; b++) {
  const messages = Array.from({ length: BATCH }, message);
  const counted = b >= WARM_UP;
  const nowMs = Date.now();
  const decoded = await timed('decode', counted, () => decodeBatch(messages, { nowMs }));
  const seen = await timed('lookup', counted, () => store.lookupSeen(keysToLookUp(decoded)));
  const outcome = await timed('transform', counted, () => transform(decoded, { nowMs, prices, seen }));
  await timed('write', counted, () => store.write(outcome));
}
const events = (BATCHES - WARM_UP) * BATCH;
const perEvent = (ms: number) => Number(((ms * 1000) / events).toFixed(2));
const phaseFigures = Object.fromEntries(
  Object.entries(phases).map(([k, v]) => [k, { wall_us_per_event: perEvent(v.wallMs), cpu_us_per_event: perEvent(v.cpuMs) }]),
);

// The decode phase, split (same events, no I/O).
const N = 200_000;
const texts = Array.from({ length: N }, () => message().value);
const split = (fn: () => void) => {
  const cpu0 = process.cpuUsage();
  fn();
  const cpu = process.cpuUsage(cpu0);
  return Number(((cpu.user + cpu.system) / N).toFixed(2));
};
let parsed: unknown[] = [];
const parseUs = split(() => {
  parsed = texts.map((t) => JSON.parse(t));
});
const nowMs = Date.now();
let valid: ReturnType<typeof validateUsageEvent>[] = [];
const validateUs = split(() => {
  valid = parsed.map((p) => validateUsageEvent(p, { nowMs }));
});
const fingerprintUs = split(() => {
  for (const v of valid) if (v.ok) usageFingerprint(v.event);
});

await client.close();
rmSync(dir, { recursive: true, force: true });
console.log(
  JSON.stringify({
    bench: 'processor',
    batch: BATCH,
    batches_counted: BATCHES - WARM_UP,
    id_index_prefill: PREFILL,
    id_chars: ID_CHARS,
    phases: phaseFigures,
    decode_split_cpu_us_per_event: { json_parse: parseUs, validate: validateUs, fingerprint: fingerprintUs },
    node: process.version,
  }),
);
