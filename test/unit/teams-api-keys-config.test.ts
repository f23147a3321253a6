import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config/load.ts';
import { checkTeamSpecs } from '../../schemas/team.ts';

const dir = mkdtempSync(join(tmpdir(), 'quotaflow-teams-config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(text: string): string {
  const path = join(dir, `config-${n++}.yaml`);
  writeFileSync(path, text);
  return path;
}

function problemsOf(path: string | undefined, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    loadConfig(path, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected the configuration to be rejected');
}

const DAY = '{ kind: calendar, unit: day }';

describe('config teams', () => {
  it('loads teams with their members; weights, priority and reserve are optional', () => {
    const { config } = loadConfig(
      file(`
teams:
  - id: core
    tenant: acme
    priority_reserve: 0.1
    members: [{ user_id: alice, weight: 2 }, { user_id: bob }, { user_id: carol, priority: true }]
  - { id: core, tenant: globex, members: [{ user_id: alice }] }
quotas:
  - { id: core-day, scope: { tenant: acme, team: core }, metric: tokens, limit: 10000, window: ${DAY} }
`),
      {},
    );
    expect(config.teams).toEqual([
      {
        id: 'core',
        tenant: 'acme',
        priority_reserve: 0.1,
        members: [{ user_id: 'alice', weight: 2 }, { user_id: 'bob' }, { user_id: 'carol', priority: true }],
      },
      { id: 'core', tenant: 'globex', members: [{ user_id: 'alice' }] },
    ]);
    expect(loadConfig(undefined, {}).config.teams).toEqual([]);
  });

  it('lists every team problem, naming the field', () => {
    expect(
      problemsOf(
        file(`
teams:
  - { id: core, tenant: acme, priority_reserve: 1, members: [{ user_id: alice, weight: 0 }, { user_id: bob }, { user_id: alice }] }
  - { id: core, tenant: acme, members: [] }
  - { id: ops, tenant: acme, members: [{ user_id: dan, weight: -2, priority: "yes" }] }
quotas:
  - { id: q-core, scope: { tenant: acme, team: core }, metric: tokens, limit: 10, window: ${DAY} }
  - { id: q-none, scope: { tenant: acme, team: nope }, metric: tokens, limit: 10, window: ${DAY} }
  - { id: q-other, scope: { tenant: globex, team: core }, metric: tokens, limit: 10, window: ${DAY} }
`),
      ),
    ).toEqual([
      'teams[0] (core).members.0.weight: Expected number to be greater than 0',
      'teams[0] (core).priority_reserve: Expected number to be less than 1',
      'teams[0] (core).members.2.user_id: duplicate member "alice", already members.0',
      'teams[1] (core).members: Expected array length to be greater or equal to 1',
      'teams[1] (core).id: duplicate team in tenant "acme", already defined by teams[0]',
      'teams[2] (ops).members.0.weight: Expected number to be greater than 0',
      'teams[2] (ops).members.0.priority: Expected boolean',
      'quotas[1] (q-none).scope.team: no team "nope" in tenant "acme" under teams (its teams: core, ops)',
      'quotas[2] (q-other).scope.team: no team "core" in tenant "globex" under teams (the tenant has no team)',
    ]);
  });

  it('compares team ids, tenants and user_ids after NFC normalisation', () => {
    const composed = '\u00e9quipe';
    const decomposed = 'e\u0301quipe';
    expect(
      checkTeamSpecs(
        [{ id: composed, tenant: 'acme', members: [{ user_id: 'Jos\u00e9' }, { user_id: 'Jose\u0301' }] }],
        [{ id: 'q', scope: { tenant: 'acme', team: decomposed } }],
      ),
    ).toEqual([`teams[0] (${composed}).members.1.user_id: duplicate member "Jos\u00e9", already members.0`]);
    expect(checkTeamSpecs('nope')).toEqual(['teams: must be a list of teams']);
  });
});

describe('config api_keys', () => {
  it('loads read and admin keys from the file and from API_KEYS', () => {
    const { config } = loadConfig(
      file(`
api_keys:
  - { key: read-key-acme-0123456789, role: read, tenant: acme }
  - { key: admin-key-0123456789abcd, role: admin }
`),
      {},
    );
    expect(config.api_keys).toEqual([
      { key: 'read-key-acme-0123456789', role: 'read', tenant: 'acme' },
      { key: 'admin-key-0123456789abcd', role: 'admin' },
    ]);
    expect(loadConfig(undefined, { API_KEYS: 'read-key-0123456789abc=read:team:a, admin-key-0123456789ab=admin' }).config.api_keys).toEqual(
      [
        { key: 'read-key-0123456789abc', role: 'read', tenant: 'team:a' },
        { key: 'admin-key-0123456789ab', role: 'admin' },
      ],
    );
  });

  it('a read key needs a tenant, an admin key has none, and a key is listed once across api_keys and ingest_keys', () => {
    expect(
      problemsOf(
        file(`
ingest_keys: [{ key: shared-key-0123456789ab, tenant: acme }]
api_keys:
  - { key: read-key-0123456789abcd, role: read }
  - { key: admin-key-0123456789abc, role: admin, tenant: acme }
  - { key: owner-key-0123456789abc, role: owner, tenant: acme }
  - { key: shared-key-0123456789ab, role: read, tenant: acme }
  - { key: read-key-0123456789abcd, role: admin }
`),
      ),
    ).toEqual([
      'api_keys.0.tenant: a read key needs the tenant it may read',
      'api_keys.1.tenant: an admin key reads every tenant; remove tenant',
      'api_keys.2.role: must be read or admin, got "owner"',
      'api_keys.3.key: the same key is already listed as ingest_keys.0',
      'api_keys.4.key: the same key is already listed as api_keys.0',
    ]);
    expect(problemsOf(undefined, { API_KEYS: 'admin-key-0123456789ab=root,read-key-0123456789abc=read:' })).toEqual([
      'API_KEYS: entry 1 must be key=admin or key=read:<tenant>, pairs separated by commas',
      'API_KEYS: entry 2 must be key=admin or key=read:<tenant>, pairs separated by commas',
    ]);
  });
});
