/**
 * The weekly report's data (issue 6, SPEC.md section 7): for one tenant and one ISO week in the
 * tenant's time zone, gather from ClickHouse the totals and their week-over-week change, the daily
 * series, cost by provider/model, user and task (top N + other), task completion, quota peaks and
 * alerts, and anomalies, and attach the recommendations handed in. Renderers (markdown.ts, html.ts)
 * read only the resulting `WeeklyReport` (schemas/report.ts).
 *
 * Exactness: sums come from `usage_hour` when every boundary the report needs (the two weeks'
 * starts, each local midnight, the week's end) is a whole UTC hour, which holds in every zone with
 * whole-hour offsets, DST weeks included; else from `usage_minute` (Asia/Kolkata +05:30,
 * Asia/Kathmandu +05:45, Australia/Lord_Howe's 30-minute DST). USD sums stay exact decimals.
 */
import { Decimal as DecimalJs } from 'decimal.js';
import { formatIsoWeek, type IsoWeek, isoWeekInterval, localDays, parseIsoWeek, previousIsoWeek } from '../../domain/iso-week.ts';
import { type QuotaInterval, quotaStatus, quotaWindow } from '../../domain/quota.ts';
import { findTeam, memberIds, type TeamMembership } from '../../domain/team-allocation.ts';
import { HOUR_MS, MINUTE_MS } from '../../domain/windows.ts';
import { DEFAULT_SOFT_THRESHOLD, DEFAULT_TIME_ZONE, type QuotaSpec } from '../../schemas/quota.ts';
import {
  type Breakdown,
  REPORT_VERSION,
  type ReportAdoption,
  type ReportAnomaly,
  type ReportQuota,
  type ReportQuotaAlert,
  type ReportRecommendation,
  type ReportTotals,
  type WeeklyReport,
} from '../../schemas/report.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import { listAnomalies } from '../../storage/queries/anomalies.ts';
import { totalsByTenant } from '../../storage/queries/usage-summary.ts';
import {
  alertsFired,
  type BreakdownDimension,
  breakdownTotals,
  dailyTotals,
  overallCompletion,
  quotaUsageSeries,
  type ReportRange,
  taskCompletion,
} from '../../storage/queries/weekly-report.ts';
import { measurableWith } from '../../storage/quota-measure.ts';

// 40 significant digits, as domain/quota.ts: sums of 12-decimal USD amounts never round.
const Decimal = DecimalJs.clone({ precision: 40 });
type Decimal = InstanceType<typeof Decimal>;

/** At most this many anomalies are listed, highest score first (all are counted). */
export const MAX_REPORT_ANOMALIES = 50;
/** At most this many anomalies of a week are read (and counted). */
const MAX_ANOMALIES_READ = 10_000;
/** Default rows per breakdown before "other" (config reports.top_n). */
export const DEFAULT_TOP_N = 10;

/** A recommendation, as processors/recommendations `recommend()` returns it. */
export type Recommendation = ReportRecommendation;
/** A measured adopted recommendation, as processors/recommendations `measureAdopted()` returns it. */
export type AdoptionMeasure = ReportAdoption;

/** What the recommendation engine said for the report week (see `generateRecommendations` in report-service.ts). */
export interface RecommendationsInput {
  items: readonly Recommendation[];
  adopted: readonly AdoptionMeasure[];
}

export interface WeeklyReportInput {
  tenant: string;
  /** ISO week, `2026-W47`. */
  week: string;
  /** IANA zone the week runs in (Monday 00:00 to Monday 00:00 local). Default UTC. */
  timeZone?: string;
  /** Config quotas; those of the tenant (and measurable with `teams`) are reported. */
  quotas?: readonly QuotaSpec[];
  /** Config teams: the members a team quota counts. */
  teams?: readonly TeamMembership[];
  /** Rows per breakdown before "other". Default 10. */
  topN?: number;
  /** Generation time, epoch ms (`generated_at`, `complete`). */
  nowMs: number;
  /** Omitted: the report says recommendations are not available. */
  recommendations?: RecommendationsInput;
}

/** The report range cannot be read exactly from any aggregate (a zone offset in seconds). */
export class ReportRangeError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'ReportRangeError';
  }
}

const iso = (ms: number) => new Date(ms).toISOString();
const num = (v: unknown) => Number(v ?? 0);
/** A ClickHouse decimal (string or number) as an exact decimal string, no exponent, no trailing zeros. */
const dec = (v: unknown): string => new Decimal(String(v ?? 0)).toFixed();

const ZERO: ReportTotals = {
  requests: 0,
  input_tokens: 0,
  output_tokens: 0,
  cached_input_tokens: 0,
  reasoning_tokens: 0,
  cost_usd: '0',
  unpriced_requests: 0,
};
const COUNT_FIELDS = ['requests', 'input_tokens', 'output_tokens', 'cached_input_tokens', 'reasoning_tokens', 'unpriced_requests'] as const;

/** A totals row from ClickHouse (UInt64 as strings, cost as a decimal string). */
function totals(r: Record<string, unknown> | undefined): ReportTotals {
  if (!r) return { ...ZERO };
  return {
    requests: num(r.requests),
    input_tokens: num(r.input_tokens),
    output_tokens: num(r.output_tokens),
    cached_input_tokens: num(r.cached_input_tokens),
    reasoning_tokens: num(r.reasoning_tokens),
    cost_usd: dec(r.cost_usd),
    unpriced_requests: num(r.unpriced_requests),
  };
}

/** a - b, field by field. */
function minus(a: ReportTotals, b: ReportTotals): ReportTotals {
  const out = { ...a, cost_usd: new Decimal(a.cost_usd).sub(b.cost_usd).toFixed() };
  for (const f of COUNT_FIELDS) out[f] = a[f] - b[f];
  return out;
}

function sum(rows: readonly ReportTotals[]): ReportTotals {
  const out = { ...ZERO };
  let cost = new Decimal(0);
  for (const r of rows) {
    for (const f of COUNT_FIELDS) out[f] += r[f];
    cost = cost.add(r.cost_usd);
  }
  return { ...out, cost_usd: cost.toFixed() };
}

/** (cur - prev) / prev x 100, rounded half up to 2 decimals; null when prev is 0. */
export function changePercent(cur: number | string, prev: number | string): number | null {
  const p = new Decimal(String(prev));
  if (p.isZero()) return null;
  return new Decimal(String(cur)).sub(p).div(p).mul(100).toDecimalPlaces(2, Decimal.ROUND_HALF_UP).toNumber();
}

/** ok / requests, 4 decimals (half up); null without calls. */
const rate = (ok: number, requests: number) =>
  requests === 0 ? null : new Decimal(ok).div(requests).toDecimalPlaces(4, Decimal.ROUND_HALF_UP).toNumber();

/**
 * The aggregate that reads every boundary exactly: `hour` when all are whole UTC hours, `minute`
 * when all are whole minutes.
 * @throws ReportRangeError otherwise (a zone whose offset has seconds: only historical LMT offsets).
 */
export function granularityFor(boundariesMs: readonly number[]): ReportRange['granularity'] {
  if (boundariesMs.every((b) => b % HOUR_MS === 0)) return 'hour';
  if (boundariesMs.every((b) => b % MINUTE_MS === 0)) return 'minute';
  throw new ReportRangeError('the report week does not start on a whole minute in this zone: no aggregate reads it exactly');
}

async function rows<T = Record<string, unknown>>(client: ClickHouseClient, q: { query: string; query_params: Record<string, unknown> }) {
  const rs = await client.query({ ...q, format: 'JSONEachRow' });
  return rs.json<T>();
}

/** Top N rows of a breakdown and the rest of `total`, as `Breakdown`. */
async function breakdown<K>(
  client: ClickHouseClient,
  range: ReportRange,
  dimension: BreakdownDimension,
  topN: number,
  total: ReportTotals,
  key: (r: Record<string, unknown>) => K,
): Promise<Breakdown<K>> {
  const found = await rows(client, breakdownTotals(range, dimension, topN));
  const top = found.map((r) => ({ ...key(r), ...totals(r) }));
  const groups = num(found[0]?.groups);
  const other = groups > top.length ? { groups: groups - top.length, ...minus(total, sum(top)) } : null;
  return { rows: top, other };
}

/** A readable window: `calendar day (Europe/Berlin)` or `rolling 60 min`. */
function describeWindow(spec: QuotaSpec): string {
  const w = spec.window;
  return w.kind === 'rolling' ? `rolling ${w.minutes} min` : `calendar ${w.unit} (${w.time_zone ?? DEFAULT_TIME_ZONE})`;
}

/** Usage rows of a series: window start (ms) and amount. */
type SeriesRow = { startMs: number; used: Decimal };

/**
 * The quota's peak in the week: the highest usage a status check inside the week could have
 * seen, and the status of that window (quotaStatus, so percent and state follow the same rules as
 * the live API). A check at time t sees its window's usage from the window's start up to t, so
 * usage before the week inside a window counts and usage after the week's end never does.
 * - calendar: every window of the quota's unit and zone that overlaps the week, measured over
 *   [window start, min(window end, week end)) (a month quota: from the month's start to the
 *   week's end at most);
 * - rolling N minutes: the window [e - N, e) at the end e of each minute of the week.
 * Ties go to the earliest window.
 */
async function quotaPeak(client: ClickHouseClient, spec: QuotaSpec, week: QuotaInterval, users: readonly string[] | undefined) {
  const scope = {
    tenant: spec.scope.tenant.normalize('NFC'),
    ...(spec.scope.user_id === undefined ? {} : { user_id: spec.scope.user_id.normalize('NFC') }),
    ...(users === undefined ? {} : { users }),
    ...(spec.scope.provider === undefined ? {} : { provider: spec.scope.provider.toLowerCase() }),
    metric: spec.metric,
  };
  const series = async (fromMs: number, toMs: number, granularity: ReportRange['granularity']): Promise<SeriesRow[]> =>
    (await rows<{ t: string | number; used: string | number }>(client, quotaUsageSeries({ ...scope, fromMs, toMs, granularity }))).map(
      (r) => ({ startMs: Number(r.t) * 1000, used: new Decimal(String(r.used)) }),
    );

  let best = { used: new Decimal(0), atMs: week.startMs };
  if (spec.window.kind === 'calendar') {
    const windows: QuotaInterval[] = [];
    for (let t = week.startMs; t < week.endMs; ) {
      const w = quotaWindow(spec.window, t);
      windows.push(w);
      t = w.endMs;
    }
    // What a check inside the week can see of each window: up to the week's end at most.
    const seenEndMs = (w: QuotaInterval) => Math.min(w.endMs, week.endMs);
    const first = windows[0] as QuotaInterval;
    const data = await series(first.startMs, week.endMs, granularityFor(windows.flatMap((w) => [w.startMs, seenEndMs(w)])));
    best = { used: new Decimal(0), atMs: first.startMs };
    let i = 0;
    for (const w of windows) {
      let used = new Decimal(0);
      while (i < data.length && (data[i] as SeriesRow).startMs < seenEndMs(w)) used = used.add((data[i++] as SeriesRow).used);
      if (used.gt(best.used)) best = { used, atMs: w.startMs };
    }
  } else {
    const spanMs = spec.window.minutes * MINUTE_MS;
    const data = await series(week.startMs - spanMs, week.endMs, 'minute');
    // The sum over [e - N, e) only grows when a minute enters, so the peak is at the first
    // instant of the week or right after a minute of the week.
    const ends = [week.startMs + MINUTE_MS, ...data.filter((d) => d.startMs >= week.startMs).map((d) => d.startMs + MINUTE_MS)];
    best = { used: new Decimal(0), atMs: week.startMs + MINUTE_MS };
    let used = new Decimal(0);
    let head = 0;
    let tail = 0;
    for (const e of [...new Set(ends)].sort((a, b) => a - b)) {
      while (head < data.length && (data[head] as SeriesRow).startMs < e) used = used.add((data[head++] as SeriesRow).used);
      while (tail < head && (data[tail] as SeriesRow).startMs < e - spanMs) used = used.sub((data[tail++] as SeriesRow).used);
      if (used.gt(best.used)) best = { used, atMs: e };
    }
  }
  const s = quotaStatus(spec, { usedInWindow: best.used.toFixed(), nowMs: best.atMs });
  return { used: best.used.toFixed(), percent: s.percent, state: s.state, window_start: s.window_start, window_end: s.window_end };
}

/** The quotas of `tenant` with their peaks in the week and the count of alerts each fired. */
async function quotasSection(
  client: ClickHouseClient,
  tenant: string,
  input: WeeklyReportInput,
  week: QuotaInterval,
  alerts: readonly ReportQuotaAlert[],
): Promise<ReportQuota[]> {
  const teams = input.teams ?? [];
  const mine = (input.quotas ?? []).filter((q) => q.scope.tenant.normalize('NFC') === tenant && measurableWith({ teams })(q));
  return Promise.all(
    mine.map(async (spec): Promise<ReportQuota> => {
      const team = spec.scope.team === undefined ? undefined : findTeam(teams, spec.scope.tenant, spec.scope.team);
      const peak = await quotaPeak(client, spec, week, team === undefined ? undefined : memberIds(team));
      const fired = alerts.filter((a) => a.quota_id === spec.id);
      const count = (kind: string) => fired.filter((a) => a.kind === kind).length;
      const scope = Object.fromEntries(Object.entries(spec.scope).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
      return {
        id: spec.id,
        metric: spec.metric,
        scope,
        window: describeWindow(spec),
        limit: dec(spec.limit),
        soft_threshold: spec.soft_threshold ?? DEFAULT_SOFT_THRESHOLD,
        peak,
        alerts: { soft: count('soft'), hard: count('hard'), recovered: count('recovered') },
      };
    }),
  );
}

/**
 * Recommendations ranked by estimated monthly saving: USD (exact) descending, then tokens
 * descending, then id, so the order is total and stable.
 */
export function rankRecommendations(items: readonly Recommendation[]): Recommendation[] {
  return [...items].sort((a, b) => {
    const usd = new Decimal(String(b.estimated_monthly_saving.usd)).cmp(String(a.estimated_monthly_saving.usd));
    if (usd !== 0) return usd;
    const tokens = b.estimated_monthly_saving.tokens - a.estimated_monthly_saving.tokens;
    return tokens !== 0 ? tokens : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
}

/**
 * Build the weekly report of `input.tenant` (NFC) for `input.week` in `input.timeZone`.
 * Queries run in parallel; nothing is written.
 * @throws IsoWeekError on a bad week or zone; RangeError on a bad topN; ReportRangeError (see
 *   granularityFor); whatever the ClickHouse client throws.
 */
export async function buildWeeklyReport(client: ClickHouseClient, input: WeeklyReportInput): Promise<WeeklyReport> {
  const tenant = input.tenant.normalize('NFC');
  const zone = input.timeZone ?? DEFAULT_TIME_ZONE;
  const topN = input.topN ?? DEFAULT_TOP_N;
  if (!Number.isInteger(topN) || topN < 1) throw new RangeError(`topN must be a whole number >= 1, got ${topN}`);
  const parsed: IsoWeek = parseIsoWeek(input.week);
  const week = isoWeekInterval(input.week, zone);
  const prevName = previousIsoWeek(input.week);
  const prev = isoWeekInterval(prevName, zone);
  const days = localDays(input.week, zone);
  const granularity = granularityFor([prev.startMs, ...days.map((d) => d.startMs), week.endMs]);
  const range: ReportRange = { tenant, fromMs: week.startMs, toMs: week.endMs, granularity };
  const timeRange = { tenant, fromMs: week.startMs, toMs: week.endMs };

  const [cur, before, daily, completion, byTask, alertRows, anomalyRows] = await Promise.all([
    rows(client, totalsByTenant(range, granularity)),
    rows(client, totalsByTenant({ ...range, fromMs: prev.startMs, toMs: prev.endMs }, granularity)),
    rows(
      client,
      dailyTotals(
        range,
        days.map((d) => d.startMs),
      ),
    ),
    rows(client, overallCompletion(range)),
    rows(client, taskCompletion(range, topN)),
    rows(client, alertsFired(timeRange)),
    rows(client, listAnomalies({ ...timeRange, limit: MAX_ANOMALIES_READ })),
  ]);
  const weekTotals = totals(cur[0]);
  const prevTotals = totals(before[0]);

  const [byModel, byUser, byTaskCost] = await Promise.all([
    breakdown(client, range, 'model', topN, weekTotals, (r) => ({ provider: String(r.provider), model: String(r.model) })),
    breakdown(client, range, 'user', topN, weekTotals, (r) => ({ user_id: String(r.user_id) })),
    breakdown(client, range, 'task', topN, weekTotals, (r) => ({ task_id: String(r.task_id) })),
  ]);

  const alerts: ReportQuotaAlert[] = alertRows.map((r) => ({
    alert_id: String(r.alert_id),
    quota_id: String(r.quota_id),
    kind: String(r.kind),
    metric: String(r.metric),
    used: dec(r.used),
    limit: dec(r.limit_amount),
    percent: num(r.percent),
    window_start: iso(num(r.window_start_ms)),
    window_end: iso(num(r.window_end_ms)),
    fired_at: iso(num(r.fired_at_ms)),
  }));
  const anomalies: ReportAnomaly[] = anomalyRows.map((r) => ({
    anomaly_id: String(r.anomaly_id),
    kind: String(r.kind),
    dimension: String(r.dimension),
    series_key: String(r.series_key),
    window_start: iso(num(r.window_start_ms)),
    window_end: iso(num(r.window_end_ms)),
    score: num(r.score),
    expected: num(r.expected),
    actual: num(r.actual),
    metric: String(r.metric),
    status: String(r.status),
  }));
  anomalies.sort((a, b) => b.score - a.score || a.window_start.localeCompare(b.window_start) || a.anomaly_id.localeCompare(b.anomaly_id));

  const byDay = new Map(daily.map((r) => [num(r.day), totals(r)]));
  const overall = completion[0] ?? {};
  const taskRows = byTask.map((r) => ({
    task_id: String(r.task_id),
    requests: num(r.requests),
    ok: num(r.ok),
    rate: rate(num(r.ok), num(r.requests)),
  }));
  const taskGroups = num(byTask[0]?.groups);
  const otherReq = num(overall.task_requests) - taskRows.reduce((n, r) => n + r.requests, 0);
  const otherOk = num(overall.task_ok) - taskRows.reduce((n, r) => n + r.ok, 0);

  const change = Object.fromEntries(
    (['requests', 'input_tokens', 'output_tokens', 'cached_input_tokens', 'reasoning_tokens', 'cost_usd'] as const).map((f) => [
      f,
      changePercent(weekTotals[f], prevTotals[f]),
    ]),
  ) as WeeklyReport['totals']['change_percent'];

  return {
    version: REPORT_VERSION,
    tenant,
    week: formatIsoWeek(parsed),
    time_zone: zone,
    period: { start: iso(week.startMs), end: iso(week.endMs), hours: (week.endMs - week.startMs) / HOUR_MS },
    previous: { week: prevName, start: iso(prev.startMs), end: iso(prev.endMs) },
    generated_at: iso(input.nowMs),
    complete: input.nowMs >= week.endMs,
    source_table: granularity === 'hour' ? 'usage_hour' : 'usage_minute',
    totals: { week: weekTotals, previous: prevTotals, change_percent: change },
    daily: days.map((d, i) => ({ date: d.date, start: iso(d.startMs), end: iso(d.endMs), ...(byDay.get(i + 1) ?? { ...ZERO }) })),
    by_model: byModel,
    by_user: byUser,
    by_task: byTaskCost,
    completion: {
      overall: { requests: num(overall.requests), ok: num(overall.ok), rate: rate(num(overall.ok), num(overall.requests)) },
      by_task: taskRows,
      other_tasks:
        taskGroups > taskRows.length
          ? { groups: taskGroups - taskRows.length, requests: otherReq, ok: otherOk, rate: rate(otherOk, otherReq) }
          : null,
    },
    quotas: await quotasSection(client, tenant, input, week, alerts),
    alerts,
    anomalies: { total: anomalies.length, items: anomalies.slice(0, MAX_REPORT_ANOMALIES) },
    recommendations: {
      available: input.recommendations !== undefined,
      items: rankRecommendations(input.recommendations?.items ?? []),
      adopted: [...(input.recommendations?.adopted ?? [])],
    },
  };
}
