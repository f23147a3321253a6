/** Config section `reports` (schemas/reports-config.ts) through loadConfig: defaults, every problem listed, tenant zones. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config/load.ts';
import { checkReportsConfig, reportTimeZone } from '../../schemas/reports-config.ts';

const dir = mkdtempSync(join(tmpdir(), 'qf-reports-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(yaml: string) {
  const file = join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  return loadConfig(file, {});
}

function problems(yaml: string): string[] {
  try {
    load(yaml);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('reports config', () => {
  it('defaults: enabled, Monday 06:00, UTC, no tenant zones, top 10', () => {
    expect(loadConfig(undefined, {}).config.reports).toEqual({
      enabled: true,
      schedule: '0 6 * * 1',
      time_zone: 'UTC',
      tenant_time_zones: {},
      top_n: 10,
    });
  });

  it('accepts a full section', () => {
    const { reports } = load(
      'reports:\n  schedule: "30 7 * * 1"\n  time_zone: Europe/Berlin\n  tenant_time_zones: { acme: America/New_York }\n  tenants: [acme, globex]\n  top_n: 5\n',
    ).config;
    expect(reports).toEqual({
      enabled: true,
      schedule: '30 7 * * 1',
      time_zone: 'Europe/Berlin',
      tenant_time_zones: { acme: 'America/New_York' },
      tenants: ['acme', 'globex'],
      top_n: 5,
    });
    expect(reportTimeZone(reports, 'acme')).toBe('America/New_York');
    expect(reportTimeZone(reports, 'globex')).toBe('Europe/Berlin');
  });

  it('lists every problem at once, naming the field', () => {
    expect(
      problems(
        'reports:\n  schedule: "0 25 * * 1"\n  time_zone: Mars/Base\n  tenant_time_zones: { a: Nowhere/City }\n  tenants: [a, a]\n  top_n: 0\n',
      ),
    ).toEqual([
      'reports.top_n: Expected integer to be greater or equal to 1',
      'reports.schedule: not a cron expression (hour: 25 is a invalid expression for hour), got "0 25 * * 1"',
      'reports.time_zone: not an IANA time zone: "Mars/Base" (e.g. Europe/Berlin, UTC)',
      'reports.tenant_time_zones.a: not an IANA time zone: "Nowhere/City" (e.g. Europe/Berlin, UTC)',
      'reports.tenants: "a" is listed twice',
    ]);
  });

  it('checkReportsConfig ignores values of the wrong type (the schema reports them)', () => {
    expect(checkReportsConfig({ schedule: 5, time_zone: null, tenants: 'x' })).toEqual([]);
    expect(checkReportsConfig({ schedule: 'not cron' })).toEqual([
      'reports.schedule: not a cron expression (expression: expected 5 or 6 fields but got 2), got "not cron"',
    ]);
  });
});
