/**
 * Shapes and shared arithmetic of the optimisation recommendations (issue 6; SPEC.md sections 1
 * and 7; the brief's "请求优化策略矩阵" and "长期优化建议"). Each rule module in this folder turns the
 * rows of one ClickHouse query into findings; `index.ts` turns findings into `Recommendation`s.
 *
 * Conventions shared by every rule (docs/recommendations.md explains each rule):
 * - Money is priced at the BASE list price in force at the end of the range (`toMs - 1`) from the
 *   price table (long-context tiers are not applied; reasoning tokens are priced as output), so a
 *   saving says what the next month would cost at today's prices. USD is exact decimal arithmetic.
 * - Saving per month = saving measured over the measured period x (30 days / that period), in
 *   tokens rounded half up to a whole token and USD rounded half up to 1e-6 USD.
 * - A model absent from the price table has `priced: false` and `usd: "0"` (unknown, not free).
 */
import { createHash } from 'node:crypto';
import { Decimal as DecimalJs } from 'decimal.js';
import type { ListPrice, PriceTable } from '../../domain/pricing.ts';
import type { RoutingCandidate } from '../../domain/routing.ts';
import type { BuiltQuery } from '../../storage/queries/usage-summary.ts';

/** Exact decimals for USD: 40 significant digits, as domain/pricing.ts. */
export const Decimal = DecimalJs.clone({ precision: 40, rounding: DecimalJs.ROUND_HALF_UP });
export type Decimal = InstanceType<typeof Decimal>;
/** A number, a decimal string or a Decimal. */
export type DecimalValue = DecimalJs.Value;

export const RECOMMENDATION_KINDS = [
  'cache_repeated_prompts',
  'cap_max_tokens',
  'right_size_model',
  'batch_small_calls',
  'trim_prompts',
  'spread_load',
] as const;
export type RecommendationKind = (typeof RECOMMENDATION_KINDS)[number];

export const CONFIDENCES = ['low', 'medium', 'high'] as const;
export type Confidence = (typeof CONFIDENCES)[number];

/** What a recommendation is about. Absent fields are not part of it (an empty task_id is "no task"). */
export interface Subject {
  provider?: string;
  model?: string;
  user_id?: string;
  task_id?: string;
  prompt_hash?: string;
}

/** Figures behind a recommendation: counts, tokens, USD decimal strings, names. */
export type Figures = Record<string, number | string>;

/** One recommendation. Times in `window` are RFC 3339 UTC strings. */
export interface Recommendation {
  /** sha256 hex of tenant, kind and subject (`recommendationId`): stable across runs. */
  id: string;
  kind: RecommendationKind;
  tenant: string;
  subject: Subject;
  title: string;
  /** One or two plain sentences with the numbers. */
  rationale: string;
  /** The query behind it (restricted to the subject), its bound parameters and the figures it gave. */
  evidence: { query: string; params: Record<string, unknown>; figures: Figures };
  /**
   * Per 30 days. `usd` is an exact decimal string; `priced` is false when the model has no list
   * price (then `usd` is "0" and means unknown).
   */
  estimated_monthly_saving: { tokens: number; usd: string; priced: boolean };
  confidence: Confidence;
  /** The range the estimate was measured on, [from, to). */
  window: { from: string; to: string };
}

/** Rule thresholds; the defaults are `DEFAULT_THRESHOLDS` (docs/recommendations.md gives the reasons). */
export interface Thresholds {
  cache: {
    /** Prompt-cache lifetime after last use, ms: 5 min, the default TTL of OpenAI and Anthropic prompt caches. */
    ttlShortMs: number;
    /** Longer lifetime reported beside it, ms: 1 h (Anthropic's extended cache TTL). */
    ttlLongMs: number;
    /** Share of calls that must hit within ttlShortMs, 0..1. */
    minRepeatShare: number;
    /** Calls that must hit within ttlShortMs. */
    minHitCalls: number;
  };
  capMaxTokens: {
    /** Calls of the group (provider, model, task) needed before anything is said. */
    minCalls: number;
    /** Truncations (finish_reason = length) needed: count and share of the group's calls. */
    minTruncatedCalls: number;
    minTruncatedShare: number;
    /** "Far below": output p95 <= this share of the median requested max_tokens. */
    farBelowRatio: number;
    /** Proposed cap = ceil(output p95 x headroomPct / 100). */
    headroomPct: number;
  };
  rightSize: {
    minCalls: number;
    /** Largest share of failed calls (status error or timeout). */
    maxErrorRate: number;
    /** "Short outputs": p95 of output tokens of ok calls at most this. */
    maxOutputP95: number;
    /** The alternative must cost at most this share of the current list-price cost. */
    maxCostRatio: number;
  };
  batch: {
    /** A small call has at most this many input tokens. */
    smallInputTokens: number;
    /** Calls of one task closer than this (ms) belong to the same burst. */
    burstGapMs: number;
    /** Calls a burst needs to count. */
    minBurstCalls: number;
    /** Calls in bursts a (task, provider, model) needs. */
    minCallsInBursts: number;
  };
  trim: {
    /** Mean input tokens per call in the last 7 days over the 7 days before, minus 1. */
    minGrowth: number;
    /** Calls needed in each of the two weeks. */
    minCallsPerWeek: number;
  };
  spread: {
    /** Rejected calls (status rate_limited) in minutes when another candidate had room. */
    minRecoverableCalls: number;
  };
}

export const DEFAULT_THRESHOLDS: Readonly<Thresholds> = Object.freeze({
  cache: { ttlShortMs: 300_000, ttlLongMs: 3_600_000, minRepeatShare: 0.05, minHitCalls: 5 },
  capMaxTokens: { minCalls: 20, minTruncatedCalls: 5, minTruncatedShare: 0.05, farBelowRatio: 0.5, headroomPct: 125 },
  rightSize: { minCalls: 20, maxErrorRate: 0.02, maxOutputP95: 400, maxCostRatio: 0.5 },
  batch: { smallInputTokens: 1_000, burstGapMs: 5_000, minBurstCalls: 5, minCallsInBursts: 20 },
  trim: { minGrowth: 0.2, minCallsPerWeek: 20 },
  spread: { minRecoverableCalls: 10 },
});

export type ThresholdOverrides = { [K in keyof Thresholds]?: Partial<Thresholds[K]> };

/** What every rule is given. Times are epoch ms, UTC, half-open [fromMs, toMs). */
export interface RuleContext {
  tenant: string;
  fromMs: number;
  toMs: number;
  prices: PriceTable;
  /** Routing candidates (config `routing.candidates`); may be empty. */
  candidates: readonly RoutingCandidate[];
  thresholds: Thresholds;
}

/** One row of a rule's query, as JSONEachRow gives it (64-bit integers arrive as strings). */
export type Row = Record<string, unknown>;

/** A saving over a measured period: tokens (may be fractional before scaling) and USD, or null USD when unpriced. */
export interface Saving {
  tokens: Decimal;
  usd: Decimal | null;
}

/** What a rule found for one subject, before scaling and ranking. */
export interface Finding {
  subject: Subject;
  title: string;
  rationale: string;
  figures: Figures;
  /** Saving over the rule's measured period (`RecommendationRule.measuredMs`). */
  saving: Saving;
  /** Calls the saving was measured on (feeds `confidenceOf`). */
  supportCalls: number;
}

/**
 * One recommendation kind. `query` is run once per `recommend` call; the subject-restricted form
 * of the same query is the evidence, and `measure` re-runs it over later weeks (feedback.ts).
 */
export interface RecommendationRule {
  kind: RecommendationKind;
  /** Highest confidence this kind may reach (its estimate rests on an assumption the data cannot check). */
  maxConfidence: Confidence;
  /** The query over the tenant's range, or restricted to one subject. */
  query(ctx: RuleContext, subject?: Subject): BuiltQuery;
  /** The time parameters of the query for the range [fromMs, toMs) (`measure` swaps them in). */
  timeParams(fromMs: number, toMs: number): Record<string, number>;
  /**
   * Length (ms) of the part of the query's range [fromMs, toMs) (its `from_ms`/`to_ms` parameters)
   * that the saving is measured over: the whole range, except for trim_prompts.
   */
  measuredMs(fromMs: number, toMs: number): number;
  /** Pure: the findings that pass the thresholds. */
  evaluate(rows: readonly Row[], ctx: RuleContext): Finding[];
  /**
   * Pure: the waste the recommendation targets, in rows of its evidence query re-run over another
   * range, with no threshold applied (0 when the change was made). `figures` are the stored ones.
   */
  measure(rows: readonly Row[], figures: Figures, ctx: RuleContext): Saving;
  /** Parameters to set when `measure` re-runs the evidence query (e.g. the proposed cap, kept fixed). */
  measureParams?(figures: Figures): Record<string, unknown>;
}

/** The sum of savings; USD is null (unknown) as soon as one part is. */
export function sumSavings(parts: Iterable<Saving>): Saving {
  let tokens = new Decimal(0);
  let usd: Decimal | null = new Decimal(0);
  for (const p of parts) {
    tokens = tokens.add(p.tokens);
    usd = usd === null || p.usd === null ? null : usd.add(p.usd);
  }
  return { tokens, usd };
}

/** One month for the monthly scaling: 30 days in ms. */
export const MONTH_MS = 30 * 86_400_000;
export const DAY_MS = 86_400_000;
export const WEEK_MS = 7 * DAY_MS;

/** sha256 hex of tenant, kind and the subject's fields in a fixed order: the same finding, the same id. */
export function recommendationId(tenant: string, kind: RecommendationKind, subject: Subject): string {
  const keys = ['provider', 'model', 'user_id', 'task_id', 'prompt_hash'] as const;
  const parts = keys.filter((k) => subject[k] !== undefined).map((k) => [k, subject[k]]);
  return createHash('sha256')
    .update(JSON.stringify([tenant, kind, parts]))
    .digest('hex');
}

/**
 * Scale a saving measured over `measuredMs` to 30 days: tokens rounded half up to a whole token,
 * USD rounded half up to 1e-6 USD as a plain decimal string.
 * @throws RangeError when measuredMs is not a positive number.
 */
export function perMonth(saving: Saving, measuredMs: number): { tokens: number; usd: string; priced: boolean } {
  if (!(measuredMs > 0)) throw new RangeError(`measuredMs: must be > 0, got ${measuredMs}`);
  // Multiply before dividing: exact whenever the result is a whole token / a 1e-12 USD multiple.
  const scale = (x: Decimal) => x.mul(MONTH_MS).div(measuredMs);
  return {
    tokens: scale(saving.tokens).toDecimalPlaces(0).toNumber(),
    usd: saving.usd === null ? '0' : scale(saving.usd).toDecimalPlaces(6).toFixed(),
    priced: saving.usd !== null,
  };
}

/** UTC days with calls a finding needs (with enough calls) to be `high`: a working week. */
export const HIGH_CONFIDENCE_DAYS = 5;

/**
 * Confidence rule, the same for every kind:
 * - high: the saving rests on >= 1,000 calls AND the tenant has calls on >= 5 distinct UTC days of
 *   the measured range (a working week: the estimate has seen a weekly cycle, not one busy hour);
 * - medium: >= 100 calls;
 * - low: fewer;
 * then lowered to the kind's `maxConfidence` (right-sizing and batching assume what the data
 * cannot show: answer quality on the other model, the share of a prompt that calls have in common).
 */
export function confidenceOf(supportCalls: number, daysWithCalls: number, max: Confidence): Confidence {
  const base: Confidence = supportCalls >= 1_000 && daysWithCalls >= HIGH_CONFIDENCE_DAYS ? 'high' : supportCalls >= 100 ? 'medium' : 'low';
  return CONFIDENCES.indexOf(base) <= CONFIDENCES.indexOf(max) ? base : max;
}

/** The base list price of (provider, model) at the end of the range, or undefined when unpriced. */
export function priceAtEnd(ctx: RuleContext, provider: string, model: string): ListPrice | undefined {
  return ctx.prices.listPrice(provider, model, ctx.toMs - 1);
}

/** Token sums to price: input not served from cache, cached input, output (reasoning included). */
export interface TokenSums {
  uncachedInput: DecimalValue;
  cachedInput: DecimalValue;
  output: DecimalValue;
}

/** USD of token sums at a list price (USD per 1M tokens): uncached x in + cached x cached + output x out. */
export function usdAt(price: ListPrice, t: TokenSums): Decimal {
  return new Decimal(t.uncachedInput)
    .mul(price.input_per_1m)
    .add(new Decimal(t.cachedInput).mul(price.cached_input_per_1m))
    .add(new Decimal(t.output).mul(price.output_per_1m))
    .div(1_000_000);
}

/** A count from a JSONEachRow cell (UInt64 arrives as a string). @throws TypeError naming the column when it is not a number. */
export function num(row: Row, column: string): number {
  const v = row[column];
  const n = typeof v === 'number' ? v : typeof v === 'string' && v !== '' ? Number(v) : Number.NaN;
  if (!Number.isFinite(n)) throw new TypeError(`query row: column ${column} is not a number: ${JSON.stringify(v)}`);
  return n;
}

/** A string cell. */
export function str(row: Row, column: string): string {
  const v = row[column];
  return v === null || v === undefined ? '' : String(v);
}

/** The number of distinct UTC days with calls of the tenant in [from_ms, to_ms) (feeds `confidenceOf`). */
export function daysWithCallsQuery(tenant: string, fromMs: number, toMs: number): BuiltQuery {
  return {
    query: `SELECT uniqExact(toDate(timestamp, 'UTC')) AS days FROM usage_events WHERE ${TENANT_RANGE}`,
    query_params: { tenant, from_ms: fromMs, to_ms: toMs },
  };
}

/** The filter every rule starts from: the tenant and the half-open range on usage_events.timestamp. */
export const TENANT_RANGE =
  'tenant = {tenant:String} AND timestamp >= fromUnixTimestamp64Milli({from_ms:Int64}) AND timestamp < fromUnixTimestamp64Milli({to_ms:Int64})';

/**
 * ` AND col = {s_field:String}` for each subject field the rule keys on, with its parameters.
 * `columns` maps a subject field to the column (or expression) it filters.
 */
export function subjectFilter(
  subject: Subject | undefined,
  columns: Partial<Record<keyof Subject, string>>,
): { sql: string; params: Record<string, string> } {
  if (!subject) return { sql: '', params: {} };
  let sql = '';
  const params: Record<string, string> = {};
  for (const [field, column] of Object.entries(columns) as Array<[keyof Subject, string]>) {
    const value = subject[field];
    if (value === undefined) continue;
    sql += ` AND ${column} = {s_${field}:String}`;
    params[`s_${field}`] = value;
  }
  return { sql, params };
}

/** "openai/gpt-4o", plus " task t1" / " user u1" when the subject has them: for titles and tables. */
export function subjectLabel(s: Subject): string {
  const parts: string[] = [];
  if (s.provider !== undefined || s.model !== undefined) parts.push(`${s.provider ?? '*'}/${s.model ?? '*'}`);
  if (s.task_id !== undefined) parts.push(s.task_id === '' ? '(no task)' : `task ${s.task_id}`);
  if (s.user_id !== undefined) parts.push(`user ${s.user_id}`);
  if (s.prompt_hash !== undefined) parts.push(`prompt ${s.prompt_hash}`);
  return parts.join(' ');
}

/** A share 0..1 as a percentage with one decimal ("12.5%"). */
export function pct(share: number): string {
  return `${(share * 100).toFixed(1)}%`;
}

/** USD for sentences: "$12.34" (2 decimals, or 6 below one cent), or "USD unknown" (unpriced model). */
export function usdText(usd: Decimal | null): string {
  if (usd === null) return 'USD unknown';
  return usd.gte(0.01) || usd.isZero() ? `$${usd.toFixed(2)}` : `$${usd.toFixed(6)}`;
}

/** "1 burst", "3 bursts": a count with thousands separators and its noun. */
export function plural(n: number, noun: string): string {
  return `${n.toLocaleString('en-US')} ${noun}${n === 1 ? '' : 's'}`;
}

/** " ($0.05)" for sentences, or "" when unpriced (the estimate's sentence says USD is unknown). */
export function usdParen(usd: Decimal | null): string {
  return usd === null ? '' : ` (${usdText(usd)})`;
}

/** Whole tokens for sentences, with thousands separators. */
export function tokensText(tokens: DecimalValue): string {
  return new Decimal(tokens).toDecimalPlaces(0).toNumber().toLocaleString('en-US');
}
