/**
 * Injected-anomaly check on real traffic (issue 5): precision, recall and detection delay of the
 * LLM usage detectors per kind, on the real request traces with labelled anomalies added.
 *
 * Traffic: three tenants, one per real trace: Azure LLM inference 2023 code and conversation
 * (each one hour, 2023-11-16 18:15-19:15 UTC) and the Mooncake conversation trace (one hour,
 * started at the same instant). Each hour is repeated `hours` times back to back (default 4) to
 * give the detectors history: the minute-to-minute shape is real, the repetition is not. Calls get
 * one of 8 users and 3 tasks by line number (the traces have none).
 *
 * Injected, from hour 2 on, per tenant, each kind `perKind` times (default 2) at spaced times:
 * - spike: for 8 minutes, every real call is followed by two calls of 3x its input tokens (~7x tokens);
 * - burst: for 5 minutes, one existing user adds 200 calls a minute of 30 input + 5 output tokens;
 * - loop: for 6 minutes, one existing (user, task) sends the same prompt 6 times a minute, 1,000 tokens each;
 * - error storm: for 5 minutes, 1.5 failed retries (status error, no output) per real call.
 * Everything is written through the processor path into a temporary embedded ClickHouse, then
 * `scan()` (processors/anomaly/detection.ts) trains the detectors on the first two hours without
 * reporting (the processor's warm-up does the same on the last 24 h) and scores the rest.
 *
 * Scoring: an episode of the expected kind (spike -> token_spike, burst -> short_request_burst,
 * loop -> runaway_loop, storm -> error_spike) for the same tenant that overlaps the injection
 * (until 5 minutes after its end) detects it. Precision per kind = episodes that overlap any
 * injection (of any kind: an error storm's retries are a real token spike) / episodes of that kind; recall = injections detected / injections; delay = minutes from the
 * injection's start to the end of the first anomalous minute (the processor adds its 2-minute grace).
 *
 *   npm run bench:inject [-- hours=4 perKind=2 options='{"alertScore":0.45}']   (options: detector core overrides)
 *
 * Not a test: it reports what it measures, whatever it is.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../config/load.ts';
import { MINUTE_MS } from '../domain/windows.ts';
import { importers } from '../ingest/importers/index.ts';
import {
  CORE_DETECTOR_NAME,
  coreDetectorFactory,
  createAnomalyDetection,
  USAGE_DETECTOR_OPTIONS,
} from '../processors/anomaly/detection.ts';
import type { Anomaly } from '../processors/anomaly/episodes.ts';
import { createUsageStore } from '../processors/clickhouse-writer.ts';
import { decodeBatch, transform } from '../processors/usage.processor.ts';
import { openClickHouse } from '../storage/clickhouse.ts';
import { migrate } from '../storage/migrate.ts';

const args = Object.fromEntries(process.argv.slice(2).map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
const HOURS = Number(args.hours ?? 4);
const PER_KIND = Number(args.perKind ?? 2);
const START = '2023-11-16T18:15:00Z';
const HOUR_MS = 60 * MINUTE_MS;
const DATA = join(import.meta.dirname, '..', 'data', 'samples');

const TRACES = [
  { tenant: 'azure-code', format: 'azure-2023', file: 'AzureLLMInferenceTrace_code.csv' },
  { tenant: 'azure-conv', format: 'azure-2023', file: 'AzureLLMInferenceTrace_conv.csv' },
  { tenant: 'mooncake', format: 'mooncake', file: 'conversation_trace.jsonl' },
] as const;

type InjectKind = 'spike' | 'burst' | 'loop' | 'storm';
const EXPECTED: Record<InjectKind, Anomaly['kind']> = {
  spike: 'token_spike',
  burst: 'short_request_burst',
  loop: 'runaway_loop',
  storm: 'error_spike',
};
const DURATION_MIN: Record<InjectKind, number> = { spike: 8, burst: 5, loop: 6, storm: 5 };

interface Label {
  tenant: string;
  kind: InjectKind;
  startMs: number;
  endMs: number;
}

/** A v1 event as the importers map it; `timestamp` in epoch ms. */
type Ev = Record<string, unknown> & { timestamp: number; tenant: string };

async function readTrace(t: (typeof TRACES)[number]): Promise<Ev[]> {
  const out: Ev[] = [];
  let i = 0;
  for await (const r of importers[t.format].read(join(DATA, t.file), { tenant: t.tenant, startTime: START })) {
    const v = r.value as Ev;
    if (typeof v.timestamp !== 'number') throw new Error(`${r.source}: expected an epoch-ms timestamp`);
    if ('import_error' in v) continue;
    out.push({ ...v, user_id: `user-${i % 8}`, task_id: `task-${i % 3}` });
    i++;
  }
  return out;
}

function inject(base: Ev[], tenant: string, t0: number, rng: () => number): { events: Ev[]; labels: Label[] } {
  const events: Ev[] = [];
  const labels: Label[] = [];
  const kinds: InjectKind[] = ['spike', 'burst', 'loop', 'storm'];
  // Slots 14 minutes apart from hour 2 on (8 slots fit in the 2 hours), so episodes never overlap.
  let slot = 0;
  const at = () => t0 + 2 * HOUR_MS + (slot++ * 14 + 3) * MINUTE_MS;
  const within = (e: Ev, s: number, d: number) => {
    return e.timestamp >= s && e.timestamp < s + d * MINUTE_MS;
  };
  let n = 0;
  const id = (kind: string) => `inject-${tenant}-${kind}-${n++}`;
  for (let k = 0; k < PER_KIND; k++) {
    for (const kind of kinds) {
      const s = at();
      const d = DURATION_MIN[kind];
      labels.push({ tenant, kind, startMs: s, endMs: s + d * MINUTE_MS });
      if (kind === 'spike' || kind === 'storm') {
        for (const e of base.filter((x) => within(x, s, d))) {
          const copies = kind === 'spike' ? 2 : rng() < 0.5 ? 1 : 2; // storms: 1.5 retries per call on average
          for (let c = 0; c < copies; c++) {
            events.push(
              kind === 'spike'
                ? { ...e, event_id: id(kind), input_tokens: 3 * Number(e.input_tokens) }
                : { ...e, event_id: id(kind), output_tokens: 0, status: 'error' },
            );
          }
        }
      } else {
        const perMinute = kind === 'burst' ? 200 : 6;
        for (let m = 0; m < d; m++) {
          for (let c = 0; c < perMinute; c++) {
            const ts = s + m * MINUTE_MS + Math.floor((c * MINUTE_MS) / perMinute);
            events.push({
              event_id: id(kind),
              timestamp: ts,
              tenant,
              provider: base[0]!.provider,
              model: base[0]!.model,
              // An existing user and task, so the user's series has history to compare with.
              user_id: 'user-3',
              task_id: 'task-1',
              input_tokens: kind === 'burst' ? 30 : 1_000,
              output_tokens: kind === 'burst' ? 5 : 0,
              ...(kind === 'loop' ? { prompt_hash: 'f00d'.repeat(16) } : {}),
            });
          }
        }
      }
    }
  }
  return { events, labels };
}

async function main(): Promise<void> {
  let seed = 7;
  const rng = () => {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) & 0x7fffffff;
    return seed / 2_147_483_648;
  };
  const t0 = Date.parse(START);
  const all: Ev[] = [];
  const labels: Label[] = [];
  for (const t of TRACES) {
    const hour = await readTrace(t);
    const tiled: Ev[] = [];
    for (let h = 0; h < HOURS; h++) {
      for (const e of hour) {
        if (e.timestamp >= t0 + HOUR_MS) continue; // keep exactly one hour per copy
        tiled.push({ ...e, event_id: `${String(e.event_id)}:${h}`, timestamp: e.timestamp + h * HOUR_MS });
      }
    }
    const inj = inject(tiled, t.tenant, t0, rng);
    all.push(...tiled, ...inj.events);
    labels.push(...inj.labels);
    console.log(`${t.tenant}: ${hour.length} real calls x ${HOURS} h + ${inj.events.length} injected`);
  }

  const path = mkdtempSync(join(tmpdir(), 'qf-inject-'));
  const client = await openClickHouse({ mode: 'embedded', path });
  try {
    await migrate(client);
    const { prices } = loadConfig(undefined, {});
    const store = createUsageStore(client);
    const seen = new Map<string, string>();
    const nowMs = Date.now();
    for (let i = 0; i < all.length; i += 20_000) {
      const chunk = all.slice(i, i + 20_000);
      const decoded = decodeBatch(
        chunk.map((v, j) => ({ value: JSON.stringify(v), source: `inject:${i + j}` })),
        { nowMs },
      );
      const outcome = transform(decoded, { nowMs, prices, seen });
      if (outcome.deadLetters.length > 0) throw new Error(`dead letters: ${JSON.stringify(outcome.deadLetters[0])}`);
      await store.write(outcome);
    }
    const detection = createAnomalyDetection({
      clickhouse: client,
      detectorFactory: coreDetectorFactory(args.options ? { ...USAGE_DETECTOR_OPTIONS, ...JSON.parse(args.options) } : undefined),
      detectorName: CORE_DETECTOR_NAME,
      logger: pino({ level: 'silent' }),
      warmupMs: 2 * HOUR_MS, // the first two hours train the detectors, as the processor's warm-up does
    });
    const started = performance.now();
    const run = await detection.scan(t0 + 2 * HOUR_MS, t0 + HOURS * HOUR_MS);
    const ms = performance.now() - started;
    const episodes = new Map<string, Anomaly>();
    for (const c of run.changes) episodes.set(c.anomaly.anomaly_id, c.anomaly);

    const table = (Object.keys(EXPECTED) as InjectKind[]).map((kind) => {
      const mine = labels.filter((l) => l.kind === kind);
      const eps = [...episodes.values()].filter((a) => a.kind === EXPECTED[kind]);
      const matches = (a: Anomaly, l: Label) =>
        a.tenant === l.tenant && a.window_start_ms < l.endMs + 5 * MINUTE_MS && a.window_end_ms > l.startMs;
      // An episode during any injection is explained by it (an error storm's retries do spike tokens).
      const tp = eps.filter((a) => labels.some((l) => matches(a, l)));
      const delays: number[] = [];
      let found = 0;
      for (const l of mine) {
        const hits = eps.filter((a) => matches(a, l));
        if (hits.length === 0) continue;
        found++;
        delays.push((Math.min(...hits.map((a) => a.window_start_ms)) + MINUTE_MS - l.startMs) / MINUTE_MS);
      }
      delays.sort((a, b) => a - b);
      return {
        kind,
        detector_kind: EXPECTED[kind],
        injected: mine.length,
        detected: found,
        recall: mine.length ? (found / mine.length).toFixed(2) : '-',
        episodes: eps.length,
        precision: eps.length ? (tp.length / eps.length).toFixed(2) : '-',
        'delay min (median)': delays.length ? String(delays[Math.floor(delays.length / 2)]) : '-',
        'delay min (max)': delays.length ? String(delays[delays.length - 1]) : '-',
      };
    });
    for (const a of episodes.values())
      console.log(
        a.tenant,
        a.dimension,
        a.series_key,
        new Date(a.window_start_ms).toISOString(),
        new Date(a.window_end_ms).toISOString(),
        a.score,
        a.actual,
        a.expected,
      );
    const unexplained = [...episodes.values()].filter(
      (a) => !labels.some((l) => a.tenant === l.tenant && a.window_start_ms < l.endMs + 5 * MINUTE_MS && a.window_end_ms > l.startMs),
    );
    const perHour = Array.from(
      { length: HOURS },
      (_, h) => unexplained.filter((a) => Math.floor((a.window_start_ms - t0) / HOUR_MS) === h).length,
    );
    console.log('episodes outside every injection, by hour of the range:', perHour.join(' / '));
    const other = [...episodes.values()].filter((a) => !Object.values(EXPECTED).includes(a.kind));
    console.log(`\n${all.length.toLocaleString('en-US')} events, ${HOURS} h, scan ${ms.toFixed(0)} ms`);
    console.table(table);
    const byKind = new Map<string, number>();
    for (const a of other) byKind.set(a.kind, (byKind.get(a.kind) ?? 0) + 1);
    console.log('other episodes (no injection of that kind):', Object.fromEntries(byKind));
    console.log(
      JSON.stringify({
        bench: 'inject',
        events: all.length,
        hours: HOURS,
        scan_ms: Math.round(ms),
        kinds: table.map((r) => ({
          kind: r.kind,
          injected: r.injected,
          detected: r.detected,
          recall: r.recall,
          precision: r.precision,
          median_delay_min: r['delay min (median)'],
        })),
      }),
    );
  } finally {
    await client.close();
    rmSync(path, { recursive: true, force: true });
  }
}

await main();
