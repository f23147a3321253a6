/**
 * Start-up check and repair of the window aggregates.
 *
 * A batch is one INSERT into `usage_events`, whose materialized views write `usage_minute`, which
 * in turn feeds `usage_hour` and `usage_day`. ClickHouse commits a table and its views one part
 * at a time, not atomically: a process killed inside that commit can leave the raw rows (and the
 * id index) stored but a later view's rows missing. The replay then finds the ids already stored
 * and, rightly, does not insert them again, so the roll-up would stay short for good.
 *
 * Before a processor consumes anything, this compares per UTC day the request count and token
 * sums of `usage_events` (the source of truth) with the minute, hour and day tables; for every
 * day that disagrees it deletes that day from the three tables and re-inserts it from the raw
 * rows through the minute view's own SELECT (read from `system.tables`, so the definition stays
 * in the migration), which refills hour and day through their views. Idempotent: a crash during
 * the repair is found and repaired again at the next start. Runs only while nothing else writes.
 *
 * Retention (schemas/clickhouse/0009): the tables expire rows at different ages after they were
 * stored (minute 35 days, raw and hour 400, day 5 years), so an old day legitimately disagrees.
 * Only days whose raw rows were all written (`stored_at`) within `REPAIR_HORIZON_DAYS` are compared (nothing of
 * theirs can have expired while every table keeps more than the horizon plus a 2-day margin), and a
 * day whose id index knows more events than `usage_events` holds (raw rows expired while the longer
 * kept roll-ups still count them) is never rebuilt, so the repair cannot shrink a roll-up to what
 * is left of the raw rows. A crash therefore stays repairable for 30 days after the batch was written.
 */
import type { ClickHouseClient } from '../storage/clickhouse.ts';

interface DayTotals {
  d: string;
  n: string;
  i: string;
  o: string;
}

/**
 * Days whose raw rows were all written within this many days are compared; must stay below the shortest
 * retention of the usage tables (usage_minute: 35 days) minus a 2-day margin (README "Retention").
 */
export const REPAIR_HORIZON_DAYS = 30;

const TOTALS: Record<string, string> = {
  usage_events: `SELECT toString(toDate(timestamp)) AS d, count() AS n, sum(input_tokens) AS i, sum(output_tokens) AS o FROM usage_events
GROUP BY d HAVING min(stored_at) >= now() - INTERVAL ${REPAIR_HORIZON_DAYS} DAY`,
  usage_minute:
    'SELECT toString(toDate(window_start)) AS d, sum(requests) AS n, sum(input_tokens) AS i, sum(output_tokens) AS o FROM usage_minute GROUP BY d',
  usage_hour:
    'SELECT toString(toDate(window_start)) AS d, sum(requests) AS n, sum(input_tokens) AS i, sum(output_tokens) AS o FROM usage_hour GROUP BY d',
  usage_day:
    'SELECT toString(toDate(window_start)) AS d, sum(requests) AS n, sum(input_tokens) AS i, sum(output_tokens) AS o FROM usage_day GROUP BY d',
};

async function totalsByDay(client: ClickHouseClient, table: string): Promise<Map<string, string>> {
  const rows = await (await client.query({ query: TOTALS[table] as string, format: 'JSONEachRow' })).json<DayTotals>();
  return new Map(rows.map((r) => [r.d, `${r.n}/${r.i}/${r.o}`]));
}

/**
 * UTC days (YYYY-MM-DD) whose roll-ups disagree with the raw events, among the days whose raw
 * rows were all written within `REPAIR_HORIZON_DAYS` and none of which expired (see the module comment).
 */
export async function inconsistentDays(client: ClickHouseClient): Promise<string[]> {
  const [raw, ...rollups] = await Promise.all(Object.keys(TOTALS).map((t) => totalsByDay(client, t)));
  const rawTotals = raw as Map<string, string>;
  const candidates = [...rawTotals.keys()].filter((d) => rollups.some((m) => m.get(d) !== rawTotals.get(d)));
  if (candidates.length === 0) return [];
  // Distinct ids per candidate day in the id index (kept longer than usage_events): more ids than
  // raw rows means raw rows of that day expired, and the roll-ups rightly still count them.
  const ids = await (
    await client.query({
      query: `SELECT toString(toDate(timestamp)) AS d, uniqExact(tenant, event_id) AS n FROM usage_event_ids
WHERE toDate(timestamp) IN {days:Array(Date)} GROUP BY d`,
      query_params: { days: candidates },
      format: 'JSONEachRow',
    })
  ).json<{ d: string; n: string }>();
  const known = new Map(ids.map((r) => [r.d, Number(r.n)]));
  const rawCount = (d: string) => Number(rawTotals.get(d)?.split('/')[0]);
  return candidates.filter((d) => (known.get(d) ?? 0) <= rawCount(d)).sort();
}

/**
 * Find and repair roll-up days that disagree with `usage_events`.
 * @returns the repaired days (empty when everything agreed).
 * @throws ClickHouseError from the queries; nothing is half-repaired that the next run would not redo.
 */
export async function repairRollups(client: ClickHouseClient): Promise<string[]> {
  const days = await inconsistentDays(client);
  if (days.length === 0) return [];
  const [def] = await (
    await client.query({
      query: "SELECT as_select FROM system.tables WHERE database = currentDatabase() AND name = 'usage_minute_mv'",
      format: 'JSONEachRow',
    })
  ).json<{ as_select: string }>();
  if (!def) throw new Error('usage_minute_mv not found: run quotaflow migrate');
  const rebuild = def.as_select.replace(
    /\bFROM\s+(?:\S+\.)?usage_events\b/,
    'FROM (SELECT * FROM usage_events WHERE toDate(timestamp) IN {days:Array(Date)})',
  );
  for (const table of ['usage_day', 'usage_hour', 'usage_minute']) {
    await client.command({
      query: `ALTER TABLE ${table} DELETE WHERE toDate(window_start) IN {days:Array(Date)}`,
      query_params: { days },
      clickhouse_settings: { mutations_sync: '2' },
    });
  }
  // One INSERT through the minute table: its views refill hour and day for these days.
  // insert_deduplicate=0: a rebuilt block may equal an earlier one (same rows), and must not be skipped.
  await client.command({
    query: `INSERT INTO usage_minute ${rebuild}`,
    query_params: { days },
    clickhouse_settings: { insert_deduplicate: 0 },
  });
  return days;
}
