/**
 * The weekly report's data on the real engine (chDB), from a small hand-built data set written
 * through the processor path. Every expected value is computed by hand in the comments: totals and
 * week-over-week change, the daily split, top N + other, completion per task, quota peaks, alerts
 * and anomalies of the week; a DST week in America/New_York (169 hours) and a +05:30 zone (read
 * from usage_minute). Then storage, the API route (formats, auth) and the CLI output.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { Value } from '@sinclair/typebox/value';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { writeTenantReports } from '../../cli/commands/report.ts';
import { loadConfig } from '../../config/load.ts';
import { createUsageStore } from '../../processors/clickhouse-writer.ts';
import {
  createReportService,
  type RecommendationEngine,
  type ReportService,
  UnknownTenantError,
} from '../../processors/reports/report-service.ts';
import { clickhouseRunStore, createReportScheduler } from '../../processors/reports/scheduler.ts';
import { buildWeeklyReport } from '../../processors/reports/weekly.ts';
import { decodeBatch, transform } from '../../processors/usage.processor.ts';
import type { QuotaSpec } from '../../schemas/quota.ts';
import { WeeklyReport } from '../../schemas/report.ts';
import { lastRuns } from '../../storage/report-store.ts';
import { openTestStore, type TestStore } from '../helpers/store.ts';

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0); // Wed 2026-11-25, after every event
const at = (text: string) => Date.parse(text);

interface Ev {
  tenant: string;
  t: string;
  user?: string;
  task?: string;
  provider?: string;
  model?: string;
  input: number;
  output: number;
  cached?: number;
  reasoning?: number;
  cost?: string;
  status?: string;
}

let n = 0;
const payload = (e: Ev) =>
  JSON.stringify({
    event_id: `e-${n++}`,
    timestamp: e.t,
    tenant: e.tenant,
    ...(e.user ? { user_id: e.user } : {}),
    ...(e.task ? { task_id: e.task } : {}),
    provider: e.provider ?? 'openai',
    model: e.model ?? 'gpt-4o',
    input_tokens: e.input,
    output_tokens: e.output,
    ...(e.cached ? { cached_input_tokens: e.cached } : {}),
    ...(e.reasoning ? { reasoning_tokens: e.reasoning } : {}),
    ...(e.cost ? { cost_usd: Number(e.cost) } : {}),
    ...(e.status ? { status: e.status } : {}),
  });

// Tenant t-utc, week 2026-W47 = [Mon 2026-11-16, Mon 2026-11-23) UTC; previous week W46.
const UTC_EVENTS: Ev[] = [
  // W47
  { tenant: 't-utc', t: '2026-11-16T10:00:00Z', user: 'alice', task: 'T1', input: 1000, output: 200, cost: '0.5' },
  {
    tenant: 't-utc',
    t: '2026-11-16T10:05:00Z',
    user: 'alice',
    task: 'T1',
    input: 1000,
    output: 100,
    cached: 400,
    cost: '0.25',
    status: 'error',
  },
  {
    tenant: 't-utc',
    t: '2026-11-18T23:59:00Z',
    user: 'bob',
    task: 'T2',
    provider: 'anthropic',
    model: 'claude-x',
    input: 2500,
    output: 300,
    reasoning: 50,
    cost: '1.125',
  },
  {
    tenant: 't-utc',
    t: '2026-11-22T23:59:59.999Z',
    user: 'bob',
    task: 'T2',
    provider: 'anthropic',
    model: 'claude-x',
    input: 500,
    output: 0,
    cost: '0.125',
    status: 'rate_limited',
  },
  { tenant: 't-utc', t: '2026-11-22T12:00:00Z', user: 'carol', provider: 'acme', model: 'no-price-model', input: 100, output: 10 },
  // next week: excluded
  { tenant: 't-utc', t: '2026-11-23T00:00:00Z', user: 'alice', task: 'T1', input: 9999, output: 9999, cost: '99' },
  // W46
  { tenant: 't-utc', t: '2026-11-15T23:59:59.999Z', user: 'alice', task: 'T1', input: 1000, output: 100, cost: '0.5' },
  { tenant: 't-utc', t: '2026-11-10T08:00:00Z', user: 'alice', task: 'T1', input: 1000, output: 100, cost: '0.5' },
];

// Tenant t-ny, week 2026-W44 in America/New_York: [2026-10-26T04:00Z, 2026-11-02T05:00Z), DST ends Sun 11-01.
const NY_EVENTS: Ev[] = [
  { tenant: 't-ny', t: '2026-10-26T03:59:00Z', input: 1, output: 0, cost: '1' }, // Sun 10-25 23:59 EDT: W43
  { tenant: 't-ny', t: '2026-10-26T04:00:00Z', input: 10, output: 0, cost: '1' }, // Mon 00:00 EDT: day 1
  { tenant: 't-ny', t: '2026-11-01T04:30:00Z', input: 100, output: 0, cost: '1' }, // Sun 00:30 EDT: day 7
  { tenant: 't-ny', t: '2026-11-02T04:30:00Z', input: 1000, output: 0, cost: '1' }, // Sun 23:30 EST: still day 7
  { tenant: 't-ny', t: '2026-11-02T05:00:00Z', input: 10000, output: 0, cost: '1' }, // Mon 00:00 EST: W45
];

// Tenant t-in, week 2026-W47 in Asia/Kolkata (+05:30): [2026-11-15T18:30Z, 2026-11-22T18:30Z).
const IN_EVENTS: Ev[] = [
  { tenant: 't-in', t: '2026-11-15T18:29:00Z', input: 1, output: 0 }, // Sun 23:59 IST: W46
  { tenant: 't-in', t: '2026-11-15T18:30:00Z', input: 10, output: 0 }, // Mon 00:00 IST: day 1
  { tenant: 't-in', t: '2026-11-16T18:29:00Z', input: 100, output: 0 }, // Mon 23:59 IST: day 1
  { tenant: 't-in', t: '2026-11-16T18:30:00Z', input: 1000, output: 0 }, // Tue 00:00 IST: day 2
];

// Tenant t-clip, reported in UTC with a day quota of Europe/Berlin (+01:00 in November): Berlin days
// run 23:00Z to 23:00Z, so the first and last day windows of W47 [11-16T00Z, 11-23T00Z) stick out of it.
const CLIP_EVENTS: Ev[] = [
  { tenant: 't-clip', t: '2026-11-15T23:30:00Z', input: 300, output: 0 }, // W46, but Berlin day 11-16: a Monday check sees it
  { tenant: 't-clip', t: '2026-11-22T23:30:00Z', input: 100, output: 0 }, // W47 (Sun 23:30 UTC), Berlin day 11-23
  { tenant: 't-clip', t: '2026-11-23T10:00:00Z', input: 5000, output: 0 }, // W48, same Berlin day: after W47 ended
];

const QUOTAS: QuotaSpec[] = [
  // Daily tokens: Mon 1,200 + 1,100 = 2,300; Wed 2,800; Sun 610 -> peak Wed 2,800 of 3,000 = 93.33%, soft.
  { id: 'day-tokens', scope: { tenant: 't-utc' }, metric: 'tokens', limit: 3000, window: { kind: 'calendar', unit: 'day' } },
  // Rolling 10 min of requests: Mon 10:00 and 10:05 together -> 2 of 4 = 50%, window [09:56, 10:06).
  { id: 'burst', scope: { tenant: 't-utc' }, metric: 'requests', limit: 4, window: { kind: 'rolling', minutes: 10 } },
  // Bob's weekly USD: 1.125 + 0.125 = 1.25 of 2 = 62.5%.
  { id: 'bob-week-usd', scope: { tenant: 't-utc', user_id: 'bob' }, metric: 'usd', limit: '2', window: { kind: 'calendar', unit: 'week' } },
  { id: 'other-tenant', scope: { tenant: 't-ny' }, metric: 'requests', limit: 10, window: { kind: 'calendar', unit: 'day' } },
  {
    id: 'clip-berlin-day',
    scope: { tenant: 't-clip' },
    metric: 'tokens',
    limit: 1000,
    window: { kind: 'calendar', unit: 'day', time_zone: 'Europe/Berlin' },
  },
];

const KEY_UTC = 'read-key-t-utc-0123456789';
const KEY_NY = 'read-key-t-ny-01234567890';
const ADMIN = 'admin-key-0123456789abcdef';

let store: TestStore;
let service: ReportService;
let app: FastifyInstance;

const engine: RecommendationEngine = {
  recommend: async (_c, args) => [
    {
      id: 'small',
      kind: 'cap_max_tokens',
      tenant: args.tenant,
      subject: { model: 'gpt-4o' },
      title: 'Cap max_tokens',
      rationale: 'Outputs are short.',
      evidence: { query: 'SELECT 1', params: {}, figures: {} },
      estimated_monthly_saving: { tokens: 500, usd: '0.5', priced: true },
      confidence: 'medium',
      window: { from: new Date(args.fromMs).toISOString(), to: new Date(args.toMs).toISOString() },
    },
    {
      id: 'big',
      kind: 'cache_repeated_prompts',
      tenant: args.tenant,
      subject: {},
      title: 'Cache repeated prompts',
      rationale: 'Prompts repeat.',
      evidence: { query: 'SELECT 2', params: {}, figures: {} },
      estimated_monthly_saving: { tokens: 100, usd: '3.25', priced: true },
      confidence: 'high',
      window: { from: new Date(args.fromMs).toISOString(), to: new Date(args.toMs).toISOString() },
    },
  ],
  measureAdopted: async () => [{ id: 'old', estimated_usd: '2', actual_usd: '1.5', ratio: 0.75 }],
};

beforeAll(async () => {
  store = await openTestStore();
  const events = [...UTC_EVENTS, ...NY_EVENTS, ...IN_EVENTS, ...CLIP_EVENTS].map(payload);
  const decoded = decodeBatch(
    events.map((value, i) => ({ value, source: `test:${i}` })),
    { nowMs: NOW },
  );
  const outcome = transform(decoded, { nowMs: NOW, prices: loadConfig(undefined, {}).prices, seen: new Map() });
  expect(outcome.deadLetters).toEqual([]);
  await createUsageStore(store.client).write(outcome);

  const alert = (id: string, kind: string, firedAt: string) => ({
    alert_id: id,
    kind,
    quota_id: 'day-tokens',
    tenant: 't-utc',
    user_id: '',
    team: '',
    provider: '',
    metric: 'tokens',
    used: '2500',
    limit: '3000',
    percent: 83.33,
    soft_threshold: 0.8,
    window_kind: 'calendar',
    window_start: at('2026-11-18T00:00:00Z'),
    window_end: at('2026-11-19T00:00:00Z'),
    episode_start: at('2026-11-18T00:00:00Z'),
    fired_at: at(firedAt),
  });
  await store.client.insert({
    table: 'quota_alerts',
    format: 'JSONEachRow',
    values: [alert('in-week', 'soft', '2026-11-18T23:59:30Z'), alert('before', 'soft', '2026-11-15T23:00:00Z')],
  });
  const anomaly = (id: string, from: string, to: string, score: number) => ({
    anomaly_id: id,
    tenant: 't-utc',
    kind: 'spend_spike',
    detector: 'test',
    dimension: 'model',
    series_key: 'anthropic/claude-x',
    user_id: '',
    provider: 'anthropic',
    model: 'claude-x',
    window_start: at(from),
    window_end: at(to),
    score,
    expected: 0.01,
    actual: 1.125,
    metric: 'usd_per_min',
    status: 'resolved',
    details: '{}',
    detected_at: at(from),
    updated_at: at(to),
  });
  await store.client.insert({
    table: 'anomalies',
    format: 'JSONEachRow',
    values: [
      anomaly('overlaps-start', '2026-11-15T23:58:00Z', '2026-11-16T00:01:00Z', 0.7),
      anomaly('inside', '2026-11-18T23:59:00Z', '2026-11-19T00:00:00Z', 0.95),
      anomaly('after', '2026-11-23T00:00:00Z', '2026-11-23T00:05:00Z', 0.99),
    ],
  });

  service = createReportService({
    clickhouse: store.client,
    reports: { time_zone: 'UTC', tenant_time_zones: { 't-ny': 'America/New_York', 't-in': 'Asia/Kolkata' }, top_n: 2 },
    quotas: QUOTAS,
    prices: loadConfig(undefined, {}).prices,
    engine,
    now: () => NOW,
  });
  app = buildApp({
    logger: false,
    bodyLimitBytes: 1_048_576,
    readiness: {},
    api: {
      clickhouse: store.client,
      keys: [
        { key: KEY_UTC, tenant: 't-utc', role: 'read' },
        { key: KEY_NY, tenant: 't-ny', role: 'read' },
        { key: ADMIN, role: 'admin' },
      ],
      reports: service,
    },
  });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await store?.close();
});

describe('weekly report data (UTC tenant, 2026-W47)', () => {
  it('totals, previous week and the week-over-week change', async () => {
    const r = await buildWeeklyReport(store.client, { tenant: 't-utc', week: '2026-W47', quotas: QUOTAS, topN: 2, nowMs: NOW });
    expect(Value.Check(WeeklyReport, r)).toBe(true);
    expect(r.source_table).toBe('usage_hour');
    expect(r.period).toEqual({ start: '2026-11-16T00:00:00.000Z', end: '2026-11-23T00:00:00.000Z', hours: 168 });
    expect(r.complete).toBe(true);
    // 5 calls; input 1000+1000+2500+500+100 = 5100; output 200+100+300+0+10 = 610; cost 0.5+0.25+1.125+0.125 = 2.
    expect(r.totals.week).toEqual({
      requests: 5,
      input_tokens: 5100,
      output_tokens: 610,
      cached_input_tokens: 400,
      reasoning_tokens: 50,
      cost_usd: '2',
      unpriced_requests: 1,
    });
    expect(r.totals.previous).toEqual({
      requests: 2,
      input_tokens: 2000,
      output_tokens: 200,
      cached_input_tokens: 0,
      reasoning_tokens: 0,
      cost_usd: '1',
      unpriced_requests: 0,
    });
    // (5-2)/2 = 150%; (5100-2000)/2000 = 155%; (610-200)/200 = 205%; cached and reasoning were 0; (2-1)/1 = 100%.
    expect(r.totals.change_percent).toEqual({
      requests: 150,
      input_tokens: 155,
      output_tokens: 205,
      cached_input_tokens: null,
      reasoning_tokens: null,
      cost_usd: 100,
    });
  });

  it('daily split, top 2 + other per model, user and task, completion per task', async () => {
    const r = await buildWeeklyReport(store.client, { tenant: 't-utc', week: '2026-W47', topN: 2, nowMs: NOW });
    expect(r.daily.map((d) => [d.date, d.requests, d.cost_usd])).toEqual([
      ['2026-11-16', 2, '0.75'],
      ['2026-11-17', 0, '0'],
      ['2026-11-18', 1, '1.125'],
      ['2026-11-19', 0, '0'],
      ['2026-11-20', 0, '0'],
      ['2026-11-21', 0, '0'],
      ['2026-11-22', 2, '0.125'],
    ]);
    expect(r.by_model.rows.map((m) => [m.provider, m.model, m.requests, m.cost_usd])).toEqual([
      ['anthropic', 'claude-x', 2, '1.25'],
      ['openai', 'gpt-4o', 2, '0.75'],
    ]);
    expect(r.by_model.other).toEqual({
      groups: 1,
      requests: 1,
      input_tokens: 100,
      output_tokens: 10,
      cached_input_tokens: 0,
      reasoning_tokens: 0,
      cost_usd: '0',
      unpriced_requests: 1,
    });
    expect(r.by_user.rows.map((u) => [u.user_id, u.cost_usd])).toEqual([
      ['bob', '1.25'],
      ['alice', '0.75'],
    ]);
    expect(r.by_task.rows.map((t) => [t.task_id, t.cost_usd])).toEqual([
      ['T2', '1.25'],
      ['T1', '0.75'],
    ]);
    expect(r.by_task.other?.groups).toBe(1); // the calls without a task
    // ok calls: Mon 10:00, Wed, Sun 12:00 = 3 of 5. T1: 1 of 2; T2: 1 of 2 (rate_limited is not ok).
    expect(r.completion.overall).toEqual({ requests: 5, ok: 3, rate: 0.6 });
    expect(r.completion.by_task).toEqual([
      { task_id: 'T1', requests: 2, ok: 1, rate: 0.5 },
      { task_id: 'T2', requests: 2, ok: 1, rate: 0.5 },
    ]);
    expect(r.completion.other_tasks).toBeNull();
    const one = await buildWeeklyReport(store.client, { tenant: 't-utc', week: '2026-W47', topN: 1, nowMs: NOW });
    expect(one.completion.other_tasks).toEqual({ groups: 1, requests: 2, ok: 1, rate: 0.5 });
  });

  it('quota peaks with the alerts that fired in the week; anomalies overlapping the week', async () => {
    const r = await buildWeeklyReport(store.client, { tenant: 't-utc', week: '2026-W47', quotas: QUOTAS, nowMs: NOW });
    expect(r.quotas.map((q) => [q.id, q.peak.used, q.peak.percent, q.peak.state, q.peak.window_start, q.peak.window_end])).toEqual([
      ['day-tokens', '2800', 93.33, 'soft', '2026-11-18T00:00:00.000Z', '2026-11-19T00:00:00.000Z'],
      ['burst', '2', 50, 'ok', '2026-11-16T09:56:00.000Z', '2026-11-16T10:06:00.000Z'],
      ['bob-week-usd', '1.25', 62.5, 'ok', '2026-11-16T00:00:00.000Z', '2026-11-23T00:00:00.000Z'],
    ]);
    expect(r.quotas[0]?.alerts).toEqual({ soft: 1, hard: 0, recovered: 0 });
    expect(r.alerts.map((a) => [a.alert_id, a.used, a.limit, a.fired_at])).toEqual([
      ['in-week', '2500', '3000', '2026-11-18T23:59:30.000Z'],
    ]);
    expect(r.anomalies.total).toBe(2);
    expect(r.anomalies.items.map((a) => a.anomaly_id)).toEqual(['inside', 'overlaps-start']);
  });

  it("a quota peak counts only what a check during the week could see: no usage after the week's end", async () => {
    const r = await buildWeeklyReport(store.client, { tenant: 't-clip', week: '2026-W47', quotas: QUOTAS, nowMs: NOW });
    expect(r.totals.week.input_tokens).toBe(100);
    // Berlin day 11-16 [11-15T23Z, 11-16T23Z): 300 (before the week, but seen by a check on Monday).
    // Berlin day 11-23 [11-22T23Z, 11-23T23Z): only its first hour is in W47: 100, not 100 + 5,000.
    // Peak: 300 of 1,000 = 30%, ok.
    expect(r.quotas.map((q) => [q.id, q.peak.used, q.peak.percent, q.peak.state, q.peak.window_start, q.peak.window_end])).toEqual([
      ['clip-berlin-day', '300', 30, 'ok', '2026-11-15T23:00:00.000Z', '2026-11-16T23:00:00.000Z'],
    ]);
    // W48 [11-23T00Z, 11-30T00Z): a check on Monday 11-23 sees 100 + 5,000 = 5,100 of 1,000: exhausted (510%).
    const w48 = await buildWeeklyReport(store.client, { tenant: 't-clip', week: '2026-W48', quotas: QUOTAS, nowMs: NOW });
    expect(w48.quotas[0]?.peak).toMatchObject({ used: '5100', percent: 510, state: 'exhausted', window_start: '2026-11-22T23:00:00.000Z' });
  });

  it('ranks the recommendations by saving and carries the measured effect of adopted ones', async () => {
    const { report } = await service.generate('t-utc', '2026-W47');
    expect(report.recommendations.available).toBe(true);
    expect(report.recommendations.items.map((x) => x.id)).toEqual(['big', 'small']);
    expect(report.recommendations.adopted).toEqual([{ id: 'old', estimated_usd: '2', actual_usd: '1.5', ratio: 0.75 }]);
  });
});

describe('time zones', () => {
  it('America/New_York, the DST week 2026-W44: 169 hours, the 25-hour Sunday keeps its last hour', async () => {
    const r = await buildWeeklyReport(store.client, { tenant: 't-ny', week: '2026-W44', timeZone: 'America/New_York', nowMs: NOW });
    expect(r.source_table).toBe('usage_hour');
    expect(r.period).toEqual({ start: '2026-10-26T04:00:00.000Z', end: '2026-11-02T05:00:00.000Z', hours: 169 });
    expect(r.totals.week.requests).toBe(3);
    expect(r.totals.week.input_tokens).toBe(1110);
    expect(r.totals.previous.input_tokens).toBe(1);
    expect(r.totals.change_percent.input_tokens).toBe(110_900); // (1110 - 1) / 1 x 100
    expect(r.daily.map((d) => d.input_tokens)).toEqual([10, 0, 0, 0, 0, 0, 1100]);
    expect(r.daily[6]).toMatchObject({ date: '2026-11-01', start: '2026-11-01T04:00:00.000Z', end: '2026-11-02T05:00:00.000Z' });
  });

  it('Asia/Kolkata (+05:30): read from usage_minute, so 18:29 and 18:30 UTC fall in different days and weeks', async () => {
    const r = await buildWeeklyReport(store.client, { tenant: 't-in', week: '2026-W47', timeZone: 'Asia/Kolkata', nowMs: NOW });
    expect(r.source_table).toBe('usage_minute');
    expect(r.totals.week.input_tokens).toBe(1110);
    expect(r.totals.previous.input_tokens).toBe(1);
    expect(r.daily.slice(0, 2).map((d) => [d.date, d.input_tokens])).toEqual([
      ['2026-11-16', 110],
      ['2026-11-17', 1000],
    ]);
  });
});

describe('stored reports, the API route and the scheduler log', () => {
  it('stores a report; the route serves it as JSON, Markdown or HTML', async () => {
    await service.generateAndStore('t-utc', '2026-W47');
    const get = (url: string, headers: Record<string, string> = {}) =>
      app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${KEY_UTC}`, ...headers } });

    const json = await get('/v1/reports/t-utc/weekly?week=2026-W47');
    expect(json.statusCode).toBe(200);
    expect(json.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(json.headers['x-quotaflow-report']).toBe('stored');
    expect(json.json().totals.week.cost_usd).toBe('2');

    const html = await get('/v1/reports/t-utc/weekly?week=2026-W47', { accept: 'text/html' });
    expect(html.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(html.headers['content-security-policy']).toContain("default-src 'none'");
    expect(html.body).toContain('<figure data-chart="daily-cost">');

    const mdRes = await get('/v1/reports/t-utc/weekly?week=2026-W47&format=md', { accept: 'text/html' });
    expect(mdRes.headers['content-type']).toBe('text/markdown; charset=utf-8');
    expect(mdRes.body).toContain('| Requests | 5 | 2 | +150% |');
  });

  it('generates (without storing) a week that has no stored report', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/v1/reports/t-ny/weekly?week=2026-W44',
      headers: { 'x-api-key': KEY_NY },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-quotaflow-report']).toBe('generated');
    expect(res.json()).toMatchObject({ tenant: 't-ny', time_zone: 'America/New_York', period: { hours: 169 } });
    expect(await service.stored('t-ny', '2026-W44')).toBeUndefined();
  });

  it('a read key reads only its tenant; bad week and missing key are refused', async () => {
    const other = await app.inject({ method: 'GET', url: '/v1/reports/t-ny/weekly?week=2026-W44', headers: { 'x-api-key': KEY_UTC } });
    expect(other.statusCode).toBe(403);
    const admin = await app.inject({ method: 'GET', url: '/v1/reports/t-ny/weekly?week=2026-W44', headers: { 'x-api-key': ADMIN } });
    expect(admin.statusCode).toBe(200);
    const none = await app.inject({ method: 'GET', url: '/v1/reports/t-utc/weekly?week=2026-W47' });
    expect(none.statusCode).toBe(401);
    const bad = await app.inject({ method: 'GET', url: '/v1/reports/t-utc/weekly?week=2025-W53', headers: { 'x-api-key': KEY_UTC } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toContain('2025 has weeks 01..52');
  });

  it('a week outside [1999-W52, the week after now] is a 400 naming the week, stored or not', async () => {
    for (const week of ['1970-W01', '0001-W01', '1000-W01', '1900-W01', '1969-W01', '1999-W51', '2026-W50', '9999-W10']) {
      const res = await app.inject({ method: 'GET', url: `/v1/reports/t-utc/weekly?week=${week}`, headers: { 'x-api-key': KEY_UTC } });
      expect(res.statusCode, week).toBe(400);
      // NOW is in 2026-W48, so the last week a report may cover is 2026-W49.
      expect(res.json().error, week).toEqual({
        code: 'bad_request',
        message: `week ${week}: reports cover 1999-W52 (the week of 2000-01-01, the earliest event time accepted) to 2026-W49 (the week after the current one in UTC)`,
      });
    }
    await expect(service.generateAndStore('t-utc', '9999-W10')).rejects.toThrow('week 9999-W10: reports cover 1999-W52');
    expect(await service.stored('t-utc', '9999-W10')).toBeUndefined();
  });

  it('an unknown tenant (no usage ever, not in the config) is a 404; nothing is generated or stored for it', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/reports/nobody/weekly?week=2026-W47', headers: { 'x-api-key': ADMIN } });
    expect(res.statusCode).toBe(404);
    expect(res.json().error).toEqual({
      code: 'not_found',
      message: 'unknown tenant "nobody": no usage was ever recorded for it and the config does not name it',
    });
    await expect(service.generateAndStore('nobody', '2026-W47')).rejects.toThrow(UnknownTenantError);
    expect(await service.stored('nobody', '2026-W47')).toBeUndefined();
    // A tenant the config names but without usage yet gets an empty report.
    const configured = createReportService({
      clickhouse: store.client,
      reports: { time_zone: 'UTC', tenant_time_zones: {}, top_n: 2 },
      configuredTenants: ['t-new'],
      prices: loadConfig(undefined, {}).prices,
      now: () => NOW,
    });
    const { report } = await configured.generate('t-new', '2026-W47');
    expect([report.tenant, report.totals.week.requests, report.quotas]).toEqual(['t-new', 0, []]);
    await expect(configured.generate('nobody', '2026-W47')).rejects.toThrow(UnknownTenantError);
  });

  it('the CLI refuses a week out of range and an unknown tenant with one line each, exit 1, nothing stored', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qf-report-cli-'));
    const env = { ...process.env, CLICKHOUSE_PATH: join(dir, 'data') };
    const quotaflow = (args: string[]) =>
      promisify(execFile)('node', ['bin/quotaflow.js', ...args], { env }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );
    try {
      const early = await quotaflow(['report', '--tenant', 'mooncake', '--week', '1969-W01']);
      expect(early.code).toBe(1);
      expect(early.stderr).toMatch(/^quotaflow: week 1969-W01: reports cover 1999-W52 \(the week of 2000-01-01, [^\n]*\)\n$/);
      const unknown = await quotaflow(['report', '--tenant', 'nobody', '--week', '2026-W10']);
      expect(unknown).toMatchObject({
        code: 1,
        stdout: '',
        stderr: 'quotaflow: unknown tenant "nobody": no usage was ever recorded for it and the config does not name it\n',
      });
      const stored = await quotaflow(['sql', 'SELECT count() AS n FROM reports', '--format', 'TSVWithNames']);
      expect(stored).toMatchObject({ code: 0, stdout: 'n\n0\n' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a scheduled run logs ok and failed reports in report_runs', async () => {
    const failing = {
      ...service,
      generateAndStore: async (t: string, w: string) => (t === 't-in' ? Promise.reject(new Error('boom')) : service.generateAndStore(t, w)),
    };
    const scheduler = createReportScheduler({
      service: failing,
      store: clickhouseRunStore(store.client),
      config: {
        schedule: '0 6 * * 1',
        time_zone: 'UTC',
        tenant_time_zones: { 't-ny': 'America/New_York', 't-in': 'Asia/Kolkata' },
        tenants: ['t-utc', 't-in'],
      },
      logger: pino({ level: 'silent' }),
      now: () => Date.UTC(2026, 10, 23, 6, 0),
    });
    await scheduler.runNow('UTC');
    await scheduler.runNow('Asia/Kolkata');
    const runs = await lastRuns(store.client, undefined, 10);
    expect(runs.map((r) => [r.job, r.tenant, r.week, r.status, r.error]).sort()).toEqual([
      ['weekly-report:Asia/Kolkata', 't-in', '2026-W47', 'failed', 'boom'],
      ['weekly-report:UTC', 't-utc', '2026-W47', 'ok', ''],
    ]);
    const [lastOk] = await lastRuns(store.client, 'weekly-report:UTC', 1, 'ok');
    expect(lastOk?.tenant).toBe('t-utc');
  });

  it("the demo step writes md, html and json for the ISO week of each tenant's latest event", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qf-demo-reports-'));
    try {
      const paths = await writeTenantReports(loadConfig(undefined, {}), store.client, dir, engine);
      // Latest events (UTC weeks): t-clip 2026-11-23T10:00Z (W48), t-in 2026-11-16T18:30Z (W47),
      // t-ny 2026-11-02T05:00Z (W45), t-utc 2026-11-23T00:00Z (W48).
      expect(paths.map((p) => basename(p))).toEqual([
        't-clip-2026-W48.md',
        't-clip-2026-W48.html',
        't-clip-2026-W48.json',
        't-in-2026-W47.md',
        't-in-2026-W47.html',
        't-in-2026-W47.json',
        't-ny-2026-W45.md',
        't-ny-2026-W45.html',
        't-ny-2026-W45.json',
        't-utc-2026-W48.md',
        't-utc-2026-W48.html',
        't-utc-2026-W48.json',
      ]);
      expect(readFileSync(join(dir, 't-utc-2026-W48.md'), 'utf8')).toContain('# Weekly report: t-utc, 2026-W48');
      // In UTC (no zone configured here), W45 of t-ny holds 2026-11-02T04:30Z (1,000) and 05:00Z (10,000).
      expect(JSON.parse(readFileSync(join(dir, 't-ny-2026-W45.json'), 'utf8')).totals.week.input_tokens).toBe(11_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
