/**
 * The recommendations engine (issue 6): one rule per kind, registered in `RULES`, each one query
 * over usage_events for one tenant and range. `recommend` runs them and returns the findings as
 * ranked `Recommendation`s. The rules, their thresholds, formulas and the confidence rule are
 * documented in docs/recommendations.md and in each rule module.
 */
import type { PriceTable } from '../../domain/pricing.ts';
import type { RoutingCandidate } from '../../domain/routing.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import {
  confidenceOf,
  DEFAULT_THRESHOLDS,
  Decimal,
  daysWithCallsQuery,
  perMonth,
  RECOMMENDATION_KINDS,
  type Recommendation,
  type RecommendationKind,
  type RuleContext,
  recommendationId,
  type ThresholdOverrides,
  type Thresholds,
  tokensText,
} from './recommendation.ts';
import { queryRows, RULES } from './rules.ts';

export * from './feedback.ts';
export * from './recommendation.ts';
export { queryRows, RULES } from './rules.ts';

export interface RecommendInput {
  /** The tenant (exact, as stored: NFC). */
  tenant: string;
  /** Range start, epoch ms UTC, inclusive. */
  fromMs: number;
  /** Range end, epoch ms UTC, exclusive. trim_prompts reads the 14 days before it, whatever fromMs is. */
  toMs: number;
  /** The price table (config); savings are priced at its base list prices in force at toMs - 1. */
  prices: PriceTable;
  /** Routing candidates (config `routing.candidates`): right-sizing targets and the load-spreading pool. */
  candidates?: readonly RoutingCandidate[];
  /** Overrides of `DEFAULT_THRESHOLDS`, per rule. */
  thresholds?: ThresholdOverrides;
  /** Run only these kinds (default: all). */
  kinds?: readonly RecommendationKind[];
}

/** The thresholds with overrides applied. @throws RangeError naming a threshold that is not a finite number >= 0. */
export function resolveThresholds(overrides: ThresholdOverrides = {}): Thresholds {
  const out = {} as Record<string, Record<string, number>>;
  for (const [rule, defaults] of Object.entries(DEFAULT_THRESHOLDS)) {
    out[rule] = { ...defaults, ...(overrides as Record<string, Record<string, number> | undefined>)[rule] };
    for (const [name, v] of Object.entries(out[rule] as Record<string, number>)) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
        throw new RangeError(`thresholds.${rule}.${name}: must be a finite number >= 0, got ${JSON.stringify(v)}`);
    }
  }
  return out as unknown as Thresholds;
}

function checkInput(input: RecommendInput): void {
  if (typeof input.tenant !== 'string' || input.tenant === '') throw new TypeError('tenant: must be a non-empty string');
  for (const f of ['fromMs', 'toMs'] as const) {
    if (!Number.isSafeInteger(input[f]) || input[f] < 0)
      throw new RangeError(`${f}: must be a whole number of epoch ms >= 0, got ${input[f]}`);
  }
  if (input.fromMs >= input.toMs) throw new RangeError(`fromMs: must be before toMs (${input.fromMs} >= ${input.toMs})`);
  for (const k of input.kinds ?? []) {
    if (!RECOMMENDATION_KINDS.includes(k))
      throw new RangeError(`kinds: unknown kind ${JSON.stringify(k)} (one of ${RECOMMENDATION_KINDS.join(', ')})`);
  }
}

/** Highest USD first, then most tokens, then id (byte order): the order of the weekly report. */
export function byEstimatedSaving(a: Recommendation, b: Recommendation): number {
  const usd = new Decimal(b.estimated_monthly_saving.usd).cmp(a.estimated_monthly_saving.usd);
  if (usd !== 0) return usd;
  const tokens = b.estimated_monthly_saving.tokens - a.estimated_monthly_saving.tokens;
  if (tokens !== 0) return tokens;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * Compute the recommendations of one tenant over [fromMs, toMs), ranked by estimated monthly USD
 * saving (then tokens, then id). Read-only: nothing is stored (see feedback.ts `saveRecommendations`).
 *
 * Signature kept stable for the weekly report:
 *   recommend(client, { tenant, fromMs, toMs, prices, candidates?, thresholds?, kinds? })
 *     -> Promise<Recommendation[]>
 * Each `Recommendation` has a deterministic `id` (sha256 of tenant, kind, subject), the SQL behind
 * it restricted to its subject (`evidence.query` + `evidence.params`) and the figures it gave,
 * `estimated_monthly_saving` = saving measured over the range x 30 days / range length
 * (trim_prompts: over its last 7 days), tokens and exact-decimal USD (`priced: false`: USD unknown),
 * and a `confidence` (`confidenceOf`).
 * @throws TypeError / RangeError naming the bad field (tenant, fromMs, toMs, kinds, thresholds.*);
 *   ClickHouse errors as the client throws them.
 */
export async function recommend(client: ClickHouseClient, input: RecommendInput): Promise<Recommendation[]> {
  checkInput(input);
  const ctx: RuleContext = {
    tenant: input.tenant,
    fromMs: input.fromMs,
    toMs: input.toMs,
    prices: input.prices,
    candidates: input.candidates ?? [],
    thresholds: resolveThresholds(input.thresholds),
  };
  const out: Recommendation[] = [];
  /** Distinct UTC days with calls per measured range, for the confidence rule. */
  const daysWithCalls = new Map<string, number>();
  for (const kind of input.kinds ?? RECOMMENDATION_KINDS) {
    const rule = RULES[kind];
    const q = rule.query(ctx);
    const rows = await queryRows(client, q);
    const from = Number(q.query_params.from_ms);
    const to = Number(q.query_params.to_ms);
    const measuredMs = rule.measuredMs(from, to);
    const findings = rule.evaluate(rows, ctx);
    if (findings.length === 0) continue;
    const daysKey = `${to - measuredMs}-${to}`;
    let days = daysWithCalls.get(daysKey);
    if (days === undefined) {
      const [row] = await queryRows(client, daysWithCallsQuery(ctx.tenant, to - measuredMs, to));
      days = Number(row?.days ?? 0);
      daysWithCalls.set(daysKey, days);
    }
    for (const f of findings) {
      const evidence = rule.query(ctx, f.subject);
      const monthly = perMonth(f.saving, measuredMs);
      const usd = `$${new Decimal(monthly.usd).toFixed(2)}`;
      const amount = !monthly.priced
        ? `${tokensText(monthly.tokens)} tokens (USD unknown: the model has no list price)`
        : monthly.tokens === 0
          ? usd
          : `${tokensText(monthly.tokens)} tokens and ${usd}`;
      out.push({
        id: recommendationId(ctx.tenant, kind, f.subject),
        kind,
        tenant: ctx.tenant,
        subject: f.subject,
        title: f.title,
        rationale: `${f.rationale} Estimated saving: ${amount} per 30 days.`,
        evidence: { query: evidence.query, params: evidence.query_params, figures: f.figures },
        estimated_monthly_saving: monthly,
        confidence: confidenceOf(f.supportCalls, days, rule.maxConfidence),
        window: { from: new Date(from).toISOString(), to: new Date(to).toISOString() },
      });
    }
  }
  return out.sort(byEstimatedSaving);
}
