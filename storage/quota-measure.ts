/**
 * Measure a quota's status from the aggregates: the one way every role (read API, routing
 * snapshot, alert evaluator) turns a `QuotaSpec` into a `QuotaStatus` (domain/quota.ts).
 *
 * A team-scoped quota (`scope.team`) counts the usage of the team's members: rows whose
 * `user_id` is one of the members' user_ids (config `teams`, passed in `MeasureOptions.teams`).
 * Without the team directory, or when the team is not configured, such a quota is not measurable.
 */
import { Decimal as DecimalJs } from 'decimal.js';
import { DEFAULT_BURN_WINDOW_MS, type QuotaInterval, type QuotaStatus, quotaStatus, quotaWindow } from '../domain/quota.ts';
import { findTeam, type MemberUsage, memberIds, type TeamMembership } from '../domain/team-allocation.ts';
import type { QuotaSpec } from '../schemas/quota.ts';
import type { ClickHouseClient } from './clickhouse.ts';
import { quotaUsage, quotaUsageByUser, type UserUsageRow } from './queries/quota-usage.ts';

// 40 significant digits, as domain/quota.ts: a sum of 12-decimal USD amounts never rounds.
const Decimal = DecimalJs.clone({ precision: 40 });

/** Optional context of a measurement. */
export interface MeasureOptions {
  /**
   * The configured teams (config `teams`; api/routing-snapshot.ts `RoutingTeam` fits too): a
   * team-scoped quota is measured over its team's members. Default none.
   */
  teams?: readonly TeamMembership[];
}

/** The configured team a team-scoped quota names, or undefined (also for a quota without a team). */
function teamOf(spec: QuotaSpec, opts: MeasureOptions): TeamMembership | undefined {
  return spec.scope.team === undefined ? undefined : findTeam(opts.teams ?? [], spec.scope.tenant, spec.scope.team);
}

/**
 * Whether the quota can be measured without a team directory: any quota without a team. One
 * argument, so `quotas.filter(measurable)` works; with teams use `measurableWith`.
 */
export function measurable(spec: QuotaSpec): boolean {
  return spec.scope.team === undefined;
}

/**
 * A predicate: whether a quota can be measured with `opts` (any quota without a team, and a team
 * quota whose team is in `opts.teams`), e.g. `quotas.filter(measurableWith({ teams }))`.
 */
export function measurableWith(opts: MeasureOptions): (spec: QuotaSpec) => boolean {
  return (spec) => spec.scope.team === undefined || teamOf(spec, opts) !== undefined;
}

/** The usage filter of `spec`'s scope in [fromMs, toMs), NFC ids and lower-cased provider, as stored. */
function scopeFilter(spec: QuotaSpec, users: readonly string[] | undefined, fromMs: number, toMs: number) {
  return {
    tenant: spec.scope.tenant.normalize('NFC'),
    user_id: spec.scope.user_id?.normalize('NFC'),
    ...(users === undefined ? {} : { users }),
    provider: spec.scope.provider?.toLowerCase(),
    metric: spec.metric,
    fromMs,
    toMs,
  };
}

/** Usage of `spec`'s scope in [fromMs, toMs) from `usage_minute`, in its metric, as a decimal string. */
async function used(clickhouse: ClickHouseClient, spec: QuotaSpec, users: readonly string[] | undefined, fromMs: number, toMs: number) {
  const rs = await clickhouse.query({ ...quotaUsage(scopeFilter(spec, users, fromMs, toMs)), format: 'JSONEachRow' });
  const [row] = await rs.json<{ used: string | number }>();
  return String(row?.used ?? 0);
}

/**
 * The status of `spec` at `nowMs` (epoch ms), measured from `usage_minute`: usage in the current
 * window (quotaWindow) and, with `burn`, the usage of the last 15 minutes for the burn rate (else
 * the window average). Both at minute granularity. A team quota counts its members' usage
 * (`opts.teams`).
 * @throws RangeError when `spec` is not measurable (a team quota whose team is not in `opts.teams`)
 *   and from quotaStatus on a bad spec; whatever the ClickHouse client throws.
 */
export async function measureQuota(
  clickhouse: ClickHouseClient,
  spec: QuotaSpec,
  nowMs: number,
  burn = true,
  opts: MeasureOptions = {},
): Promise<QuotaStatus> {
  const team = teamOf(spec, opts);
  if (spec.scope.team !== undefined && team === undefined) {
    throw new RangeError(`quota ${spec.id}: team ${JSON.stringify(spec.scope.team)} of tenant ${spec.scope.tenant} is not configured`);
  }
  const users = team === undefined ? undefined : memberIds(team);
  const w = quotaWindow(spec.window, nowMs);
  const [inWindow, inBurn] = await Promise.all([
    used(clickhouse, spec, users, w.startMs, w.endMs),
    burn ? used(clickhouse, spec, users, nowMs - DEFAULT_BURN_WINDOW_MS, nowMs) : undefined,
  ]);
  return quotaStatus(spec, {
    usedInWindow: inWindow,
    nowMs,
    ...(inBurn === undefined ? {} : { usedInBurnWindow: inBurn, burnWindowMs: DEFAULT_BURN_WINDOW_MS }),
  });
}

/** A team quota measured per member (see `measureTeamQuota`). */
export interface TeamQuotaMeasure {
  /** The team quota's status, from the members' summed usage. */
  status: QuotaStatus;
  /** The current window of the quota. */
  window: QuotaInterval;
  /** Length of the burn window behind `MemberUsage.usedInBurnWindow`: 15 minutes. */
  burnWindowMs: number;
  /** Usage by member user_id (NFC); members without usage in either window are absent. */
  usage: Map<string, MemberUsage>;
}

/**
 * Measure a team quota per member, for splitting it (domain/team-allocation.ts splitTeamQuota):
 * each member's usage in the current window and in the last 15 minutes, from `usage_minute`, and
 * the quota status from their sums (so the status and the members always agree). Two queries.
 * @throws RangeError when `spec` has no team or `team` is not the team it names; from
 *   quotaStatus on a bad spec; whatever the ClickHouse client throws.
 */
export async function measureTeamQuota(
  clickhouse: ClickHouseClient,
  spec: QuotaSpec,
  team: TeamMembership,
  nowMs: number,
): Promise<TeamQuotaMeasure> {
  if (spec.scope.team === undefined || findTeam([team], spec.scope.tenant, spec.scope.team) === undefined) {
    throw new RangeError(`quota ${spec.id} is not scoped to team ${JSON.stringify(team.id)} of tenant ${team.tenant}`);
  }
  const users = memberIds(team);
  const window = quotaWindow(spec.window, nowMs);
  const byUser = async (fromMs: number, toMs: number) => {
    const rs = await clickhouse.query({ ...quotaUsageByUser(scopeFilter(spec, users, fromMs, toMs)), format: 'JSONEachRow' });
    return rs.json<UserUsageRow>();
  };
  const [inWindow, inBurn] = await Promise.all([byUser(window.startMs, window.endMs), byUser(nowMs - DEFAULT_BURN_WINDOW_MS, nowMs)]);
  const usage = new Map<string, MemberUsage>();
  for (const r of inWindow) usage.set(r.user_id, { used: String(r.used), usedInBurnWindow: '0' });
  for (const r of inBurn) usage.set(r.user_id, { used: usage.get(r.user_id)?.used ?? '0', usedInBurnWindow: String(r.used) });
  const sum = (rows: UserUsageRow[]) => rows.reduce((s, r) => s.add(String(r.used)), new Decimal(0)).toFixed();
  const status = quotaStatus(spec, {
    usedInWindow: sum(inWindow),
    nowMs,
    usedInBurnWindow: sum(inBurn),
    burnWindowMs: DEFAULT_BURN_WINDOW_MS,
  });
  return { status, window, burnWindowMs: DEFAULT_BURN_WINDOW_MS, usage };
}
