/**
 * The feedback loop of the recommendations (issue 6; the brief's "反馈循环机制:建立消耗数据-优化策略的闭环系统"):
 * store them (table `recommendations`, schemas/clickhouse/0006), let a person adopt or dismiss
 * them, and measure whether an adopted one paid off.
 *
 * Versions: every write is a new row version of (tenant, recommendation_id) with a later
 * `updated_at` (ReplacingMergeTree); reads use FINAL. A re-computed recommendation refreshes its
 * row only while it is open: an adopted or dismissed one keeps its state, estimate and baseline.
 *
 * Measurement (`measureAdopted`): the evidence query of the recommendation, exactly as stored, is
 * re-run over the part of the report week after adoption, and its rule's `measure` gives the waste
 * that is left (0 once the change is fully made), per 30 days. Actual saving = baseline (the
 * monthly estimate at adoption) - the waste left per 30 days; ratio = actual / estimated.
 * Changes in call volume are not separated out: half the traffic also halves the waste.
 */
import { createHash } from 'node:crypto';
import type { PriceTable } from '../../domain/pricing.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import {
  DEFAULT_THRESHOLDS,
  Decimal,
  type Figures,
  num,
  perMonth,
  RECOMMENDATION_KINDS,
  type Recommendation,
  type RecommendationKind,
  type Row,
  type Subject,
  str,
} from './recommendation.ts';
import { queryRows, RULES } from './rules.ts';

export const RECOMMENDATION_STATES = ['open', 'adopted', 'dismissed'] as const;
export type RecommendationState = (typeof RECOMMENDATION_STATES)[number];

/** A stored recommendation: the recommendation plus its state and, once adopted, its baseline. */
export interface StoredRecommendation extends Recommendation {
  state: RecommendationState;
  /** RFC 3339 UTC, or null when never adopted. */
  adopted_at: string | null;
  /** The monthly estimate at adoption (tokens, exact USD): what later weeks are compared with. */
  baseline: { tokens: number; usd: string } | null;
  created_at: string;
  updated_at: string;
}

/** The id is not stored for this tenant. */
export class RecommendationNotFoundError extends Error {
  readonly code = 'QF_RECOMMENDATION_NOT_FOUND';
  constructor(
    readonly tenant: string,
    readonly id: string,
  ) {
    super(`recommendation ${id} not found for tenant ${tenant}`);
    this.name = 'RecommendationNotFoundError';
  }
}

/** ClickHouse DateTime64(3) text, UTC. */
const chTime = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
const isoOf = (ms: number) => new Date(ms).toISOString();

const SELECT_STORED = `SELECT tenant, recommendation_id, kind, subject, title, rationale, evidence,
  estimated_tokens, toString(estimated_usd) AS estimated_usd, priced, confidence,
  toUnixTimestamp64Milli(window_from) AS window_from_ms, toUnixTimestamp64Milli(window_to) AS window_to_ms,
  state, toUnixTimestamp64Milli(adopted_at) AS adopted_at_ms, baseline_tokens, toString(baseline_usd) AS baseline_usd,
  toUnixTimestamp64Milli(created_at) AS created_at_ms, toUnixTimestamp64Milli(updated_at) AS updated_at_ms
FROM recommendations FINAL`;

function fromRow(r: Row): StoredRecommendation {
  const evidence = JSON.parse(str(r, 'evidence')) as Recommendation['evidence'];
  const adoptedMs = r.adopted_at_ms === null || r.adopted_at_ms === undefined ? null : num(r, 'adopted_at_ms');
  const state = str(r, 'state') as RecommendationState;
  return {
    id: str(r, 'recommendation_id'),
    kind: str(r, 'kind') as RecommendationKind,
    tenant: str(r, 'tenant'),
    subject: JSON.parse(str(r, 'subject')) as Subject,
    title: str(r, 'title'),
    rationale: str(r, 'rationale'),
    evidence,
    estimated_monthly_saving: { tokens: num(r, 'estimated_tokens'), usd: str(r, 'estimated_usd'), priced: num(r, 'priced') === 1 },
    confidence: str(r, 'confidence') as Recommendation['confidence'],
    window: { from: isoOf(num(r, 'window_from_ms')), to: isoOf(num(r, 'window_to_ms')) },
    state,
    adopted_at: adoptedMs === null ? null : isoOf(adoptedMs),
    baseline: state === 'adopted' ? { tokens: num(r, 'baseline_tokens'), usd: str(r, 'baseline_usd') } : null,
    created_at: isoOf(num(r, 'created_at_ms')),
    updated_at: isoOf(num(r, 'updated_at_ms')),
  };
}

function toRow(
  rec: Recommendation,
  s: {
    state: RecommendationState;
    adoptedMs: number | null;
    baseline: { tokens: number; usd: string } | null;
    createdMs: number;
    updatedMs: number;
  },
): Record<string, unknown> {
  return {
    tenant: rec.tenant,
    recommendation_id: rec.id,
    kind: rec.kind,
    subject: JSON.stringify(rec.subject),
    title: rec.title,
    rationale: rec.rationale,
    evidence: JSON.stringify(rec.evidence),
    estimated_tokens: rec.estimated_monthly_saving.tokens,
    estimated_usd: rec.estimated_monthly_saving.usd,
    priced: rec.estimated_monthly_saving.priced ? 1 : 0,
    confidence: rec.confidence,
    window_from: chTime(Date.parse(rec.window.from)),
    window_to: chTime(Date.parse(rec.window.to)),
    state: s.state,
    adopted_at: s.adoptedMs === null ? null : chTime(s.adoptedMs),
    baseline_tokens: s.baseline?.tokens ?? 0,
    baseline_usd: s.baseline?.usd ?? '0',
    created_at: chTime(s.createdMs),
    updated_at: chTime(s.updatedMs),
  };
}

/**
 * Insert row versions. The dedup token names exactly these versions, so a retried insert is a
 * no-op. TRICKY: it must always be set: the embedded engine applies `clickhouse_settings` as `SET`
 * on its session, so an insert without its own token would reuse the previous insert's token and
 * be dropped as a duplicate.
 */
async function insertRows(client: ClickHouseClient, rows: Record<string, unknown>[]): Promise<void> {
  if (rows.length === 0) return;
  const token = createHash('sha256');
  for (const r of rows) token.update(`${r.tenant}\u0000${r.recommendation_id}\u0000${r.updated_at}\u0000${r.state}\n`);
  await client.insert({
    table: 'recommendations',
    values: rows,
    format: 'JSONEachRow',
    clickhouse_settings: { insert_deduplication_token: token.digest('hex') },
  });
}

/**
 * The stored recommendations of a tenant (all of them, or those with `ids`), ranked by estimated
 * monthly USD saving, then tokens, then id.
 */
export async function listRecommendations(
  client: ClickHouseClient,
  tenant: string,
  opts: { ids?: readonly string[]; states?: readonly RecommendationState[] } = {},
): Promise<StoredRecommendation[]> {
  const where = ['tenant = {tenant:String}'];
  const params: Record<string, unknown> = { tenant };
  if (opts.ids) {
    where.push('recommendation_id IN {ids:Array(String)}');
    params.ids = opts.ids;
  }
  if (opts.states) {
    where.push('state IN {states:Array(String)}');
    params.states = opts.states;
  }
  const rows = await queryRows(client, {
    query: `${SELECT_STORED} WHERE ${where.join(' AND ')} ORDER BY estimated_usd DESC, estimated_tokens DESC, recommendation_id`,
    query_params: params,
  });
  return rows.map(fromRow);
}

/**
 * Store freshly computed recommendations at `nowMs` (epoch ms). A new id is stored open; an open
 * one is refreshed (new estimate, evidence and window; `created_at` kept); an adopted or dismissed
 * one is left as it is. All of them must belong to one tenant.
 * @returns how many rows were written and how many were kept because their state is not open.
 * @throws RangeError when the recommendations mix tenants.
 */
export async function saveRecommendations(
  client: ClickHouseClient,
  recs: readonly Recommendation[],
  nowMs: number,
): Promise<{ written: number; kept: number }> {
  if (recs.length === 0) return { written: 0, kept: 0 };
  const tenant = (recs[0] as Recommendation).tenant;
  const other = recs.find((r) => r.tenant !== tenant);
  if (other) throw new RangeError(`recs: all must have one tenant, got ${JSON.stringify(tenant)} and ${JSON.stringify(other.tenant)}`);
  const existing = new Map((await listRecommendations(client, tenant, { ids: recs.map((r) => r.id) })).map((s) => [s.id, s]));
  const rows: Record<string, unknown>[] = [];
  let kept = 0;
  for (const rec of recs) {
    const prev = existing.get(rec.id);
    if (prev && prev.state !== 'open') {
      kept++;
      continue;
    }
    const createdMs = prev ? Date.parse(prev.created_at) : nowMs;
    // A later version than the stored one, even when the clock says otherwise.
    const updatedMs = prev ? Math.max(nowMs, Date.parse(prev.updated_at) + 1) : nowMs;
    rows.push(toRow(rec, { state: 'open', adoptedMs: null, baseline: null, createdMs, updatedMs }));
  }
  await insertRows(client, rows);
  return { written: rows.length, kept };
}

/**
 * Move a stored recommendation to `state` at `atMs` (epoch ms). Adopting records `adopted_at` and
 * copies the current estimate into the baseline; leaving `adopted` clears them. Setting the state
 * it already has changes nothing.
 * @returns the stored recommendation after the change.
 * @throws RangeError for a state other than open | adopted | dismissed;
 *   RecommendationNotFoundError when the id is not stored for the tenant.
 */
export async function setRecommendationState(
  client: ClickHouseClient,
  tenant: string,
  id: string,
  state: RecommendationState,
  atMs: number,
): Promise<StoredRecommendation> {
  if (!RECOMMENDATION_STATES.includes(state))
    throw new RangeError(`state: must be one of ${RECOMMENDATION_STATES.join(', ')}, got ${JSON.stringify(state)}`);
  if (!Number.isSafeInteger(atMs) || atMs < 0) throw new RangeError(`atMs: must be a whole number of epoch ms >= 0, got ${atMs}`);
  const [prev] = await listRecommendations(client, tenant, { ids: [id] });
  if (!prev) throw new RecommendationNotFoundError(tenant, id);
  if (prev.state === state) return prev;
  const updatedMs = Math.max(atMs, Date.parse(prev.updated_at) + 1);
  const adopted = state === 'adopted';
  const est = prev.estimated_monthly_saving;
  await insertRows(client, [
    toRow(prev, {
      state,
      adoptedMs: adopted ? atMs : null,
      baseline: adopted ? { tokens: est.tokens, usd: est.usd } : null,
      createdMs: Date.parse(prev.created_at),
      updatedMs,
    }),
  ]);
  const [after] = await listRecommendations(client, tenant, { ids: [id] });
  return after as StoredRecommendation;
}

/** The measured effect of one adopted recommendation over one report week. USD are exact decimal strings. */
export interface AdoptionMeasure {
  id: string;
  kind: RecommendationKind;
  subject: Subject;
  adopted_at: string;
  /** Part of the week after adoption that was measured, [from, to) RFC 3339 UTC. */
  measured: { from: string; to: string };
  /** The monthly estimate at adoption. */
  estimated_usd: string;
  estimated_tokens: number;
  /** Waste still measured by the evidence query, per 30 days. Null when unpriced. */
  remaining_usd: string | null;
  remaining_tokens: number;
  /** estimated - remaining: the saving that materialised, per 30 days. Null when unpriced. */
  actual_usd: string | null;
  actual_tokens: number;
  /** actual / estimated (USD; tokens when unpriced); null when the estimate is 0. */
  ratio: number | null;
}

/**
 * Measure every adopted recommendation of `tenant` over the report week [weekFromMs, weekToMs)
 * (epoch ms): its evidence query is re-run over [max(adopted_at, weekFromMs), weekToMs) and
 * compared with the baseline (module doc). Recommendations adopted at or after `weekToMs` are
 * left out. `prices` prices the remaining waste (as `recommend` does, at the end of that range).
 * @throws RangeError when weekFromMs >= weekToMs.
 */
export async function measureAdopted(
  client: ClickHouseClient,
  tenant: string,
  weekFromMs: number,
  weekToMs: number,
  prices: PriceTable,
): Promise<AdoptionMeasure[]> {
  if (!(weekFromMs < weekToMs)) throw new RangeError(`weekFromMs: must be before weekToMs (${weekFromMs} >= ${weekToMs})`);
  const out: AdoptionMeasure[] = [];
  for (const rec of await listRecommendations(client, tenant, { states: ['adopted'] })) {
    if (!RECOMMENDATION_KINDS.includes(rec.kind) || rec.adopted_at === null || rec.baseline === null) continue;
    const from = Math.max(Date.parse(rec.adopted_at), weekFromMs);
    if (from >= weekToMs) continue;
    const rule = RULES[rec.kind];
    const figures: Figures = rec.evidence.figures;
    const params = { ...rec.evidence.params, ...rule.timeParams(from, weekToMs), ...rule.measureParams?.(figures) };
    const rows = await queryRows(client, { query: rec.evidence.query, query_params: params });
    const ctx = { tenant, fromMs: from, toMs: weekToMs, prices, candidates: [], thresholds: DEFAULT_THRESHOLDS };
    const remaining = perMonth(rule.measure(rows, figures, ctx), rule.measuredMs(Number(params.from_ms), Number(params.to_ms)));
    const baseline = rec.baseline;
    const priced = rec.estimated_monthly_saving.priced && remaining.priced;
    const actualUsd = priced ? new Decimal(baseline.usd).sub(remaining.usd) : null;
    const actualTokens = baseline.tokens - remaining.tokens;
    let ratio: number | null = null;
    if (actualUsd !== null && !new Decimal(baseline.usd).isZero()) ratio = actualUsd.div(baseline.usd).toNumber();
    else if (actualUsd === null && baseline.tokens !== 0) ratio = actualTokens / baseline.tokens;
    out.push({
      id: rec.id,
      kind: rec.kind,
      subject: rec.subject,
      adopted_at: rec.adopted_at,
      measured: { from: isoOf(from), to: isoOf(weekToMs) },
      estimated_usd: baseline.usd,
      estimated_tokens: baseline.tokens,
      remaining_usd: priced ? remaining.usd : null,
      remaining_tokens: remaining.tokens,
      actual_usd: actualUsd === null ? null : actualUsd.toFixed(),
      actual_tokens: actualTokens,
      ratio,
    });
  }
  return out;
}
