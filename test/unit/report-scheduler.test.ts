/**
 * The weekly report scheduler with fake timers (node-cron reads the faked Date and setTimeout):
 * it fires at the configured local time in each zone, reports the last complete ISO week, never
 * overlaps a run still in progress, and logs each tenant report as ok or failed.
 */
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createReportScheduler, type ReportScheduler, type RunStore } from '../../processors/reports/scheduler.ts';
import { reportTimeZone } from '../../schemas/reports-config.ts';
import type { ReportRun } from '../../storage/report-store.ts';

interface Harness {
  scheduler: ReportScheduler;
  runs: ReportRun[];
  calls: Array<{ tenant: string; week: string; atMs: number }>;
  warnings: string[];
}

function harness(opts: {
  schedule: string;
  time_zone?: string;
  tenant_time_zones?: Record<string, string>;
  tenants?: string[];
  withUsage?: string[];
  generate?: (tenant: string, week: string) => Promise<unknown>;
  listFails?: boolean;
}): Harness {
  const runs: ReportRun[] = [];
  const calls: Harness['calls'] = [];
  const warnings: string[] = [];
  const config = {
    schedule: opts.schedule,
    time_zone: opts.time_zone ?? 'UTC',
    tenant_time_zones: opts.tenant_time_zones ?? {},
    ...(opts.tenants ? { tenants: opts.tenants } : {}),
  };
  const store: RunStore = {
    tenantsWithUsage: async () => {
      if (opts.listFails) throw new Error('clickhouse is down');
      return opts.withUsage ?? [];
    },
    record: async (rows) => {
      runs.push(...rows);
    },
  };
  const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line).event) });
  const scheduler = createReportScheduler({
    service: {
      timeZoneOf: (t) => reportTimeZone(config, t),
      generateAndStore: async (tenant, week) => {
        calls.push({ tenant, week, atMs: Date.now() });
        return (await (opts.generate?.(tenant, week) ?? Promise.resolve())) as never;
      },
    },
    store,
    config,
    logger: log,
  });
  return { scheduler, runs, calls, warnings };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('report scheduler', () => {
  it('fires at Monday 06:00 in each zone and reports the week that just ended there', async () => {
    // Sunday 2026-11-22 20:00 UTC. Berlin (UTC+1) reaches Monday 06:00 at 05:00 UTC, UTC at 06:00.
    vi.setSystemTime(Date.UTC(2026, 10, 22, 20, 0, 0));
    const h = harness({
      schedule: '0 6 * * 1',
      tenant_time_zones: { berlin: 'Europe/Berlin' },
      withUsage: ['berlin', 'utc-a', 'utc-b'],
    });
    expect(h.scheduler.jobs).toEqual(['weekly-report:UTC', 'weekly-report:Europe/Berlin']);
    h.scheduler.start();

    await vi.advanceTimersByTimeAsync(8 * 3_600_000 + 59 * 60_000); // to 04:59 UTC Monday
    expect(h.calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(61_000); // 05:00:01 UTC = 06:00:01 Berlin
    expect(h.calls.map((c) => [c.tenant, c.week])).toEqual([['berlin', '2026-W47']]);
    await vi.advanceTimersByTimeAsync(3_600_000); // 06:00:01 UTC
    expect(h.calls.map((c) => [c.tenant, c.week])).toEqual([
      ['berlin', '2026-W47'],
      ['utc-a', '2026-W47'],
      ['utc-b', '2026-W47'],
    ]);
    expect(new Date(h.calls[1]?.atMs ?? 0).toISOString()).toBe('2026-11-23T06:00:00.000Z');
    expect(h.runs.map((r) => [r.job, r.tenant, r.week, r.status, r.error])).toEqual([
      ['weekly-report:Europe/Berlin', 'berlin', '2026-W47', 'ok', ''],
      ['weekly-report:UTC', 'utc-a', '2026-W47', 'ok', ''],
      ['weekly-report:UTC', 'utc-b', '2026-W47', 'ok', ''],
    ]);
    // Nothing more until next Monday.
    await vi.advanceTimersByTimeAsync(6 * 24 * 3_600_000);
    expect(h.calls).toHaveLength(3);
    await h.scheduler.stop();
  });

  it('skips a firing while the previous run still runs, and runs again once it finished', async () => {
    vi.setSystemTime(Date.UTC(2026, 10, 23, 6, 0, 30));
    let release: () => void = () => {};
    const h = harness({
      schedule: '* * * * *', // every minute
      tenants: ['slow'],
      generate: () => new Promise<void>((resolve) => (release = resolve)),
    });
    h.scheduler.start();
    await vi.advanceTimersByTimeAsync(30_000); // 06:01:00: run 1 starts and hangs
    expect(h.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(60_000); // 06:02:00: still running -> skipped
    await vi.advanceTimersByTimeAsync(60_000); // 06:03:00: skipped again
    expect(h.calls).toHaveLength(1);
    expect(h.warnings.filter((e) => e === 'report.run.skipped')).toHaveLength(2);
    expect(h.runs).toEqual([]);

    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.runs.map((r) => r.status)).toEqual(['ok']);
    await vi.advanceTimersByTimeAsync(60_000); // 06:04:00: a new run
    expect(h.calls).toHaveLength(2);
    release();
    await h.scheduler.stop();
  });

  it('runNow refuses to overlap too', async () => {
    vi.setSystemTime(Date.UTC(2026, 10, 23, 6, 0, 0));
    let release: () => void = () => {};
    const h = harness({ schedule: '0 6 * * 1', tenants: ['t'], generate: () => new Promise<void>((r) => (release = r)) });
    const first = h.scheduler.runNow('UTC');
    await vi.advanceTimersByTimeAsync(0);
    expect(await h.scheduler.runNow('UTC')).toEqual({ job: 'weekly-report:UTC', status: 'skipped', runs: [] });
    release();
    expect((await first).status).toBe('done');
  });

  it('records a failed tenant with its error and goes on with the others', async () => {
    vi.setSystemTime(Date.UTC(2026, 10, 23, 5, 59, 59));
    const h = harness({
      schedule: '0 6 * * 1',
      withUsage: ['bad', 'good'],
      generate: async (tenant) => {
        if (tenant === 'bad') throw new Error('week 2026-W47 of bad: boom');
      },
    });
    h.scheduler.start();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(h.runs.map((r) => [r.tenant, r.status, r.error])).toEqual([
      ['bad', 'failed', 'week 2026-W47 of bad: boom'],
      ['good', 'ok', ''],
    ]);
    expect(h.runs[0]?.run_id).toBe(h.runs[1]?.run_id);
    expect(h.runs[0]?.started_at_ms).toBe(Date.UTC(2026, 10, 23, 6, 0, 0));
    expect(h.warnings).toContain('report.run.failed');
    await h.scheduler.stop();
  });

  it('records a run whose tenant listing failed as one failed row', async () => {
    vi.setSystemTime(Date.UTC(2026, 10, 23, 6, 0, 0));
    const h = harness({ schedule: '0 6 * * 1', listFails: true });
    const out = await h.scheduler.runNow('UTC');
    expect(out.runs.map((r) => [r.tenant, r.week, r.status, r.error])).toEqual([['', '2026-W47', 'failed', 'clickhouse is down']]);
    expect(h.runs).toEqual(out.runs);
  });

  it('stop() stops the timers: no firing afterwards', async () => {
    vi.setSystemTime(Date.UTC(2026, 10, 23, 5, 0, 0));
    const h = harness({ schedule: '0 6 * * 1', tenants: ['t'] });
    h.scheduler.start();
    await h.scheduler.stop();
    await vi.advanceTimersByTimeAsync(2 * 3_600_000);
    expect(h.calls).toEqual([]);
  });
});
