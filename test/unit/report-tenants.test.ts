/** processors/reports/index.ts `configuredTenants`: the tenants the config names, for the report service's unknown-tenant rule. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/load.ts';
import { configuredTenants } from '../../processors/reports/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'qf-report-tenants-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('configuredTenants', () => {
  it('none in the default config', () => {
    expect(configuredTenants(loadConfig(undefined, {}).config)).toEqual([]);
  });

  it('keys, read keys (not admin keys), quotas, teams, reports.tenants and tenant zones; NFC, once each, sorted', () => {
    const file = join(dir, 'c.yaml');
    writeFileSync(
      file,
      [
        'ingest_keys: [{ key: ingest-key-0123456789, tenant: ingest-t }]',
        'api_keys:',
        '  - { key: read-key-0123456789ab, tenant: read-t, role: read }',
        '  - { key: admin-key-0123456789a, role: admin }',
        'quotas: [{ id: q, scope: { tenant: "cafe\u0301" }, metric: tokens, limit: 10, window: { kind: calendar, unit: day } }]',
        'teams: [{ id: core, tenant: team-t, members: [{ user_id: u1 }] }]',
        'reports: { tenants: [listed-t, ingest-t], tenant_time_zones: { zoned-t: Europe/Berlin } }',
      ].join('\n'),
    );
    // "cafe" + U+0301 (combining acute) is stored as NFC "café" (U+00E9).
    expect(configuredTenants(loadConfig(file, {}).config)).toEqual(['café', 'ingest-t', 'listed-t', 'read-t', 'team-t', 'zoned-t']);
  });
});
