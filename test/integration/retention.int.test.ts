/**
 * Retention (schemas/clickhouse/0009_set_retention.up.sql, README "Retention") on a fresh chDB
 * store: every table carries the documented TTL, the migration's statements can be run again,
 * rows expire by the time they were written (not by event time, so imported history is kept), and
 * the roll-up repair never rebuilds a day whose raw rows expired before its roll-ups.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inconsistentDays } from '../../processors/rollup-repair.ts';
import { MIGRATIONS_DIR, splitStatements } from '../../storage/migrate.ts';
import { openTestStore, queryRows, type TestStore } from '../helpers/store.ts';

let store: TestStore;
beforeAll(async () => {
  store = await openTestStore();
});
afterAll(async () => store?.close());

const DAY_MS = 86_400_000;
/** ClickHouse DateTime64 text of `ms` (UTC). */
const chTime = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');

/** The TTL clause of each table, as ClickHouse prints it in `system.tables.engine_full`. */
async function ttls(): Promise<Record<string, string>> {
  const rows = await queryRows<{ name: string; engine_full: string }>(
    store.client,
    "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree'",
  );
  return Object.fromEntries(rows.map((r) => [r.name, /\bTTL (.+?)(?: SETTINGS |$)/.exec(r.engine_full)?.[1] ?? 'none']));
}

const EXPECTED = {
  usage_events: 'stored_at + toIntervalDay(400)',
  usage_event_ids: 'stored_at + toIntervalYear(5)',
  usage_minute: 'stored_at + toIntervalDay(35)',
  usage_hour: 'stored_at + toIntervalDay(400)',
  usage_day: 'stored_at + toIntervalYear(5)',
  dead_letters: 'toDateTime(received_at) + toIntervalDay(90)',
  quota_alerts: 'toDateTime(fired_at) + toIntervalDay(400)',
  anomalies: 'toDateTime(updated_at) + toIntervalDay(400)',
  reports: 'toDateTime(generated_at) + toIntervalDay(400)',
  report_runs: 'toDateTime(started_at) + toIntervalDay(90)',
  recommendations: 'none',
  contexts: 'none',
  schema_migrations: 'none',
};

/** ClickHouse DateTime text (whole seconds) of `ms`. */
const chSecond = (ms: number) => chTime(ms).slice(0, 19);

/**
 * Insert rows naming every column they set, `stored_at` included: an insert that names a
 * MATERIALIZED column sets it (how these tests age a row); the views still stamp their own rows
 * with the time they write them.
 */
async function insertRows(table: string, values: Array<Record<string, unknown>>): Promise<void> {
  await store.client.insert({
    table,
    format: 'JSONEachRow',
    values,
    columns: Object.keys(values[0] ?? {}) as [string, ...string[]],
    clickhouse_settings: { insert_allow_materialized_columns: 1 },
  });
}

/** One raw event row of tenant `ret`, written `storedMs` (epoch ms). */
function raw(eventId: string, timestamp: string, storedMs: number, input = 10) {
  return {
    tenant: 'ret',
    event_id: eventId,
    timestamp,
    window_start: `${timestamp.slice(0, 16)}:00`,
    provider: 'openai',
    model: 'gpt-4o',
    status: 'ok',
    input_tokens: input,
    output_tokens: 1,
    cost_usd: '0',
    cost_source: 'price_table',
    ingested_at: chTime(storedMs),
    stored_at: chSecond(storedMs),
  };
}

/** Apply TTL now: a final merge runs the TTL rules on every part (the background merges do it later). */
async function mergeNow(...tables: string[]): Promise<void> {
  for (const t of tables) await store.client.command({ query: `OPTIMIZE TABLE ${t} FINAL` });
}

describe('retention (migration 0009)', () => {
  it('a fresh store has the documented TTL on every table', async () => {
    expect(await ttls()).toEqual(EXPECTED);
  });

  it("re-running the migration's statements succeeds and leaves the same TTLs", async () => {
    const sql = readFileSync(join(MIGRATIONS_DIR, '0009_set_retention.up.sql'), 'utf8');
    for (const query of splitStatements(sql)) await store.client.command({ query });
    expect(await ttls()).toEqual(EXPECTED);
    const cols = await queryRows<{ table: string; type: string; default_kind: string }>(
      store.client,
      "SELECT table, type, default_kind FROM system.columns WHERE database = currentDatabase() AND name = 'stored_at' ORDER BY table",
    );
    expect(cols).toEqual([
      { table: 'usage_day', type: "SimpleAggregateFunction(max, DateTime('UTC'))", default_kind: 'MATERIALIZED' },
      { table: 'usage_event_ids', type: "DateTime('UTC')", default_kind: 'MATERIALIZED' },
      { table: 'usage_events', type: "DateTime('UTC')", default_kind: 'MATERIALIZED' },
      { table: 'usage_hour', type: "SimpleAggregateFunction(max, DateTime('UTC'))", default_kind: 'MATERIALIZED' },
      { table: 'usage_minute', type: "SimpleAggregateFunction(max, DateTime('UTC'))", default_kind: 'MATERIALIZED' },
    ]);
  });

  it('raw events expire 400 days after they were stored, whatever their event time', async () => {
    const now = Date.now();
    await insertRows('usage_events', [
      raw('old-import', '2023-11-11 10:00:00.000', now), // imported today: kept
      raw('stored-401d', '2026-01-01 10:00:00.000', now - 401 * DAY_MS), // stored 401 days ago: expired
      raw('stored-399d', '2026-01-01 10:00:00.000', now - 399 * DAY_MS), // 399 days ago: kept
      // One day with an expired raw row and one stored today (the repair test below uses it).
      raw('day2-401d', '2026-02-02 10:00:00.000', now - 401 * DAY_MS),
      raw('day2-today', '2026-02-02 11:00:00.000', now),
    ]);
    await mergeNow('usage_events');
    const left = await queryRows<{ event_id: string }>(
      store.client,
      "SELECT event_id FROM usage_events WHERE tenant = 'ret' ORDER BY event_id",
    );
    expect(left.map((r) => r.event_id)).toEqual(['day2-today', 'old-import', 'stored-399d']);
    // The views stored all five (their rows were written now), and the id index remembers all five.
    const minute = await queryRows<{ n: string }>(store.client, "SELECT sum(requests) AS n FROM usage_minute WHERE tenant = 'ret'");
    expect(Number(minute[0]?.n)).toBe(5);
    const ids = await queryRows<{ n: string }>(store.client, "SELECT uniqExact(event_id) AS n FROM usage_event_ids WHERE tenant = 'ret'");
    expect(Number(ids[0]?.n)).toBe(5);
  });

  it('the views stamp each roll-up row with the time it was written (what the aggregate TTLs count from)', async () => {
    // The 2023 event above was written moments ago: its minute, hour and day rows must carry a
    // stored_at of today, not of 2023, or the import would be expired at once.
    for (const table of ['usage_minute', 'usage_hour', 'usage_day']) {
      const rows = await queryRows<{ w: string; age_s: string }>(
        store.client,
        `SELECT toString(window_start) AS w, dateDiff('second', max(stored_at), now()) AS age_s FROM ${table}
         WHERE tenant = 'ret' AND toYear(window_start) = 2023 GROUP BY w`,
      );
      expect(rows.length, table).toBe(1);
      expect(Number(rows[0]?.age_s), table).toBeLessThan(600); // written by this test run, not 3 years ago
    }
  });

  it('minute rows expire 35 days after their last write; hour rows keep theirs 400 days', async () => {
    const now = Date.now();
    const row = (window_start: string, storedMs: number) => ({
      window_start,
      tenant: 'ret-min',
      provider: 'openai',
      model: 'gpt-4o',
      status: 'ok',
      requests: 1,
      stored_at: chSecond(storedMs),
    });
    for (const table of ['usage_minute', 'usage_hour']) {
      await insertRows(table, [row('2026-10-01 10:00:00', now - 36 * DAY_MS), row('2026-10-01 11:00:00', now - 34 * DAY_MS)]);
    }
    await mergeNow('usage_minute', 'usage_hour');
    const windows = async (table: string) =>
      (
        await queryRows<{ w: string }>(store.client, `SELECT toString(window_start) AS w FROM ${table} WHERE tenant = 'ret-min' ORDER BY w`)
      ).map((r) => r.w);
    expect(await windows('usage_minute')).toEqual(['2026-10-01 11:00:00']);
    expect(await windows('usage_hour')).toEqual(['2026-10-01 10:00:00', '2026-10-01 11:00:00']);
  });

  it('the roll-up repair leaves alone a day whose raw rows expired, and days older than its horizon', async () => {
    // After the raw-events test: day 2026-02-02 has 1 raw row left, stored today (day2-401d
    // expired), but 2 requests in the roll-ups and 2 ids in the id index: the roll-ups are right,
    // a raw row is gone, and a rebuild would lose it. Day 2026-01-01 is alike but its raw rows are
    // older than the horizon. Neither is repaired.
    expect(await inconsistentDays(store.client)).toEqual([]);
    // A day whose roll-ups are short and whose raw rows were written 31 days ago: beyond the 30-day
    // horizon (its minute rows may have expired by then), so not compared either.
    await insertRows('usage_events', [raw('late-31d', '2026-09-15 10:00:00.000', Date.now() - 31 * DAY_MS)]);
    await store.client.command({
      query: "ALTER TABLE usage_minute DELETE WHERE tenant = 'ret' AND toDate(window_start) = '2026-09-15'",
      clickhouse_settings: { mutations_sync: '2' },
    });
    expect(await inconsistentDays(store.client)).toEqual([]);
    // The same loss on a day whose raw rows were written today is found.
    await insertRows('usage_events', [raw('today', '2026-09-16 10:00:00.000', Date.now())]);
    await store.client.command({
      query: "ALTER TABLE usage_minute DELETE WHERE tenant = 'ret' AND toDate(window_start) = '2026-09-16'",
      clickhouse_settings: { mutations_sync: '2' },
    });
    expect(await inconsistentDays(store.client)).toEqual(['2026-09-16']);
  });
});
