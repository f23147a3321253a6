/**
 * Team quotas (SPEC.md section 3, issue 4): which team a team-scoped quota names, and how its
 * limit is split among the team's members for `GET /v1/allocations/:team`. Pure: usage and the
 * current time are passed in. The split itself is domain/allocation.ts `allocate` (priority
 * reserve, then weighted max-min fairness with unused shares re-lent).
 *
 * Units. `allocate` works in whole units: tokens and requests as they are, USD in micro-USD
 * (1 unit = 0.000001 USD). The total is the quota limit in those units, rounded down for USD (a
 * limit with more than 6 decimals never hands out more than the limit). Answers are in the quota's
 * metric: numbers for tokens and requests, exact decimal strings in USD for usd.
 *
 * Demand. A member's demand is its projected use to the end of the current window:
 *   demand = used + burn x time_left, burn = used_in_burn_window / burn_window_ms,
 *   time_left = window_end - now (ms; 0 for a rolling window, whose end is now),
 * rounded up to a whole unit (a member that used 0.4 micro-USD demands 1). This is the same
 * straight-line projection as the quota's own `projected_exhaustion_at` (domain/quota.ts), per
 * member. A member with no usage and no recent burn demands 0 and gets share 0: its fair share is
 * re-lent to the others, and what nobody demands is reported as `unallocated`.
 */
import { Decimal as DecimalJs } from 'decimal.js';
import type { QuotaMetric, QuotaSpec } from '../schemas/quota.ts';
import { allocate } from './allocation.ts';
import type { QuotaInterval } from './quota.ts';

// 40 significant digits, as domain/quota.ts: sums and products of 12-decimal USD amounts stay exact.
const Decimal = DecimalJs.clone({ precision: 40 });
type Decimal = InstanceType<typeof Decimal>;

/** Whole units per metric unit: micro-USD for usd. */
const UNITS_PER: Record<QuotaMetric, number> = { tokens: 1, requests: 1, usd: 1_000_000 };

/**
 * A team as measurement and allocation need it. Config `teams` entries (schemas/team.ts TeamSpec)
 * fit, and so does any `{ id, tenant, members: [{ user_id }] }` (weights default to 1).
 */
export interface TeamMembership {
  id: string;
  tenant: string;
  members: ReadonlyArray<{ user_id: string; weight?: number; priority?: boolean }>;
  /** Fraction of a team quota held for priority members, [0, 1). Default 0. */
  priority_reserve?: number;
}

/** The team named `team` of `tenant` in `teams`, comparing ids after NFC normalisation; undefined if none. */
export function findTeam<T extends TeamMembership>(teams: readonly T[], tenant: string, team: string): T | undefined {
  const t = tenant.normalize('NFC');
  const id = team.normalize('NFC');
  return teams.find((x) => x.tenant.normalize('NFC') === t && x.id.normalize('NFC') === id);
}

/** The team's member user_ids, NFC-normalised (as ingest stores user_id), in config order. */
export function memberIds(team: TeamMembership): string[] {
  return team.members.map((m) => m.user_id.normalize('NFC'));
}

/** One member's measured usage, in the quota's metric (a count, or a USD decimal string). */
export interface MemberUsage {
  /** Usage in the current window. */
  used: number | string;
  /** Usage in the burn window [now - burnWindowMs, now). */
  usedInBurnWindow: number | string;
}

export interface TeamSplitInput {
  /** The team-scoped quota: its `metric` and `limit` are used. */
  spec: Pick<QuotaSpec, 'id' | 'metric' | 'limit'>;
  team: TeamMembership;
  /** The quota's current window (domain/quota.ts quotaWindow). */
  window: QuotaInterval;
  /** Current time, epoch ms. */
  nowMs: number;
  /** Length of the burn window behind `usedInBurnWindow`, ms, > 0. */
  burnWindowMs: number;
  /** Usage by member user_id (NFC); a member missing from the map used nothing. */
  usage: ReadonlyMap<string, MemberUsage>;
}

/** An amount in the quota's metric: a number for tokens and requests, a decimal string (USD) for usd. */
export type Amount = number | string;

/** One member's part of a team quota (amounts in the quota's metric). */
export interface MemberSplit {
  user_id: string;
  /** As configured, default 1. */
  weight: number;
  priority: boolean;
  /** Projected use to the window end (see the module comment). */
  demand: Amount;
  /** What the member is allotted in all, `reserved` included. */
  share: Amount;
  /** The part of `share` that came from the priority reserve (0 for non-priority members). */
  reserved: Amount;
  /** Usage in the current window. */
  used: Amount;
  /** max(0, share - used). */
  remaining_share: Amount;
}

export interface TeamSplit {
  /** The quota limit in whole units, back in the metric (USD rounded down to the micro-dollar). */
  total: Amount;
  /** The team's priority reserve fraction, as configured (default 0). */
  priority_reserve: number;
  /** What no member demands: total minus the sum of shares. */
  unallocated: Amount;
  /** One entry per member, in config order. */
  members: MemberSplit[];
}

function exact(name: string, v: number | string): Decimal {
  const d = new Decimal(v);
  if (!d.isFinite() || d.isNegative()) throw new RangeError(`${name} must be a finite amount >= 0, got ${v}`);
  return d;
}

/**
 * Split `input.spec`'s limit among the team's members (see the module comment for units and demand).
 * @throws RangeError on a negative or malformed usage amount or a non-positive burn window;
 *   AllocationError (a RangeError) from `allocate` on a bad team (weights, reserve) or a limit too
 *   large for whole units (over 2^53 - 1 tokens, requests or micro-USD).
 */
export function splitTeamQuota(input: TeamSplitInput): TeamSplit {
  const { spec, team, window, nowMs, burnWindowMs } = input;
  if (!(burnWindowMs > 0)) throw new RangeError(`burnWindowMs must be > 0, got ${burnWindowMs}`);
  const per = UNITS_PER[spec.metric];
  const toUnits = (d: Decimal) => d.mul(per);
  const fromUnits = (units: number): Amount => (spec.metric === 'usd' ? new Decimal(units).div(per).toFixed() : units);
  const asAmount = (d: Decimal): Amount => (spec.metric === 'usd' ? d.toFixed() : d.toNumber());

  const total = toUnits(exact(`quota ${spec.id} limit`, spec.limit))
    .floor()
    .toNumber();
  const timeLeftMs = Math.max(0, window.endMs - nowMs);
  const ids = memberIds(team);
  const measured = ids.map((id) => {
    const u = input.usage.get(id);
    const used = exact(`usage of ${id}`, u?.used ?? 0);
    const burn = exact(`burn-window usage of ${id}`, u?.usedInBurnWindow ?? 0);
    const projected = used.add(burn.mul(timeLeftMs).div(burnWindowMs));
    const demand = Decimal.min(toUnits(projected).ceil(), Number.MAX_SAFE_INTEGER).toNumber();
    return { used, demand };
  });
  const allocation = allocate({
    total,
    members: team.members.map((m, i) => ({
      id: ids[i]!,
      demand: measured[i]!.demand,
      ...(m.weight === undefined ? {} : { weight: m.weight }),
      ...(m.priority === undefined ? {} : { priority: m.priority }),
    })),
    priorityReserve: team.priority_reserve ?? 0,
  });
  const members = team.members.map((m, i): MemberSplit => {
    const { share, reserved } = allocation.shares[i]!;
    const used = measured[i]!.used;
    const shareAmount = new Decimal(share).div(per);
    return {
      user_id: ids[i]!,
      weight: m.weight ?? 1,
      priority: m.priority ?? false,
      demand: fromUnits(measured[i]!.demand),
      share: fromUnits(share),
      reserved: fromUnits(reserved),
      used: asAmount(used),
      remaining_share: asAmount(Decimal.max(shareAmount.sub(used), 0)),
    };
  });
  return {
    total: fromUnits(total),
    priority_reserve: team.priority_reserve ?? 0,
    unallocated: fromUnits(allocation.unallocated),
    members,
  };
}
