/**
 * Routing decision (SPEC.md section 4): pick a provider/model for a request from the configured
 * candidates and their live aggregates.
 *
 * Two steps, so a lookup costs microseconds:
 * - `compileSnapshot` runs each time the live aggregates are refreshed from ClickHouse. It checks
 *   the config, turns capability and compliance tags into bit masks, works out everything that does
 *   not depend on the request (live exclusions, the stability score, latency), and allocates the
 *   scratch space `decide` needs.
 * - `decide` applies the hard filters, normalises the request-dependent criteria over the
 *   candidates still in play, and ranks them. It allocates only what it returns.
 *
 * Hard filters, in this order. A candidate is reported with the first reason that applies.
 *   1. `compliance_mismatch`: it lacks a tag in `required_compliance`.
 *   2. `missing_capability`: it lacks a tag in `required_capabilities`.
 *   3. `quota_exhausted`: `quota_exhausted`, or `quota_remaining_ratio` <= 0.
 *   4. `breaker_open`: the breaker is open and the request is low priority. SPEC section 4 and the
 *      brief ("当累计消耗达到日配额80%时触发熔断"): crossing the soft threshold of a daily budget
 *      opens the breaker for low-priority traffic; normal and high priority still pass.
 *   5. `error_rate_over_limit`: `error_rate` > `maxErrorRate`, counted only from `minRequests` requests up.
 * The request's own filters (1-2) come before the live ones (3-5). A candidate that could never
 * serve this request is therefore reported as such, and it never feeds `retry_after_s`.
 *
 * Ranking of the candidates left, in this order:
 *   1. Reserve tier (the brief's `TOKEN_THRESHOLD` switch): a candidate whose remaining tokens in an
 *      applicable tokens quota are below its `min_remaining_tokens` ranks after every candidate that
 *      is not. It is demoted, not excluded, so it still serves when nothing else can.
 *   2. For a `simple` task while some candidate in play is past a soft threshold (the budget is
 *      getting tight): the cheaper estimated cost first, then the score. The brief: "将简单任务分流至
 *      轻量级模型" (send simple tasks to lightweight models).
 *   3. Otherwise the higher score first, then the cheaper estimated cost.
 *   4. The smaller id.
 *
 * The weights come from the brief's platform-selection matrix: performance 30%, cost 25%,
 * features 20%, stability 15%, compliance 10%. They are divided by their sum, so a score lies in [0, 1].
 * Each criterion is scaled to [0, 1] (1 = best), as the `CriterionScores` JSDoc explains.
 * Ties (scores within 1e-12) go to the cheaper estimated cost, then to the smaller id, so the
 * ranking does not depend on the order of the candidates or of the live map.
 */

/** A provider/model pair that requests can be routed to, as written in config. Tags are matched exactly (case-sensitive). */
export interface RoutingCandidate {
  /** Unique among the candidates. */
  id: string;
  provider: string;
  model: string;
  /** Feature tags, e.g. `vision`, `tools`, `json_mode`, `long_context`. */
  capabilities: string[];
  /** Compliance tags, e.g. `gdpr`, `eu_residency`, `soc2`, `no_training`. */
  compliance: string[];
  /** USD per 1M tokens. */
  price: { input_per_1m: number; output_per_1m: number };
  /**
   * The brief's `TOKEN_THRESHOLD`: when fewer tokens than this are left in a tokens quota that
   * applies to the candidate, it is ranked after the candidates above their threshold. Absent: no reserve.
   */
  min_remaining_tokens?: number;
}

/** Live state of one candidate, read from the ClickHouse aggregates over the recent window. */
export interface CandidateLive {
  /** p95 latency in ms; null when no calls were recorded. */
  p95_latency_ms: number | null;
  /** Share of failed calls, 0..1. */
  error_rate: number;
  /** Calls behind `error_rate` and `p95_latency_ms`. */
  requests: number;
  /** Share of the quota still available, 0..1. Null means no quota applies. */
  quota_remaining_ratio: number | null;
  quota_exhausted: boolean;
  /** Open for low-priority traffic only: a daily budget that applies is past its soft threshold. */
  breaker_open: boolean;
  /** Seconds until the quota window resets or the breaker closes, when known. */
  retry_after_s: number | null;
  /** Smallest tokens left among the tokens quotas that apply; null or absent when none applies. */
  remaining_tokens?: number | null;
  /** Whether any quota that applies is at or past its soft threshold. Default false. */
  quota_soft?: boolean;
}

/** Criterion weights. Any non-negative values with a positive sum; they are divided by their sum. */
export interface RoutingWeights {
  performance: number;
  cost: number;
  features: number;
  stability: number;
  compliance: number;
}

/** The brief's platform-selection matrix ("平台选择标准矩阵"): 30 / 25 / 20 / 15 / 10 %. */
export const DEFAULT_ROUTING_WEIGHTS: Readonly<RoutingWeights> = Object.freeze({
  performance: 0.3,
  cost: 0.25,
  features: 0.2,
  stability: 0.15,
  compliance: 0.1,
});

/** Task classes of a routing request (issue 4); only `simple` changes the ranking. */
export const TASK_CLASSES = ['simple', 'standard', 'complex'] as const;
export type TaskClass = (typeof TASK_CLASSES)[number];
/** Request priorities; only `low` is stopped by an open breaker. */
export const PRIORITIES = ['low', 'normal', 'high'] as const;
export type Priority = (typeof PRIORITIES)[number];

export interface RoutingRequest {
  tenant: string;
  /**
   * `simple` tasks go to the cheapest candidate first while a quota is past its soft threshold.
   * Map a class to capabilities upstream (required or preferred tags) when it needs features.
   */
  task_class?: TaskClass;
  /** Default `normal`. `low` traffic is excluded by an open breaker. */
  priority?: Priority;
  /** Used to estimate the cost. A missing, negative or non-finite value falls back to the snapshot default. */
  estimated_input_tokens?: number;
  estimated_output_tokens?: number;
  /** Hard filter: a candidate lacking any of these is excluded (`missing_capability`). */
  required_capabilities?: string[];
  /** Hard filter: a candidate lacking any of these is excluded (`compliance_mismatch`). */
  required_compliance?: string[];
  /** Soft: when given, the features score is the share of these the candidate has (see `CriterionScores.features`). */
  preferred_capabilities?: string[];
}

export interface SnapshotOptions {
  /** Exclude a candidate whose recent error rate is above this (0..1]. Default 0.2. */
  maxErrorRate?: number;
  /** Below this many recent requests, the error rate is too noisy to judge: no exclusion, neutral stability. Default 20. */
  minRequests?: number;
  /**
   * When less than this share of its quota is left, a candidate's stability is scaled down
   * linearly, reaching 0 when nothing is left. Default 0.2, the other side of the SPEC's 80% soft threshold.
   */
  quotaSoftRemaining?: number;
  /** Token estimate used when a request gives none (3:1 input:output, the usual blended-price mix). Defaults 3000 / 1000. */
  defaultInputTokens?: number;
  defaultOutputTokens?: number;
}

export type ExclusionReason = 'quota_exhausted' | 'breaker_open' | 'compliance_mismatch' | 'missing_capability' | 'error_rate_over_limit';

export interface Exclusion {
  readonly id: string;
  readonly reason: ExclusionReason;
  readonly detail: string;
}

/**
 * Each criterion scaled to [0, 1], 1 being the best. The criteria that are relative (performance,
 * cost, features without preferences, compliance) are measured against the candidates that pass
 * this request's hard filters. The best candidate still in play gets 1, so the weights keep their
 * meaning even when the overall best was filtered out.
 */
export interface CriterionScores {
  /**
   * best_p95 / p95: the lowest p95 latency among the candidates in play, over this candidate's
   * p95. A candidate with no latency data (null) gets 0.5. If none has data, all get 0.5.
   * Latencies under 1 ms count as 1 ms.
   */
  performance: number;
  /**
   * cheapest / cost, where cost = input_tokens x input price + output_tokens x output price for this
   * request's token estimate. A free candidate gets 1. When the cheapest is free, the paid ones get 0.
   */
  cost: number;
  /**
   * With `preferred_capabilities`: the share of the preferred tags the candidate has. Tags that no
   * candidate has are left out, because a wish nobody can meet should not lower everyone's score.
   * Without them: capability count / the largest count among the candidates in play (breadth of
   * coverage, as in the brief's "功能覆盖"). It is 1 when nobody has any tags. Required capabilities
   * are a hard filter, so a candidate in play has all of them and they cannot tell candidates apart.
   */
  features: number;
  /**
   * error_score x quota_factor.
   * error_score = 1 - error_rate / maxErrorRate. It is in [0, 1] for every candidate that passed
   * the error-rate filter. It is 0.5 (unknown) when there are fewer than `minRequests` requests.
   * quota_factor = min(1, quota_remaining_ratio / quotaSoftRemaining). It is 1 when no quota applies.
   * A candidate that is about to run out is a worse bet even if it is healthy now.
   */
  stability: number;
  /**
   * Compliance tag count / the largest count among the candidates in play. Holding more
   * certifications scores higher. It is 1 when nobody has any tags. Required compliance tags are a
   * hard filter.
   */
  compliance: number;
}

export interface RankedCandidate {
  id: string;
  provider: string;
  model: string;
  /** Weighted sum of `breakdown` with the normalised weights, in [0, 1]. */
  score: number;
  breakdown: CriterionScores;
  /** Estimated USD cost of this request on this candidate; it decides a tie on score. */
  estimated_cost_usd: number;
  /** From the live state: null when no quota applies. */
  quota_remaining_ratio: number | null;
  /** Tokens left in the tightest tokens quota that applies; null when none applies. */
  remaining_tokens: number | null;
  /** True when `remaining_tokens` is below the candidate's `min_remaining_tokens` (ranked in the reserve tier). */
  below_min_remaining: boolean;
}

export interface RoutingDecision {
  chosen: RankedCandidate | null;
  /** The remaining allowed candidates, best first. */
  fallbacks: RankedCandidate[];
  /** One entry per excluded candidate, in candidate order. Live exclusions are shared frozen objects. */
  excluded: Exclusion[];
  /**
   * When nothing is allowed: the smallest known `retry_after_s` among the candidates excluded
   * only for `quota_exhausted` or `breaker_open`, the time-bound reasons. Otherwise null.
   */
  retry_after_s: number | null;
}

export class RoutingConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid routing config:\n  ${problems.join('\n  ')}`);
    this.name = 'RoutingConfigError';
  }
}

const TIE_EPSILON = 1e-12;
const UNKNOWN_SCORE = 0.5;

/** Tag name -> bit index, and how many 32-bit words a mask over all tags takes. */
class TagSpace {
  readonly index = new Map<string, number>();
  words = 1;

  constructor(lists: readonly (readonly string[])[]) {
    for (const list of lists) for (const tag of list) if (!this.index.has(tag)) this.index.set(tag, this.index.size);
    this.words = Math.max(1, Math.ceil(this.index.size / 32));
  }

  /** Writes the mask of `tags` into `out` at `offset`. Returns the number of distinct tags set. */
  fill(tags: readonly string[], out: Uint32Array, offset: number): number {
    let count = 0;
    for (const tag of tags) {
      const bit = this.index.get(tag)!;
      const word = offset + (bit >>> 5);
      const flag = 1 << (bit & 31);
      if ((out[word]! & flag) === 0) count++;
      out[word] = out[word]! | flag;
    }
    return count;
  }
}

function popcount32(x: number): number {
  let v = x - ((x >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/**
 * The precompiled, immutable routing state for one refresh of the live aggregates. Build it with
 * `compileSnapshot` and query it with `decide`. A snapshot owns scratch buffers, so one snapshot
 * serves one `decide` at a time. `decide` is synchronous, so this always holds in a single JS thread.
 */
export class RoutingSnapshot {
  /** Number of candidates. */
  readonly size: number;
  /** Weights divided by their sum. */
  readonly weights: Readonly<RoutingWeights>;
  readonly options: Readonly<Required<SnapshotOptions>>;

  // Per candidate, index-aligned with `candidates` (sorted by id).
  /** @internal */ readonly candidates: readonly RoutingCandidate[];
  /** @internal */ readonly caps: TagSpace;
  /** @internal */ readonly comps: TagSpace;
  /** @internal */ readonly capMasks: Uint32Array;
  /** @internal */ readonly compMasks: Uint32Array;
  /** @internal */ readonly capCount: Float64Array;
  /** @internal */ readonly compCount: Float64Array;
  /** @internal NaN when unknown; otherwise >= 1. */ readonly p95: Float64Array;
  /** @internal */ readonly stability: Float64Array;
  /** @internal USD per token. */ readonly priceIn: Float64Array;
  /** @internal */ readonly priceOut: Float64Array;
  /** @internal Shared frozen exclusions by live reason, or null when the reason does not apply. */
  readonly quotaOut: readonly (Exclusion | null)[];
  /** @internal */ readonly breakerOut: readonly (Exclusion | null)[];
  /** @internal */ readonly errorOut: readonly (Exclusion | null)[];
  /** @internal 1 when below `min_remaining_tokens`. */ readonly reserve: Uint8Array;
  /** @internal 1 when a quota that applies is past its soft threshold. */ readonly soft: Uint8Array;
  /** @internal */ readonly remainingTokens: readonly (number | null)[];
  /** @internal NaN when unknown. */ readonly retryAfter: Float64Array;
  /** @internal */ readonly quotaRemaining: readonly (number | null)[];

  // Scratch for `decide`, reused across calls.
  /** @internal */ readonly reqCap: Uint32Array;
  /** @internal */ readonly reqComp: Uint32Array;
  /** @internal */ readonly prefCap: Uint32Array;
  /** @internal */ readonly order: Int32Array;
  /** @internal */ readonly cost: Float64Array;
  /** @internal */ readonly total: Float64Array;
  /** @internal */ readonly sPerf: Float64Array;
  /** @internal */ readonly sCost: Float64Array;
  /** @internal */ readonly sFeat: Float64Array;
  /** @internal */ readonly sComp: Float64Array;

  /** @internal Use `compileSnapshot`. */
  constructor(
    candidates: readonly RoutingCandidate[],
    live: ReadonlyMap<string, CandidateLive>,
    weights: Readonly<RoutingWeights>,
    options: Readonly<Required<SnapshotOptions>>,
  ) {
    const n = candidates.length;
    this.size = n;
    this.weights = weights;
    this.options = options;
    this.candidates = candidates;
    this.caps = new TagSpace(candidates.map((c) => c.capabilities));
    this.comps = new TagSpace(candidates.map((c) => c.compliance));
    this.capMasks = new Uint32Array(n * this.caps.words);
    this.compMasks = new Uint32Array(n * this.comps.words);
    this.capCount = new Float64Array(n);
    this.compCount = new Float64Array(n);
    this.p95 = new Float64Array(n);
    this.stability = new Float64Array(n);
    this.priceIn = new Float64Array(n);
    this.priceOut = new Float64Array(n);
    this.retryAfter = new Float64Array(n);
    this.reserve = new Uint8Array(n);
    this.soft = new Uint8Array(n);
    const quotaOut: (Exclusion | null)[] = [];
    const breakerOut: (Exclusion | null)[] = [];
    const errorOut: (Exclusion | null)[] = [];
    const quotaRemaining: (number | null)[] = [];
    const remainingTokens: (number | null)[] = [];

    candidates.forEach((c, i) => {
      this.capCount[i] = this.caps.fill(c.capabilities, this.capMasks, i * this.caps.words);
      this.compCount[i] = this.comps.fill(c.compliance, this.compMasks, i * this.comps.words);
      this.priceIn[i] = c.price.input_per_1m / 1_000_000;
      this.priceOut[i] = c.price.output_per_1m / 1_000_000;

      // Live values come from aggregates: sanitise rather than reject (NaN or out of range -> unknown or clamped).
      const l = live.get(c.id);
      const p95 = l?.p95_latency_ms;
      this.p95[i] = p95 != null && Number.isFinite(p95) && p95 >= 0 ? Math.max(1, p95) : Number.NaN;
      const quota = l?.quota_remaining_ratio;
      const remaining = quota != null && Number.isFinite(quota) ? Math.min(1, Math.max(0, quota)) : null;
      quotaRemaining.push(remaining);
      const retry = l?.retry_after_s;
      this.retryAfter[i] = retry != null && Number.isFinite(retry) && retry >= 0 ? retry : Number.NaN;
      const requests = l?.requests ?? 0;
      const errorRate = l?.error_rate;
      const judged = requests >= options.minRequests && errorRate != null && Number.isFinite(errorRate);
      const rate = judged ? Math.min(1, Math.max(0, errorRate)) : 0;

      const after = Number.isNaN(this.retryAfter[i]!) ? '' : `; retry after ${this.retryAfter[i]} s`;
      const out = (reason: ExclusionReason, detail: string): Exclusion => Object.freeze({ id: c.id, reason, detail });
      quotaOut.push(l?.quota_exhausted || remaining === 0 ? out('quota_exhausted', `quota exhausted${after}`) : null);
      breakerOut.push(
        l?.breaker_open
          ? out('breaker_open', `circuit breaker open for low-priority traffic (daily budget past its soft threshold)${after}`)
          : null,
      );
      errorOut.push(
        judged && rate > options.maxErrorRate
          ? out('error_rate_over_limit', `error rate ${rate} over limit ${options.maxErrorRate} (${requests} requests)`)
          : null,
      );
      const tokensLeft = l?.remaining_tokens;
      const left = tokensLeft != null && Number.isFinite(tokensLeft) ? Math.max(0, tokensLeft) : null;
      remainingTokens.push(left);
      this.reserve[i] = left !== null && c.min_remaining_tokens !== undefined && left < c.min_remaining_tokens ? 1 : 0;
      this.soft[i] = l?.quota_soft ? 1 : 0;

      const errorScore = judged ? Math.max(0, 1 - rate / options.maxErrorRate) : UNKNOWN_SCORE;
      const soft = options.quotaSoftRemaining;
      const quotaFactor = remaining === null || soft <= 0 ? 1 : Math.min(1, remaining / soft);
      this.stability[i] = errorScore * quotaFactor;
    });
    this.quotaOut = quotaOut;
    this.breakerOut = breakerOut;
    this.errorOut = errorOut;
    this.quotaRemaining = quotaRemaining;
    this.remainingTokens = remainingTokens;

    this.reqCap = new Uint32Array(this.caps.words);
    this.reqComp = new Uint32Array(this.comps.words);
    this.prefCap = new Uint32Array(this.caps.words);
    this.order = new Int32Array(n);
    this.cost = new Float64Array(n);
    this.total = new Float64Array(n);
    this.sPerf = new Float64Array(n);
    this.sCost = new Float64Array(n);
    this.sFeat = new Float64Array(n);
    this.sComp = new Float64Array(n);
  }
}

function finiteNonNegative(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x) && x >= 0;
}

/**
 * Compile the candidates and one refresh of their live aggregates into a snapshot for `decide`.
 * A candidate with no entry in `live` is eligible, with unknown latency and error rate (each
 * scored 0.5) and no quota. Live entries for unknown ids are ignored.
 * @throws RoutingConfigError listing every problem: duplicate or empty ids, bad prices, bad
 *   weights (negative, non-finite, all zero), options out of range.
 */
export function compileSnapshot(
  candidates: readonly RoutingCandidate[],
  live: ReadonlyMap<string, CandidateLive>,
  weights: Readonly<RoutingWeights> = DEFAULT_ROUTING_WEIGHTS,
  options: SnapshotOptions = {},
): RoutingSnapshot {
  const problems: string[] = [];
  const seen = new Set<string>();
  candidates.forEach((c, i) => {
    const where = `candidates[${i}] (${c.id})`;
    if (!c.id) problems.push(`candidates[${i}].id: must be a non-empty string`);
    else if (seen.has(c.id)) problems.push(`${where}: duplicate id`);
    seen.add(c.id);
    for (const field of ['input_per_1m', 'output_per_1m'] as const)
      if (!finiteNonNegative(c.price?.[field]))
        problems.push(`${where}.price.${field}: must be a finite number >= 0, got ${c.price?.[field]}`);
    if (c.min_remaining_tokens !== undefined && !finiteNonNegative(c.min_remaining_tokens))
      problems.push(`${where}.min_remaining_tokens: must be a finite number >= 0, got ${c.min_remaining_tokens}`);
  });
  const keys = ['performance', 'cost', 'features', 'stability', 'compliance'] as const;
  let sum = 0;
  for (const k of keys) {
    if (!finiteNonNegative(weights[k])) problems.push(`weights.${k}: must be a finite number >= 0, got ${weights[k]}`);
    else sum += weights[k];
  }
  if (problems.every((p) => !p.startsWith('weights.')) && sum <= 0) problems.push('weights: at least one must be > 0');
  const o: Required<SnapshotOptions> = {
    maxErrorRate: options.maxErrorRate ?? 0.2,
    minRequests: options.minRequests ?? 20,
    quotaSoftRemaining: options.quotaSoftRemaining ?? 0.2,
    defaultInputTokens: options.defaultInputTokens ?? 3000,
    defaultOutputTokens: options.defaultOutputTokens ?? 1000,
  };
  if (!(o.maxErrorRate > 0 && o.maxErrorRate <= 1)) problems.push(`options.maxErrorRate: must be in (0, 1], got ${o.maxErrorRate}`);
  if (!finiteNonNegative(o.minRequests)) problems.push(`options.minRequests: must be a finite number >= 0, got ${o.minRequests}`);
  if (!(o.quotaSoftRemaining >= 0 && o.quotaSoftRemaining <= 1))
    problems.push(`options.quotaSoftRemaining: must be in [0, 1], got ${o.quotaSoftRemaining}`);
  if (!finiteNonNegative(o.defaultInputTokens)) problems.push(`options.defaultInputTokens: must be a finite number >= 0`);
  if (!finiteNonNegative(o.defaultOutputTokens)) problems.push(`options.defaultOutputTokens: must be a finite number >= 0`);
  if (problems.length > 0) throw new RoutingConfigError(problems);

  const normalised = Object.freeze({
    performance: weights.performance / sum,
    cost: weights.cost / sum,
    features: weights.features / sum,
    stability: weights.stability / sum,
    compliance: weights.compliance / sum,
  });
  // Sorted by id, so candidate order never shows in the output (exclusions are listed in this order).
  const sorted = [...candidates].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return new RoutingSnapshot(sorted, live, normalised, Object.freeze(o));
}

/**
 * Writes the mask of `tags` into `out`, which is cleared first. Returns false when a tag is
 * unknown to the snapshot, since no candidate can have it.
 */
function requestMask(space: TagSpace, tags: readonly string[] | undefined, out: Uint32Array): boolean {
  out.fill(0);
  if (!tags) return true;
  let known = true;
  for (let t = 0; t < tags.length; t++) {
    const bit = space.index.get(tags[t]!);
    if (bit === undefined) known = false;
    else out[bit >>> 5] = out[bit >>> 5]! | (1 << (bit & 31));
  }
  return known;
}

function hasAll(masks: Uint32Array, offset: number, required: Uint32Array): boolean {
  for (let w = 0; w < required.length; w++) {
    const r = required[w]!;
    if ((masks[offset + w]! & r) !== r) return false;
  }
  return true;
}

/** The tags of `wanted` that candidate `i` lacks, for an exclusion detail. */
function lacking(space: TagSpace, masks: Uint32Array, i: number, wanted: readonly string[]): string {
  const missing: string[] = [];
  for (const tag of wanted) {
    const bit = space.index.get(tag);
    const has = bit !== undefined && (masks[i * space.words + (bit >>> 5)]! & (1 << (bit & 31))) !== 0;
    if (!has && !missing.includes(tag)) missing.push(tag);
  }
  return missing.join(', ');
}

function tokens(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value >= 0 ? value : fallback;
}

/**
 * Whether candidate a ranks before b: outside the reserve tier first; then, with `costFirst`, the
 * cheaper then the higher score, else the higher score then the cheaper; then the smaller id.
 */
function ranksBefore(s: RoutingSnapshot, a: number, b: number, costFirst: boolean): boolean {
  if (s.reserve[a] !== s.reserve[b]) return s.reserve[a]! < s.reserve[b]!;
  const d = s.total[a]! - s.total[b]!;
  const dc = s.cost[a]! - s.cost[b]!;
  if (costFirst && dc !== 0) return dc < 0;
  if (d > TIE_EPSILON) return true;
  if (d < -TIE_EPSILON) return false;
  if (dc !== 0) return dc < 0;
  return s.candidates[a]!.id < s.candidates[b]!.id;
}

function ranked(s: RoutingSnapshot, i: number): RankedCandidate {
  const c = s.candidates[i]!;
  return {
    id: c.id,
    provider: c.provider,
    model: c.model,
    score: s.total[i]!,
    breakdown: {
      performance: s.sPerf[i]!,
      cost: s.sCost[i]!,
      features: s.sFeat[i]!,
      stability: s.stability[i]!,
      compliance: s.sComp[i]!,
    },
    estimated_cost_usd: s.cost[i]!,
    quota_remaining_ratio: s.quotaRemaining[i]!,
    remaining_tokens: s.remainingTokens[i]!,
    below_min_remaining: s.reserve[i] === 1,
  };
}

/**
 * Route one request: apply the hard filters, score the candidates left (see `CriterionScores`),
 * and rank them. Pure: the same snapshot and request always give the same decision.
 * It allocates only the returned decision and the detail strings of request-specific exclusions.
 */
export function decide(s: RoutingSnapshot, request: RoutingRequest): RoutingDecision {
  const n = s.size;
  const capWords = s.caps.words;
  const compWords = s.comps.words;
  const capsKnown = requestMask(s.caps, request.required_capabilities, s.reqCap);
  const compsKnown = requestMask(s.comps, request.required_compliance, s.reqComp);
  requestMask(s.caps, request.preferred_capabilities, s.prefCap);
  let preferred = 0;
  for (let w = 0; w < capWords; w++) preferred += popcount32(s.prefCap[w]!);
  const inTokens = tokens(request.estimated_input_tokens, s.options.defaultInputTokens);
  const outTokens = tokens(request.estimated_output_tokens, s.options.defaultOutputTokens);

  // Pass 1: hard filters; collect survivors and the bests the relative criteria are scaled by.
  const excluded: Exclusion[] = [];
  let m = 0;
  let retryAfter = Number.POSITIVE_INFINITY;
  let minCost = Number.POSITIVE_INFINITY;
  let minP95 = Number.POSITIVE_INFINITY;
  let maxCaps = 0;
  let maxComps = 0;
  let anySoft = false;
  const low = request.priority === 'low';
  for (let i = 0; i < n; i++) {
    if (!compsKnown || !hasAll(s.compMasks, i * compWords, s.reqComp)) {
      const id = s.candidates[i]!.id;
      excluded.push({
        id,
        reason: 'compliance_mismatch',
        detail: `lacks compliance: ${lacking(s.comps, s.compMasks, i, request.required_compliance!)}`,
      });
      continue;
    }
    if (!capsKnown || !hasAll(s.capMasks, i * capWords, s.reqCap)) {
      const id = s.candidates[i]!.id;
      excluded.push({
        id,
        reason: 'missing_capability',
        detail: `lacks capabilities: ${lacking(s.caps, s.capMasks, i, request.required_capabilities!)}`,
      });
      continue;
    }
    const timeBound = s.quotaOut[i] ?? (low ? s.breakerOut[i] : null);
    if (timeBound) {
      excluded.push(timeBound);
      const r = s.retryAfter[i]!;
      if (r < retryAfter) retryAfter = r; // NaN never compares below
      continue;
    }
    const failing = s.errorOut[i];
    if (failing) {
      excluded.push(failing);
      continue;
    }
    if (s.soft[i] === 1) anySoft = true;
    s.order[m++] = i;
    const cost = inTokens * s.priceIn[i]! + outTokens * s.priceOut[i]!;
    s.cost[i] = cost;
    if (cost < minCost) minCost = cost;
    const p95 = s.p95[i]!;
    if (p95 < minP95) minP95 = p95;
    if (s.capCount[i]! > maxCaps) maxCaps = s.capCount[i]!;
    if (s.compCount[i]! > maxComps) maxComps = s.compCount[i]!;
  }

  // Pass 2: scores for the candidates in play.
  const wt = s.weights;
  for (let k = 0; k < m; k++) {
    const i = s.order[k]!;
    const p95 = s.p95[i]!;
    const perf = Number.isNaN(p95) ? UNKNOWN_SCORE : minP95 / p95;
    const cost = s.cost[i]!;
    const costScore = cost <= 0 ? 1 : minCost / cost;
    let feat: number;
    if (preferred > 0) {
      let have = 0;
      for (let w = 0; w < capWords; w++) have += popcount32(s.capMasks[i * capWords + w]! & s.prefCap[w]!);
      feat = have / preferred;
    } else feat = maxCaps === 0 ? 1 : s.capCount[i]! / maxCaps;
    const comp = maxComps === 0 ? 1 : s.compCount[i]! / maxComps;
    s.sPerf[i] = perf;
    s.sCost[i] = costScore;
    s.sFeat[i] = feat;
    s.sComp[i] = comp;
    s.total[i] = wt.performance * perf + wt.cost * costScore + wt.features * feat + wt.stability * s.stability[i]! + wt.compliance * comp;
  }

  // Insertion sort: n is small (tens), and it needs no allocation or comparator closure.
  const costFirst = anySoft && request.task_class === 'simple';
  for (let k = 1; k < m; k++) {
    const i = s.order[k]!;
    let j = k - 1;
    while (j >= 0 && ranksBefore(s, i, s.order[j]!, costFirst)) {
      s.order[j + 1] = s.order[j]!;
      j--;
    }
    s.order[j + 1] = i;
  }

  const fallbacks: RankedCandidate[] = [];
  for (let k = 1; k < m; k++) fallbacks.push(ranked(s, s.order[k]!));
  return {
    chosen: m > 0 ? ranked(s, s.order[0]!) : null,
    fallbacks,
    excluded,
    retry_after_s: m === 0 && retryAfter !== Number.POSITIVE_INFINITY ? retryAfter : null,
  };
}
