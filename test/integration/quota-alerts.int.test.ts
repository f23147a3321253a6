/**
 * Quota alerts on the real engine (chDB): usage written through the processor path (decode ->
 * transform -> ClickHouse writer), evaluators run with a fixed clock, alerts stored in
 * `quota_alerts` and POSTed to a local webhook receiver. Checks: each threshold fires once per
 * window (or rolling episode); a second processor running beside the first does not fire again;
 * a restarted evaluator seeded from the table does not re-fire, and still reports recovery.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/load.ts';
import type { QuotaAlert } from '../../domain/quota-alerts.ts';
import { createUsageStore } from '../../processors/clickhouse-writer.ts';
import { createQuotaAlertEvaluator, type QuotaAlertEvaluator } from '../../processors/quota-alerts.ts';
import { decodeBatch, transform } from '../../processors/usage.processor.ts';
import { createWebhookSender, type WebhookSender } from '../../processors/webhook.ts';
import type { QuotaSpec } from '../../schemas/quota.ts';
import { openTestStore, queryRows, type TestStore } from '../helpers/store.ts';

const SECRET = 'whsec-integration-0123456789';
const at = (iso: string) => Date.parse(iso);

const QUOTAS: QuotaSpec[] = [
  { id: 'acme-tokens-day', scope: { tenant: 'acme' }, metric: 'tokens', limit: 10_000, window: { kind: 'calendar', unit: 'day' } },
  { id: 'globex-usd-hour', scope: { tenant: 'globex' }, metric: 'usd', limit: '0.01', window: { kind: 'calendar', unit: 'hour' } },
  { id: 'initech-requests-10m', scope: { tenant: 'initech' }, metric: 'requests', limit: 5, window: { kind: 'rolling', minutes: 10 } },
];

let store: TestStore;
let server: Server;
let url: string;
const deliveries: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
const logs: Array<Record<string, unknown>> = [];
const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
const prices = loadConfig(undefined, {}).prices;
let n = 0;

/** Write usage events through the processor path. Tokens = input + output; gpt-4o costs $2.50/$10 per 1M. */
async function writeUsage(nowIso: string, events: Array<{ tenant: string; time: string; input: number; output: number; count?: number }>) {
  const payloads = events.flatMap((e) =>
    Array.from({ length: e.count ?? 1 }, () =>
      JSON.stringify({
        event_id: `ev-${n++}`,
        timestamp: e.time,
        tenant: e.tenant,
        provider: 'openai',
        model: 'gpt-4o',
        input_tokens: e.input,
        output_tokens: e.output,
      }),
    ),
  );
  const nowMs = at(nowIso);
  const decoded = decodeBatch(
    payloads.map((value, i) => ({ value, source: `test:${n}:${i}` })),
    { nowMs },
  );
  const outcome = transform(decoded, { nowMs, prices, seen: new Map() });
  expect(outcome.deadLetters).toEqual([]);
  await createUsageStore(store.client).write(outcome);
}

/** An evaluator ("one processor") with its own webhook sender, at a clock the test moves. */
function processor(): { evaluator: QuotaAlertEvaluator; webhook: WebhookSender; clock: { now: number } } {
  const clock = { now: 0 };
  const webhook = createWebhookSender({ url, secret: SECRET, maxAttempts: 3, timeoutMs: 5_000, logger, baseDelayMs: 10 });
  const evaluator = createQuotaAlertEvaluator({
    clickhouse: store.client,
    quotas: QUOTAS,
    logger,
    intervalMs: 10_000,
    webhook,
    now: () => clock.now,
  });
  return { evaluator, webhook, clock };
}

/** Evaluate at `iso`, wait for the webhook queue, and return [quota_id, kind] of the alerts stored. */
async function evaluateAt(p: ReturnType<typeof processor>, iso: string): Promise<string[][]> {
  p.clock.now = at(iso);
  const alerts = await p.evaluator.evaluate();
  await p.webhook.idle();
  return alerts.map((a) => [a.quota_id, a.kind]);
}

beforeAll(async () => {
  store = await openTestStore();
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      deliveries.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`;
});
afterAll(async () => {
  if (server) {
    server.closeAllConnections(); // the senders' keep-alive sockets
    await new Promise((resolve) => server.close(resolve));
  }
  await store?.close();
});

describe('quota alerts end to end', () => {
  it('fire once per threshold per window, survive a second processor and a restart, and reach the webhook signed', async () => {
    const a = processor();
    const b = processor(); // a second processor running beside the first

    // 10:00: acme 5,000 tokens (50%), globex 2 x $0.0035 = $0.007 (70%), initech 3 requests (60%).
    await writeUsage('2026-11-29T10:02:00Z', [
      { tenant: 'acme', time: '2026-11-29T10:00:00Z', input: 4_000, output: 1_000 },
      { tenant: 'globex', time: '2026-11-29T10:01:00Z', input: 1_000, output: 100, count: 2 },
      { tenant: 'initech', time: '2026-11-29T10:01:00Z', input: 10, output: 10, count: 3 },
    ]);
    expect(await evaluateAt(a, '2026-11-29T10:02:00Z')).toEqual([]);
    expect(await evaluateAt(b, '2026-11-29T10:02:00Z')).toEqual([]); // b has read the (empty) table

    // 10:04: acme 8,500 (85%), globex $0.0105 (105%: ok -> exhausted), initech 5 requests (100%).
    await writeUsage('2026-11-29T10:05:00Z', [
      { tenant: 'acme', time: '2026-11-29T10:04:00Z', input: 3_000, output: 500 },
      { tenant: 'globex', time: '2026-11-29T10:04:00Z', input: 1_000, output: 100 },
      { tenant: 'initech', time: '2026-11-29T10:04:00Z', input: 10, output: 10, count: 2 },
    ]);
    expect(await evaluateAt(a, '2026-11-29T10:05:00Z')).toEqual([
      ['acme-tokens-day', 'soft'],
      ['globex-usd-hour', 'soft'],
      ['globex-usd-hour', 'hard'],
      ['initech-requests-10m', 'soft'],
      ['initech-requests-10m', 'hard'],
    ]);
    expect(await evaluateAt(a, '2026-11-29T10:05:00Z')).toEqual([]); // the same pass again: nothing new
    // b's memory says nothing fired yet; it re-reads the table before firing and finds a's alerts.
    expect(await evaluateAt(b, '2026-11-29T10:05:30Z')).toEqual([]);

    // 10:05: acme 9,000 (90%): nothing. 10:09: acme 10,000 (100%): hard.
    await writeUsage('2026-11-29T10:06:00Z', [{ tenant: 'acme', time: '2026-11-29T10:05:00Z', input: 500, output: 0 }]);
    expect(await evaluateAt(a, '2026-11-29T10:06:00Z')).toEqual([]);
    await writeUsage('2026-11-29T10:10:00Z', [{ tenant: 'acme', time: '2026-11-29T10:09:00Z', input: 1_000, output: 0 }]);
    expect(await evaluateAt(a, '2026-11-29T10:10:00Z')).toEqual([['acme-tokens-day', 'hard']]);
    expect(await evaluateAt(b, '2026-11-29T10:10:30Z')).toEqual([]);

    // 10:19: acme 12,000 (120%): nothing; initech's 10-minute window [10:10, 10:20) is empty: recovered.
    await writeUsage('2026-11-29T10:20:00Z', [{ tenant: 'acme', time: '2026-11-29T10:19:00Z', input: 2_000, output: 0 }]);
    expect(await evaluateAt(a, '2026-11-29T10:20:00Z')).toEqual([['initech-requests-10m', 'recovered']]);

    // Restart: a and b stop; c starts from the table and fires nothing new in the same windows.
    await a.evaluator.stop();
    await b.evaluator.stop();
    const c = processor();
    expect(await evaluateAt(c, '2026-11-29T10:30:00Z')).toEqual([]);

    // The next day: acme 1,000 (10%), globex's new hour is empty: both recovered, once.
    await writeUsage('2026-11-30T00:30:00Z', [{ tenant: 'acme', time: '2026-11-30T00:10:00Z', input: 1_000, output: 0 }]);
    expect(await evaluateAt(c, '2026-11-30T00:30:00Z')).toEqual([
      ['acme-tokens-day', 'recovered'],
      ['globex-usd-hour', 'recovered'],
    ]);
    expect(await evaluateAt(c, '2026-11-30T00:31:00Z')).toEqual([]);
    await c.evaluator.stop();

    // The table: one row per alert, and no alert was inserted twice (raw count = FINAL count).
    const rows = await queryRows<Record<string, string | number>>(
      store.client,
      `SELECT quota_id, kind, tenant, metric, toString(used) AS used, toString(limit) AS limit, percent, window_kind,
              toString(window_start) AS window_start, toString(episode_start) AS episode_start, toString(fired_at) AS fired_at
       FROM quota_alerts FINAL ORDER BY fired_at, quota_id, kind = 'hard'`,
    );
    expect(rows.map((r) => [r.quota_id, r.kind, r.used, r.percent, r.episode_start, r.fired_at])).toEqual([
      ['acme-tokens-day', 'soft', '8500', 85, '2026-11-29 00:00:00.000', '2026-11-29 10:05:00.000'],
      ['globex-usd-hour', 'soft', '0.0105', 105, '2026-11-29 10:00:00.000', '2026-11-29 10:05:00.000'],
      ['globex-usd-hour', 'hard', '0.0105', 105, '2026-11-29 10:00:00.000', '2026-11-29 10:05:00.000'],
      ['initech-requests-10m', 'soft', '5', 100, '2026-11-29 10:05:00.000', '2026-11-29 10:05:00.000'],
      ['initech-requests-10m', 'hard', '5', 100, '2026-11-29 10:05:00.000', '2026-11-29 10:05:00.000'],
      ['acme-tokens-day', 'hard', '10000', 100, '2026-11-29 00:00:00.000', '2026-11-29 10:10:00.000'],
      ['initech-requests-10m', 'recovered', '0', 0, '2026-11-29 10:05:00.000', '2026-11-29 10:20:00.000'],
      ['acme-tokens-day', 'recovered', '1000', 10, '2026-11-30 00:00:00.000', '2026-11-30 00:30:00.000'],
      ['globex-usd-hour', 'recovered', '0', 0, '2026-11-30 00:00:00.000', '2026-11-30 00:30:00.000'],
    ]);
    expect(rows[1]).toMatchObject({
      tenant: 'globex',
      metric: 'usd',
      limit: '0.01',
      window_kind: 'calendar',
      window_start: '2026-11-29 10:00:00.000',
    });
    expect(rows[3]).toMatchObject({ window_kind: 'rolling', window_start: '2026-11-29 09:55:00.000' });
    const [raw] = await queryRows<{ n: string | number }>(store.client, 'SELECT count() AS n FROM quota_alerts');
    expect(Number(raw?.n)).toBe(9);

    // The webhook got the same 9 alerts, once each, signed over "<timestamp>.<raw body>".
    expect(deliveries).toHaveLength(9);
    const bodies = deliveries.map((d) => JSON.parse(d.body) as { type: string; alert: QuotaAlert });
    expect(bodies.map((b) => [b.type, b.alert.quota_id, b.alert.kind])).toEqual(rows.map((r) => ['quota.alert', r.quota_id, r.kind]));
    for (const [i, d] of deliveries.entries()) {
      const ts = String(d.headers['x-quotaflow-timestamp']);
      expect(d.headers['x-quotaflow-signature']).toBe(`sha256=${createHmac('sha256', SECRET).update(`${ts}.${d.body}`).digest('hex')}`);
      expect(d.headers['x-quotaflow-event-id']).toBe(bodies[i]?.alert.alert_id);
    }
    expect(new Set(deliveries.map((d) => d.headers['x-quotaflow-event-id'])).size).toBe(9);
    expect(bodies[1]?.alert).toMatchObject({
      metric: 'usd',
      used: '0.0105',
      limit: '0.01',
      percent: 105,
      window_end: '2026-11-29T11:00:00.000Z',
    });

    // And the log: one `quota.alert` line per alert, with no failures logged.
    expect(logs.filter((l) => l.event === 'quota.alert')).toHaveLength(9);
    expect(logs.filter((l) => /failed|dropped/.test(String(l.event)))).toEqual([]);
  });
});
