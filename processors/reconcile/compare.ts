/**
 * Compare a provider's per-day counts with quotaflow's (pure). Rows are matched by (UTC day,
 * model alias); a model `*` on the provider side is compared with the sum of all our models of
 * that day. For each compared count: diff = ours - provider, diff_pct = diff / provider x 100
 * (null when the provider counted 0 and we did not). A row is flagged when any compared count
 * differs by more than `tolerance` x the provider's count (so a 0 against a non-zero is always
 * flagged), or when only one side has it. Requests are compared only when the export has them.
 */
import { Decimal } from '../recommendations/recommendation.ts';
import type { ExportDay, UsageCounts } from './usage-export.ts';

/** Our counts of one (day, model alias); cost is an exact decimal string (USD, priced events only). */
export interface OursDay extends UsageCounts {
  day: string;
  model: string;
  requests: number;
  cost_usd: string;
}

/** One compared (day, model). */
export interface ReconcileRow {
  day: string;
  model: string;
  provider_requests: number | null;
  ours_requests: number;
  diff_requests: number | null;
  diff_requests_pct: number | null;
  provider_tokens_in: number;
  ours_in: number;
  diff: number;
  diff_pct: number | null;
  provider_tokens_out: number;
  ours_out: number;
  diff_out: number;
  diff_out_pct: number | null;
  provider_cached_in: number;
  ours_cached_in: number;
  diff_cached_in: number;
  diff_cached_in_pct: number | null;
  /** OpenAI input_audio_tokens of the day (see usage-export.ts). */
  provider_audio_in: number;
  ours_cost_usd: string;
  flagged: boolean;
  /** Why: the counts past the tolerance (`input_tokens`, ...), `only_provider` or `only_ours`. */
  reasons: string[];
}

/** diff / provider x 100, or null when provider is 0 (0 when both are 0). */
export function diffPct(ours: number, provider: number): number | null {
  if (provider === 0) return ours === 0 ? 0 : null;
  return ((ours - provider) / provider) * 100;
}

/** Whether |ours - provider| > tolerance x provider. */
export function beyond(ours: number, provider: number, tolerance: number): boolean {
  return Math.abs(ours - provider) > tolerance * provider;
}

const EMPTY_OURS = (day: string, model: string): OursDay => ({
  day,
  model,
  requests: 0,
  input_tokens: 0,
  output_tokens: 0,
  cached_input_tokens: 0,
  cost_usd: '0',
});

/** Sum our rows into the export's keys: per model alias, or all models as `*` when `byModel` is false. */
export function groupOurs(ours: readonly OursDay[], byModel: boolean): Map<string, OursDay> {
  const out = new Map<string, OursDay>();
  for (const o of ours) {
    const model = byModel ? o.model : '*';
    const key = `${o.day}\u0000${model}`;
    const acc = out.get(key) ?? EMPTY_OURS(o.day, model);
    acc.requests += o.requests;
    acc.input_tokens += o.input_tokens;
    acc.output_tokens += o.output_tokens;
    acc.cached_input_tokens += o.cached_input_tokens;
    acc.cost_usd = new Decimal(acc.cost_usd).add(o.cost_usd).toFixed();
    out.set(key, acc);
  }
  return out;
}

/**
 * The comparison rows, sorted by day then model.
 * @throws RangeError when tolerance is not a number in [0, 1].
 */
export function compareUsage(
  provider: readonly ExportDay[],
  ours: readonly OursDay[],
  byModel: boolean,
  tolerance: number,
): ReconcileRow[] {
  if (!(tolerance >= 0 && tolerance <= 1)) throw new RangeError(`tolerance: must be a share between 0 and 1 (0.01 = 1%), got ${tolerance}`);
  const theirs = new Map(provider.map((p) => [`${p.day}\u0000${p.model}`, p]));
  const mine = groupOurs(ours, byModel);
  const keys = [...new Set([...theirs.keys(), ...mine.keys()])].sort();
  return keys.map((key) => {
    const p = theirs.get(key);
    const [day, model] = key.split('\u0000') as [string, string];
    const o = mine.get(key) ?? EMPTY_OURS(day, model);
    const reasons: string[] = [];
    if (!p) reasons.push('only_ours');
    else if (!mine.has(key) && (p.input_tokens > 0 || p.output_tokens > 0 || (p.requests ?? 0) > 0)) reasons.push('only_provider');
    const pr = p ?? { requests: null, input_tokens: 0, output_tokens: 0, cached_input_tokens: 0, audio_input_tokens: 0 };
    const checks: Array<[string, number, number | null]> = [
      ['requests', o.requests, pr.requests],
      ['input_tokens', o.input_tokens, pr.input_tokens],
      ['output_tokens', o.output_tokens, pr.output_tokens],
      ['cached_input_tokens', o.cached_input_tokens, pr.cached_input_tokens],
    ];
    for (const [name, mineN, theirsN] of checks) if (p && theirsN !== null && beyond(mineN, theirsN, tolerance)) reasons.push(name);
    return {
      day,
      model,
      provider_requests: pr.requests,
      ours_requests: o.requests,
      diff_requests: pr.requests === null ? null : o.requests - pr.requests,
      diff_requests_pct: pr.requests === null ? null : diffPct(o.requests, pr.requests),
      provider_tokens_in: pr.input_tokens,
      ours_in: o.input_tokens,
      diff: o.input_tokens - pr.input_tokens,
      diff_pct: diffPct(o.input_tokens, pr.input_tokens),
      provider_tokens_out: pr.output_tokens,
      ours_out: o.output_tokens,
      diff_out: o.output_tokens - pr.output_tokens,
      diff_out_pct: diffPct(o.output_tokens, pr.output_tokens),
      provider_cached_in: pr.cached_input_tokens,
      ours_cached_in: o.cached_input_tokens,
      diff_cached_in: o.cached_input_tokens - pr.cached_input_tokens,
      diff_cached_in_pct: diffPct(o.cached_input_tokens, pr.cached_input_tokens),
      provider_audio_in: pr.audio_input_tokens,
      ours_cost_usd: o.cost_usd,
      flagged: reasons.length > 0,
      reasons,
    };
  });
}
