/**
 * The in-memory routing snapshot behind `POST /v1/route` (SPEC.md section 4): refreshed from the
 * aggregates every `refreshMs`, and soon after the process writes usage (`nudge`), so a lookup never
 * queries ClickHouse and costs microseconds.
 *
 * A refresh reads, as of `now()`:
 * - per candidate, its live health over the last 15 minutes (all tenants): calls, error rate and
 *   p95 latency, from `candidateLive()`, matched on (provider lower-cased, model);
 * - the status of every quota (storage/quota-measure.ts).
 * It then compiles one snapshot per principal that has quotas: a tenant (its tenant-wide and
 * provider quotas), and a (tenant, user) pair for each user named by a user-scoped quota or a
 * member of a team with a team-scoped quota (the tenant's quotas plus the user's and their teams').
 * A quota applies to a candidate when it matches the principal and either names the candidate's
 * provider or no provider (domain/quota.ts `matchesScope`). Per candidate, from the quotas that apply:
 * - `quota_exhausted` when any is exhausted; `retry_after_s` the longest wait among those;
 * - `quota_remaining_ratio` the smallest remaining / limit; `remaining_tokens` the smallest
 *   remaining of the tokens quotas; `quota_soft` when any is at or past its soft threshold;
 * - `breaker_open` when a daily calendar quota is past its soft threshold (SPEC: the soft threshold
 *   of a daily budget opens the breaker for low-priority traffic), retry after its window end.
 * Tenants without quotas share one snapshot (live health only). All snapshots are swapped in at
 * once; a failed refresh keeps the previous ones.
 */
import { DEFAULT_BURN_WINDOW_MS, matchesScope, type QuotaStatus } from '../domain/quota.ts';
import {
  type CandidateLive,
  compileSnapshot,
  DEFAULT_ROUTING_WEIGHTS,
  type RoutingCandidate,
  type RoutingSnapshot,
  type RoutingWeights,
} from '../domain/routing.ts';
import type { QuotaSpec } from '../schemas/quota.ts';
import type { ClickHouseClient } from '../storage/clickhouse.ts';
import { type CandidateLiveRow, candidateLive } from '../storage/queries/quota-usage.ts';
import { measurableWith, measureQuota } from '../storage/quota-measure.ts';

/** Live health look-back: the last 15 minutes. */
export const LIVE_WINDOW_MS = DEFAULT_BURN_WINDOW_MS;
/** After `nudge()`, the refresh waits this long, ms, so a burst of batches costs one refresh. */
export const NUDGE_DELAY_MS = 1_000;

/** Team membership, as far as routing cares (config `teams`). */
export interface RoutingTeam {
  id: string;
  tenant: string;
  members: ReadonlyArray<{ user_id: string }>;
}

export interface RoutingSnapshotOptions {
  clickhouse: ClickHouseClient;
  candidates: readonly RoutingCandidate[];
  weights?: Readonly<RoutingWeights>;
  quotas: readonly QuotaSpec[];
  /** Teams, so team-scoped quotas apply to their members' requests. Default none. */
  teams?: readonly RoutingTeam[];
  /** Refresh period, ms; 0 = only when `refresh()` or `nudge()` is called. */
  refreshMs: number;
  /** Exclude candidates above this recent error rate. Default 0.2. */
  maxErrorRate?: number;
  /** Current time, epoch ms. Default Date.now. */
  now?: () => number;
  /** Called when a timed or nudged refresh fails (the previous snapshots stay in use). */
  onError?: (err: unknown) => void;
}

/** One quota that applies to a principal, as `POST /v1/route` reports it (amounts in the quota's metric). */
export interface QuotaRemaining {
  id: string;
  metric: QuotaStatus['metric'];
  state: QuotaStatus['state'];
  /** A number for tokens and requests, an exact decimal string for usd. */
  remaining: number | string;
  limit: number | string;
  /** RFC 3339 UTC, exclusive. */
  window_end: string;
}

export interface RoutingSnapshots {
  /**
   * The snapshot for `tenant` (NFC, as API keys give it) and optional `user` (NFC): the user's own
   * when their quotas or teams' quotas exist, else the tenant's. Never queries ClickHouse.
   */
  current(tenant: string, user?: string): RoutingSnapshot;
  /** The quotas that apply to the same principal as `current`, with what is left (frozen, shared). */
  remaining(tenant: string, user?: string): readonly QuotaRemaining[];
  /** Rebuild every snapshot from the aggregates now; concurrent calls share one refresh. */
  refresh(): Promise<void>;
  /** Ask for a refresh within NUDGE_DELAY_MS (the process wrote usage). Errors go to `onError`. */
  nudge(): void;
  /** Stop the timers. Idempotent. */
  stop(): void;
}

interface Principal {
  snapshot: RoutingSnapshot;
  remaining: readonly QuotaRemaining[];
}

interface State {
  byPrincipal: ReadonlyMap<string, Principal>;
  shared: Principal;
}

const liveKey = (provider: string, model: string) => `${provider.toLowerCase()}\u0000${model}`;
const principalKey = (tenant: string, user?: string) => (user === undefined ? tenant : `${tenant}\u0000${user}`);

/** Remaining share of a quota, 0..1 (exact enough for a score). */
function remainingRatio(s: QuotaStatus): number {
  const limit = Number(s.limit);
  return limit > 0 ? Math.min(1, Math.max(0, Number(s.remaining) / limit)) : 0;
}

/** Seconds from nowMs to an RFC 3339 instant, rounded up, at least 1. */
const secondsUntil = (iso: string, nowMs: number) => Math.max(1, Math.ceil((Date.parse(iso) - nowMs) / 1000));

/**
 * Build the snapshots (first compile without live data, so `current` works before the first
 * refresh) and start the refresh timer when `refreshMs` > 0.
 * @throws RoutingConfigError when the candidates or weights are invalid.
 */
export function createRoutingSnapshot(opts: RoutingSnapshotOptions): RoutingSnapshots {
  const now = opts.now ?? Date.now;
  const weights = opts.weights ?? DEFAULT_ROUTING_WEIGHTS;
  const options = { maxErrorRate: opts.maxErrorRate ?? 0.2 };
  const compile = (live: ReadonlyMap<string, CandidateLive>) => compileSnapshot(opts.candidates, live, weights, options);
  const measureOpts = { teams: opts.teams ?? [] };
  const quotas = opts.quotas.filter(measurableWith(measureOpts));

  // Principals: every tenant with quotas, and every (tenant, user) with quotas of their own or of a team.
  const teamsOf = new Map<string, string[]>(); // principal key -> team ids
  for (const t of opts.teams ?? []) {
    for (const m of t.members) {
      const key = principalKey(t.tenant.normalize('NFC'), m.user_id.normalize('NFC'));
      teamsOf.set(key, [...(teamsOf.get(key) ?? []), t.id.normalize('NFC')]);
    }
  }
  const principals = new Map<string, { tenant: string; user?: string; teams: string[] }>();
  for (const q of quotas) {
    const tenant = q.scope.tenant.normalize('NFC');
    principals.set(tenant, { tenant, teams: [] });
    const users =
      q.scope.user_id !== undefined
        ? [q.scope.user_id.normalize('NFC')]
        : q.scope.team !== undefined
          ? (opts.teams ?? [])
              .filter((t) => t.tenant.normalize('NFC') === tenant && t.id.normalize('NFC') === q.scope.team!.normalize('NFC'))
              .flatMap((t) => t.members.map((m) => m.user_id.normalize('NFC')))
          : [];
    for (const user of users) {
      const key = principalKey(tenant, user);
      principals.set(key, { tenant, user, teams: teamsOf.get(key) ?? [] });
    }
  }

  const empty: Principal = { snapshot: compile(new Map()), remaining: Object.freeze([]) };
  let state: State = { byPrincipal: new Map(), shared: empty };
  let inFlight: Promise<void> | undefined;

  async function build(): Promise<State> {
    const nowMs = now();
    const rs = await opts.clickhouse.query({ ...candidateLive({ fromMs: nowMs - LIVE_WINDOW_MS }), format: 'JSONEachRow' });
    const rows = await rs.json<CandidateLiveRow>();
    const health = new Map(rows.map((r) => [liveKey(r.provider, r.model), r]));
    const base = new Map<string, CandidateLive>();
    for (const c of opts.candidates) {
      const r = health.get(liveKey(c.provider, c.model));
      base.set(c.id, {
        requests: r ? Number(r.requests) : 0,
        error_rate: r ? Number(r.error_rate) : 0,
        p95_latency_ms: r?.p95_latency_ms == null ? null : Number(r.p95_latency_ms),
        quota_remaining_ratio: null,
        quota_exhausted: false,
        breaker_open: false,
        retry_after_s: null,
        remaining_tokens: null,
        quota_soft: false,
      });
    }
    const statuses = await Promise.all(quotas.map((q) => measureQuota(opts.clickhouse, q, nowMs, false, measureOpts)));
    const byPrincipal = new Map<string, Principal>();
    for (const [key, p] of principals) {
      const who = { tenant: p.tenant, user_id: p.user ?? null, teams: p.teams };
      const live = new Map<string, CandidateLive>();
      for (const c of opts.candidates) {
        const l = { ...base.get(c.id)! };
        let breakerRetry: number | null = null;
        quotas.forEach((q, i) => {
          if (!matchesScope(q.scope, { ...who, provider: c.provider })) return;
          const s = statuses[i]!;
          const ratio = remainingRatio(s);
          l.quota_remaining_ratio = l.quota_remaining_ratio === null ? ratio : Math.min(l.quota_remaining_ratio, ratio);
          if (s.metric === 'tokens') l.remaining_tokens = Math.min(l.remaining_tokens ?? s.remaining, s.remaining);
          if (s.state !== 'ok') l.quota_soft = true;
          if (s.state === 'exhausted') {
            l.quota_exhausted = true;
            l.retry_after_s = Math.max(l.retry_after_s ?? 0, s.retry_after_s ?? 0);
          } else if (s.state === 'soft' && q.window.kind === 'calendar' && q.window.unit === 'day') {
            l.breaker_open = true;
            breakerRetry = Math.max(breakerRetry ?? 0, secondsUntil(s.window_end, nowMs));
          }
        });
        if (!l.quota_exhausted && breakerRetry !== null) l.retry_after_s = breakerRetry;
        live.set(c.id, l);
      }
      const remaining = Object.freeze(
        quotas.flatMap((q, i) => {
          if (!matchesScope(q.scope, { ...who, provider: q.scope.provider ?? null })) return [];
          const s = statuses[i]!;
          return [
            Object.freeze({ id: s.id, metric: s.metric, state: s.state, remaining: s.remaining, limit: s.limit, window_end: s.window_end }),
          ];
        }),
      );
      byPrincipal.set(key, { snapshot: compile(live), remaining });
    }
    return { byPrincipal, shared: { snapshot: compile(base), remaining: Object.freeze([]) } };
  }

  const refresh = (): Promise<void> => {
    inFlight ??= build()
      .then((next) => {
        state = next; // one assignment: a lookup sees the old snapshots or the new ones, never a mix
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };
  const refreshLogged = () => {
    refresh().catch((err: unknown) => opts.onError?.(err));
  };

  const timer = opts.refreshMs > 0 ? setInterval(refreshLogged, opts.refreshMs) : undefined;
  timer?.unref();
  let nudged: NodeJS.Timeout | undefined;
  let stopped = false;

  const principal = (tenant: string, user?: string): Principal =>
    (user !== undefined ? state.byPrincipal.get(principalKey(tenant, user)) : undefined) ?? state.byPrincipal.get(tenant) ?? state.shared;

  return {
    current: (tenant, user) => principal(tenant, user).snapshot,
    remaining: (tenant, user) => principal(tenant, user).remaining,
    refresh,
    nudge: () => {
      if (stopped || nudged) return;
      nudged = setTimeout(() => {
        nudged = undefined;
        refreshLogged();
      }, NUDGE_DELAY_MS);
      nudged.unref();
    },
    stop: () => {
      stopped = true;
      clearInterval(timer);
      clearTimeout(nudged);
    },
  };
}
