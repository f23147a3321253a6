import { describe, expect, it } from 'vitest';
import { AllocationError } from '../../domain/allocation.ts';
import { quotaWindow } from '../../domain/quota.ts';
import { findTeam, type MemberUsage, memberIds, splitTeamQuota, type TeamMembership } from '../../domain/team-allocation.ts';

const BURN_MS = 15 * 60_000;
const NOON = Date.UTC(2026, 10, 29, 12, 0, 0);
const DAY = quotaWindow({ kind: 'calendar', unit: 'day' }, NOON); // [00:00, 24:00): 12 h left at noon

const CORE: TeamMembership = {
  id: 'core',
  tenant: 'acme',
  members: [{ user_id: 'alice', weight: 2 }, { user_id: 'bob' }, { user_id: 'carol', priority: true }],
  priority_reserve: 0.1,
};

const usage = (entries: Record<string, [used: number | string, burn: number | string]>) =>
  new Map<string, MemberUsage>(Object.entries(entries).map(([id, [used, usedInBurnWindow]]) => [id, { used, usedInBurnWindow }]));

describe('splitTeamQuota', () => {
  it('tokens: projected demand, priority reserve, weighted max-min with re-lending (hand-computed)', () => {
    // 12 h left = 48 burn windows of 15 min.
    // alice: 3,000 + 150 x 48 = 10,200; bob: 500 + 0 = 500; carol: 1,000 + 30 x 48 = 2,440.
    // Reserve round(10,000 x 0.1) = 1,000 -> carol (the only priority member, demand 2,440 >= 1,000).
    // General pool 9,000 over remaining demands alice 10,200 (w2), bob 500 (w1), carol 1,440 (w1):
    //   bob 500 <= 9,000 x 1/4 -> 500, rest 8,500 over w3; carol 1,440 <= 8,500 x 1/3 -> 1,440, rest 7,060;
    //   alice 10,200 > 7,060 -> 7,060. Shares: alice 7,060, bob 500, carol 1,000 + 1,440 = 2,440.
    const split = splitTeamQuota({
      spec: { id: 'core-day', metric: 'tokens', limit: 10_000 },
      team: CORE,
      window: DAY,
      nowMs: NOON,
      burnWindowMs: BURN_MS,
      usage: usage({ alice: [3_000, 150], bob: [500, 0], carol: ['1000', '30'] }),
    });
    expect(split).toEqual({
      total: 10_000,
      priority_reserve: 0.1,
      unallocated: 0,
      members: [
        { user_id: 'alice', weight: 2, priority: false, demand: 10_200, share: 7_060, reserved: 0, used: 3_000, remaining_share: 4_060 },
        { user_id: 'bob', weight: 1, priority: false, demand: 500, share: 500, reserved: 0, used: 500, remaining_share: 0 },
        { user_id: 'carol', weight: 1, priority: true, demand: 2_440, share: 2_440, reserved: 1_000, used: 1_000, remaining_share: 1_440 },
      ],
    });
  });

  it('a member without usage demands 0: its share is re-lent, and what nobody demands is unallocated', () => {
    // alice 10,200 and bob 0; carol absent from the usage map = 0. Reserve 1,000 -> carol demand 0 -> back to the pool.
    // Pool 10,000: bob 0, carol 0, alice min(10,200, 10,000) = 10,000.
    const split = splitTeamQuota({
      spec: { id: 'core-day', metric: 'tokens', limit: 10_000 },
      team: CORE,
      window: DAY,
      nowMs: NOON,
      burnWindowMs: BURN_MS,
      usage: usage({ alice: [3_000, 150] }),
    });
    expect(split.members.map((m) => [m.user_id, m.demand, m.share, m.reserved])).toEqual([
      ['alice', 10_200, 10_000, 0],
      ['bob', 0, 0, 0],
      ['carol', 0, 0, 0],
    ]);
    expect(split.unallocated).toBe(0);
    const idle = splitTeamQuota({
      spec: { id: 'core-day', metric: 'requests', limit: 100 },
      team: CORE,
      window: DAY,
      nowMs: NOON,
      burnWindowMs: BURN_MS,
      usage: usage({ bob: [7, 0] }),
    });
    expect(idle.members.map((m) => m.share)).toEqual([0, 7, 0]);
    expect(idle.unallocated).toBe(93);
  });

  it('usd: shares in micro-USD, demand rounded up, answers as exact USD strings (hand-computed)', () => {
    // Hour window at 10:30: 30 min left = 2 burn windows. m1: 0.2 + 0.01 x 2 = 0.22 USD = 220,000 micro-USD;
    // m2: 0.0000005 USD = 0.5 micro-USD -> demand 1. Total 1.5 USD = 1,500,000; all demands met:
    // unallocated 1,500,000 - 220,001 = 1,279,999 micro-USD.
    const now = Date.UTC(2026, 10, 29, 10, 30);
    const split = splitTeamQuota({
      spec: { id: 'pair-usd', metric: 'usd', limit: '1.5' },
      team: { id: 'pair', tenant: 'acme', members: [{ user_id: 'm1' }, { user_id: 'm2' }] },
      window: quotaWindow({ kind: 'calendar', unit: 'hour' }, now),
      nowMs: now,
      burnWindowMs: BURN_MS,
      usage: usage({ m1: ['0.2', '0.01'], m2: ['0.0000005', '0'] }),
    });
    expect(split).toEqual({
      total: '1.5',
      priority_reserve: 0,
      unallocated: '1.279999',
      members: [
        { user_id: 'm1', weight: 1, priority: false, demand: '0.22', share: '0.22', reserved: '0', used: '0.2', remaining_share: '0.02' },
        {
          user_id: 'm2',
          weight: 1,
          priority: false,
          demand: '0.000001',
          share: '0.000001',
          reserved: '0',
          used: '0.0000005',
          remaining_share: '0.0000005',
        },
      ],
    });
  });

  it('a usd limit below the micro-dollar is rounded down; a rolling window projects nothing (its end is now)', () => {
    const now = Date.UTC(2026, 10, 29, 10, 30);
    const split = splitTeamQuota({
      spec: { id: 'tiny', metric: 'usd', limit: '0.0000019' },
      team: { id: 'solo', tenant: 'acme', members: [{ user_id: 'u' }] },
      window: quotaWindow({ kind: 'rolling', minutes: 60 }, now),
      nowMs: now,
      burnWindowMs: BURN_MS,
      usage: usage({ u: ['0.000003', '0.000003'] }), // demand = used = 3 micro-USD: no projection
    });
    expect(split.total).toBe('0.000001');
    expect(split.members[0]).toMatchObject({ demand: '0.000003', share: '0.000001', remaining_share: '0' });
  });

  it('rejects bad input naming the field', () => {
    const base = { spec: { id: 'q', metric: 'tokens' as const, limit: 10 }, team: CORE, window: DAY, nowMs: NOON, usage: usage({}) };
    expect(() => splitTeamQuota({ ...base, burnWindowMs: 0 })).toThrow('burnWindowMs must be > 0, got 0');
    expect(() => splitTeamQuota({ ...base, burnWindowMs: BURN_MS, usage: usage({ bob: [-1, 0] }) })).toThrow(
      'usage of bob must be a finite amount >= 0, got -1',
    );
    const bad = { ...CORE, members: [{ user_id: 'x', weight: -1 }] };
    expect(() => splitTeamQuota({ ...base, burnWindowMs: BURN_MS, team: bad })).toThrow(AllocationError);
  });
});

describe('findTeam and memberIds', () => {
  it('matches tenant and id after NFC normalisation; member ids come back in NFC', () => {
    const decomposed = 'e\u0301quipe'; // "équipe" with a combining accent
    const teams: TeamMembership[] = [
      { id: decomposed, tenant: 'acme', members: [{ user_id: 'Jose\u0301' }] },
      { id: 'core', tenant: 'other', members: [{ user_id: 'z' }] },
    ];
    expect(findTeam(teams, 'acme', '\u00e9quipe')).toBe(teams[0]);
    expect(findTeam(teams, 'acme', 'core')).toBeUndefined();
    expect(memberIds(teams[0]!)).toEqual(['Jos\u00e9']);
  });
});
