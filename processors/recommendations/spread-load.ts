/**
 * spread_load: calls rejected by a rate limit or quota (status rate_limited; a provider's
 * "insufficient quota" 429 is reported the same way) in minutes when another candidate had room.
 * The brief: multi-platform routing ("多平台路由") and its TOKEN_THRESHOLD switch.
 *
 * The pool of candidates is the configured routing candidates, or, when none are configured, every
 * (provider, model) with at least one ok call of the tenant in the range. In a minute when
 * (provider, model) had rejected calls, another pool member "had room" if it had no rejected call
 * in that same minute. Per (provider, model): rejected calls, and the recoverable ones (in minutes
 * when some other member had room). Fires at >= minRecoverableCalls recoverable calls.
 * Saving: what the recoverable rejected calls were billed, as recorded (their tokens at list
 * price; usually 0, since a rejected call is rarely billed). The value of this recommendation is
 * the calls it serves (figures), not money, so it ranks after the money-saving ones.
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
  usdText,
} from './recommendation.ts';

/** The query: per (provider, model), rejected and recoverable calls, and the members that had room. */
export function spreadQuery(ctx: RuleContext, subject?: Subject): BuiltQuery {
  const s = subjectFilter(subject, { provider: 'p.provider', model: 'p.model' });
  return {
    query: `WITH
  (SELECT groupUniqArray((toString(provider), toString(model))) FROM usage_events WHERE ${TENANT_RANGE} AND status = 'ok') AS used,
  arrayZip({pool_providers:Array(String)}, {pool_models:Array(String)}) AS configured,
  if(empty(configured), used, configured) AS pool,
  per_minute AS (
    SELECT toString(provider) AS provider, toString(model) AS model, toStartOfMinute(timestamp) AS minute,
      countIf(status = 'rate_limited') AS rejected,
      sumIf(input_tokens - cached_input_tokens, status = 'rate_limited') AS rejected_uncached_input,
      sumIf(cached_input_tokens, status = 'rate_limited') AS rejected_cached_input,
      sumIf(output_tokens, status = 'rate_limited') AS rejected_output
    FROM usage_events
    WHERE ${TENANT_RANGE}
    GROUP BY provider, model, minute
  ),
  busy AS (
    SELECT minute, groupArray((provider, model)) AS rejecting FROM per_minute WHERE rejected > 0 GROUP BY minute
  ),
  rejected_minutes AS (
    SELECT p.provider AS provider, p.model AS model, p.rejected AS rejected,
      p.rejected_uncached_input AS rejected_uncached_input, p.rejected_cached_input AS rejected_cached_input,
      p.rejected_output AS rejected_output,
      arrayFilter(c -> c != (p.provider, p.model) AND NOT has(b.rejecting, c), pool) AS with_room
    FROM per_minute AS p
    INNER JOIN busy AS b ON p.minute = b.minute
    WHERE p.rejected > 0${s.sql}
  )
SELECT provider, model,
  sum(rejected) AS rejected_calls,
  count() AS rejected_minutes,
  sumIf(rejected, notEmpty(with_room)) AS recoverable_calls,
  countIf(notEmpty(with_room)) AS minutes_with_room,
  sumIf(rejected_uncached_input, notEmpty(with_room)) AS recoverable_uncached_input,
  sumIf(rejected_cached_input, notEmpty(with_room)) AS recoverable_cached_input,
  sumIf(rejected_output, notEmpty(with_room)) AS recoverable_output,
  arrayStringConcat(arraySort(arrayMap(c -> concat(c.1, '/', c.2), groupUniqArrayArray(with_room))), ', ') AS alternatives
FROM rejected_minutes
GROUP BY provider, model
ORDER BY provider, model`,
    query_params: {
      tenant: ctx.tenant,
      ...spreadRule.timeParams(ctx.fromMs, ctx.toMs),
      pool_providers: ctx.candidates.map((c) => c.provider.toLowerCase()),
      pool_models: ctx.candidates.map((c) => c.model),
      ...s.params,
    },
  };
}

function saving(row: Row, ctx: RuleContext): Saving {
  const t = {
    uncachedInput: num(row, 'recoverable_uncached_input'),
    cachedInput: num(row, 'recoverable_cached_input'),
    output: num(row, 'recoverable_output'),
  };
  const price = priceAtEnd(ctx, str(row, 'provider'), str(row, 'model'));
  return { tokens: new Decimal(t.uncachedInput).add(t.cachedInput).add(t.output), usd: price ? usdAt(price, t) : null };
}

export const spreadRule: RecommendationRule = {
  kind: 'spread_load',
  maxConfidence: 'high',
  query: spreadQuery,
  timeParams: (fromMs, toMs) => ({ from_ms: fromMs, to_ms: toMs }),
  measuredMs: (fromMs, toMs) => toMs - fromMs,

  evaluate(rows, ctx) {
    const out: Finding[] = [];
    for (const row of rows) {
      const recoverable = num(row, 'recoverable_calls');
      if (recoverable < ctx.thresholds.spread.minRecoverableCalls) continue;
      const subject = { provider: str(row, 'provider'), model: str(row, 'model') };
      const label = subjectLabel(subject);
      const s = saving(row, ctx);
      const rejected = num(row, 'rejected_calls');
      const minutes = num(row, 'minutes_with_room');
      out.push({
        subject,
        title: `Spread load off ${label}: ${recoverable.toLocaleString('en-US')} rejected calls had somewhere else to go`,
        rationale:
          `${rejected.toLocaleString('en-US')} calls to ${label} were rejected by a rate limit or quota, ${recoverable.toLocaleString('en-US')} of them in ` +
          `${plural(minutes, 'minute')} when ${str(row, 'alternatives')} had no rejection; routing them there (POST /v1/route) serves them ` +
          `without retries (billed for the rejections: ${tokensText(s.tokens)} tokens${s.usd === null ? '' : `, ${usdText(s.usd)}`}).`,
        figures: {
          rejected_calls: rejected,
          rejected_minutes: num(row, 'rejected_minutes'),
          recoverable_calls: recoverable,
          minutes_with_room: minutes,
          alternatives: str(row, 'alternatives'),
          pool: ctx.candidates.length > 0 ? 'routing_candidates' : 'models_used',
        },
        saving: s,
        supportCalls: recoverable,
      });
    }
    return out;
  },

  measure(rows, _figures, ctx) {
    return sumSavings(rows.map((row) => saving(row, ctx)));
  },
};
