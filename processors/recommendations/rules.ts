/** The registry of recommendation rules, one per kind, and the one way they run a query. */
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import { batchRule } from './batch-small-calls.ts';
import { cacheRule } from './cache-repeated-prompts.ts';
import { capRule } from './cap-max-tokens.ts';
import type { RecommendationKind, RecommendationRule, Row } from './recommendation.ts';
import { rightSizeRule } from './right-size-model.ts';
import { spreadRule } from './spread-load.ts';
import { trimRule } from './trim-prompts.ts';

/** Every rule, one per kind, in `RECOMMENDATION_KINDS` order. */
export const RULES: Readonly<Record<RecommendationKind, RecommendationRule>> = Object.freeze({
  cache_repeated_prompts: cacheRule,
  cap_max_tokens: capRule,
  right_size_model: rightSizeRule,
  batch_small_calls: batchRule,
  trim_prompts: trimRule,
  spread_load: spreadRule,
});

/** Run a built query and return its rows (JSONEachRow: 64-bit integers arrive as strings). */
export async function queryRows(client: ClickHouseClient, q: { query: string; query_params: Record<string, unknown> }): Promise<Row[]> {
  const rs = await client.query({ query: q.query, query_params: q.query_params, format: 'JSONEachRow' });
  return rs.json<Row>();
}
