/** The readable summary printed after an import or demo: read from the aggregates, never from memory. */

import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import {
  busiestMinutes,
  deadLettersByReason,
  topUsersAndTasks,
  totalsByModel,
  totalsByTenant,
} from '../../storage/queries/usage-summary.ts';
import { printTable } from '../output.ts';

async function rows(client: ClickHouseClient, q: { query: string; query_params: Record<string, unknown> }) {
  const rs = await client.query({ ...q, format: 'JSONEachRow' });
  return rs.json<Record<string, unknown>>();
}

/** USD with 4 decimals; `unpriced` when every request of the row lacked a price (cost unknown, not $0). */
const usd = (r: Record<string, unknown>): string =>
  Number(r.unpriced_requests) > 0 && Number(r.unpriced_requests) === Number(r.requests) ? 'unpriced' : Number(r.cost_usd).toFixed(4);

export async function printSummary(client: ClickHouseClient): Promise<void> {
  const tenants = await rows(client, totalsByTenant());
  printTable(
    'Stored totals by tenant (all time, from usage_minute)',
    tenants.map((r) => ({
      tenant: r.tenant,
      requests: r.requests,
      input_tokens: r.input_tokens,
      output_tokens: r.output_tokens,
      cost_usd: usd(r),
      unpriced_requests: r.unpriced_requests,
    })),
  );
  const models = await rows(client, totalsByModel());
  printTable(
    'Tokens and cost by provider/model (unpriced = model not in the price table: cost unknown, not 0)',
    models.map((r) => ({
      provider: r.provider,
      model: r.model,
      requests: r.requests,
      input_tokens: r.input_tokens,
      output_tokens: r.output_tokens,
      cost_usd: usd(r),
      unpriced_requests: r.unpriced_requests,
    })),
  );
  const minutes = await rows(client, busiestMinutes(5));
  printTable(
    'Busiest minutes (UTC)',
    minutes.map((r) => ({ minute: r.window_start, requests: r.requests, input_tokens: r.input_tokens, output_tokens: r.output_tokens })),
  );
  const top = await rows(client, topUsersAndTasks(5));
  printTable(
    'Top users/tasks by tokens',
    top.map((r) => ({
      tenant: r.tenant,
      user_id: r.user_id,
      task_id: r.task_id,
      requests: r.requests,
      tokens: Number(r.input_tokens) + Number(r.output_tokens),
    })),
  );
  printTable('Dead letters by reason (raw payloads in table dead_letters)', await rows(client, deadLettersByReason()));
}
