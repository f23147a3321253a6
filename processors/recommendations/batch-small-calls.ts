/**
 * batch_small_calls: one task firing many small calls within seconds, each carrying the same
 * instructions again. The brief: "批处理机制 | 合并多个独立请求 | 降低网络开销占比".
 *
 * Per (task_id, provider, model), ok calls with a task and at most smallInputTokens input tokens,
 * in time order. A burst is a maximal run of such calls each at most burstGapMs after the previous
 * one; bursts of >= minBurstCalls calls count. Merging a burst of k calls into one request sends
 * the part they share once instead of k times. That shared part is taken as the smallest input of
 * any call in the group's bursts (an upper bound: no call's shared part is longer than its whole
 * prompt), so saving = sum over bursts of (k - 1) x that overhead, in input tokens at the input
 * list price. Fires when the group has >= minCallsInBursts calls in bursts. Confidence is at most
 * medium, since the shared part is bounded, not measured.
 * Provider batch APIs (about half price, answers within hours) are another way to merge; not priced here.
 */
import type { BuiltQuery } from '../../storage/queries/usage-summary.ts';
import {
  Decimal,
  type Finding,
  num,
  plural,
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

/** The query: per (task_id, provider, model), the bursts of small calls and their smallest input. */
export function batchQuery(ctx: RuleContext, subject?: Subject): BuiltQuery {
  const s = subjectFilter(subject, { provider: 'provider', model: 'model', task_id: 'task_id' });
  const t = ctx.thresholds.batch;
  return {
    query: `WITH small AS (
  SELECT event_id, timestamp, provider, model, task_id, input_tokens
  FROM usage_events
  WHERE ${TENANT_RANGE} AND status = 'ok' AND task_id != '' AND input_tokens <= {small_input_tokens:UInt32}${s.sql}
),
starts AS (
  SELECT *,
    if(row_number() OVER w = 1 OR dateDiff('millisecond', lagInFrame(timestamp) OVER w, timestamp) > {burst_gap_ms:Int64}, 1, 0) AS starts_burst
  FROM small
  WINDOW w AS (PARTITION BY task_id, provider, model ORDER BY timestamp, event_id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
),
numbered AS (
  SELECT *, sum(starts_burst) OVER (PARTITION BY task_id, provider, model ORDER BY timestamp, event_id ROWS UNBOUNDED PRECEDING) AS burst
  FROM starts
),
bursts AS (
  SELECT task_id, provider, model, burst, count() AS burst_calls, min(input_tokens) AS min_input, sum(input_tokens) AS burst_input
  FROM numbered
  GROUP BY task_id, provider, model, burst
  HAVING burst_calls >= {min_burst_calls:UInt32}
)
SELECT task_id, provider, model,
  count() AS bursts,
  sum(burst_calls) AS calls_in_bursts,
  sum(burst_input) AS input_in_bursts,
  min(min_input) AS overhead_tokens,
  sum(burst_calls) - count() AS merged_away,
  max(burst_calls) AS largest_burst
FROM bursts
GROUP BY task_id, provider, model
ORDER BY task_id, provider, model`,
    query_params: {
      tenant: ctx.tenant,
      ...batchRule.timeParams(ctx.fromMs, ctx.toMs),
      small_input_tokens: t.smallInputTokens,
      burst_gap_ms: t.burstGapMs,
      min_burst_calls: t.minBurstCalls,
      ...s.params,
    },
  };
}

function saving(row: Row, ctx: RuleContext): Saving {
  const tokens = new Decimal(num(row, 'merged_away')).mul(num(row, 'overhead_tokens'));
  const price = priceAtEnd(ctx, str(row, 'provider'), str(row, 'model'));
  return { tokens, usd: price ? usdAt(price, { uncachedInput: tokens, cachedInput: 0, output: 0 }) : null };
}

export const batchRule: RecommendationRule = {
  kind: 'batch_small_calls',
  maxConfidence: 'medium',
  query: batchQuery,
  timeParams: (fromMs, toMs) => ({ from_ms: fromMs, to_ms: toMs }),
  measuredMs: (fromMs, toMs) => toMs - fromMs,

  evaluate(rows, ctx) {
    const t = ctx.thresholds.batch;
    const out: Finding[] = [];
    for (const row of rows) {
      const inBursts = num(row, 'calls_in_bursts');
      if (inBursts < t.minCallsInBursts) continue;
      const s = saving(row, ctx);
      if (s.tokens.isZero()) continue;
      const subject = { provider: str(row, 'provider'), model: str(row, 'model'), task_id: str(row, 'task_id') };
      const label = subjectLabel(subject);
      const bursts = num(row, 'bursts');
      const overhead = num(row, 'overhead_tokens');
      out.push({
        subject,
        title: `Batch the small calls of ${label}`,
        rationale:
          `${label} sent ${inBursts.toLocaleString('en-US')} small calls (<= ${t.smallInputTokens.toLocaleString('en-US')} input tokens) in ` +
          `${plural(bursts, 'burst')} of calls <= ${t.burstGapMs / 1000} s apart; merging each burst into one request sends ` +
          `the shared prompt (at most ${overhead.toLocaleString('en-US')} tokens) once, saving up to ${tokensText(s.tokens)} input tokens${usdParen(s.usd)} in the range.`,
        figures: {
          bursts,
          calls_in_bursts: inBursts,
          input_tokens_in_bursts: num(row, 'input_in_bursts'),
          overhead_tokens: overhead,
          merged_away_calls: num(row, 'merged_away'),
          largest_burst: num(row, 'largest_burst'),
          burst_gap_ms: t.burstGapMs,
          small_input_tokens: t.smallInputTokens,
        },
        saving: s,
        supportCalls: inBursts,
      });
    }
    return out;
  },

  measure(rows, _figures, ctx) {
    return sumSavings(rows.map((row) => saving(row, ctx)));
  },
};
