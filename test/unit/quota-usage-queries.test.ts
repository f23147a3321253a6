import { describe, expect, it } from 'vitest';
import { candidateLive, quotaUsage, quotaUsageByUser } from '../../storage/queries/quota-usage.ts';
import type { BuiltQuery } from '../../storage/queries/usage-summary.ts';

const FROM = Date.UTC(2026, 10, 29);
const TO = Date.UTC(2026, 10, 30);
const BASE =
  'tenant = {tenant:String} AND window_start >= fromUnixTimestamp64Milli({from_ms:Int64}) AND window_start < fromUnixTimestamp64Milli({to_ms:Int64})';
const P = { tenant: 'acme', from_ms: FROM, to_ms: TO };

// [label, built query, expected SQL, expected params]
const CASES: Array<[string, BuiltQuery, string, Record<string, unknown>]> = [
  [
    'tokens, tenant only',
    quotaUsage({ tenant: 'acme', metric: 'tokens', fromMs: FROM, toMs: TO }),
    `SELECT sum(input_tokens) + sum(output_tokens) AS used FROM usage_minute WHERE ${BASE}`,
    P,
  ],
  [
    'requests, user',
    quotaUsage({ tenant: 'acme', user_id: 'u1', metric: 'requests', fromMs: FROM, toMs: TO }),
    `SELECT sum(requests) AS used FROM usage_minute WHERE ${BASE} AND user_id = {user_id:String}`,
    { ...P, user_id: 'u1' },
  ],
  [
    'usd, provider',
    quotaUsage({ tenant: 'acme', provider: 'openai', metric: 'usd', fromMs: FROM, toMs: TO }),
    `SELECT toString(sum(cost_usd)) AS used FROM usage_minute WHERE ${BASE} AND provider = {provider:String}`,
    { ...P, provider: 'openai' },
  ],
  [
    'usd, user and provider',
    quotaUsage({ tenant: 'acme', user_id: 'u1', provider: 'openai', metric: 'usd', fromMs: FROM, toMs: TO }),
    `SELECT toString(sum(cost_usd)) AS used FROM usage_minute WHERE ${BASE} AND user_id = {user_id:String} AND provider = {provider:String}`,
    { ...P, user_id: 'u1', provider: 'openai' },
  ],
  [
    'tokens, team members (users) and provider',
    quotaUsage({ tenant: 'acme', users: ['alice', 'bob'], provider: 'openai', metric: 'tokens', fromMs: FROM, toMs: TO }),
    `SELECT sum(input_tokens) + sum(output_tokens) AS used FROM usage_minute WHERE ${BASE} AND user_id IN {users:Array(String)} AND provider = {provider:String}`,
    { ...P, users: ['alice', 'bob'], provider: 'openai' },
  ],
  [
    'quotaUsageByUser, usd, team members',
    quotaUsageByUser({ tenant: 'acme', users: ['alice'], metric: 'usd', fromMs: FROM, toMs: TO }),
    `SELECT user_id, toString(sum(cost_usd)) AS used FROM usage_minute WHERE ${BASE} AND user_id IN {users:Array(String)} GROUP BY user_id ORDER BY user_id`,
    { ...P, users: ['alice'] },
  ],
  [
    'candidateLive',
    candidateLive({ fromMs: FROM }),
    `SELECT provider, model, sum(requests) AS requests,
  sumIf(usage_minute.requests, status != 'ok') / requests AS error_rate,
  quantilesBFloat16Merge(0.5, 0.95, 0.99)(latency_ms_q)[2] AS p95_latency_ms
FROM usage_minute WHERE window_start >= fromUnixTimestamp64Milli({from_ms:Int64})
GROUP BY provider, model ORDER BY provider, model`,
    { from_ms: FROM },
  ],
];

describe('quota and routing query builders', () => {
  it.each(CASES)('%s', (_label, built, sql, params) => {
    expect(built.query).toBe(sql);
    expect(built.query_params).toEqual(params);
  });

  it('hostile ids only appear in query_params', () => {
    const evil = "x' OR 1=1 --";
    const built = quotaUsage({ tenant: evil, user_id: evil, provider: evil, metric: 'usd', fromMs: FROM, toMs: TO });
    expect(built.query).not.toContain(evil);
    expect(built.query).toBe(quotaUsage({ tenant: 'a', user_id: 'b', provider: 'c', metric: 'usd', fromMs: 1, toMs: 2 }).query);
    expect(built.query_params).toEqual({ tenant: evil, user_id: evil, provider: evil, from_ms: FROM, to_ms: TO });
    const team = quotaUsageByUser({ tenant: 'a', users: [evil], metric: 'tokens', fromMs: 1, toMs: 2 });
    expect(team.query).not.toContain(evil);
    expect(team.query_params.users).toEqual([evil]);
  });
});
