import { describe, expect, it } from 'vitest';
import {
  type BuiltQuery,
  busiestMinutes,
  deadLettersByReason,
  topUsersAndTasks,
  totalsByModel,
  totalsByTenant,
} from '../../storage/queries/usage-summary.ts';

const SUMS = `sum(requests) AS requests,
  sum(input_tokens) AS input_tokens,
  sum(output_tokens) AS output_tokens,
  sum(cached_input_tokens) AS cached_input_tokens,
  sum(reasoning_tokens) AS reasoning_tokens,
  toString(sum(cost_usd)) AS cost_usd,
  sum(unpriced_requests) AS unpriced_requests`;

const FROM = Date.UTC(2025, 5, 1);
const TO = Date.UTC(2025, 5, 8);
const W_TENANT = 'tenant = {tenant:String}';
const W_FROM = 'window_start >= fromUnixTimestamp64Milli({from_ms:Int64})';
const W_TO = 'window_start < fromUnixTimestamp64Milli({to_ms:Int64})';
/** An absent WHERE clause leaves an empty slot (the SQL keeps both spaces around it). */
const NO_WHERE = '';
const W_ALL = `WHERE ${W_TENANT} AND ${W_FROM} AND ${W_TO}`;

// [label, built query, expected SQL, expected params]
const CASES: Array<[string, BuiltQuery, string, Record<string, unknown>]> = [
  [
    'totalsByTenant, no filter',
    totalsByTenant(),
    `SELECT tenant, ${SUMS} FROM usage_minute ${NO_WHERE} GROUP BY tenant ORDER BY tenant`,
    {},
  ],
  [
    'totalsByTenant, tenant',
    totalsByTenant({ tenant: 'acme' }),
    `SELECT tenant, ${SUMS} FROM usage_minute WHERE ${W_TENANT} GROUP BY tenant ORDER BY tenant`,
    { tenant: 'acme' },
  ],
  [
    'totalsByTenant, from only',
    totalsByTenant({ fromMs: FROM }),
    `SELECT tenant, ${SUMS} FROM usage_minute WHERE ${W_FROM} GROUP BY tenant ORDER BY tenant`,
    { from_ms: FROM },
  ],
  [
    'totalsByTenant, to only',
    totalsByTenant({ toMs: TO }),
    `SELECT tenant, ${SUMS} FROM usage_minute WHERE ${W_TO} GROUP BY tenant ORDER BY tenant`,
    { to_ms: TO },
  ],
  [
    'totalsByTenant, all filters, hour roll-up',
    totalsByTenant({ tenant: 'acme', fromMs: FROM, toMs: TO }, 'hour'),
    `SELECT tenant, ${SUMS} FROM usage_hour ${W_ALL} GROUP BY tenant ORDER BY tenant`,
    { tenant: 'acme', from_ms: FROM, to_ms: TO },
  ],
  [
    'totalsByTenant, day roll-up',
    totalsByTenant({}, 'day'),
    `SELECT tenant, ${SUMS} FROM usage_day ${NO_WHERE} GROUP BY tenant ORDER BY tenant`,
    {},
  ],
  [
    'totalsByTenant, epoch 0 is a filter, not "absent"',
    totalsByTenant({ fromMs: 0, tenant: '' }),
    `SELECT tenant, ${SUMS} FROM usage_minute WHERE ${W_TENANT} AND ${W_FROM} GROUP BY tenant ORDER BY tenant`,
    { tenant: '', from_ms: 0 },
  ],
  [
    'totalsByModel, no filter',
    totalsByModel(),
    `SELECT provider, model, ${SUMS} FROM usage_minute ${NO_WHERE}
GROUP BY provider, model ORDER BY sum(usage_minute.cost_usd) DESC, input_tokens + output_tokens DESC, provider, model`,
    {},
  ],
  [
    'totalsByModel, all filters',
    totalsByModel({ tenant: 'acme', fromMs: FROM, toMs: TO }),
    `SELECT provider, model, ${SUMS} FROM usage_minute ${W_ALL}
GROUP BY provider, model ORDER BY sum(usage_minute.cost_usd) DESC, input_tokens + output_tokens DESC, provider, model`,
    { tenant: 'acme', from_ms: FROM, to_ms: TO },
  ],
  [
    'busiestMinutes, no filter',
    busiestMinutes(10),
    `SELECT window_start, ${SUMS} FROM usage_minute ${NO_WHERE}
GROUP BY window_start ORDER BY requests DESC, window_start LIMIT {limit:UInt32}`,
    { limit: 10 },
  ],
  [
    'busiestMinutes, tenant and range',
    busiestMinutes(5, { tenant: 'acme', fromMs: FROM, toMs: TO }),
    `SELECT window_start, ${SUMS} FROM usage_minute ${W_ALL}
GROUP BY window_start ORDER BY requests DESC, window_start LIMIT {limit:UInt32}`,
    { tenant: 'acme', from_ms: FROM, to_ms: TO, limit: 5 },
  ],
  [
    'topUsersAndTasks, no filter',
    topUsersAndTasks(20),
    `SELECT tenant, user_id, task_id, ${SUMS} FROM usage_minute WHERE user_id != '' OR task_id != ''
GROUP BY tenant, user_id, task_id ORDER BY input_tokens + output_tokens DESC, tenant, user_id, task_id LIMIT {limit:UInt32}`,
    { limit: 20 },
  ],
  [
    'topUsersAndTasks, tenant (the OR is parenthesised under AND)',
    topUsersAndTasks(3, { tenant: 'acme' }),
    `SELECT tenant, user_id, task_id, ${SUMS} FROM usage_minute WHERE ${W_TENANT} AND (user_id != '' OR task_id != '')
GROUP BY tenant, user_id, task_id ORDER BY input_tokens + output_tokens DESC, tenant, user_id, task_id LIMIT {limit:UInt32}`,
    { tenant: 'acme', limit: 3 },
  ],
  [
    'topUsersAndTasks, all filters',
    topUsersAndTasks(3, { tenant: 'acme', fromMs: FROM, toMs: TO }),
    `SELECT tenant, user_id, task_id, ${SUMS} FROM usage_minute ${W_ALL} AND (user_id != '' OR task_id != '')
GROUP BY tenant, user_id, task_id ORDER BY input_tokens + output_tokens DESC, tenant, user_id, task_id LIMIT {limit:UInt32}`,
    { tenant: 'acme', from_ms: FROM, to_ms: TO, limit: 3 },
  ],
  [
    'deadLettersByReason, no filter',
    deadLettersByReason(),
    `SELECT reason, count() AS count FROM dead_letters FINAL ${NO_WHERE} GROUP BY reason ORDER BY reason`,
    {},
  ],
  [
    'deadLettersByReason, tenant',
    deadLettersByReason({ tenant: 'acme' }),
    'SELECT reason, count() AS count FROM dead_letters FINAL WHERE tenant = {tenant:String} GROUP BY reason ORDER BY reason',
    { tenant: 'acme' },
  ],
];

/** The `{name:Type}` placeholders of a query, by name. */
function placeholders(query: string): Map<string, string> {
  return new Map([...query.matchAll(/\{([a-z_][a-z0-9_]*):([A-Za-z0-9()]+)\}/g)].map((m) => [m[1] as string, m[2] as string]));
}

describe('usage-summary query builders', () => {
  it.each(CASES)('%s: exact SQL and params', (_label, built, query, params) => {
    expect(built.query).toBe(query);
    expect(built.query_params).toEqual(params);
  });

  it.each(CASES)('%s: every placeholder has a param and every param a placeholder', (_label, built) => {
    expect([...placeholders(built.query).keys()].sort()).toEqual(Object.keys(built.query_params).sort());
  });

  it('binds the time filters as Int64 epoch ms, the tenant as String, limits as UInt32', () => {
    const ph = placeholders(topUsersAndTasks(1, { tenant: 't', fromMs: FROM, toMs: TO }).query);
    expect(Object.fromEntries(ph)).toEqual({ tenant: 'String', from_ms: 'Int64', to_ms: 'Int64', limit: 'UInt32' });
  });

  it('the time range is half-open: [from, to)', () => {
    const { query } = totalsByTenant({ fromMs: FROM, toMs: TO });
    expect(query).toContain('window_start >= fromUnixTimestamp64Milli({from_ms:Int64})');
    expect(query).toContain('window_start < fromUnixTimestamp64Milli({to_ms:Int64})');
  });
});

describe('usage-summary query builders: input is never interpolated', () => {
  const EVIL = "x' OR 1=1 --";
  const builders: Array<[string, (tenant: string) => BuiltQuery]> = [
    ['totalsByTenant', (tenant) => totalsByTenant({ tenant, fromMs: FROM, toMs: TO })],
    ['totalsByTenant (day)', (tenant) => totalsByTenant({ tenant }, 'day')],
    ['totalsByModel', (tenant) => totalsByModel({ tenant, fromMs: FROM })],
    ['busiestMinutes', (tenant) => busiestMinutes(10, { tenant, toMs: TO })],
    ['topUsersAndTasks', (tenant) => topUsersAndTasks(10, { tenant })],
    ['deadLettersByReason', (tenant) => deadLettersByReason({ tenant })],
  ];

  it.each(builders)('%s: a hostile tenant only appears in query_params', (_name, build) => {
    const built = build(EVIL);
    expect(built.query).not.toContain(EVIL);
    expect(built.query).not.toContain('1=1');
    expect(built.query_params.tenant).toBe(EVIL);
    // The SQL does not depend on the tenant's value at all.
    expect(built.query).toBe(build('acme').query);
  });

  it.each([
    ['braces', '{tenant:String}'],
    ['backslash and quotes', '\\\'"`'],
    ['newline and comment', 'a\n-- b; DROP TABLE usage_events'],
    ['non-ASCII', 'tenant/ü😀'],
  ])('tenant with %s is passed through unchanged as a param', (_label, tenant) => {
    const built = totalsByTenant({ tenant });
    expect(built.query).toBe(totalsByTenant({ tenant: 'acme' }).query);
    expect(built.query_params).toEqual({ tenant });
  });

  it('numbers are bound too: times and limits never appear in the SQL', () => {
    const built = busiestMinutes(987_654, { fromMs: 1_234_567_890_123, toMs: 1_234_567_890_999 });
    expect(built.query).not.toMatch(/987654|1234567890/);
    expect(built.query_params).toEqual({ from_ms: 1_234_567_890_123, to_ms: 1_234_567_890_999, limit: 987_654 });
  });

  it('builders do not share or mutate state between calls', () => {
    const f = { tenant: 'acme', fromMs: FROM };
    const a = totalsByModel(f);
    a.query_params.tenant = 'changed';
    expect(totalsByModel(f).query_params).toEqual({ tenant: 'acme', from_ms: FROM });
    expect(f).toEqual({ tenant: 'acme', fromMs: FROM });
  });
});
