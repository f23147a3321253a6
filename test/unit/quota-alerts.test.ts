import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { quotaStatus } from '../../domain/quota.ts';
import {
  type AlertKind,
  alertId,
  alertStateFromLog,
  evaluateQuotaAlerts,
  type QuotaAlert,
  type QuotaAlertState,
} from '../../domain/quota-alerts.ts';
import type { QuotaSpec } from '../../schemas/quota.ts';
import { latestAlertPeriods } from '../../storage/queries/quota-alerts.ts';

const utc = (iso: string) => Date.parse(iso);
/** The documented id formula, computed independently of the module. */
const expectedId = (tenant: string, quotaId: string, periodIso: string, kind: AlertKind) =>
  createHash('sha256')
    .update(`${tenant}\u0000${quotaId}\u0000${utc(periodIso)}\u0000${kind}`)
    .digest('hex');

const DAILY: QuotaSpec = {
  id: 'acme-tokens-day',
  scope: { tenant: 'acme' },
  metric: 'tokens',
  limit: 10_000,
  window: { kind: 'calendar', unit: 'day' },
};
const ROLLING: QuotaSpec = {
  id: 'acme-requests-60m',
  scope: { tenant: 'acme' },
  metric: 'requests',
  limit: 100,
  window: { kind: 'rolling', minutes: 60 },
};

/** Feed (time, used) steps through the state machine; returns every alert fired and the final state. */
function run(spec: QuotaSpec, steps: Array<[string, number | string]>, start?: QuotaAlertState) {
  let state = start;
  const fired: Array<{ at: string; alerts: QuotaAlert[] }> = [];
  for (const [at, used] of steps) {
    const nowMs = utc(at);
    const r = evaluateQuotaAlerts(spec, state, quotaStatus(spec, { usedInWindow: used, nowMs }), nowMs);
    state = r.state;
    fired.push({ at, alerts: r.alerts });
  }
  return { fired, all: fired.flatMap((f) => f.alerts), state };
}
const kindsAt = (r: ReturnType<typeof run>) => r.fired.map((f) => [f.at, f.alerts.map((a) => a.kind)]);

describe('evaluateQuotaAlerts: calendar quota (one alert per kind per window)', () => {
  it('50% -> 85% -> 90% -> 100% -> 120% fires soft once and hard once; 10% the next day fires recovered once', () => {
    const r = run(DAILY, [
      ['2026-11-29T09:00:00Z', 5_000],
      ['2026-11-29T10:00:00Z', 8_500],
      ['2026-11-29T11:00:00Z', 9_000],
      ['2026-11-29T12:00:00Z', 10_000],
      ['2026-11-29T13:00:00Z', 12_000],
      ['2026-11-29T14:00:00Z', 12_000],
      ['2026-11-30T00:30:00Z', 1_000],
      ['2026-11-30T01:00:00Z', 1_500],
    ]);
    expect(kindsAt(r)).toEqual([
      ['2026-11-29T09:00:00Z', []],
      ['2026-11-29T10:00:00Z', ['soft']],
      ['2026-11-29T11:00:00Z', []],
      ['2026-11-29T12:00:00Z', ['hard']],
      ['2026-11-29T13:00:00Z', []],
      ['2026-11-29T14:00:00Z', []],
      ['2026-11-30T00:30:00Z', ['recovered']],
      ['2026-11-30T01:00:00Z', []],
    ]);
    const [soft, hard, recovered] = r.all;
    expect(soft).toEqual({
      alert_id: expectedId('acme', 'acme-tokens-day', '2026-11-29T00:00:00Z', 'soft'),
      kind: 'soft',
      quota_id: 'acme-tokens-day',
      tenant: 'acme',
      user_id: null,
      team: null,
      provider: null,
      percent: 85,
      soft_threshold: 0.8,
      window_kind: 'calendar',
      window_start: '2026-11-29T00:00:00.000Z',
      window_end: '2026-11-30T00:00:00.000Z',
      episode_start: '2026-11-29T00:00:00.000Z',
      fired_at: '2026-11-29T10:00:00.000Z',
      metric: 'tokens',
      used: 8_500,
      limit: 10_000,
    });
    expect(hard).toMatchObject({ kind: 'hard', used: 10_000, percent: 100, fired_at: '2026-11-29T12:00:00.000Z' });
    expect(hard?.alert_id).toBe(expectedId('acme', 'acme-tokens-day', '2026-11-29T00:00:00Z', 'hard'));
    // The recovery belongs to the new window, where it was seen.
    expect(recovered).toMatchObject({
      kind: 'recovered',
      used: 1_000,
      percent: 10,
      window_start: '2026-11-30T00:00:00.000Z',
      episode_start: '2026-11-30T00:00:00.000Z',
      fired_at: '2026-11-30T00:30:00.000Z',
    });
    expect(recovered?.alert_id).toBe(expectedId('acme', 'acme-tokens-day', '2026-11-30T00:00:00Z', 'recovered'));
    expect(r.state).toEqual({ window_start_ms: utc('2026-11-30T00:00:00Z'), level: 'ok', fired: ['recovered'] });
  });

  it('ok -> exhausted in one step fires soft then hard, once, with the same fired_at', () => {
    const r = run(DAILY, [
      ['2026-11-29T10:00:00Z', 100],
      ['2026-11-29T10:01:00Z', 12_000],
      ['2026-11-29T10:02:00Z', 13_000],
    ]);
    expect(kindsAt(r)).toEqual([
      ['2026-11-29T10:00:00Z', []],
      ['2026-11-29T10:01:00Z', ['soft', 'hard']],
      ['2026-11-29T10:02:00Z', []],
    ]);
    expect(r.all.map((a) => [a.fired_at, a.percent])).toEqual([
      ['2026-11-29T10:01:00.000Z', 120],
      ['2026-11-29T10:01:00.000Z', 120],
    ]);
    expect(r.state).toEqual({ window_start_ms: utc('2026-11-29T00:00:00Z'), level: 'exhausted', fired: ['soft', 'hard'] });
  });

  it('a new window that starts soft or exhausted fires for that window again, without recovered', () => {
    const soft = run(DAILY, [
      ['2026-11-29T22:00:00Z', 8_000], // exactly 80%: soft
      ['2026-11-30T00:10:00Z', 8_100],
    ]);
    expect(kindsAt(soft)).toEqual([
      ['2026-11-29T22:00:00Z', ['soft']],
      ['2026-11-30T00:10:00Z', ['soft']],
    ]);
    expect(soft.all[0]?.alert_id).not.toBe(soft.all[1]?.alert_id);
    const hard = run(DAILY, [
      ['2026-11-29T22:00:00Z', 10_000],
      ['2026-11-30T00:10:00Z', 10_500],
    ]);
    expect(kindsAt(hard)).toEqual([
      ['2026-11-29T22:00:00Z', ['soft', 'hard']],
      ['2026-11-30T00:10:00Z', ['soft', 'hard']],
    ]);
  });

  it('just below the soft threshold stays ok; a quota that never alerted does not fire recovered', () => {
    const r = run(DAILY, [
      ['2026-11-29T10:00:00Z', 7_999],
      ['2026-11-30T10:00:00Z', 0],
    ]);
    expect(r.all).toEqual([]);
    expect(r.state).toBeUndefined();
  });

  it('usage falling within the window (a raised limit) fires recovered once; soft does not fire twice in that window', () => {
    const r = run(DAILY, [['2026-11-29T10:00:00Z', 9_000]]);
    const raised: QuotaSpec = { ...DAILY, limit: 20_000 };
    const lowered: QuotaSpec = { ...DAILY, limit: 10_000 };
    const next = run(raised, [['2026-11-29T11:00:00Z', 9_500]], r.state); // 47.5%
    const back = run(lowered, [['2026-11-29T12:00:00Z', 9_600]], next.state); // 96%: soft already fired today
    const again = run(raised, [['2026-11-29T13:00:00Z', 9_700]], back.state); // 48.5%: the level is still ok (nothing fired at 96%), so nothing to recover from
    expect([...kindsAt(r), ...kindsAt(next), ...kindsAt(back), ...kindsAt(again)]).toEqual([
      ['2026-11-29T10:00:00Z', ['soft']],
      ['2026-11-29T11:00:00Z', ['recovered']],
      ['2026-11-29T12:00:00Z', []],
      ['2026-11-29T13:00:00Z', []],
    ]);
  });

  it('a daily window in a time zone is keyed on local midnight (Europe/Berlin, CET: 23:00Z)', () => {
    const berlin: QuotaSpec = { ...DAILY, window: { kind: 'calendar', unit: 'day', time_zone: 'Europe/Berlin' } };
    const r = run(berlin, [
      ['2026-11-29T22:30:00Z', 9_000], // 23:30 local on the 29th
      ['2026-11-29T23:30:00Z', 100], // 00:30 local on the 30th: a new day
    ]);
    expect(r.all.map((a) => [a.kind, a.episode_start, a.window_end])).toEqual([
      ['soft', '2026-11-28T23:00:00.000Z', '2026-11-29T23:00:00.000Z'],
      ['recovered', '2026-11-29T23:00:00.000Z', '2026-11-30T23:00:00.000Z'],
    ]);
  });

  it('usd amounts stay exact decimal strings; exactly 80% of $12.50 is soft', () => {
    const usd: QuotaSpec = {
      id: 'acme-usd-month',
      scope: { tenant: 'acme' },
      metric: 'usd',
      limit: '12.50',
      window: { kind: 'calendar', unit: 'month' },
    };
    const r = run(usd, [['2026-11-29T10:00:00Z', '10.000000000000']]);
    expect(r.all).toHaveLength(1);
    expect(r.all[0]).toMatchObject({
      kind: 'soft',
      metric: 'usd',
      used: '10',
      limit: '12.5',
      percent: 80,
      episode_start: '2026-11-01T00:00:00.000Z',
    });
  });

  it('copies the scope as the usage tables store it: NFC ids, provider lower-cased', () => {
    const spec: QuotaSpec = {
      id: 'cafe-openai',
      scope: { tenant: 'Cafe\u0301', user_id: 'Zoe\u0308', provider: 'OpenAI' },
      metric: 'requests',
      limit: 10,
      soft_threshold: 0.5,
      window: { kind: 'calendar', unit: 'hour' },
    };
    const [a] = run(spec, [['2026-11-29T10:15:00Z', 5]]).all;
    expect(a).toMatchObject({ tenant: 'Caf\u00e9', user_id: 'Zo\u00eb', team: null, provider: 'openai', soft_threshold: 0.5, percent: 50 });
    expect(a?.alert_id).toBe(expectedId('Caf\u00e9', 'cafe-openai', '2026-11-29T10:00:00Z', 'soft'));
  });
});

describe('evaluateQuotaAlerts: rolling quota (episodes)', () => {
  it('fires soft and hard once per episode; re-crossing after recovered opens a new episode', () => {
    const r = run(ROLLING, [
      ['2026-11-29T10:00:30Z', 50],
      ['2026-11-29T10:05:10Z', 85], // opens the episode of minute 10:05
      ['2026-11-29T10:06:00Z', 101],
      ['2026-11-29T10:07:00Z', 90], // back under the limit, above soft: nothing
      ['2026-11-29T10:08:00Z', 101], // hard already fired in this episode
      ['2026-11-29T10:20:00Z', 70], // below soft: the episode ends
      ['2026-11-29T10:21:00Z', 75],
      ['2026-11-29T10:30:45Z', 82], // a new episode, minute 10:30
      ['2026-11-29T10:30:50Z', 60],
      ['2026-11-29T10:30:55Z', 85], // minute 10:30 is taken: this episode starts at 10:31
    ]);
    expect(kindsAt(r)).toEqual([
      ['2026-11-29T10:00:30Z', []],
      ['2026-11-29T10:05:10Z', ['soft']],
      ['2026-11-29T10:06:00Z', ['hard']],
      ['2026-11-29T10:07:00Z', []],
      ['2026-11-29T10:08:00Z', []],
      ['2026-11-29T10:20:00Z', ['recovered']],
      ['2026-11-29T10:21:00Z', []],
      ['2026-11-29T10:30:45Z', ['soft']],
      ['2026-11-29T10:30:50Z', ['recovered']],
      ['2026-11-29T10:30:55Z', ['soft']],
    ]);
    expect(r.all.map((a) => [a.kind, a.episode_start])).toEqual([
      ['soft', '2026-11-29T10:05:00.000Z'],
      ['hard', '2026-11-29T10:05:00.000Z'],
      ['recovered', '2026-11-29T10:05:00.000Z'],
      ['soft', '2026-11-29T10:30:00.000Z'],
      ['recovered', '2026-11-29T10:30:00.000Z'],
      ['soft', '2026-11-29T10:31:00.000Z'],
    ]);
    expect(r.all[0]).toMatchObject({
      window_kind: 'rolling',
      window_start: '2026-11-29T09:05:10.000Z', // the 60 minutes before now
      window_end: '2026-11-29T10:05:10.000Z',
      fired_at: '2026-11-29T10:05:10.000Z',
      used: 85,
      limit: 100,
    });
    expect(new Set(r.all.map((a) => a.alert_id)).size).toBe(6);
    expect(r.all[3]?.alert_id).toBe(expectedId('acme', 'acme-requests-60m', '2026-11-29T10:30:00Z', 'soft'));
  });

  it('ok -> exhausted in one step fires soft and hard in one new episode', () => {
    const r = run(ROLLING, [['2026-11-29T10:05:10Z', 150]]);
    expect(r.all.map((a) => [a.kind, a.episode_start, a.percent])).toEqual([
      ['soft', '2026-11-29T10:05:00.000Z', 150],
      ['hard', '2026-11-29T10:05:00.000Z', 150],
    ]);
  });
});

describe('alert ids', () => {
  it('are the same for the same quota, period and kind, whoever computes them and when in the window', () => {
    const a = run(DAILY, [['2026-11-29T10:00:00Z', 9_000]]).all[0];
    const b = run(DAILY, [['2026-11-29T18:45:00Z', 9_900]]).all[0]; // another evaluator, later the same day
    expect(a?.alert_id).toBe(b?.alert_id);
    expect(a?.alert_id).toBe(alertId('acme', 'acme-tokens-day', utc('2026-11-29T00:00:00Z'), 'soft'));
    expect(a?.alert_id).toMatch(/^[0-9a-f]{64}$/);
  });

  it('differ by tenant, quota, period and kind', () => {
    const day = utc('2026-11-29T00:00:00Z');
    const ids = [
      alertId('acme', 'q', day, 'soft'),
      alertId('acme', 'q', day, 'hard'),
      alertId('acme', 'q', day + 86_400_000, 'soft'),
      alertId('acme', 'q2', day, 'soft'),
      alertId('globex', 'q', day, 'soft'),
    ];
    expect(new Set(ids).size).toBe(5);
  });
});

describe('alertStateFromLog: resuming from stored alerts', () => {
  const W1 = utc('2026-11-29T00:00:00Z');
  const W2 = utc('2026-11-30T00:00:00Z');

  it('is undefined without alerts, and keeps only the latest period', () => {
    expect(alertStateFromLog([])).toBeUndefined();
    expect(
      alertStateFromLog([
        { kind: 'soft', episode_start_ms: W1, fired_at_ms: W1 + 10 },
        { kind: 'recovered', episode_start_ms: W2, fired_at_ms: W2 + 5 },
        { kind: 'hard', episode_start_ms: W1, fired_at_ms: W1 + 20 },
      ]),
    ).toEqual({ window_start_ms: W2, level: 'ok', fired: ['recovered'] });
  });

  it('soft and hard with the same fired_at leave the level exhausted, whatever the row order', () => {
    expect(
      alertStateFromLog([
        { kind: 'hard', episode_start_ms: W1, fired_at_ms: W1 + 10 },
        { kind: 'soft', episode_start_ms: W1, fired_at_ms: W1 + 10 },
      ]),
    ).toEqual({ window_start_ms: W1, level: 'exhausted', fired: ['soft', 'hard'] });
  });

  it('a restart within the window does not re-fire; the next day still recovers', () => {
    const before = run(DAILY, [
      ['2026-11-29T10:00:00Z', 8_500],
      ['2026-11-29T12:00:00Z', 10_000],
    ]);
    const log = before.all.map((a) => ({ kind: a.kind, episode_start_ms: utc(a.episode_start), fired_at_ms: utc(a.fired_at) }));
    const seeded = alertStateFromLog(log);
    expect(seeded).toEqual(before.state);
    const after = run(
      DAILY,
      [
        ['2026-11-29T13:00:00Z', 12_000],
        ['2026-11-30T00:30:00Z', 1_000],
      ],
      seeded,
    );
    expect(kindsAt(after)).toEqual([
      ['2026-11-29T13:00:00Z', []],
      ['2026-11-30T00:30:00Z', ['recovered']],
    ]);
  });

  it('rejects an unknown kind and a non-finite time', () => {
    expect(() => alertStateFromLog([{ kind: 'critical', episode_start_ms: W1, fired_at_ms: W1 }])).toThrow('unknown alert kind "critical"');
    expect(() => alertStateFromLog([{ kind: 'soft', episode_start_ms: Number.NaN, fired_at_ms: W1 }])).toThrow(RangeError);
  });
});

describe('evaluateQuotaAlerts: bad input', () => {
  it('rejects the status of another quota and a non-finite now', () => {
    const nowMs = utc('2026-11-29T10:00:00Z');
    const status = quotaStatus(ROLLING, { usedInWindow: 1, nowMs });
    expect(() => evaluateQuotaAlerts(DAILY, undefined, status, nowMs)).toThrow(
      'status of quota acme-requests-60m given for quota acme-tokens-day',
    );
    const own = quotaStatus(DAILY, { usedInWindow: 1, nowMs });
    expect(() => evaluateQuotaAlerts(DAILY, undefined, own, Number.NaN)).toThrow('now must be finite epoch ms');
  });
});

describe('latestAlertPeriods query', () => {
  it('binds tenants and quota ids and selects the latest period per quota', () => {
    const evil = "x' OR 1=1 --";
    const built = latestAlertPeriods({ tenants: ['acme', evil], quotaIds: ['q1', evil] });
    expect(built.query).toBe(`SELECT tenant, quota_id, kind,
  toUnixTimestamp64Milli(episode_start) AS episode_start_ms, toUnixTimestamp64Milli(fired_at) AS fired_at_ms
FROM quota_alerts FINAL
WHERE tenant IN {tenants:Array(String)} AND quota_id IN {quota_ids:Array(String)} AND (tenant, quota_id, episode_start) IN (
  SELECT tenant, quota_id, max(episode_start) FROM quota_alerts WHERE tenant IN {tenants:Array(String)} AND quota_id IN {quota_ids:Array(String)} GROUP BY tenant, quota_id)
ORDER BY tenant, quota_id, fired_at_ms, kind`);
    expect(built.query_params).toEqual({ tenants: ['acme', evil], quota_ids: ['q1', evil] });
  });
});
