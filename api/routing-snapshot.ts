/**
 * The in-memory routing snapshot behind `POST /v1/route` (SPEC.md section 4): refreshed from the
 * aggregates every `refreshMs`, so a lookup never queries ClickHouse and costs microseconds.
 *
 * A refresh reads, as of `now()`:
 * - per candidate, its live health over the last 15 minutes (all tenants): calls, error rate and
 *   p95 latency, from `candidateLive()`, matched on (provider lower-cased, model);
 * - per tenant that has quotas, the status of each quota that applies to a candidate: scoped to
 *   the tenant and either to the candidate's provider or to no provider (a tenant-wide quota
 *   applies to every candidate). User- and team-scoped quotas do not apply to a routing request.
 *   A candidate is `quota_exhausted` when any of them is exhausted, with `retry_after_s` the
 *   longest wait among those; `quota_remaining_ratio` is the smallest remaining / limit.
 * It then compiles one snapshot per tenant with quotas, and a shared one (live health only) for
 * every other tenant, and swaps them in at once. A failed refresh keeps the previous snapshots.
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
import { measurable, measureQuota } from '../storage/quota-measure.ts';

/** Live health look-back: the last 15 minutes. */
export const LIVE_WINDOW_MS = DEFAULT_BURN_WINDOW_MS;

export interface RoutingSnapshotOptions {
  clickhouse: ClickHouseClient;
  candidates: readonly RoutingCandidate[];
  weights?: Readonly<RoutingWeights>;
  quotas: readonly QuotaSpec[];
  /** Refresh period, ms; 0 = only when `refresh()` is called. */
  refreshMs: number;
  /** Exclude candidates above this recent error rate. Default 0.2. */
  maxErrorRate?: number;
  /** Current time, epoch ms. Default Date.now. */
  now?: () => number;
  /** Called when a timed refresh fails (the previous snapshots stay in use). */
  onError?: (err: unknown) => void;
}

export interface RoutingSnapshots {
  /** The snapshot for `tenant` (NFC, as API keys give it). Never queries ClickHouse. */
  current(tenant: string): RoutingSnapshot;
  /** Rebuild every snapshot from the aggregates now; concurrent calls share one refresh. */
  refresh(): Promise<void>;
  /** Stop the refresh timer. Idempotent. */
  stop(): void;
}

interface State {
  byTenant: ReadonlyMap<string, RoutingSnapshot>;
  shared: RoutingSnapshot;
}

const liveKey = (provider: string, model: string) => `${provider.toLowerCase()}\u0000${model}`;

/** Remaining share of a quota, 0..1 (exact enough for a score). */
function remainingRatio(s: QuotaStatus): number {
  const limit = Number(s.limit);
  return limit > 0 ? Math.min(1, Math.max(0, Number(s.remaining) / limit)) : 0;
}

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
  const quotas = opts.quotas.filter((q) => measurable(q) && q.scope.user_id === undefined);
  const tenants = [...new Set(quotas.map((q) => q.scope.tenant.normalize('NFC')))];

  let state: State = { byTenant: new Map(), shared: compile(new Map()) };
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
      });
    }
    const statuses = await Promise.all(quotas.map((q) => measureQuota(opts.clickhouse, q, nowMs, false)));
    const byTenant = new Map<string, RoutingSnapshot>();
    for (const tenant of tenants) {
      const live = new Map<string, CandidateLive>();
      for (const c of opts.candidates) {
        const l = { ...base.get(c.id)! };
        quotas.forEach((q, i) => {
          if (!matchesScope(q.scope, { tenant, provider: c.provider })) return;
          const s = statuses[i]!;
          const ratio = remainingRatio(s);
          l.quota_remaining_ratio = l.quota_remaining_ratio === null ? ratio : Math.min(l.quota_remaining_ratio, ratio);
          if (s.state === 'exhausted') {
            l.quota_exhausted = true;
            l.retry_after_s = Math.max(l.retry_after_s ?? 0, s.retry_after_s ?? 0);
          }
        });
        live.set(c.id, l);
      }
      byTenant.set(tenant, compile(live));
    }
    return { byTenant, shared: compile(base) };
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

  const timer =
    opts.refreshMs > 0
      ? setInterval(() => {
          refresh().catch((err: unknown) => opts.onError?.(err));
        }, opts.refreshMs)
      : undefined;
  timer?.unref();

  return {
    current: (tenant) => state.byTenant.get(tenant) ?? state.shared,
    refresh,
    stop: () => clearInterval(timer),
  };
}
