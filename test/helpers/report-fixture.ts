/** A hand-written weekly report document (no database), with hostile ids, for the renderer tests. */
import type { ReportTotals, WeeklyReport } from '../../schemas/report.ts';

export const EVIL = '<script>alert(1)</script>|*x*';

const t = (requests: number, input: number, output: number, cost: string, unpriced = 0): ReportTotals => ({
  requests,
  input_tokens: input,
  output_tokens: output,
  cached_input_tokens: 0,
  reasoning_tokens: 0,
  cost_usd: cost,
  unpriced_requests: unpriced,
});

const day = (date: string, totals: ReportTotals) => ({ date, start: `${date}T00:00:00.000Z`, end: `${date}T00:00:00.000Z`, ...totals });

/** Days with data: Mon, Wed, Sun (3). Quotas: 2. Models: 2 rows + other. */
export function fixtureReport(): WeeklyReport {
  return {
    version: 1,
    tenant: EVIL,
    week: '2026-W47',
    time_zone: 'UTC',
    period: { start: '2026-11-16T00:00:00.000Z', end: '2026-11-23T00:00:00.000Z', hours: 168 },
    previous: { week: '2026-W46', start: '2026-11-09T00:00:00.000Z', end: '2026-11-16T00:00:00.000Z' },
    generated_at: '2026-11-23T06:00:00.000Z',
    complete: true,
    source_table: 'usage_hour',
    totals: {
      week: t(5, 5100, 610, '2'),
      previous: t(2, 2000, 200, '1'),
      change_percent: {
        requests: 150,
        input_tokens: 155,
        output_tokens: 205,
        cached_input_tokens: null,
        reasoning_tokens: null,
        cost_usd: 100,
      },
    },
    daily: [
      day('2026-11-16', t(2, 2000, 300, '0.75')),
      day('2026-11-17', t(0, 0, 0, '0')),
      day('2026-11-18', t(1, 2500, 300, '1.125')),
      day('2026-11-19', t(0, 0, 0, '0')),
      day('2026-11-20', t(0, 0, 0, '0')),
      day('2026-11-21', t(0, 0, 0, '0')),
      day('2026-11-22', t(2, 600, 10, '0.125', 1)),
    ],
    by_model: {
      rows: [
        { provider: 'anthropic', model: EVIL, ...t(2, 3000, 300, '1.25') },
        { provider: 'openai', model: 'gpt-4o', ...t(2, 2000, 300, '0.75') },
      ],
      other: { groups: 1, ...t(1, 100, 10, '0', 1) },
    },
    by_user: { rows: [{ user_id: EVIL, ...t(5, 5100, 610, '2', 1) }], other: null },
    by_task: { rows: [{ task_id: '', ...t(5, 5100, 610, '2', 1) }], other: null },
    completion: {
      overall: { requests: 5, ok: 3, rate: 0.6 },
      by_task: [{ task_id: EVIL, requests: 2, ok: 1, rate: 0.5 }],
      other_tasks: { groups: 1, requests: 2, ok: 1, rate: 0.5 },
    },
    quotas: [
      {
        id: 'day-tokens',
        metric: 'tokens',
        scope: { tenant: EVIL },
        window: 'calendar day (UTC)',
        limit: '3000',
        soft_threshold: 0.8,
        peak: {
          used: '2800',
          percent: 93.33,
          state: 'soft',
          window_start: '2026-11-18T00:00:00.000Z',
          window_end: '2026-11-19T00:00:00.000Z',
        },
        alerts: { soft: 1, hard: 0, recovered: 0 },
      },
      {
        id: 'week-usd',
        metric: 'usd',
        scope: { tenant: EVIL },
        window: 'calendar week (UTC)',
        limit: '2',
        soft_threshold: 0.8,
        peak: {
          used: '1.25',
          percent: 62.5,
          state: 'ok',
          window_start: '2026-11-16T00:00:00.000Z',
          window_end: '2026-11-23T00:00:00.000Z',
        },
        alerts: { soft: 0, hard: 0, recovered: 0 },
      },
    ],
    alerts: [
      {
        alert_id: 'a1',
        quota_id: 'day-tokens',
        kind: 'soft',
        metric: 'tokens',
        used: '2500',
        limit: '3000',
        percent: 83.33,
        window_start: '2026-11-18T00:00:00.000Z',
        window_end: '2026-11-19T00:00:00.000Z',
        fired_at: '2026-11-18T12:00:00.000Z',
      },
    ],
    anomalies: { total: 0, items: [] },
    recommendations: {
      available: true,
      items: [
        {
          id: 'r1',
          kind: 'cache_repeated_prompts',
          tenant: EVIL,
          subject: { model: EVIL },
          title: `Cache ${EVIL}`,
          rationale: 'Half the calls repeat a prompt.\nSecond line.',
          evidence: { query: 'SELECT 1', params: {}, figures: { repeats: 3 } },
          estimated_monthly_saving: { tokens: 1000, usd: '12.5', priced: true },
          confidence: 'high',
          window: { from: '2026-11-16T00:00:00.000Z', to: '2026-11-23T00:00:00.000Z' },
        },
      ],
      adopted: [{ id: 'r0', estimated_usd: '10', actual_usd: '8', ratio: 0.8 }],
    },
  };
}
