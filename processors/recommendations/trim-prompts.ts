/**
 * trim_prompts: prompts of a user or a task growing week over week (history piling up, context
 * stuffed in). The brief: "提示工程优化 | 使用结构化提示模板 | 减少20-40%冗余消耗".
 *
 * The only rule that looks before `fromMs`: it compares the mean input tokens per ok call of the
 * 7 days before `toMs` (the last week) with the 7 days before those (the previous week), per
 * (user_id or task_id, provider, model); empty ids are left out. A user and a task are separate
 * subjects (the same growth may show under both). Fires when both weeks have >= minCallsPerWeek
 * calls and the last week's mean >= (1 + minGrowth) x the previous week's mean.
 * Saving = the last week's calls at the previous week's mean: last_input - last_calls x prev_mean
 * input tokens, at the input list price; measured over 7 days, so x 30/7 per month.
 */
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
  type Saving,
  type Subject,
  str,
  subjectFilter,
  sumSavings,
  TENANT_RANGE,
  tokensText,
  usdAt,
  usdParen,
  WEEK_MS,
} from './recommendation.ts';

/**
 * The query: per (dimension, key, provider, model), calls and input tokens before and from
 * `mid_ms`. Over [to - 14 d, to) with mid = to - 7 d when recommending.
 */
export function trimQuery(ctx: RuleContext, subject?: Subject): BuiltQuery {
  const s = subjectFilter(subject, { provider: 'provider', model: 'model' });
  let dimension = '';
  const params: Record<string, string> = { ...s.params };
  if (subject?.user_id !== undefined) {
    dimension = " AND d.1 = 'user' AND d.2 = {s_user_id:String}";
    params.s_user_id = subject.user_id;
  } else if (subject?.task_id !== undefined) {
    dimension = " AND d.1 = 'task' AND d.2 = {s_task_id:String}";
    params.s_task_id = subject.task_id;
  }
  return {
    query: `SELECT d.1 AS dimension, d.2 AS key, provider, model,
  countIf(timestamp < fromUnixTimestamp64Milli({mid_ms:Int64})) AS prev_calls,
  sumIf(input_tokens, timestamp < fromUnixTimestamp64Milli({mid_ms:Int64})) AS prev_input,
  countIf(timestamp >= fromUnixTimestamp64Milli({mid_ms:Int64})) AS last_calls,
  sumIf(input_tokens, timestamp >= fromUnixTimestamp64Milli({mid_ms:Int64})) AS last_input
FROM usage_events
ARRAY JOIN [('user', user_id), ('task', task_id)] AS d
WHERE ${TENANT_RANGE} AND status = 'ok' AND d.2 != ''${s.sql}${dimension}
GROUP BY dimension, key, provider, model
ORDER BY dimension, key, provider, model`,
    query_params: { tenant: ctx.tenant, ...trimRule.timeParams(ctx.toMs - 2 * WEEK_MS, ctx.toMs), ...params },
  };
}

/** Input tokens above `baselineMean` per call in the "last" part of a row, priced at the input price. */
function excess(row: Row, baselineMean: Decimal, ctx: RuleContext): Saving {
  const lastCalls = num(row, 'last_calls');
  const raw = new Decimal(num(row, 'last_input')).sub(baselineMean.mul(lastCalls));
  const tokens = Decimal.max(raw, 0);
  const price = priceAtEnd(ctx, str(row, 'provider'), str(row, 'model'));
  return { tokens, usd: price ? usdAt(price, { uncachedInput: tokens, cachedInput: 0, output: 0 }) : null };
}

export const trimRule: RecommendationRule = {
  kind: 'trim_prompts',
  maxConfidence: 'high',
  query: trimQuery,
  /**
   * [fromMs, toMs) split at the week boundary toMs - 7 d; a range of 7 days or less is all "last"
   * (mid = fromMs), which is how `measure` reads a later week.
   */
  timeParams: (fromMs, toMs) => ({ from_ms: fromMs, mid_ms: Math.max(fromMs, toMs - WEEK_MS), to_ms: toMs }),
  /** The saving is measured on the "last" part: the range's last 7 days (all of it when shorter). */
  measuredMs: (fromMs, toMs) => Math.min(WEEK_MS, toMs - fromMs),

  evaluate(rows, ctx) {
    const t = ctx.thresholds.trim;
    const out: Finding[] = [];
    for (const row of rows) {
      const prevCalls = num(row, 'prev_calls');
      const lastCalls = num(row, 'last_calls');
      if (prevCalls < t.minCallsPerWeek || lastCalls < t.minCallsPerWeek) continue;
      const prevMean = new Decimal(num(row, 'prev_input')).div(prevCalls);
      const lastMean = new Decimal(num(row, 'last_input')).div(lastCalls);
      if (prevMean.isZero() || lastMean.lt(prevMean.mul(1 + t.minGrowth))) continue;
      const dimension = str(row, 'dimension');
      const key = str(row, 'key');
      const subject: Subject = { provider: str(row, 'provider'), model: str(row, 'model') };
      if (dimension === 'user') subject.user_id = key;
      else subject.task_id = key;
      const s = excess(row, prevMean, ctx);
      const growth = lastMean.div(prevMean).sub(1).toNumber();
      const who = dimension === 'user' ? `user ${key}` : `task ${key}`;
      out.push({
        subject,
        title: `Trim the prompts of ${who} on ${subject.provider}/${subject.model}: +${pct(growth)} input per call in a week`,
        rationale:
          `Input tokens per call of ${who} on ${subject.provider}/${subject.model} grew from ${tokensText(prevMean)} to ${tokensText(lastMean)} ` +
          `(+${pct(growth)}) week over week; at last week's ${lastCalls.toLocaleString('en-US')} calls, prompts of the previous week's size ` +
          `would have saved ${tokensText(s.tokens)} input tokens${usdParen(s.usd)} in that week.`,
        figures: {
          dimension,
          prev_calls: prevCalls,
          prev_input_tokens: num(row, 'prev_input'),
          prev_mean_input: prevMean.toFixed(),
          last_calls: lastCalls,
          last_input_tokens: num(row, 'last_input'),
          last_mean_input: lastMean.toFixed(),
          growth,
        },
        saving: s,
        supportCalls: lastCalls,
      });
    }
    return out;
  },

  measure(rows, figures, ctx) {
    const baseline = new Decimal(String(figures.prev_mean_input));
    return sumSavings(rows.map((row) => excess(row, baseline, ctx)));
  },
};
