import { describe, expect, it } from 'vitest';
import { AllocationError, type AllocationInput, type AllocationMember, allocate } from '../../domain/allocation.ts';

/** id -> share, for compact assertions. */
function sharesOf(input: AllocationInput): Record<string, number> {
  return Object.fromEntries(allocate(input).shares.map((s) => [s.id, s.share]));
}

function team(...ids: string[]): AllocationMember[] {
  return ids.map((id) => ({ id }));
}

describe('allocate: equal split and weights', () => {
  it('splits equally and gives the rounding remainder to the smallest ids', () => {
    // 10 / 3 = 3 each, 1 unit left; all remainders tie (1/3), so it goes to the smallest id, "a".
    const result = allocate({ total: 10, members: team('c', 'a', 'b') });
    expect(result).toEqual({
      shares: [
        { id: 'c', share: 3, reserved: 0 },
        { id: 'a', share: 4, reserved: 0 },
        { id: 'b', share: 3, reserved: 0 },
      ],
      unallocated: 0,
    });
    // 1200 / 7 = 171 r 3: a, b, c get 172, the other four 171.
    expect(sharesOf({ total: 1200, members: team('g', 'f', 'e', 'd', 'c', 'b', 'a') })).toEqual({
      a: 172,
      b: 172,
      c: 172,
      d: 171,
      e: 171,
      f: 171,
      g: 171,
    });
  });

  it('splits in proportion to weight, remainder to the largest fractional part', () => {
    expect(sharesOf({ total: 100, members: [{ id: 'a' }, { id: 'b', weight: 3 }] })).toEqual({ a: 25, b: 75 });
    // 10 x 1/3 = 3.33 and 10 x 2/3 = 6.67: integer parts 3 + 6 = 9, the last unit goes to b (0.67 > 0.33).
    expect(
      sharesOf({
        total: 10,
        members: [
          { id: 'a', weight: 1 },
          { id: 'b', weight: 2 },
        ],
      }),
    ).toEqual({ a: 3, b: 7 });
    // Only the ratios matter, fractional weights included: 0.5 : 1.5 is 1 : 3.
    expect(
      sharesOf({
        total: 100,
        members: [
          { id: 'a', weight: 0.5 },
          { id: 'b', weight: 1.5 },
        ],
      }),
    ).toEqual({ a: 25, b: 75 });
    // Weights 1e300 : 1e-300 are handled exactly (no overflow, no underflow to 0).
    expect(
      sharesOf({
        total: 10,
        members: [
          { id: 'a', weight: 1e300 },
          { id: 'b', weight: 1e-300 },
        ],
      }),
    ).toEqual({ a: 10, b: 0 });
  });

  it('is exact at the largest safe total', () => {
    const total = Number.MAX_SAFE_INTEGER; // 9,007,199,254,740,991 = 3 x 3,002,399,751,580,330 + 1
    expect(sharesOf({ total, members: team('a', 'b', 'c') })).toEqual({
      a: 3_002_399_751_580_331,
      b: 3_002_399_751_580_330,
      c: 3_002_399_751_580_330,
    });
  });

  it('gives nothing out of a zero total', () => {
    expect(allocate({ total: 0, members: team('a', 'b') })).toEqual({
      shares: [
        { id: 'a', share: 0, reserved: 0 },
        { id: 'b', share: 0, reserved: 0 },
      ],
      unallocated: 0,
    });
  });
});

describe('allocate: demands below the fair share are re-lent (water-filling)', () => {
  it('reproduces the textbook max-min example (Keshav 1997, pp. 215-217), scaled to whole units', () => {
    // Keshav: capacity 10, demands 2, 2.6, 4, 5 -> 2, 2.6, 2.7, 2.7. In whole units (x10): total 100.
    //   round 1: 100 / 4 = 25 each; a wants only 20 -> a = 20, 5 re-lent to b, c, d.
    //   round 2: 80 / 3 = 26.67 each; b wants only 26 -> b = 26, 0.67 re-lent to c, d.
    //   round 3: 54 / 2 = 27 each; c (40) and d (50) want more -> c = d = 27. Sum 20 + 26 + 27 + 27 = 100.
    const members = [
      { id: 'a', demand: 20 },
      { id: 'b', demand: 26 },
      { id: 'c', demand: 40 },
      { id: 'd', demand: 50 },
    ];
    expect(allocate({ total: 100, members })).toEqual({
      shares: [
        { id: 'a', share: 20, reserved: 0 },
        { id: 'b', share: 26, reserved: 0 },
        { id: 'c', share: 27, reserved: 0 },
        { id: 'd', share: 27, reserved: 0 },
      ],
      unallocated: 0,
    });
  });

  it('re-lends in proportion to weight (worked by hand)', () => {
    // total 16, weights 2.5, 4, 0.5, 1 (sum 8), demands 4, 2, 10, 4.
    //   level 16 / 8 = 2 per unit of weight: fair shares 5, 8, 1, 2. a (4 < 5) and b (2 < 8) are
    //   satisfied: a = 4, b = 2, 10 units left for c and d (weights 0.5 + 1 = 1.5).
    //   level 10 / 1.5 = 6.67: c 3.33, d 6.67 > its demand 4 -> d = 4, 6 units left for c.
    //   level 6 / 0.5 = 12: c 6 < its demand 10 -> c = 6. Result 4, 2, 6, 4 (sum 16).
    const members = [
      { id: 'a', weight: 2.5, demand: 4 },
      { id: 'b', weight: 4, demand: 2 },
      { id: 'c', weight: 0.5, demand: 10 },
      { id: 'd', weight: 1, demand: 4 },
    ];
    expect(sharesOf({ total: 16, members })).toEqual({ a: 4, b: 2, c: 6, d: 4 });
  });

  it('treats an unset or infinite demand as unlimited and a zero demand as none', () => {
    const members = [{ id: 'a', demand: 0 }, { id: 'b' }, { id: 'c', demand: Infinity }];
    expect(sharesOf({ total: 9, members })).toEqual({ a: 0, b: 5, c: 4 });
  });

  it('leaves what nobody demands unallocated once every demand is met', () => {
    const result = allocate({
      total: 1000,
      members: [
        { id: 'a', demand: 100 },
        { id: 'b', demand: 200, weight: 5 },
        { id: 'c', demand: 300, priority: true },
      ],
      priorityReserve: 0.5,
    });
    expect(result.shares.map((s) => s.share)).toEqual([100, 200, 300]);
    expect(result.shares[2]!.reserved).toBe(300); // the reserve (500) covers c's whole demand
    expect(result.unallocated).toBe(400);
  });
});

describe('allocate: priority reserve', () => {
  it('holds the reserve for priority members and shares the rest among everyone', () => {
    // 20% of 1000 = 200 reserved for a; 800 / 4 = 200 each from the general pool.
    const result = allocate({ total: 1000, members: [{ id: 'a', priority: true }, ...team('b', 'c', 'd')], priorityReserve: 0.2 });
    expect(result.shares).toEqual([
      { id: 'a', share: 400, reserved: 200 },
      { id: 'b', share: 200, reserved: 0 },
      { id: 'c', share: 200, reserved: 0 },
      { id: 'd', share: 200, reserved: 0 },
    ]);
  });

  it('splits the reserve among priority members by weight', () => {
    // reserve 200 -> p1 : p2 = 1 : 3 -> 50 and 150; the general 800 by weight 1 : 3 : 1 -> 160, 480, 160.
    const result = allocate({
      total: 1000,
      members: [
        { id: 'p1', priority: true },
        { id: 'p2', priority: true, weight: 3 },
        { id: 'x', priority: false },
      ],
      priorityReserve: 0.2,
    });
    expect(result.shares).toEqual([
      { id: 'p1', share: 210, reserved: 50 },
      { id: 'p2', share: 630, reserved: 150 },
      { id: 'x', share: 160, reserved: 0 },
    ]);
  });

  it('returns reserve a priority member cannot use to the general pool', () => {
    // reserve 300, but a wants only 100: a = 100 (all from the reserve); 900 left for b and c -> 450 each.
    const result = allocate({ total: 1000, members: [{ id: 'a', priority: true, demand: 100 }, ...team('b', 'c')], priorityReserve: 0.3 });
    expect(result.shares).toEqual([
      { id: 'a', share: 100, reserved: 100 },
      { id: 'b', share: 450, reserved: 0 },
      { id: 'c', share: 450, reserved: 0 },
    ]);
    expect(result.unallocated).toBe(0);
  });

  it('holds nothing back when no member is priority', () => {
    expect(sharesOf({ total: 90, members: team('a', 'b', 'c'), priorityReserve: 0.5 })).toEqual({ a: 30, b: 30, c: 30 });
  });

  it('rounds the reserve to the nearest unit, so k / total gives back exactly k units', () => {
    // 100 x 0.29 = 28.999999999999996 in binary floating point: the reserve is still 29.
    const result = allocate({ total: 100, members: [{ id: 'p', priority: true, demand: 29 }, ...team('q')], priorityReserve: 0.29 });
    expect(result.shares[0]).toEqual({ id: 'p', share: 29, reserved: 29 });
  });
});

describe("allocate: the brief's per-capita + remainder rule is the trivial case", () => {
  // The brief (seeds/000, section 2.3 "smart quota allocation algorithm", translated from Chinese):
  //   "For team-shared scenarios, dynamic quota allocation is recommended:
  //      def allocate_tokens(team_size, base_quota, priority_tasks):
  //          per_capita = base_quota // team_size
  //          remaining  = base_quota % team_size
  //          allocation = {'default': per_capita,
  //                        'high_priority': per_capita + remaining if priority_tasks else 0}"
  // and its numbers (section 1): "a basic plan provides only about 1,200 standard tokens per hour".
  // The brief gives no team size; take 7: 1200 // 7 = 171 per capita, 1200 % 7 = 3 remaining, so
  // 'default' = 171 and 'high_priority' = 171 + 3 = 174 (6 x 171 + 174 = 1200).
  //
  // Mapping onto allocate():
  //   team_size n         -> n members, no weights (all 1), no demands (unlimited)
  //   priority_tasks      -> exactly one member with priority: true (the one running them)
  //   remaining           -> priorityReserve = (base_quota % n) / base_quota, i.e. a reserve of
  //                          exactly `remaining` units, all to the priority member
  //   per_capita          -> the general pool, base_quota - remaining = n x per_capita, split equally
  //                          with no rounding remainder
  //   'default'           -> share of every non-priority member
  //   'high_priority'     -> share of the priority member (reserved = remaining)
  const BASE_QUOTA = 1200; // tokens per hour, the brief's basic plan

  /** The brief's rule, transcribed. */
  function briefAllocateTokens(teamSize: number, baseQuota: number, priorityTasks: string[]) {
    const perCapita = Math.floor(baseQuota / teamSize);
    const remaining = baseQuota % teamSize;
    return { default: perCapita, high_priority: priorityTasks.length > 0 ? perCapita + remaining : 0 };
  }

  function viaAllocate(teamSize: number, baseQuota: number) {
    const members = Array.from({ length: teamSize }, (_, i) => ({ id: `dev${String(i).padStart(2, '0')}`, priority: i === 0 }));
    const result = allocate({ total: baseQuota, members, priorityReserve: (baseQuota % teamSize) / baseQuota });
    const [lead, ...others] = result.shares;
    return { lead: lead!, others, unallocated: result.unallocated };
  }

  it('gives 174 to the priority member and 171 to each of the 6 others for 1,200 tokens and 7 people', () => {
    const brief = briefAllocateTokens(7, BASE_QUOTA, ['release-hotfix']);
    expect(brief).toEqual({ default: 171, high_priority: 174 });
    const ours = viaAllocate(7, BASE_QUOTA);
    expect(ours.lead).toEqual({ id: 'dev00', share: brief.high_priority, reserved: 3 });
    expect(ours.others.map((s) => s.share)).toEqual(Array(6).fill(brief.default));
    expect(ours.unallocated).toBe(0);
  });

  it('matches the brief for every team size from 1 to 50', () => {
    for (let n = 1; n <= 50; n++) {
      const brief = briefAllocateTokens(n, BASE_QUOTA, ['task']);
      const ours = viaAllocate(n, BASE_QUOTA);
      expect(ours.lead.share, `team of ${n}`).toBe(brief.high_priority);
      for (const s of ours.others) expect(s.share, `team of ${n}`).toBe(brief.default);
    }
  });

  it('without a reserve the remainder is spread one unit each instead (the non-trivial default)', () => {
    // Same 1200 / 7 with priorityReserve 0: the 3 spare units go to the 3 smallest ids. The brief's rule
    // with no priority task would drop them ('high_priority': 0); here nothing is lost.
    const result = allocate({ total: BASE_QUOTA, members: team('d0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6') });
    expect(result.shares.map((s) => s.share)).toEqual([172, 172, 172, 171, 171, 171, 171]);
  });
});

describe('allocate: input validation', () => {
  const ok = team('a');
  it.each<[string, AllocationInput, RegExp]>([
    ['negative total', { total: -5, members: ok }, /total: must be >= 0, got -5/],
    ['fractional total', { total: 10.5, members: ok }, /total: must be a whole number of units/],
    ['NaN total', { total: Number.NaN, members: ok }, /total: must be a number/],
    ['no members', { total: 10, members: [] }, /members: must list at least one member/],
    ['weight 0', { total: 10, members: [{ id: 'a', weight: 0 }] }, /members\[0\]\.weight: must be a finite number > 0, got 0/],
    [
      'negative weight',
      { total: 10, members: [{ id: 'a' }, { id: 'b', weight: -1 }] },
      /members\[1\]\.weight: must be a finite number > 0/,
    ],
    ['infinite weight', { total: 10, members: [{ id: 'a', weight: Infinity }] }, /members\[0\]\.weight: must be a finite number > 0/],
    ['duplicate ids', { total: 10, members: team('a', 'b', 'a') }, /members\[2\]\.id: duplicate id "a" \(also members\[0\]\)/],
    ['empty id', { total: 10, members: [{ id: '' }] }, /members\[0\]\.id: must be a non-empty string/],
    ['negative demand', { total: 10, members: [{ id: 'a', demand: -1 }] }, /members\[0\]\.demand: must be >= 0/],
    ['fractional demand', { total: 10, members: [{ id: 'a', demand: 1.5 }] }, /members\[0\]\.demand: must be a whole number of units/],
    ['reserve 1', { total: 10, members: ok, priorityReserve: 1 }, /priorityReserve: must be a fraction in \[0, 1\), got 1/],
    ['negative reserve', { total: 10, members: ok, priorityReserve: -0.1 }, /priorityReserve: must be a fraction in \[0, 1\)/],
    ['NaN reserve', { total: 10, members: ok, priorityReserve: Number.NaN }, /priorityReserve: must be a fraction in \[0, 1\)/],
  ])('rejects %s with a RangeError naming the field', (_name, input, message) => {
    expect(() => allocate(input)).toThrow(RangeError);
    expect(() => allocate(input)).toThrow(message);
  });

  it('lists every problem at once', () => {
    try {
      allocate({ total: -1, members: [{ id: 'a', weight: 0 }, { id: 'a' }], priorityReserve: 2 });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(AllocationError);
      expect((err as AllocationError).problems).toHaveLength(4);
    }
  });
});

describe('allocate: properties over 1,000 pseudo-random inputs', () => {
  /** mulberry32: a small seeded PRNG, so a failure reproduces. */
  function prng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  // Binary fractions, so the float cross-multiplications in the checks below are exact.
  const WEIGHTS = [0.25, 0.5, 1, 1, 1, 1.5, 2, 3, 7, 12.5];

  function randomInput(rand: () => number): AllocationInput {
    const int = (n: number) => Math.floor(rand() * n);
    const n = 1 + int(9);
    const total = rand() < 0.1 ? int(2) : rand() < 0.8 ? int(10_000) : int(1e12);
    const ids = Array.from({ length: n }, (_, i) => `m${i}`).sort(() => rand() - 0.5);
    const members = ids.map((id) => ({
      id,
      ...(rand() < 0.7 ? { weight: WEIGHTS[int(WEIGHTS.length)]! } : {}),
      ...(rand() < 0.6 ? { demand: int(Math.max(1, Math.ceil((2 * total) / n))) } : {}),
      ...(rand() < 0.3 ? { priority: true } : {}),
    }));
    return { total, members, ...(rand() < 0.5 ? { priorityReserve: Math.floor(rand() * 90) / 100 } : {}) };
  }

  /** Real-valued water-filling, written differently from the module (batch rounds, floats). */
  function referenceWaterFill(pool: number, claims: Array<{ w: number; d: number }>): number[] {
    const x = claims.map(() => 0);
    let active = claims.map((_, k) => k);
    let rest = pool;
    while (active.length > 0) {
      const level = rest / active.reduce((s, k) => s + claims[k]!.w, 0);
      const sated = active.filter((k) => claims[k]!.d <= level * claims[k]!.w);
      if (sated.length === 0) {
        for (const k of active) x[k] = level * claims[k]!.w;
        break;
      }
      for (const k of sated) {
        x[k] = claims[k]!.d;
        rest -= claims[k]!.d;
      }
      active = active.filter((k) => !sated.includes(k));
    }
    return x;
  }

  it('sums exactly, respects demands, is max-min fair, and is deterministic', () => {
    const rand = prng(20_240_601);
    for (let run = 0; run < 1000; run++) {
      const input = randomInput(rand);
      const where = `run ${run}: ${JSON.stringify(input)}`;
      const result = allocate(input);
      const { members, total } = input;
      const n = members.length;
      const w = members.map((m) => m.weight ?? 1);
      const d = members.map((m) => m.demand ?? Infinity);
      const share = result.shares.map((s) => s.share);
      const reserved = result.shares.map((s) => s.reserved);
      const general = share.map((s, i) => s - reserved[i]!);

      // Whole units; the shares and what is left over add up to exactly the total.
      expect(
        result.shares.map((s) => s.id),
        where,
      ).toEqual(members.map((m) => m.id));
      for (const s of result.shares)
        expect(Number.isSafeInteger(s.share) && Number.isSafeInteger(s.reserved) && s.reserved >= 0, where).toBe(true);
      expect(share.reduce((a, b) => a + b, 0) + result.unallocated, where).toBe(total);
      expect(result.unallocated, where).toBeGreaterThanOrEqual(0);

      // No one above its demand; something is left over only when every demand is met.
      for (let i = 0; i < n; i++) expect(share[i]!, where).toBeLessThanOrEqual(d[i]!);
      if (result.unallocated > 0) for (let i = 0; i < n; i++) expect(share[i]!, where).toBe(d[i]!);

      // The reserve goes to priority members only, is at most R, and is returned only when unused.
      const isPriority = members.map((m) => m.priority === true);
      const R = isPriority.some(Boolean) ? Math.round(total * (input.priorityReserve ?? 0)) : 0;
      for (let i = 0; i < n; i++) if (!isPriority[i]) expect(reserved[i], where).toBe(0);
      const usedReserve = reserved.reduce((a, b) => a + b, 0);
      expect(usedReserve, where).toBeLessThanOrEqual(R);
      if (usedReserve < R) for (let i = 0; i < n; i++) if (isPriority[i]) expect(reserved[i], where).toBe(d[i]);

      // Max-min property of the general pool (residual demand e = d - reserved): for a member i
      // still short of its demand, moving one unit to it from any member j must leave j with a
      // weighted share below i's: (g_j - 1) / w_j < (g_i + 1) / w_i. So no one short of its demand can
      // gain without taking from a member whose weighted share is smaller or equal.
      for (let i = 0; i < n; i++) {
        if (share[i]! >= d[i]!) continue;
        for (let j = 0; j < n; j++) {
          if (j === i || general[j] === 0) continue;
          expect((general[j]! - 1) * w[i]! < (general[i]! + 1) * w[j]!, `${where}: ${members[j]!.id} vs ${members[i]!.id}`).toBe(true);
        }
      }

      // Ties by id: two members short of their demand with equal weights have equal exact shares
      // (same level, same weight), so the smaller id never gets less.
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          if (w[i] !== w[j] || share[i]! >= d[i]! || share[j]! >= d[j]! || members[i]!.id >= members[j]!.id) continue;
          expect(general[i]!, `${where}: ${members[i]!.id} vs ${members[j]!.id}`).toBeGreaterThanOrEqual(general[j]!);
        }
      }

      // Largest remainder: each part is the floor or ceiling of its exact water-filling value.
      const priorityIdx = members.map((_, i) => i).filter((i) => isPriority[i]);
      const refReserve = referenceWaterFill(
        R,
        priorityIdx.map((i) => ({ w: w[i]!, d: d[i]! })),
      );
      for (const [k, i] of priorityIdx.entries()) expect(Math.abs(reserved[i]! - refReserve[k]!), where).toBeLessThan(1 + 1e-6);
      const refGeneral = referenceWaterFill(
        total - usedReserve,
        members.map((_, i) => ({ w: w[i]!, d: d[i]! - reserved[i]! })),
      );
      for (let i = 0; i < n; i++) expect(Math.abs(general[i]! - refGeneral[i]!), where).toBeLessThan(1 + 1e-12 * Math.max(1, total));

      // Deterministic, and independent of the order members are listed in.
      expect(allocate(input), where).toEqual(result);
      const reversed = allocate({ ...input, members: [...members].reverse() });
      expect(reversed.shares.slice().reverse(), where).toEqual(result.shares);
      expect(reversed.unallocated, where).toBe(result.unallocated);
    }
  });
});
