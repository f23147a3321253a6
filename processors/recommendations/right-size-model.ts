/**
 * right_size_model: a task that runs on an expensive model although its answers are short and it
 * rarely fails. The brief: "模型选择策略:根据任务复杂度动态选择模型版本" and "混合架构设计:将简单任务分流至轻量级模型".
 *
 * Per (provider, model, task_id) over all calls of the range (an empty task_id is the group of
 * calls without a task). A group qualifies with >= minCalls calls, a failure share (status error
 * or timeout) <= maxErrorRate, and an output p95 of its ok calls (quantileExact(0.95)) <=
 * maxOutputP95 tokens. Its tokens are then priced on each alternative:
 * - the routing candidates (config `routing.candidates`, any provider, priced at their
 *   `price`; no cached-input discount) when any are configured;
 * - otherwise every other model of the same provider in the price table at the end of the range.
 * The cheapest alternative (ties: provider, then model, in byte order) is recommended when it costs
 * <= maxCostRatio of the current list-price cost. Saving = current - alternative, over all the
 * group's tokens (uncached input, cached input, output).
 * Confidence is at most medium: the data cannot show whether the cheaper model answers as well.
 */
import type { ListPrice } from '../../domain/pricing.ts';
import { DATED_SNAPSHOT } from '../../domain/pricing.ts';
import type { BuiltQuery } from '../../storage/queries/usage-summary.ts';
import {
  Decimal,
  type Finding,
  num,
  pct,
  priceAtEnd,
  type RecommendationRule,
  type Row,
  type RuleContext,
  type Subject,
  str,
  subjectFilter,
  subjectLabel,
  TENANT_RANGE,
  type TokenSums,
  usdAt,
  usdText,
} from './recommendation.ts';

/** The query: per (provider, model, task_id), calls, failures, token sums and the output p95 of ok calls. */
export function rightSizeQuery(ctx: RuleContext, subject?: Subject): BuiltQuery {
  const s = subjectFilter(subject, { provider: 'provider', model: 'model', task_id: 'task_id' });
  return {
    query: `SELECT provider, model, task_id,
  count() AS calls,
  countIf(status IN ('error', 'timeout')) AS failed_calls,
  sum(input_tokens - cached_input_tokens) AS uncached_input,
  sum(cached_input_tokens) AS cached_input,
  sum(output_tokens) AS output,
  quantileExactIf(0.95)(output_tokens, status = 'ok') AS output_p95
FROM usage_events
WHERE ${TENANT_RANGE}${s.sql}
GROUP BY provider, model, task_id
ORDER BY provider, model, task_id`,
    query_params: { tenant: ctx.tenant, ...rightSizeRule.timeParams(ctx.fromMs, ctx.toMs), ...s.params },
  };
}

interface Alternative {
  provider: string;
  model: string;
  price: ListPrice;
}

const alias = (model: string) => DATED_SNAPSHOT.exec(model)?.[1] ?? model;

/** The alternatives to price a group on (see the module doc), excluding its own model. */
function alternatives(ctx: RuleContext, provider: string, model: string): Alternative[] {
  const own = (p: string, m: string) => p.toLowerCase() === provider.toLowerCase() && alias(m) === alias(model);
  if (ctx.candidates.length > 0) {
    return ctx.candidates
      .filter((c) => !own(c.provider, c.model))
      .map((c) => {
        const input = String(c.price.input_per_1m);
        const output = String(c.price.output_per_1m);
        return {
          provider: c.provider,
          model: c.model,
          price: { input_per_1m: input, cached_input_per_1m: input, output_per_1m: output, reasoning_per_1m: output },
        };
      });
  }
  const out: Alternative[] = [];
  for (const m of ctx.prices.models(ctx.toMs - 1)) {
    if (m.provider !== provider.toLowerCase() || own(m.provider, m.model)) continue;
    const price = priceAtEnd(ctx, m.provider, m.model);
    if (price) out.push({ ...m, price });
  }
  return out;
}

function tokenSums(row: Row): TokenSums {
  return { uncachedInput: num(row, 'uncached_input'), cachedInput: num(row, 'cached_input'), output: num(row, 'output') };
}

/** The recommended alternative's price as stored in the figures, for `measure`. */
function storedPrice(figures: Record<string, number | string>): ListPrice {
  return {
    input_per_1m: String(figures.target_input_per_1m),
    cached_input_per_1m: String(figures.target_cached_input_per_1m),
    output_per_1m: String(figures.target_output_per_1m),
    reasoning_per_1m: String(figures.target_output_per_1m),
  };
}

export const rightSizeRule: RecommendationRule = {
  kind: 'right_size_model',
  maxConfidence: 'medium',
  query: rightSizeQuery,
  timeParams: (fromMs, toMs) => ({ from_ms: fromMs, to_ms: toMs }),
  measuredMs: (fromMs, toMs) => toMs - fromMs,

  evaluate(rows, ctx) {
    const t = ctx.thresholds.rightSize;
    const out: Finding[] = [];
    for (const row of rows) {
      const calls = num(row, 'calls');
      const failed = num(row, 'failed_calls');
      const p95 = num(row, 'output_p95');
      if (calls < t.minCalls || failed / calls > t.maxErrorRate || p95 > t.maxOutputP95) continue;
      const provider = str(row, 'provider');
      const model = str(row, 'model');
      const price = priceAtEnd(ctx, provider, model);
      if (!price) continue; // an unpriced model cannot be shown to be expensive
      const tokens = tokenSums(row);
      const current = usdAt(price, tokens);
      if (current.isZero()) continue;
      let best: { alt: Alternative; usd: Decimal } | undefined;
      for (const alt of alternatives(ctx, provider, model)) {
        const usd = usdAt(alt.price, tokens);
        const key = (a: Alternative) => `${a.provider}\u0000${a.model}`;
        if (!best || usd.lt(best.usd) || (usd.eq(best.usd) && key(alt) < key(best.alt))) best = { alt, usd };
      }
      if (!best || best.usd.gt(current.mul(t.maxCostRatio))) continue;
      const subject = { provider, model, task_id: str(row, 'task_id') };
      const label = subjectLabel(subject);
      const target = `${best.alt.provider}/${best.alt.model}`;
      const saving = current.sub(best.usd);
      out.push({
        subject,
        title: `Move ${label} to ${target}`,
        rationale:
          `${calls.toLocaleString('en-US')} calls on ${label} had short answers (output p95 ${p95.toLocaleString('en-US')} tokens) and ` +
          `${pct(failed / calls)} failures; the same tokens cost ${usdText(current)} on ${provider}/${model} and ${usdText(best.usd)} on ${target} ` +
          `(${pct(best.usd.div(current).toNumber())}) at list prices.`,
        figures: {
          calls,
          failed_calls: failed,
          error_rate: failed / calls,
          output_p95: p95,
          uncached_input_tokens: num(row, 'uncached_input'),
          cached_input_tokens: num(row, 'cached_input'),
          output_tokens: num(row, 'output'),
          current_usd: current.toFixed(),
          target_provider: best.alt.provider,
          target_model: best.alt.model,
          target_usd: best.usd.toFixed(),
          target_input_per_1m: best.alt.price.input_per_1m,
          target_cached_input_per_1m: best.alt.price.cached_input_per_1m,
          target_output_per_1m: best.alt.price.output_per_1m,
          target_source: ctx.candidates.length > 0 ? 'routing_candidates' : 'price_table',
        },
        // Tokens are unchanged by a model switch: the saving is money only.
        saving: { tokens: new Decimal(0), usd: saving },
        supportCalls: calls,
      });
    }
    return out;
  },

  measure(rows, figures, ctx) {
    let usd: Decimal | null = new Decimal(0);
    for (const row of rows) {
      const price = priceAtEnd(ctx, str(row, 'provider'), str(row, 'model'));
      if (!price || usd === null) {
        usd = null;
        continue;
      }
      const tokens = tokenSums(row);
      usd = usd.add(usdAt(price, tokens).sub(usdAt(storedPrice(figures), tokens)));
    }
    return { tokens: new Decimal(0), usd };
  },
};
