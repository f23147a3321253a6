/**
 * GET /metrics of `quotaflow all` in embedded mode (in-process transport, chDB), started in this
 * process by the role wiring itself (cli/roles.ts startRole): after ingest traffic (valid and
 * invalid events, a bad key) and routing calls, every family of issue 7 is exposed with the values
 * the traffic implies.
 *
 * Consumer lag is measured from the Kafka admin API only: with the in-process transport the
 * family is declared (HELP/TYPE) and has no samples.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createLifecycle, type Lifecycle } from '../../cli/lifecycle.ts';
import { createLogger } from '../../cli/logger.ts';
import { startRole } from '../../cli/roles.ts';
import { loadConfig } from '../../config/load.ts';
import { until } from '../helpers/kafka.ts';
import { parseScrape, type Scrape } from '../helpers/prometheus.ts';

const KEY = 'key-m-0123456789abcdef';
const dir = mkdtempSync(join(tmpdir(), 'qf-metrics-'));
let lifecycle: Lifecycle;
let base: string;

beforeAll(async () => {
  const file = join(dir, 'config.yaml');
  writeFileSync(
    file,
    stringify({
      clickhouse: { mode: 'embedded', path: join(dir, 'data') },
      http: { port: 0 },
      pipeline: { batch_max_wait_ms: 50 },
      ingest_keys: [{ key: KEY, tenant: 'tenant-m' }],
      quotas: [
        { id: 'm-tokens-day', scope: { tenant: 'tenant-m' }, metric: 'tokens', limit: 10_000, window: { kind: 'calendar', unit: 'day' } },
      ],
      alerts: { interval_ms: 1_000 },
      routing: {
        candidates: [
          { id: 'gpt', provider: 'openai', model: 'gpt-4o', compliance: ['soc2'] },
          { id: 'sonnet', provider: 'anthropic', model: 'claude-sonnet-4-20250514', compliance: ['soc2', 'gdpr'] },
        ],
      },
    }),
  );
  const loaded = loadConfig(file, {});
  const logger = createLogger('silent');
  lifecycle = createLifecycle(logger);
  const { url } = await startRole('all', { loaded, logger, lifecycle });
  base = url as string;
});

afterAll(async () => {
  await lifecycle?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const scrape = async (): Promise<Scrape> => {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  return parseScrape(await res.text());
};

const post = (path: string, body: string, contentType: string, key = KEY) =>
  fetch(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': contentType }, body });

describe('GET /metrics after traffic (quotaflow all, embedded)', () => {
  it('exposes every family with the values the traffic implies', async () => {
    const res0 = await fetch(`${base}/metrics`);
    expect(res0.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(parseScrape(await res0.text()).value('quotaflow_ingest_events_total', { result: 'accepted' })).toBe(0);

    // 5 valid events (1,010 tokens each, one second old) + one broken line + one negative count.
    const ts = new Date(Date.now() - 1_000).toISOString();
    const valid = Array.from({ length: 5 }, (_, i) =>
      JSON.stringify({ event_id: `m${i}`, timestamp: ts, provider: 'openai', model: 'gpt-4o', input_tokens: 1_000, output_tokens: 10 }),
    );
    const negative = JSON.stringify({
      event_id: 'bad',
      timestamp: ts,
      provider: 'openai',
      model: 'gpt-4o',
      input_tokens: -1,
      output_tokens: 0,
    });
    const ingest = await post('/v1/events', [...valid, 'not json', negative].join('\n'), 'application/x-ndjson');
    expect(ingest.status).toBe(202);
    expect(await ingest.json()).toMatchObject({ accepted: 5, rejected: 2 });
    expect((await post('/v1/events', valid[0] as string, 'application/json', 'not-a-key-0123456789')).status).toBe(401);

    // Routing: chosen with no exclusion; chosen with gpt excluded (no gdpr); none (nobody has hipaa).
    const route = async (body: object) =>
      (await post('/v1/route', JSON.stringify(body), 'application/json')).json() as Promise<{ chosen: { id: string } | null }>;
    expect((await route({})).chosen).not.toBeNull();
    expect((await route({ required_compliance: ['gdpr'] })).chosen?.id).toBe('sonnet');
    expect((await route({ required_compliance: ['hipaa'] })).chosen).toBeNull();

    // The processor writes asynchronously, and the quota evaluator measures every second.
    let s = await scrape();
    await until(
      async () => {
        s = await scrape();
        return (
          s.value('quotaflow_rows_written_total', { table: 'usage_events' }) === 5 &&
          s.value('quotaflow_rows_written_total', { table: 'dead_letters' }) === 2 &&
          s.value('quotaflow_quota_utilisation_ratio', { quota_id: 'm-tokens-day' }) === 0.505
        );
      },
      'the batches to be written and the quota measured',
      30_000,
    );

    // Ingest: one accepted request (5 + 2 events), one refused key; one produce, acknowledged.
    expect(s.value('quotaflow_ingest_requests_total', { result: 'accepted' })).toBe(1);
    expect(s.value('quotaflow_ingest_requests_total', { result: 'unauthorized' })).toBe(1);
    expect(s.value('quotaflow_ingest_events_total', { result: 'accepted' })).toBe(5);
    expect(s.value('quotaflow_ingest_events_total', { result: 'rejected' })).toBe(2);
    expect(s.value('quotaflow_ingest_produce_duration_seconds_count', { outcome: 'ok' })).toBe(1);
    expect(s.value('quotaflow_ingest_produce_duration_seconds_count', { outcome: 'error' })).toBe(0);

    // Processor: the usage pipeline saw the 5 valid messages, the dead-letter pipeline the 2 others.
    expect(s.value('quotaflow_processor_batch_size_messages_sum', { pipeline: 'usage' })).toBe(5);
    expect(s.value('quotaflow_processor_batch_size_messages_sum', { pipeline: 'dead-letters' })).toBe(2);
    const batches = s.value('quotaflow_processor_batch_size_messages_count', { pipeline: 'usage' }) as number;
    expect(batches).toBeGreaterThanOrEqual(1);
    expect(s.value('quotaflow_processor_flush_duration_seconds_count', { pipeline: 'usage' })).toBe(batches);
    expect(s.value('quotaflow_processor_flush_duration_seconds_sum', { pipeline: 'usage' })).toBeGreaterThan(0);
    expect(s.value('quotaflow_dead_letters_total', { reason: 'invalid_json' })).toBe(1);
    expect(s.value('quotaflow_dead_letters_total', { reason: 'invalid_event' })).toBe(1);
    expect(s.value('quotaflow_dead_letters_total', { reason: 'conflicting_duplicate' })).toBe(0);

    // Freshness: one observation per usage batch; the events were at least 1 s old when written.
    expect(s.value('quotaflow_event_freshness_seconds_count')).toBe(batches);
    const freshness = s.value('quotaflow_event_freshness_seconds_sum') as number;
    expect(freshness / batches).toBeGreaterThanOrEqual(1);
    expect(freshness / batches).toBeLessThan(60);

    // Quota: 5 x 1,010 tokens of 10,000 (checked in the wait above: 0.505).
    expect(s.value('quotaflow_quota_utilisation_ratio', { quota_id: 'm-tokens-day' })).toBe(0.505);

    // Routing: 2 chosen, 1 none; gpt excluded once, both excluded once: 3 compliance mismatches.
    expect(s.value('quotaflow_routing_decisions_total', { outcome: 'chosen' })).toBe(2);
    expect(s.value('quotaflow_routing_decisions_total', { outcome: 'none' })).toBe(1);
    expect(s.value('quotaflow_routing_exclusions_total', { reason: 'compliance_mismatch' })).toBe(3);
    expect(s.value('quotaflow_routing_exclusions_total', { reason: 'quota_exhausted' })).toBe(0);

    // Anomalies: declared at zero for every kind (no anomaly in this traffic).
    expect(s.value('quotaflow_anomalies_total', { kind: 'token_spike', change: 'opened' })).toBe(0);
    expect(s.value('quotaflow_anomalies_total', { kind: 'quota_burn', change: 'resolved' })).toBe(0);

    // Consumer lag: declared; samples only on Kafka.
    expect(s.families.has('quotaflow_consumer_lag_messages')).toBe(true);
    expect(s.samples('quotaflow_consumer_lag_messages')).toEqual([]);

    // Process: event-loop lag and heap.
    expect(s.value('quotaflow_nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(s.value('quotaflow_nodejs_heap_size_used_bytes')).toBeGreaterThan(1_000_000);
  });
});
