/**
 * Query builders for anomaly detection (issue 5): the minute series the detectors read from
 * `usage_minute`, the prompt repeats they read from `usage_events`, and the `anomalies` table
 * (schemas/clickhouse/0005) read back for `GET /v1/anomalies` and reports. Bound parameters only;
 * times are epoch ms (UTC), half-open [from, to).
 */
import type { BuiltQuery } from './usage-summary.ts';

/** Series dimensions the minute detectors watch, and the `usage_minute` columns that key them. */
export const SERIES_DIMENSIONS = {
  tenant: { key: 'tenant', where: '1' },
  user: { key: 'user_id', where: "user_id != ''" },
  provider: { key: 'provider', where: '1' },
  model: { key: "concat(provider, '/', model)", where: '1' },
} as const;
export type SeriesDimension = keyof typeof SERIES_DIMENSIONS;

/** One row of `seriesMinutes`: a series' totals in one minute (UInt64 come back as strings in JSON). */
export interface SeriesMinuteRow {
  tenant: string;
  dimension: SeriesDimension;
  series_key: string;
  user_id: string;
  provider: string;
  model: string;
  minute_ms: string | number;
  requests: string | number;
  tokens: string | number;
  cost_usd: number;
  failed: string | number;
  rate_limited: string | number;
}

/**
 * Per-minute totals of every series of every dimension in [fromMs, toMs), ordered by minute:
 * requests, tokens (input + output), cost (Float64 USD, for scoring only), failed calls (status
 * error or timeout) and rate-limited calls. Minutes without calls have no row: the caller fills them.
 */
export function seriesMinutes(f: { fromMs: number; toMs: number; tenant?: string }): BuiltQuery {
  const tenantFilter = f.tenant === undefined ? '' : ' AND tenant = {tenant:String}';
  const parts = Object.entries(SERIES_DIMENSIONS).map(
    ([dimension, d]) => `SELECT tenant, '${dimension}' AS dimension, ${d.key} AS series_key,
  ${dimension === 'user' ? 'user_id' : "''"} AS user_id,
  ${dimension === 'provider' || dimension === 'model' ? 'provider' : "''"} AS provider,
  ${dimension === 'model' ? 'model' : "''"} AS model,
  toUnixTimestamp(window_start) * 1000 AS minute_ms,
  sum(requests) AS requests, sum(input_tokens) + sum(output_tokens) AS tokens, toFloat64(sum(cost_usd)) AS cost_usd,
  sumIf(usage_minute.requests, status IN ('error', 'timeout')) AS failed,
  sumIf(usage_minute.requests, status = 'rate_limited') AS rate_limited
FROM usage_minute
WHERE window_start >= fromUnixTimestamp64Milli({from_ms:Int64}) AND window_start < fromUnixTimestamp64Milli({to_ms:Int64})
  AND ${d.where}${tenantFilter}
GROUP BY tenant, series_key, user_id, provider, model, window_start`,
  );
  return {
    query: `SELECT * FROM (\n${parts.join('\nUNION ALL\n')}\n) ORDER BY minute_ms, tenant, dimension, series_key`,
    query_params: { from_ms: f.fromMs, to_ms: f.toMs, ...(f.tenant === undefined ? {} : { tenant: f.tenant }) },
  };
}

/** One row of `promptMinutes`. */
export interface PromptMinuteRow {
  tenant: string;
  user_id: string;
  task_id: string;
  prompt_hash: string;
  minute_ms: string | number;
  calls: string | number;
}

/**
 * Calls per (tenant, user, task, prompt_hash, minute) in [fromMs, toMs), for prompts sent at least
 * twice in one minute or more than once in the range (a loop repeats): rows with a single call in
 * the whole range are left out to keep the answer small.
 */
export function promptMinutes(f: { fromMs: number; toMs: number; tenant?: string }): BuiltQuery {
  const tenantFilter = f.tenant === undefined ? '' : ' AND tenant = {tenant:String}';
  return {
    query: `SELECT tenant, user_id, task_id, prompt_hash, toUnixTimestamp(window_start) * 1000 AS minute_ms, count() AS calls
FROM usage_events
WHERE timestamp >= fromUnixTimestamp64Milli({from_ms:Int64}) AND timestamp < fromUnixTimestamp64Milli({to_ms:Int64})
  AND prompt_hash != ''${tenantFilter}
  AND (tenant, user_id, task_id, prompt_hash) IN (
    SELECT tenant, user_id, task_id, prompt_hash FROM usage_events
    WHERE timestamp >= fromUnixTimestamp64Milli({from_ms:Int64}) AND timestamp < fromUnixTimestamp64Milli({to_ms:Int64})
      AND prompt_hash != ''${tenantFilter}
    GROUP BY tenant, user_id, task_id, prompt_hash HAVING count() > 1)
GROUP BY tenant, user_id, task_id, prompt_hash, window_start
ORDER BY minute_ms, tenant, user_id, task_id, prompt_hash`,
    query_params: { from_ms: f.fromMs, to_ms: f.toMs, ...(f.tenant === undefined ? {} : { tenant: f.tenant }) },
  };
}

export interface AnomalyFilter {
  tenant: string;
  fromMs?: number;
  toMs?: number;
  kind?: string;
  minScore?: number;
  /** Most rows, newest first. */
  limit: number;
}

/**
 * Anomalies of a tenant whose episode overlaps [fromMs, toMs), newest first, one row per episode
 * (FINAL: the latest version of each). Times come back as epoch ms (`<column>_ms`, Int64: strings in JSON).
 */
export function listAnomalies(f: AnomalyFilter): BuiltQuery {
  const where = ['tenant = {tenant:String}'];
  const params: Record<string, unknown> = { tenant: f.tenant, limit: f.limit };
  if (f.fromMs !== undefined) {
    where.push('window_end > fromUnixTimestamp64Milli({from_ms:Int64})');
    params.from_ms = f.fromMs;
  }
  if (f.toMs !== undefined) {
    where.push('window_start < fromUnixTimestamp64Milli({to_ms:Int64})');
    params.to_ms = f.toMs;
  }
  if (f.kind !== undefined) {
    where.push('kind = {kind:String}');
    params.kind = f.kind;
  }
  if (f.minScore !== undefined) {
    where.push('score >= {min_score:Float64}');
    params.min_score = f.minScore;
  }
  const ts = (c: string) => `toUnixTimestamp64Milli(${c}) AS ${c}_ms`;
  return {
    query: `SELECT anomaly_id, kind, detector, dimension, series_key, user_id, provider, model,
  ${ts('window_start')}, ${ts('window_end')}, score, expected, actual, metric, status, details,
  ${ts('detected_at')}, ${ts('updated_at')}
FROM anomalies FINAL WHERE ${where.join(' AND ')}
ORDER BY window_start DESC, kind, anomaly_id LIMIT {limit:UInt32}`,
    query_params: params,
  };
}

/** One row of `openAnomalies` (times as epoch ms; Int64 are strings in JSON). */
export interface OpenAnomalyRow {
  anomaly_id: string;
  tenant: string;
  kind: string;
  detector: string;
  dimension: string;
  series_key: string;
  user_id: string;
  provider: string;
  model: string;
  window_start_ms: string | number;
  window_end_ms: string | number;
  score: number;
  expected: number;
  actual: number;
  metric: string;
  details: string;
  detected_at_ms: string | number;
  updated_at_ms: string | number;
}

/** Every anomaly whose latest version is still open (FINAL), optionally for one tenant: what a restart takes over. */
export function openAnomalies(f: { tenant?: string } = {}): BuiltQuery {
  const ms = (c: string) => `toUnixTimestamp64Milli(${c}) AS ${c}_ms`;
  return {
    query: `SELECT anomaly_id, tenant, kind, detector, dimension, series_key, user_id, provider, model,
  ${ms('window_start')}, ${ms('window_end')}, score, expected, actual, metric, details, ${ms('detected_at')}, ${ms('updated_at')}
FROM anomalies FINAL WHERE status = 'open'${f.tenant === undefined ? '' : ' AND tenant = {tenant:String}'}
ORDER BY tenant, window_start, anomaly_id`,
    query_params: f.tenant === undefined ? {} : { tenant: f.tenant },
  };
}
