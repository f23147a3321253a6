/**
 * Stored weekly reports and the scheduler's run log (schemas/clickhouse/0007): tables `reports`
 * (ReplacingMergeTree on generated_at, key (tenant, week)) and `report_runs`.
 */
import { createHash } from 'node:crypto';
import type { ClickHouseClient } from './clickhouse.ts';

/** One stored report: the three renderings of one report document. */
export interface StoredReport {
  tenant: string;
  /** ISO week, `2026-W47`. */
  week: string;
  time_zone: string;
  /** Epoch ms, UTC. */
  period_start_ms: number;
  period_end_ms: number;
  generated_at_ms: number;
  json: string;
  markdown: string;
  html: string;
}

/**
 * Store a report; a later `generated_at_ms` for the same (tenant, week) replaces it. The insert is
 * deduplicated on (tenant, week, generated_at), so a retried insert adds nothing.
 * @throws whatever the ClickHouse client throws.
 */
export async function saveReport(client: ClickHouseClient, r: StoredReport): Promise<void> {
  await client.insert({
    table: 'reports',
    values: [
      {
        tenant: r.tenant,
        week: r.week,
        time_zone: r.time_zone,
        period_start: r.period_start_ms,
        period_end: r.period_end_ms,
        generated_at: r.generated_at_ms,
        json: r.json,
        markdown: r.markdown,
        html: r.html,
      },
    ],
    format: 'JSONEachRow',
    // https://clickhouse.com/docs/operations/settings/settings#insert_deduplication_token
    clickhouse_settings: { insert_deduplication_token: JSON.stringify([r.tenant, r.week, r.generated_at_ms]) },
  });
}

/**
 * The latest stored report of `tenant` (compared as stored, NFC) for `week`, or undefined.
 * @throws whatever the ClickHouse client throws.
 */
export async function loadReport(client: ClickHouseClient, tenant: string, week: string): Promise<StoredReport | undefined> {
  const rs = await client.query({
    query: `SELECT tenant, week, time_zone, toUnixTimestamp64Milli(period_start) AS period_start_ms,
  toUnixTimestamp64Milli(period_end) AS period_end_ms, toUnixTimestamp64Milli(generated_at) AS generated_at_ms, json, markdown, html
FROM reports FINAL WHERE tenant = {tenant:String} AND week = {week:String}
ORDER BY generated_at DESC LIMIT 1`,
    query_params: { tenant, week },
    format: 'JSONEachRow',
  });
  const [row] = await rs.json<Record<string, string | number>>();
  if (!row) return undefined;
  return {
    tenant: String(row.tenant),
    week: String(row.week),
    time_zone: String(row.time_zone),
    period_start_ms: Number(row.period_start_ms),
    period_end_ms: Number(row.period_end_ms),
    generated_at_ms: Number(row.generated_at_ms),
    json: String(row.json),
    markdown: String(row.markdown),
    html: String(row.html),
  };
}

export type ReportRunStatus = 'ok' | 'failed';

/** One row of `report_runs`: one tenant report attempted by a scheduled run. */
export interface ReportRun {
  run_id: string;
  job: string;
  tenant: string;
  week: string;
  /** Epoch ms, UTC. */
  started_at_ms: number;
  finished_at_ms: number;
  status: ReportRunStatus;
  /** Empty when ok. */
  error: string;
}

/**
 * Append runs to the log. The insert's deduplication token hashes the rows, so a retried insert
 * adds nothing and a different one is never taken for a retry.
 * TRICKY: the token is always set: on chDB the client's per-insert settings stay on the session,
 * so an insert without its own token would reuse the previous insert's and could be dropped as a
 * duplicate of it.
 * @throws whatever the ClickHouse client throws.
 */
export async function recordRuns(client: ClickHouseClient, runs: readonly ReportRun[]): Promise<void> {
  if (runs.length === 0) return;
  await client.insert({
    clickhouse_settings: { insert_deduplication_token: createHash('sha256').update(JSON.stringify(runs)).digest('hex') },
    table: 'report_runs',
    values: runs.map((r) => ({
      run_id: r.run_id,
      job: r.job,
      tenant: r.tenant,
      week: r.week,
      started_at: r.started_at_ms,
      finished_at: r.finished_at_ms,
      status: r.status,
      error: r.error,
    })),
    format: 'JSONEachRow',
  });
}

/**
 * The latest runs of `job` (all jobs when undefined), newest first, at most `limit`; with
 * `status`, only those. `lastRuns(c, job, 1, 'ok')[0]` is the job's last success.
 * @throws whatever the ClickHouse client throws.
 */
export async function lastRuns(
  client: ClickHouseClient,
  job: string | undefined,
  limit: number,
  status?: ReportRunStatus,
): Promise<ReportRun[]> {
  const where: string[] = [];
  const params: Record<string, unknown> = { limit };
  if (job !== undefined) {
    where.push('job = {job:String}');
    params.job = job;
  }
  if (status !== undefined) {
    where.push('status = {status:String}');
    params.status = status;
  }
  const rs = await client.query({
    query: `SELECT run_id, job, tenant, week, toUnixTimestamp64Milli(started_at) AS started_at_ms,
  toUnixTimestamp64Milli(finished_at) AS finished_at_ms, status, error
FROM report_runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
ORDER BY started_at DESC, tenant LIMIT {limit:UInt32}`,
    query_params: params,
    format: 'JSONEachRow',
  });
  return (await rs.json<Record<string, string | number>>()).map((r) => ({
    run_id: String(r.run_id),
    job: String(r.job),
    tenant: String(r.tenant),
    week: String(r.week),
    started_at_ms: Number(r.started_at_ms),
    finished_at_ms: Number(r.finished_at_ms),
    status: r.status === 'ok' ? 'ok' : 'failed',
    error: String(r.error),
  }));
}
