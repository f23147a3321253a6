/**
 * The embedded pipeline end to end on the real engine (chDB): files -> in-process transport ->
 * processor -> ClickHouse tables and materialized views. Exact totals, idempotent re-import,
 * de-duplication, dead letters, and window roll-ups at UTC boundaries.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSources, SAMPLES_DIR } from '../../cli/commands/import.ts';
import { importFiles } from '../../cli/pipeline.ts';
import { loadConfig } from '../../config/load.ts';
import { createInProcessTransport } from '../../ingest/transport/in-process.transport.ts';
import { createUsageStore } from '../../processors/clickhouse-writer.ts';
import { createUsageRunner } from '../../processors/runner.ts';
import { decodeBatch, transform } from '../../processors/usage.processor.ts';
import { csvColumnSums, openTestStore, queryRows, type TestStore } from '../helpers/store.ts';

const loaded = loadConfig(undefined, {});
let store: TestStore;

beforeAll(async () => {
  store = await openTestStore();
});
afterAll(async () => {
  await store?.close();
});

interface TenantTotals {
  tenant: string;
  requests: string;
  input_tokens: string;
  output_tokens: string;
}

async function totalsFrom(table: string, tenant: string): Promise<{ requests: number; input: number; output: number }> {
  const [row] = await queryRows<TenantTotals>(
    store.client,
    `SELECT tenant, sum(requests) AS requests, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
     FROM ${table} WHERE tenant = {t:String} GROUP BY tenant`,
    { t: tenant },
  );
  return { requests: Number(row?.requests ?? 0), input: Number(row?.input_tokens ?? 0), output: Number(row?.output_tokens ?? 0) };
}

/** Send JSON payloads through a fresh in-process transport and runner; resolve when committed. */
async function runPayloads(payloads: string[], nowMs = Date.UTC(2026, 10, 30)) {
  const transport = createInProcessTransport({ capacity: 1_000 });
  const producer = transport.producer('t');
  const runner = createUsageRunner({
    consumer: transport.consumer({ topic: 't', groupId: 'g', maxBatchMessages: 100, maxBatchWaitMs: 5 }),
    store: createUsageStore(store.client),
    prices: loaded.prices,
    now: () => nowMs,
  });
  const running = runner.run();
  await producer.send(payloads.map((value, i) => ({ key: 'k', value, headers: { 'qf-source': `test:${i + 1}` } })));
  await producer.close();
  await running;
  return runner.stats;
}

describe('real Azure 2023 traces through the embedded pipeline', () => {
  it('stores exactly the token sums of the source files, in minute, hour and day tables', async () => {
    const azure = demoSources().filter((s) => s.format === 'azure-2023');
    const result = await importFiles(loaded, store.client, azure);
    expect(result.stats.messages).toBe(28_185);
    expect(result.stats.accepted).toBe(28_185);
    for (const [file, tenant] of [
      ['AzureLLMInferenceTrace_code.csv', 'azure-code'],
      ['AzureLLMInferenceTrace_conv.csv', 'azure-conv'],
    ] as const) {
      const expected = await csvColumnSums(join(SAMPLES_DIR, file), 1, 2);
      for (const table of ['usage_minute', 'usage_hour', 'usage_day']) {
        expect(await totalsFrom(table, tenant), `${table} ${tenant}`).toEqual({
          requests: expected.rows,
          input: expected.input,
          output: expected.output,
        });
      }
      const [raw] = await queryRows<{ n: string }>(store.client, 'SELECT count() AS n FROM usage_events WHERE tenant = {t:String}', {
        t: tenant,
      });
      expect(Number(raw?.n)).toBe(expected.rows);
    }
  });

  it('a second import of the same files adds 0 events', async () => {
    const azure = demoSources().filter((s) => s.format === 'azure-2023');
    const before = await totalsFrom('usage_minute', 'azure-code');
    const result = await importFiles(loaded, store.client, azure);
    expect(result.stats.accepted).toBe(0);
    expect(result.stats.duplicates).toBe(28_185);
    expect(await totalsFrom('usage_minute', 'azure-code')).toEqual(before);
    const [raw] = await queryRows<{ n: string }>(store.client, "SELECT count() AS n FROM usage_events WHERE tenant LIKE 'azure-%'");
    expect(Number(raw?.n)).toBe(28_185);
  });
});

const ev = (over: Record<string, unknown> = {}) =>
  JSON.stringify({
    event_id: 'e-1',
    timestamp: '2026-11-29T12:00:00Z',
    tenant: 'dedup',
    provider: 'openai',
    model: 'gpt-4o',
    input_tokens: 1000,
    output_tokens: 100,
    ...over,
  });

describe('de-duplication and dead letters on the real engine', () => {
  it('counts an event id once within a batch, across batches and across runs; records conflicts', async () => {
    const first = await runPayloads([ev(), ev(), ev({ event_id: 'e-2' })]);
    expect(first.accepted).toBe(2);
    expect(first.duplicates).toBe(1);
    const second = await runPayloads([ev(), ev({ event_id: 'e-2', input_tokens: 5 }), ev({ event_id: 'e-3' })]);
    expect(second.accepted).toBe(1);
    expect(second.duplicates).toBe(1);
    expect(second.deadLetters.conflicting_duplicate).toBe(1);
    expect(await totalsFrom('usage_minute', 'dedup')).toEqual({ requests: 3, input: 3000, output: 300 });
    const dead = await queryRows<{ reason: string; event_id: string; raw: string }>(
      store.client,
      "SELECT reason, event_id, raw FROM dead_letters FINAL WHERE tenant = 'dedup'",
    );
    expect(dead).toEqual([{ reason: 'conflicting_duplicate', event_id: 'e-2', raw: ev({ event_id: 'e-2', input_tokens: 5 }) }]);
  });

  it('an event with invalid Unicode is dead-lettered alone; the rest of its batch is stored', async () => {
    const stats = await runPayloads([
      ev({ tenant: 'unicode', event_id: 'u-1', user_id: 'x\ud800' }),
      ev({ tenant: 'unicode\udfff', event_id: 'u-2' }),
      ev({ tenant: 'unicode', event_id: 'u-3' }),
    ]);
    expect(stats.accepted).toBe(1);
    expect(stats.deadLetters.invalid_event).toBe(2);
    expect(await totalsFrom('usage_minute', 'unicode')).toEqual({ requests: 1, input: 1000, output: 100 });
    const dead = await queryRows<{ tenant: string }>(
      store.client,
      "SELECT tenant FROM dead_letters FINAL WHERE tenant LIKE 'unicode%' ORDER BY tenant",
    );
    expect(dead.map((d) => d.tenant)).toEqual(['unicode', 'unicode\ufffd']);
  });

  it('the same event id under another tenant is a different event', async () => {
    const stats = await runPayloads([ev({ tenant: 'dedup-other' })]);
    expect(stats.accepted).toBe(1);
  });

  it('writing the same transformed batch twice (a retried insert) counts it once', async () => {
    const nowMs = Date.UTC(2026, 10, 30);
    const decoded = decodeBatch(
      [0, 1, 2].map((i) => ({ value: ev({ tenant: 'retry', event_id: `r-${i}` }), source: `retry:${i}` })),
      { nowMs },
    );
    const outcome = transform(decoded, { nowMs, prices: loaded.prices, seen: new Map() });
    const writer = createUsageStore(store.client);
    await writer.write(outcome);
    await writer.write(outcome); // same content -> same insert_deduplication_token -> no-op in table and views
    expect(await totalsFrom('usage_minute', 'retry')).toEqual({ requests: 3, input: 3000, output: 300 });
    expect(await totalsFrom('usage_day', 'retry')).toEqual({ requests: 3, input: 3000, output: 300 });
  });

  it('keeps invalid events with the raw payload and every reason; nothing is counted', async () => {
    const bad = ['{not json', ev({ tenant: 'invalid', event_id: 'bad-1', input_tokens: -5, cached_input_tokens: 3, status: 'nope' })];
    const stats = await runPayloads(bad);
    expect(stats.deadLetters.invalid_json).toBe(1);
    expect(stats.deadLetters.invalid_event).toBe(1);
    const rows = await queryRows<{ reason: string; raw: string; errors: string; source: string }>(
      store.client,
      "SELECT reason, raw, errors, source FROM dead_letters FINAL WHERE reason IN ('invalid_json', 'invalid_event') AND tenant IN ('', 'invalid') ORDER BY reason",
    );
    expect(rows.map((r) => [r.reason, r.raw, r.source])).toEqual([
      ['invalid_event', bad[1], 'test:2'],
      ['invalid_json', bad[0], 'test:1'],
    ]);
    const fields = (JSON.parse(rows[0]?.errors ?? '[]') as Array<{ field: string }>).map((e) => e.field).sort();
    expect(fields).toEqual(['input_tokens', 'status']);
    expect(await totalsFrom('usage_minute', 'invalid')).toEqual({ requests: 0, input: 0, output: 0 });
  });
});

describe('window assignment by event time at UTC boundaries (processor + materialized views)', () => {
  it('puts :59.999 and :00.000 in different minutes, hours and days', async () => {
    const times = ['2026-11-28T23:59:59.999Z', '2026-11-29T00:00:00.000Z', '2026-11-29T12:59:59.999Z', '2026-11-29T13:00:00.000Z'];
    await runPayloads(times.map((t, i) => ev({ tenant: 'windows', event_id: `w-${i}`, timestamp: t })));
    const q = (table: string) =>
      queryRows<{ w: string; n: string }>(
        store.client,
        `SELECT toString(window_start) AS w, sum(requests) AS n FROM ${table} WHERE tenant = 'windows' GROUP BY w ORDER BY w`,
      );
    expect((await q('usage_minute')).map((r) => [r.w, Number(r.n)])).toEqual([
      ['2026-11-28 23:59:00', 1],
      ['2026-11-29 00:00:00', 1],
      ['2026-11-29 12:59:00', 1],
      ['2026-11-29 13:00:00', 1],
    ]);
    expect((await q('usage_hour')).map((r) => [r.w, Number(r.n)])).toEqual([
      ['2026-11-28 23:00:00', 1],
      ['2026-11-29 00:00:00', 1],
      ['2026-11-29 12:00:00', 1],
      ['2026-11-29 13:00:00', 1],
    ]);
    expect((await q('usage_day')).map((r) => [r.w, Number(r.n)])).toEqual([
      ['2026-11-28 00:00:00', 1],
      ['2026-11-29 00:00:00', 3],
    ]);
  });

  it('a late event (hours old) lands in its own event-time window', async () => {
    await runPayloads([ev({ tenant: 'late', event_id: 'late-1', timestamp: '2026-11-29T03:17:42Z' })], Date.UTC(2026, 10, 29, 18));
    const rows = await queryRows<{ w: string }>(store.client, "SELECT toString(window_start) AS w FROM usage_minute WHERE tenant = 'late'");
    expect(rows).toEqual([{ w: '2026-11-29 03:17:00' }]);
  });
});

describe('latency quantiles in the window tables', () => {
  it('p50/p95/p99 merge from minute to day within the bfloat16 error (0.4%)', async () => {
    // 100 calls in two minutes with latencies 10, 20, ..., 1000 ms.
    const payloads = Array.from({ length: 100 }, (_, i) =>
      ev({ tenant: 'latency', event_id: `l-${i}`, timestamp: `2026-11-29T08:0${i % 2}:30Z`, latency_ms: (i + 1) * 10 }),
    );
    await runPayloads(payloads);
    for (const table of ['usage_minute', 'usage_day']) {
      const [row] = await queryRows<{ q: number[] }>(
        store.client,
        `SELECT quantilesBFloat16Merge(0.5, 0.95, 0.99)(latency_ms_q) AS q FROM ${table} WHERE tenant = 'latency'`,
      );
      const [p50, p95, p99] = row?.q ?? [];
      expect(Math.abs((p50 as number) - 500) / 500, `${table} p50 ${p50}`).toBeLessThanOrEqual(0.025);
      expect(Math.abs((p95 as number) - 950) / 950, `${table} p95 ${p95}`).toBeLessThanOrEqual(0.025);
      expect(Math.abs((p99 as number) - 990) / 990, `${table} p99 ${p99}`).toBeLessThanOrEqual(0.025);
    }
  });
});

describe('roll-up repair after a crash inside a multi-view insert', () => {
  it('finds days where a view lost rows and rebuilds minute, hour and day from the raw events', async () => {
    const { inconsistentDays, repairRollups } = await import('../../processors/rollup-repair.ts');
    await runPayloads(
      Array.from({ length: 30 }, (_, i) =>
        ev({
          tenant: 'repair',
          event_id: `rp-${i}`,
          timestamp: `2026-11-2${i % 3}T0${i % 10}:15:00Z`,
          input_tokens: 100 + i,
          latency_ms: 50,
        }),
      ),
    );
    const before = await Promise.all(['usage_minute', 'usage_hour', 'usage_day'].map((t) => totalsFrom(t, 'repair')));
    expect(await inconsistentDays(store.client)).toEqual([]);
    // What a kill -9 between two part commits leaves behind: the day view short for one day,
    // the minute view (and so hour and day) short for another.
    const drop = async (table: string, day: string) =>
      store.client.command({
        query: `ALTER TABLE ${table} DELETE WHERE tenant = 'repair' AND toDate(window_start) = {d:Date}`,
        query_params: { d: day },
        clickhouse_settings: { mutations_sync: '2' },
      });
    await drop('usage_day', '2026-11-21');
    for (const t of ['usage_minute', 'usage_hour', 'usage_day']) await drop(t, '2026-11-22');
    expect(await inconsistentDays(store.client)).toEqual(['2026-11-21', '2026-11-22']);
    expect(await repairRollups(store.client)).toEqual(['2026-11-21', '2026-11-22']);
    expect(await inconsistentDays(store.client)).toEqual([]);
    expect(await Promise.all(['usage_minute', 'usage_hour', 'usage_day'].map((t) => totalsFrom(t, 'repair')))).toEqual(before);
    // Other tenants' rows on those days were rebuilt too, not lost or doubled.
    expect(await totalsFrom('usage_day', 'windows')).toEqual({ requests: 4, input: 4000, output: 400 });
    expect(await repairRollups(store.client)).toEqual([]); // nothing left to do
  });
});
