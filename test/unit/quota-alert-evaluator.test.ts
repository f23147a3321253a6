/**
 * The evaluator's failure handling with a fake ClickHouse client: a failed insert neither logs nor
 * sends the alert and the next pass stores the same alert (same id); no pass fires before the
 * stored state was read; one quota that cannot be measured does not hold back the others.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createQuotaAlertEvaluator } from '../../processors/quota-alerts.ts';
import type { WebhookEvent, WebhookSender } from '../../processors/webhook.ts';
import type { QuotaSpec } from '../../schemas/quota.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';

const NOW = Date.UTC(2026, 10, 29, 10, 0, 0);
const QUOTAS: QuotaSpec[] = [
  { id: 'a-day', scope: { tenant: 'a' }, metric: 'tokens', limit: 1_000, window: { kind: 'calendar', unit: 'day' } },
  { id: 'b-day', scope: { tenant: 'b' }, metric: 'tokens', limit: 1_000, window: { kind: 'calendar', unit: 'day' } },
  { id: 'team-day', scope: { tenant: 'a', team: 'core' }, metric: 'tokens', limit: 1_000, window: { kind: 'calendar', unit: 'day' } },
];

interface Fake {
  client: ClickHouseClient;
  inserted: Array<{ table: string; values: Array<Record<string, unknown>>; token: unknown }>;
  failInserts: number;
  failAlertReads: number;
  /** Usage by tenant; a tenant missing here makes its usage query fail. */
  used: Record<string, number>;
}

/** A client that answers the two queries the evaluator makes: usage (quotaUsage) and stored alerts. */
function fakeClickHouse(used: Record<string, number>): Fake {
  const fake: Fake = { inserted: [], failInserts: 0, failAlertReads: 0, used, client: undefined as unknown as ClickHouseClient };
  const answer = (rows: unknown[]) => ({ json: async () => rows });
  fake.client = {
    async query(q: { query: string; query_params: Record<string, unknown> }) {
      if (q.query.includes('FROM quota_alerts')) {
        if (fake.failAlertReads > 0) {
          fake.failAlertReads--;
          throw new Error('connection refused');
        }
        // What the table holds: the rows inserted so far (the fields the state needs).
        const rows = fake.inserted.flatMap((i) => i.values);
        return answer(
          rows.map((r) => ({
            tenant: r.tenant,
            quota_id: r.quota_id,
            kind: r.kind,
            episode_start_ms: r.episode_start,
            fired_at_ms: r.fired_at,
          })),
        );
      }
      const tenant = String(q.query_params.tenant);
      if (!(tenant in fake.used)) throw new Error(`no usage for ${tenant}`);
      return answer([{ used: String(fake.used[tenant]) }]);
    },
    async insert(i: { table: string; values: Array<Record<string, unknown>>; clickhouse_settings?: Record<string, unknown> }) {
      if (fake.failInserts > 0) {
        fake.failInserts--;
        throw new Error('timeout');
      }
      fake.inserted.push({ table: i.table, values: i.values, token: i.clickhouse_settings?.insert_deduplication_token });
    },
  } as unknown as ClickHouseClient;
  return fake;
}

function setup(used: Record<string, number>) {
  const fake = fakeClickHouse(used);
  const sent: WebhookEvent[] = [];
  const webhook: WebhookSender = { send: (e) => sent.push(e) > 0, idle: async () => undefined, stop: async () => undefined };
  const logs: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const evaluator = createQuotaAlertEvaluator({
    clickhouse: fake.client,
    quotas: QUOTAS,
    logger,
    intervalMs: 10_000,
    webhook,
    now: () => NOW,
  });
  return { fake, sent, logs, evaluator };
}
const events = (logs: Array<Record<string, unknown>>) => logs.map((l) => l.event);

describe('createQuotaAlertEvaluator: failures', () => {
  it('a failed insert logs store_failed, sends nothing, and the next pass stores the same alert', async () => {
    const { fake, sent, logs, evaluator } = setup({ a: 900, b: 0 });
    fake.failInserts = 1;
    expect(await evaluator.evaluate()).toEqual([]);
    expect(sent).toEqual([]);
    expect(events(logs)).toEqual(['quota.alert.store_failed']);
    expect(logs[0]).toMatchObject({ quota_id: 'a-day' });
    const failedIds = logs[0]?.alert_ids;

    const stored = await evaluator.evaluate();
    expect(stored.map((a) => [a.quota_id, a.kind, a.alert_id])).toEqual([['a-day', 'soft', (failedIds as string[])[0]]]);
    expect(fake.inserted).toHaveLength(1);
    expect(fake.inserted[0]).toMatchObject({ table: 'quota_alerts', token: stored[0]?.alert_id });
    expect(fake.inserted[0]?.values[0]).toMatchObject({
      kind: 'soft',
      used: '900',
      limit: '1000',
      user_id: '',
      team: '',
      provider: '',
      episode_start: Date.UTC(2026, 10, 29),
      fired_at: NOW,
    });
    expect(sent).toEqual([{ id: stored[0]?.alert_id, body: { type: 'quota.alert', alert: stored[0] } }]);
    expect(events(logs)).toEqual(['quota.alert.store_failed', 'quota.alert']);
    expect(await evaluator.evaluate()).toEqual([]); // and once stored, never again
  });

  it('does not fire before the stored alerts could be read', async () => {
    const { fake, sent, logs, evaluator } = setup({ a: 1_000, b: 0 });
    fake.failAlertReads = 1;
    expect(await evaluator.evaluate()).toEqual([]);
    expect(events(logs)).toEqual(['quota.alert.seed_failed']);
    expect((await evaluator.evaluate()).map((a) => a.kind)).toEqual(['soft', 'hard']);
    expect(sent.map((e) => (e.body as { alert: { kind: string } }).alert.kind)).toEqual(['soft', 'hard']);
  });

  it('a quota that cannot be measured is logged and skipped; the others still fire; team quotas without teams are not measured', async () => {
    const { fake, logs, evaluator } = setup({ b: 950 }); // tenant a's usage query fails
    expect((await evaluator.evaluate()).map((a) => [a.quota_id, a.kind])).toEqual([['b-day', 'soft']]);
    expect(logs.filter((l) => l.event === 'quota.alert.measure_failed').map((l) => l.quota_id)).toEqual(['a-day']);
    expect(fake.inserted.flatMap((i) => i.values.map((v) => v.quota_id))).toEqual(['b-day']);
  });

  it('stop waits for the pass in flight and is idempotent', async () => {
    const { evaluator } = setup({ a: 900, b: 0 });
    const pass = evaluator.evaluate();
    await Promise.all([evaluator.stop(), evaluator.stop()]);
    expect((await pass).map((a) => a.kind)).toEqual(['soft']);
  });
});
