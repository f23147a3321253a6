/**
 * cache_repeated_prompts: calls whose prompt (or a declared prompt prefix) was already sent to the
 * same provider/model a short while before. The brief: "缓存复用 | 建立提示-响应缓存库 | 重复请求节省90%消耗".
 *
 * Cache keys of a call (ok calls only):
 * - its `prompt_hash` (the whole prompt): a repeat could be served by the provider's prompt cache
 *   (all input tokens) or by a response cache (the whole call is avoided);
 * - the checkpoints of `tags.prefix_chain` (domain/prompt-prefix.ts): `tokens:hash` pairs, each
 *   hash identifying the prompt's first `tokens` tokens (e.g. the system prompt, then each earlier
 *   conversation turn). A repeated checkpoint could be served by the provider's prompt cache;
 *   malformed entries are skipped.
 * A key HITS when the same key was seen on the same provider/model less than the TTL before (the
 * gap to its previous use: provider caches are refreshed by each use). A call's cacheable input is
 * the largest hit key's tokens (capped at its input tokens); tokens already reported as cached
 * are not counted again.
 *
 * Savings over the range, at the list price in force at its end:
 * - prompt cache: newly cached input tokens x (input price - cached-input price);
 * - response cache: the whole list-price cost of the exact repeats (whole-prompt hits).
 * The headline is the larger of the two at the 5-minute TTL (by USD, or by tokens when unpriced);
 * both, and the 1-hour TTL, are in the figures. Cache writes (Anthropic bills them at 1.25x input)
 * are not modelled. Fires when the 5-minute hits are >= minHitCalls and >= minRepeatShare of calls.
 * One finding per (provider, model).
 */
import { PREFIX_CHAIN_TAG } from '../../domain/prompt-prefix.ts';
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
  usdText,
} from './recommendation.ts';

type Variant = 'prompt_cache' | 'response_cache';

/** The query: per (provider, model), hits and cacheable tokens at both TTLs. */
export function cacheQuery(ctx: RuleContext, subject?: Subject): BuiltQuery {
  const s = subjectFilter(subject, { provider: 'provider', model: 'model' });
  const ttl = ctx.thresholds.cache;
  return {
    query: `WITH calls AS (
  SELECT event_id, timestamp, provider, model, input_tokens, cached_input_tokens, output_tokens, prompt_hash,
    tags['${PREFIX_CHAIN_TAG}'] AS prefix_chain
  FROM usage_events
  WHERE ${TENANT_RANGE} AND status = 'ok'${s.sql}
),
cache_keys AS (
  SELECT event_id, timestamp, provider, model, 1 AS whole, prompt_hash AS key, toUInt64(input_tokens) AS key_tokens
  FROM calls WHERE prompt_hash != ''
  UNION ALL
  SELECT event_id, timestamp, provider, model, 0 AS whole, splitByChar(':', checkpoint)[2] AS key,
    least(toUInt64OrZero(splitByChar(':', checkpoint)[1]), toUInt64(input_tokens)) AS key_tokens
  FROM calls ARRAY JOIN splitByChar(' ', prefix_chain) AS checkpoint
  WHERE prefix_chain != '' AND match(checkpoint, '^[0-9]+:[^:]+$')
),
repeats AS (
  SELECT event_id, whole, key_tokens,
    row_number() OVER w > 1 AS seen_before,
    dateDiff('millisecond', lagInFrame(timestamp) OVER w, timestamp) AS gap_ms
  FROM cache_keys
  WINDOW w AS (PARTITION BY provider, model, whole, key ORDER BY timestamp, event_id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
),
hits AS (
  SELECT event_id,
    maxIf(key_tokens, seen_before AND gap_ms < {ttl_short_ms:Int64}) AS hit_short,
    maxIf(key_tokens, seen_before AND gap_ms < {ttl_long_ms:Int64}) AS hit_long,
    maxIf(whole, seen_before AND gap_ms < {ttl_short_ms:Int64}) AS exact_short,
    maxIf(whole, seen_before AND gap_ms < {ttl_long_ms:Int64}) AS exact_long
  FROM repeats GROUP BY event_id
)
SELECT provider, model,
  count() AS calls,
  sum(input_tokens) AS input_total,
  sum(cached_input_tokens) AS cached_input_total,
  countIf(hit_short > 0) AS hit_calls_short,
  countIf(hit_long > 0) AS hit_calls_long,
  sum(greatest(hit_short, cached_input_tokens) - cached_input_tokens) AS new_cached_short,
  sum(greatest(hit_long, cached_input_tokens) - cached_input_tokens) AS new_cached_long,
  countIf(exact_short = 1) AS exact_calls_short,
  sumIf(input_tokens - cached_input_tokens, exact_short = 1) AS exact_uncached_input_short,
  sumIf(cached_input_tokens, exact_short = 1) AS exact_cached_input_short,
  sumIf(output_tokens, exact_short = 1) AS exact_output_short,
  countIf(exact_long = 1) AS exact_calls_long,
  sumIf(input_tokens - cached_input_tokens, exact_long = 1) AS exact_uncached_input_long,
  sumIf(cached_input_tokens, exact_long = 1) AS exact_cached_input_long,
  sumIf(output_tokens, exact_long = 1) AS exact_output_long
FROM calls LEFT JOIN hits USING (event_id)
GROUP BY provider, model
ORDER BY provider, model`,
    query_params: {
      tenant: ctx.tenant,
      ...cacheRule.timeParams(ctx.fromMs, ctx.toMs),
      ttl_short_ms: ttl.ttlShortMs,
      ttl_long_ms: ttl.ttlLongMs,
      ...s.params,
    },
  };
}

/** The four savings of one row: prompt and response cache, at each TTL. */
function savings(row: Row, ctx: RuleContext): Record<`${Variant}_${'short' | 'long'}`, Saving> {
  const price = priceAtEnd(ctx, str(row, 'provider'), str(row, 'model'));
  const prompt = (ttl: 'short' | 'long'): Saving => {
    const tokens = new Decimal(num(row, `new_cached_${ttl}`));
    // Moving a token from input to cached input saves the price difference.
    const usd = price ? tokens.mul(new Decimal(price.input_per_1m).sub(price.cached_input_per_1m)).div(1_000_000) : null;
    return { tokens, usd };
  };
  const response = (ttl: 'short' | 'long'): Saving => {
    const t = {
      uncachedInput: num(row, `exact_uncached_input_${ttl}`),
      cachedInput: num(row, `exact_cached_input_${ttl}`),
      output: num(row, `exact_output_${ttl}`),
    };
    return { tokens: new Decimal(t.uncachedInput).add(t.cachedInput).add(t.output), usd: price ? usdAt(price, t) : null };
  };
  return {
    prompt_cache_short: prompt('short'),
    prompt_cache_long: prompt('long'),
    response_cache_short: response('short'),
    response_cache_long: response('long'),
  };
}

/** The larger saving (USD when priced, else tokens); ties go to the prompt cache. */
function headline(s: ReturnType<typeof savings>): Variant {
  const p = s.prompt_cache_short;
  const r = s.response_cache_short;
  if (p.usd !== null && r.usd !== null) return r.usd.gt(p.usd) ? 'response_cache' : 'prompt_cache';
  return r.tokens.gt(p.tokens) ? 'response_cache' : 'prompt_cache';
}

export const cacheRule: RecommendationRule = {
  kind: 'cache_repeated_prompts',
  maxConfidence: 'high',
  query: cacheQuery,
  timeParams: (fromMs, toMs) => ({ from_ms: fromMs, to_ms: toMs }),
  measuredMs: (fromMs, toMs) => toMs - fromMs,

  evaluate(rows, ctx) {
    const t = ctx.thresholds.cache;
    const out: Finding[] = [];
    for (const row of rows) {
      const calls = num(row, 'calls');
      const hits = num(row, 'hit_calls_short');
      if (calls === 0 || hits < t.minHitCalls || hits / calls < t.minRepeatShare) continue;
      const s = savings(row, ctx);
      const variant = headline(s);
      const saving = s[`${variant}_short`];
      if (saving.tokens.isZero()) continue;
      const subject = { provider: str(row, 'provider'), model: str(row, 'model') };
      const inputTokens = num(row, 'input_total');
      const figures: Figures = {
        variant,
        calls,
        input_tokens: inputTokens,
        cached_input_tokens: num(row, 'cached_input_total'),
        ttl_short_ms: t.ttlShortMs,
        ttl_long_ms: t.ttlLongMs,
        hit_calls_5m: hits,
        hit_share_5m: hits / calls,
        hit_calls_1h: num(row, 'hit_calls_long'),
        hit_share_1h: num(row, 'hit_calls_long') / calls,
        new_cached_tokens_5m: num(row, 'new_cached_short'),
        new_cached_tokens_1h: num(row, 'new_cached_long'),
        exact_repeat_calls_5m: num(row, 'exact_calls_short'),
        exact_repeat_calls_1h: num(row, 'exact_calls_long'),
      };
      for (const [k, v] of Object.entries(s)) {
        figures[`${k}_tokens`] = v.tokens.toFixed();
        figures[`${k}_usd`] = v.usd === null ? 'unpriced' : v.usd.toFixed();
      }
      const label = subjectLabel(subject);
      const shortMin = t.ttlShortMs / 60_000;
      out.push({
        subject,
        title:
          variant === 'prompt_cache' ? `Cache repeated prompt prefixes on ${label}` : `Cache responses of repeated prompts on ${label}`,
        rationale:
          `${hits.toLocaleString('en-US')} of ${calls.toLocaleString('en-US')} calls (${pct(hits / calls)}) on ${label} repeated a prompt ` +
          `or prompt prefix sent less than ${shortMin} min before; ` +
          (variant === 'prompt_cache'
            ? `${tokensText(saving.tokens)} of ${tokensText(inputTokens)} input tokens (${pct(saving.tokens.toNumber() / inputTokens)}) could have been read from the provider's prompt cache${usdParen(saving.usd)}.`
            : `${num(row, 'exact_calls_short').toLocaleString('en-US')} were exact repeats whose whole cost (${tokensText(saving.tokens)} tokens${saving.usd === null ? '' : `, ${usdText(saving.usd)}`}) a response cache would avoid.`),
        figures,
        saving,
        supportCalls: hits,
      });
    }
    return out;
  },

  measure(rows, figures, ctx) {
    const variant = figures.variant === 'response_cache' ? 'response_cache' : 'prompt_cache';
    return sumSavings(rows.map((row) => savings(row, ctx)[`${variant}_short`]));
  },
};
