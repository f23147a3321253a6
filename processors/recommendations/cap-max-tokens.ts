/**
 * cap_max_tokens: the requested output cap does not fit the outputs. The brief: "响应截断控制 |
 * 设置max_tokens参数 | 精准控制输出长度". Per (provider, model, task_id) over ok calls; an empty
 * task_id is the group of calls without a task. Two findings, the first that applies:
 *
 * 1. Truncations: >= minTruncatedCalls calls and >= minTruncatedShare of the group ended with
 *    finish_reason = 'length'. A cut answer is usually thrown away and asked again, so the saving
 *    is the list-price cost of the truncated calls (all their tokens). The advice: raise max_tokens
 *    for this task or ask for a shorter answer.
 * 2. Over-sized cap: the group's output p95 (ClickHouse quantileExact(0.95): the value at 0-based
 *    rank floor(0.95 n) of the sorted outputs of calls that set max_tokens) is at most
 *    farBelowRatio x the median requested max_tokens (quantileExact(0.5)). Proposed cap =
 *    ceil(p95 x headroomPct / 100). The saving is the output tokens above the proposed cap
 *    (runaway answers it would stop), at the output list price; the figures also give the
 *    reserved-but-unused tokens it frees (rate limiters count max_tokens against token-per-minute
 *    limits when a request arrives). Fires only when that saving is > 0.
 * Both need >= minCalls calls in the group.
 */
import type { BuiltQuery } from '../../storage/queries/usage-summary.ts';
import {
  Decimal,
  type Figures,
  type Finding,
  num,
  pct,
  priceAtEnd,
  type RecommendationRule,
  type Row,
  type RuleContext,
  type Saving,
  type Subject,
  str,
  subjectFilter,
  subjectLabel,
  sumSavings,
  TENANT_RANGE,
  tokensText,
  usdAt,
  usdParen,
} from './recommendation.ts';

/**
 * The query: per (provider, model, task_id), truncations and output quantiles; the tail above a
 * cap (`cap` param: the stored proposed cap when measuring, else computed from the p95).
 */
export function capQuery(ctx: RuleContext, subject?: Subject): BuiltQuery {
  const s = subjectFilter(subject, { provider: 'provider', model: 'model', task_id: 'task_id' });
  return {
    query: `WITH calls AS (
  SELECT provider, model, task_id, finish_reason, input_tokens, cached_input_tokens, output_tokens, max_tokens
  FROM usage_events
  WHERE ${TENANT_RANGE} AND status = 'ok'${s.sql}
),
groups AS (
  SELECT provider, model, task_id,
    count() AS calls,
    countIf(finish_reason = 'length') AS truncated_calls,
    sumIf(input_tokens - cached_input_tokens, finish_reason = 'length') AS truncated_uncached_input,
    sumIf(cached_input_tokens, finish_reason = 'length') AS truncated_cached_input,
    sumIf(output_tokens, finish_reason = 'length') AS truncated_output,
    countIf(max_tokens IS NOT NULL) AS capped_calls,
    ifNull(quantileExact(0.5)(max_tokens), 0) AS max_tokens_p50,
    quantileExactIf(0.95)(output_tokens, max_tokens IS NOT NULL) AS output_p95,
    if({cap:UInt64} > 0, {cap:UInt64}, intDiv(toUInt64(output_p95) * {headroom_pct:UInt32} + 99, 100)) AS proposed_cap
  FROM calls
  GROUP BY provider, model, task_id
)
SELECT g.provider AS provider, g.model AS model, g.task_id AS task_id,
  any(g.calls) AS calls, any(g.truncated_calls) AS truncated_calls,
  any(g.truncated_uncached_input) AS truncated_uncached_input, any(g.truncated_cached_input) AS truncated_cached_input,
  any(g.truncated_output) AS truncated_output, any(g.capped_calls) AS capped_calls,
  any(g.max_tokens_p50) AS max_tokens_p50, any(g.output_p95) AS output_p95, any(g.proposed_cap) AS proposed_cap,
  countIf(c.max_tokens IS NOT NULL AND c.output_tokens > g.proposed_cap) AS tail_calls,
  sumIf(c.output_tokens - g.proposed_cap, c.max_tokens IS NOT NULL AND c.output_tokens > g.proposed_cap) AS tail_output,
  sumIf(assumeNotNull(c.max_tokens) - g.proposed_cap, c.max_tokens IS NOT NULL AND assumeNotNull(c.max_tokens) > g.proposed_cap) AS reserved_freed
FROM groups AS g
INNER JOIN calls AS c ON c.provider = g.provider AND c.model = g.model AND c.task_id = g.task_id
GROUP BY g.provider, g.model, g.task_id
ORDER BY provider, model, task_id`,
    query_params: {
      tenant: ctx.tenant,
      ...capRule.timeParams(ctx.fromMs, ctx.toMs),
      headroom_pct: ctx.thresholds.capMaxTokens.headroomPct,
      cap: 0,
      ...s.params,
    },
  };
}

function truncationSaving(row: Row, ctx: RuleContext): Saving {
  const t = {
    uncachedInput: num(row, 'truncated_uncached_input'),
    cachedInput: num(row, 'truncated_cached_input'),
    output: num(row, 'truncated_output'),
  };
  const price = priceAtEnd(ctx, str(row, 'provider'), str(row, 'model'));
  return { tokens: new Decimal(t.uncachedInput).add(t.cachedInput).add(t.output), usd: price ? usdAt(price, t) : null };
}

function tailSaving(row: Row, ctx: RuleContext): Saving {
  const tokens = new Decimal(num(row, 'tail_output'));
  const price = priceAtEnd(ctx, str(row, 'provider'), str(row, 'model'));
  return { tokens, usd: price ? usdAt(price, { uncachedInput: 0, cachedInput: 0, output: tokens }) : null };
}

export const capRule: RecommendationRule = {
  kind: 'cap_max_tokens',
  maxConfidence: 'high',
  query: capQuery,
  timeParams: (fromMs, toMs) => ({ from_ms: fromMs, to_ms: toMs }),
  measuredMs: (fromMs, toMs) => toMs - fromMs,

  evaluate(rows, ctx) {
    const t = ctx.thresholds.capMaxTokens;
    const out: Finding[] = [];
    for (const row of rows) {
      const calls = num(row, 'calls');
      if (calls < t.minCalls) continue;
      const subject = { provider: str(row, 'provider'), model: str(row, 'model'), task_id: str(row, 'task_id') };
      const label = subjectLabel(subject);
      const truncated = num(row, 'truncated_calls');
      const figures: Figures = {
        calls,
        truncated_calls: truncated,
        truncated_share: truncated / calls,
        capped_calls: num(row, 'capped_calls'),
        max_tokens_p50: num(row, 'max_tokens_p50'),
        output_p95: num(row, 'output_p95'),
      };
      if (truncated >= t.minTruncatedCalls && truncated / calls >= t.minTruncatedShare) {
        const saving = truncationSaving(row, ctx);
        out.push({
          subject,
          title: `Raise max_tokens or ask for shorter answers on ${label}: ${pct(truncated / calls)} of calls were cut off`,
          rationale:
            `${truncated.toLocaleString('en-US')} of ${calls.toLocaleString('en-US')} calls on ${label} stopped at max_tokens ` +
            `(finish_reason = length); their ${tokensText(saving.tokens)} tokens${usdParen(saving.usd)} bought a cut-off answer.`,
          figures: { ...figures, variant: 'truncation', truncated_tokens: saving.tokens.toFixed() },
          saving,
          supportCalls: truncated,
        });
        continue;
      }
      const p50 = num(row, 'max_tokens_p50');
      const p95 = num(row, 'output_p95');
      if (num(row, 'capped_calls') < t.minCalls || p50 === 0 || p95 > t.farBelowRatio * p50) continue;
      const saving = tailSaving(row, ctx);
      if (saving.tokens.isZero()) continue;
      const cap = num(row, 'proposed_cap');
      out.push({
        subject,
        title: `Lower max_tokens on ${label} from ${p50.toLocaleString('en-US')} to ${cap.toLocaleString('en-US')}`,
        rationale:
          `On ${label} the output p95 is ${p95.toLocaleString('en-US')} tokens while calls ask for max_tokens ${p50.toLocaleString('en-US')} (median); ` +
          `a cap of ${cap.toLocaleString('en-US')} would have stopped ${num(row, 'tail_calls').toLocaleString('en-US')} runaway answers ` +
          `${tokensText(saving.tokens)} output tokens${usdParen(saving.usd)} earlier.`,
        figures: {
          ...figures,
          variant: 'oversized_cap',
          proposed_cap: cap,
          tail_calls: num(row, 'tail_calls'),
          tail_output_tokens: num(row, 'tail_output'),
          reserved_tokens_freed: num(row, 'reserved_freed'),
        },
        saving,
        supportCalls: num(row, 'capped_calls'),
      });
    }
    return out;
  },

  /** After adoption the tail is measured above the cap that was proposed, not a new p95. */
  measureParams: (figures) => ({ cap: figures.variant === 'oversized_cap' ? Number(figures.proposed_cap) : 0 }),

  measure(rows, figures, ctx) {
    return sumSavings(rows.map((row) => (figures.variant === 'truncation' ? truncationSaving(row, ctx) : tailSaving(row, ctx))));
  },
};
