/**
 * Team allocation: split a team quota among its members (SPEC.md section 3).
 *
 * Units: `total`, every `demand` and every result are whole units of the quota (tokens,
 * requests, or micro-USD: whatever the team quota counts). Weights are relative and unitless.
 *
 * Algorithm, in two passes over the same water-filling routine:
 * 1. Priority reserve. If some member is `priority`, R = round(total x priorityReserve) units
 *    (nearest, half up; so a reserve written as k / total gives back exactly k units) are held for
 *    the priority members and split among them by weight, each capped at its demand. Reserve a
 *    priority member cannot use (demand below its part) goes back to the general pool. With no
 *    priority member nothing is held back.
 * 2. General pool: total - (reserve actually used), split among ALL members (priority ones too, with
 *    their demand reduced by what the reserve gave them) by weighted max-min fairness.
 *
 * Weighted max-min fairness by water-filling (progressive filling): raise a common level L; member i
 * receives min(demand_i, L x weight_i); stop when the pool is used up or every demand is met. A
 * member whose demand is below its fair share gets exactly its demand and the share it leaves is
 * re-lent to the others in proportion to weight. The exact (real-valued) result is the unique
 * allocation in which no member can get more without taking from a member whose weighted share
 * (share / weight) is smaller or equal. Source: D. Bertsekas & R. Gallager, "Data Networks", 2nd ed. (1992), section 6.5.2
 * (max-min fairness and its computation by progressive filling); the weighted form follows
 * S. Keshav, "An Engineering Approach to Computer Networking" (1997), pp. 215-217.
 *
 * Rounding: each pass computes the exact rational shares (BigInt arithmetic; weights are taken as
 * the exact binary fractions they are), gives every member the integer part, and hands the units
 * left over one each to the largest fractional remainders, ties broken by id in ascending code-unit
 * order (Hamilton's largest-remainder method). So every share is the floor or the ceiling of its
 * exact fair value, never exceeds the member's demand, and the shares sum exactly to total, or to
 * total minus `unallocated` when every demand is met. The result depends only on the members, not
 * on the order they are listed in.
 *
 * With no weights, demands or reserve this is an equal split; the brief's "per capita + remainder to
 * the priority task" rule is priorityReserve = (total mod n) / total with one priority member (see
 * test/unit/allocation.test.ts).
 */

/** One member of the team as configured. */
export interface AllocationMember {
  /** Unique within the team; also the tie-break for rounding (ascending). */
  id: string;
  /** Relative weight, a finite number > 0. Default 1. */
  weight?: number;
  /** Expected use this window in whole units; undefined (or Infinity) means unlimited. */
  demand?: number;
  /** Whether the member shares the priority reserve. Default false. */
  priority?: boolean;
}

export interface AllocationInput {
  /** The team quota in whole units, a safe integer >= 0. */
  total: number;
  members: readonly AllocationMember[];
  /** Fraction of `total` held for priority members, in [0, 1). Default 0. */
  priorityReserve?: number;
}

export interface MemberShare {
  id: string;
  /** Units given to the member in all, `reserved` included. */
  share: number;
  /** The part of `share` that came from the priority reserve (0 for non-priority members). */
  reserved: number;
}

export interface Allocation {
  /** One entry per member, in input order. */
  shares: MemberShare[];
  /** Units nobody demands: total minus the sum of shares; > 0 only when every demand is met. */
  unallocated: number;
}

/** Invalid allocation input; `problems` lists every bad field ("members[2].weight: must be ..."). */
export class AllocationError extends RangeError {
  constructor(readonly problems: string[]) {
    super(`invalid allocation input:\n  ${problems.join('\n  ')}`);
    this.name = 'AllocationError';
  }
}

/** A member as the water-filling routine sees it: exact integer weight, demand or null (unlimited). */
interface Claimant {
  /** Position in the input. */
  index: number;
  weight: bigint;
  demand: bigint | null;
}

/**
 * Split a team quota among its members: priority reserve first, then weighted max-min fairness
 * with unused shares re-lent, in whole units (see the module comment for the rules).
 * @throws AllocationError (a RangeError) naming every invalid field and why.
 */
export function allocate(input: AllocationInput): Allocation {
  validate(input);
  const { members } = input;
  const weights = exactWeights(members.map((m) => m.weight ?? 1));
  // Claimants sorted by id: rounding ties go to the smaller id, and input order does not matter.
  const claimants: Claimant[] = members
    .map((m, index) => ({
      index,
      weight: weights[index]!,
      demand: m.demand === undefined || m.demand === Infinity ? null : BigInt(m.demand),
    }))
    .sort((a, b) => compareIds(members[a.index]!.id, members[b.index]!.id));

  // 1. The priority reserve, split among priority members only.
  const reserved = members.map(() => 0n);
  const priority = claimants.filter((c) => members[c.index]!.priority === true);
  if (priority.length > 0) {
    const reserve = Math.min(input.total, Math.round(input.total * (input.priorityReserve ?? 0)));
    waterFill(BigInt(reserve), priority).forEach((units, k) => {
      reserved[priority[k]!.index] = units;
    });
  }

  // 2. Everything the reserve did not use, split among all members on their remaining demand.
  const usedByReserve = reserved.reduce((sum, r) => sum + r, 0n);
  const rest = claimants.map((c) => ({ ...c, demand: c.demand === null ? null : c.demand - reserved[c.index]! }));
  const general = members.map(() => 0n);
  waterFill(BigInt(input.total) - usedByReserve, rest).forEach((units, k) => {
    general[rest[k]!.index] = units;
  });

  const shares = members.map((m, i) => ({ id: m.id, share: Number(reserved[i]! + general[i]!), reserved: Number(reserved[i]!) }));
  return { shares, unallocated: input.total - shares.reduce((sum, s) => sum + s.share, 0) };
}

/**
 * Weighted max-min fair split of `pool` units among `claimants` (sorted by id), capped by demand.
 * Returns the units per claimant, in the claimants' order; their sum is min(pool, sum of demands).
 */
function waterFill(pool: bigint, claimants: readonly Claimant[]): bigint[] {
  const given = claimants.map(() => 0n);
  // Satisfy members in increasing order of demand / weight (unlimited last; stable, so ties stay
  // in id order). Claimant k is satisfied at the current level when its demand is at most its
  // weighted share of what is left: demand_k / weight_k <= rest / sumW. Once the next one is not,
  // no later one is either, since their demand / weight is larger and the level only rises.
  const order = claimants.map((_, k) => k).sort((a, b) => compareRatio(claimants[a]!, claimants[b]!));
  let rest = pool;
  let sumW = claimants.reduce((sum, c) => sum + c.weight, 0n);
  let next = 0;
  for (; next < order.length; next++) {
    const c = claimants[order[next]!]!;
    if (c.demand === null || c.demand * sumW > rest * c.weight) break;
    given[order[next]!] = c.demand;
    rest -= c.demand;
    sumW -= c.weight;
  }
  if (next === order.length) return given; // every demand met; `rest` is left unallocated

  // The unsatisfied share `rest` in proportion to weight: exact value rest x w / sumW, as the
  // integer part plus one unit each for the largest remainders (ties by id: `active` is in id order).
  const active = order.slice(next).sort((a, b) => a - b);
  const remainders = new Map<number, bigint>();
  let leftOver = rest;
  for (const k of active) {
    const exact = rest * claimants[k]!.weight;
    given[k] = exact / sumW;
    remainders.set(k, exact % sumW);
    leftOver -= given[k]!;
  }
  // leftOver < active.length, and every unit goes to a remainder > 0, so nobody passes its demand
  // (an unsatisfied demand is an integer strictly above the exact share).
  const byRemainder = [...active].sort((a, b) => {
    const ra = remainders.get(a)!;
    const rb = remainders.get(b)!;
    return ra === rb ? a - b : ra > rb ? -1 : 1;
  });
  for (let u = 0n; u < leftOver; u++) given[byRemainder[Number(u)]!]! += 1n;
  return given;
}

/** Order by demand / weight ascending, unlimited demand last (exact cross-multiplication). */
function compareRatio(a: Claimant, b: Claimant): number {
  if (a.demand === null || b.demand === null) return (a.demand === null ? 1 : 0) - (b.demand === null ? 1 : 0);
  const lhs = a.demand * b.weight;
  const rhs = b.demand * a.weight;
  return lhs === rhs ? 0 : lhs < rhs ? -1 : 1;
}

/** Ids compared by UTF-16 code units, the same on every machine and locale. */
function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The weights as integers with the same ratios, exactly: a double is mantissa x 2^exponent, so
 * scaling all of them by 2^-(smallest exponent) makes each an integer (1, 2, 0.5 -> 2, 4, 1).
 */
function exactWeights(weights: readonly number[]): bigint[] {
  const parts = weights.map(binaryFraction);
  const minExp = parts.reduce((min, p) => Math.min(min, p.exp), Infinity);
  return parts.map((p) => p.mant << BigInt(p.exp - minExp));
}

/** A finite double > 0 as mant x 2^exp with mant odd. */
function binaryFraction(x: number): { mant: bigint; exp: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  let mant = bits & 0xf_ffff_ffff_ffffn;
  let exp = -1074; // subnormal
  if (biased !== 0) {
    mant |= 1n << 52n;
    exp = biased - 1075;
  }
  while ((mant & 1n) === 0n) {
    mant >>= 1n;
    exp++;
  }
  return { mant, exp };
}

function validate(input: AllocationInput): void {
  const problems: string[] = [];
  const { total, members, priorityReserve } = input;
  if (typeof total !== 'number' || Number.isNaN(total)) problems.push(`total: must be a number, got ${String(total)}`);
  else if (total < 0) problems.push(`total: must be >= 0, got ${total}`);
  else if (!Number.isSafeInteger(total)) problems.push(`total: must be a whole number of units (safe integer), got ${total}`);
  if (priorityReserve !== undefined && !(typeof priorityReserve === 'number' && priorityReserve >= 0 && priorityReserve < 1))
    problems.push(`priorityReserve: must be a fraction in [0, 1), got ${String(priorityReserve)}`);
  if (!Array.isArray(members) || members.length === 0) {
    problems.push('members: must list at least one member');
  } else {
    const firstSeen = new Map<string, number>();
    members.forEach((m, i) => {
      const where = `members[${i}]`;
      if (typeof m !== 'object' || m === null) {
        problems.push(`${where}: must be an object`);
        return;
      }
      if (typeof m.id !== 'string' || m.id === '') problems.push(`${where}.id: must be a non-empty string`);
      else if (firstSeen.has(m.id)) problems.push(`${where}.id: duplicate id "${m.id}" (also members[${firstSeen.get(m.id)}])`);
      else firstSeen.set(m.id, i);
      const { weight, demand } = m;
      if (weight !== undefined && !(typeof weight === 'number' && Number.isFinite(weight) && weight > 0))
        problems.push(`${where}.weight: must be a finite number > 0, got ${String(weight)}`);
      if (demand !== undefined && demand !== Infinity) {
        if (typeof demand !== 'number' || Number.isNaN(demand)) problems.push(`${where}.demand: must be a number, got ${String(demand)}`);
        else if (demand < 0) problems.push(`${where}.demand: must be >= 0, got ${demand}`);
        else if (!Number.isSafeInteger(demand))
          problems.push(`${where}.demand: must be a whole number of units (safe integer), got ${demand}`);
      }
      if (m.priority !== undefined && typeof m.priority !== 'boolean')
        problems.push(`${where}.priority: must be a boolean, got ${String(m.priority)}`);
    });
  }
  if (problems.length > 0) throw new AllocationError(problems);
}
