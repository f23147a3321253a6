/**
 * Anomaly detection end to end on the real engine (chDB), issue 5: usage written through the
 * processor path, the detection runner reading the minute aggregates with a fixed clock, episodes
 * stored in `anomalies`, one webhook when an anomaly opens and one when it resolves, read back with
 * GET /v1/anomalies, and a re-scan of the same range that replaces rows instead of adding them.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anomaliesRoute } from '../../api/routes/anomalies.route.ts';
import { loadConfig } from '../../config/load.ts';
import type { QuotaStatus } from '../../domain/quota.ts';
import { CORE_DETECTOR_NAME, coreDetectorFactory, createAnomalyDetection } from '../../processors/anomaly/detection.ts';
import { createUsageStore } from '../../processors/clickhouse-writer.ts';
import { decodeBatch, transform } from '../../processors/usage.processor.ts';
import type { WebhookEvent, WebhookSender } from '../../processors/webhook.ts';
import type { QuotaSpec } from '../../schemas/quota.ts';
import { openTestStore, queryRows, type TestStore } from '../helpers/store.ts';

const M = 60_000;
const T0 = Date.UTC(2026, 10, 2, 6, 0); // Monday 06:00 UTC
const KEY = 'anomaly-key-0123456789abcdef';
const SPIKE_AT = 150; // minutes after T0: u1 sends 20x its tokens for 8 minutes
const LOOP_AT = 165; // u2's agent repeats one prompt 6 times a minute for 6 minutes

let store: TestStore;
let app: FastifyInstance;
const sent: WebhookEvent[] = [];
const webhook: WebhookSender = {
  send: (e) => {
    sent.push(e);
    return true;
  },
  idle: async () => {},
  stop: async () => {},
};

function events(): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  let seed = 11;
  const rnd = () => {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) & 0x7fffffff;
    return seed / 2_147_483_648;
  };
  for (let m = 0; m < 200; m++) {
    for (let u = 0; u < 4; u++) {
      const calls = 8 + Math.floor(rnd() * 5); // 8..12 calls a minute per user
      for (let c = 0; c < calls; c++) {
        const spiking = u === 1 && m >= SPIKE_AT && m < SPIKE_AT + 8;
        out.push({
          event_id: `e-${m}-${u}-${c}`,
          timestamp: T0 + m * M + c * 1_000,
          tenant: 'acme',
          user_id: `u${u}`,
          task_id: `t${u}`,
          provider: 'openai',
          model: 'gpt-4o-mini',
          input_tokens: (spiking ? 20 : 1) * (800 + Math.floor(rnd() * 400)),
          output_tokens: 200,
          prompt_hash: `p-${m}-${u}-${c}`,
        });
      }
    }
    if (m >= LOOP_AT && m < LOOP_AT + 6) {
      for (let c = 0; c < 6; c++) {
        out.push({
          event_id: `loop-${m}-${c}`,
          timestamp: T0 + m * M + 30_000 + c * 1_000,
          tenant: 'acme',
          user_id: 'u2',
          task_id: 'agent',
          provider: 'openai',
          model: 'gpt-4o-mini',
          input_tokens: 900,
          output_tokens: 100,
          prompt_hash: 'same-prompt-again',
        });
      }
    }
  }
  return out;
}

beforeAll(async () => {
  store = await openTestStore();
  const all = events();
  const nowMs = T0 + 300 * M;
  const decoded = decodeBatch(
    all.map((v, i) => ({ value: JSON.stringify(v), source: `test:${i}` })),
    { nowMs },
  );
  const outcome = transform(decoded, { nowMs, prices: loadConfig(undefined, {}).prices, seen: new Map() });
  expect(outcome.deadLetters).toEqual([]);
  await createUsageStore(store.client).write(outcome);
  app = Fastify();
  await app.register(anomaliesRoute, { clickhouse: store.client, keys: [{ key: KEY, tenant: 'acme' }] });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await store?.close();
});

describe('continuous detection', () => {
  let clock = T0 + 140 * M;
  const detection = () =>
    createAnomalyDetection({
      clickhouse: store.client,
      detectorFactory: coreDetectorFactory(),
      detectorName: CORE_DETECTOR_NAME,
      logger: pino({ level: 'silent' }),
      webhook,
      now: () => clock,
      warmupMs: 140 * M,
    });
  let live: ReturnType<typeof detection>;

  it('warms up on the calm history without a notification', async () => {
    live = detection();
    const run = await live.runOnce(); // scores [T0 - 2 min, T0 + 138 min)
    expect(run.toMs).toBe(T0 + 138 * M);
    expect(sent).toEqual([]);
  });

  it('opens the spike and the loop once each, with the series that caused them', async () => {
    clock = T0 + 180 * M;
    await live.runOnce(); // minutes 138..177
    const opened = sent.filter((e) => (e.body as { change: string }).change === 'opened');
    const kinds = opened.map((e) => {
      const a = (e.body as { anomaly: { kind: string; dimension: string; series_key: string; window_start: string } }).anomaly;
      return [a.kind, a.dimension, a.series_key, a.window_start];
    });
    expect(kinds).toContainEqual(['token_spike', 'user', 'u1', new Date(T0 + SPIKE_AT * M).toISOString()]);
    expect(kinds).toContainEqual(['runaway_loop', 'task', 'u2/agent', expect.any(String)]);
    // Nothing opened before the injections: the calm part stays quiet.
    for (const [, , , start] of kinds) expect(Date.parse(start as string)).toBeGreaterThanOrEqual(T0 + SPIKE_AT * M);
    // One open notification per episode.
    const ids = opened.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('a restart while anomalies are open neither opens them again nor forgets them', async () => {
    const before = sent.length;
    clock = T0 + 183 * M;
    live = detection(); // a new process: no memory but the table
    await live.runOnce(); // warm-up over the last 140 minutes, spike and loop included
    expect(sent.slice(before).filter((e) => (e.body as { change: string }).change === 'opened')).toEqual([]);
  });

  it('resolves each open episode once, after five quiet minutes', async () => {
    clock = T0 + 200 * M;
    await live.runOnce(); // minutes 178..197: the last loop minute is 170, the spike ended at 158
    const byAnomaly = new Map<string, string[]>();
    for (const e of sent) {
      const b = e.body as { change: string; anomaly: { anomaly_id: string } };
      byAnomaly.set(b.anomaly.anomaly_id, [...(byAnomaly.get(b.anomaly.anomaly_id) ?? []), b.change]);
    }
    for (const changes of byAnomaly.values()) expect(changes).toEqual(['opened', 'resolved']);
    const rows = await queryRows<{ status: string; n: string }>(
      store.client,
      'SELECT status, count() AS n FROM anomalies FINAL GROUP BY status ORDER BY status',
    );
    expect(rows.map((r) => [r.status, Number(r.n)])).toEqual([['resolved', byAnomaly.size]]);
  });

  it('serves them on GET /v1/anomalies, filtered by kind, and a re-scan replaces rather than adds', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/anomalies?kind=runaway_loop', headers: { 'x-api-key': KEY } });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ tenant: string; anomalies: { kind: string; status: string; actual: number; details: object }[] }>();
    expect(body.tenant).toBe('acme');
    expect(body.anomalies).toHaveLength(1);
    expect(body.anomalies[0]).toMatchObject({ kind: 'runaway_loop', status: 'resolved', details: { prompt_hash: 'same-prompt-again' } });
    expect(body.anomalies[0]!.actual).toBeGreaterThanOrEqual(20);
    expect((await app.inject({ method: 'GET', url: '/v1/anomalies' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/v1/anomalies?min_score=2', headers: { 'x-api-key': KEY } })).statusCode).toBe(400);

    const before = await queryRows<{ n: string }>(store.client, 'SELECT count() AS n FROM anomalies FINAL');
    await detection().scan(T0 + 140 * M, T0 + 200 * M);
    const after = await queryRows<{ n: string }>(store.client, 'SELECT count() AS n FROM anomalies FINAL');
    expect(after).toEqual(before);
  });
});

describe('quota burn across a restart', () => {
  // A daily quota projected to run out at 20:00, before its window ends at midnight.
  const quota: QuotaSpec = {
    id: 'acme-day',
    scope: { tenant: 'acme' },
    metric: 'tokens',
    limit: 1_000_000,
    window: { kind: 'calendar', unit: 'day' },
  };
  const status = (nowMs: number): QuotaStatus => ({
    id: 'acme-day',
    metric: 'tokens',
    used: 600_000,
    limit: 1_000_000,
    remaining: 400_000,
    percent: 60,
    state: 'ok',
    window_start: new Date(Date.UTC(2026, 10, 2)).toISOString(),
    window_end: new Date(Date.UTC(2026, 10, 3)).toISOString(),
    burn_rate_per_hour: 50_000,
    projected_exhaustion_at: new Date(Math.max(nowMs + 60_000, Date.UTC(2026, 10, 2, 20))).toISOString(),
    retry_after_s: null,
  });
  const burnEvents: WebhookEvent[] = [];
  const start = (nowMs: number) =>
    createAnomalyDetection({
      clickhouse: store.client,
      detectorFactory: coreDetectorFactory(),
      detectorName: CORE_DETECTOR_NAME,
      logger: pino({ level: 'silent' }),
      webhook: { ...webhook, send: (e) => burnEvents.push(e) > 0 },
      now: () => nowMs,
      warmupMs: 10 * M,
      quotas: [quota],
      measure: async (_q, t) => status(t),
    });

  it('is opened once, and the restarted process keeps the same anomaly', async () => {
    await start(T0 + 600 * M).runOnce();
    await start(T0 + 602 * M).runOnce(); // a restart two minutes later: the forecast still says 20:00
    const changes = burnEvents.map((e) => (e.body as { change: string; anomaly: { kind: string } }).change);
    expect(changes).toEqual(['opened']);
    const rows = await queryRows<{ n: string }>(
      store.client,
      "SELECT count() AS n FROM anomalies FINAL WHERE kind = 'quota_burn' AND status = 'open'",
    );
    expect(Number(rows[0]!.n)).toBe(1);
  });
});
