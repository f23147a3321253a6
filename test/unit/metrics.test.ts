/**
 * The metric families of observability/metrics.ts as a scrape shows them: names, labels, zero
 * series for the closed label sets, and the values each recorder adds; plus the usage store
 * wrapper (processors/store-metrics.ts) and the GET /metrics route of the app factory.
 */
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { createMetrics } from '../../observability/metrics.ts';
import type { UsageStore } from '../../processors/clickhouse-writer.ts';
import { withStoreMetrics } from '../../processors/store-metrics.ts';
import type { BatchOutcome, DeadLetterRow, UsageEventRow } from '../../processors/usage.processor.ts';
import { parseScrape } from '../helpers/prometheus.ts';

const scrape = async (m: ReturnType<typeof createMetrics>) => parseScrape(await m.registry.metrics());

describe('createMetrics', () => {
  it('starts the closed label sets at zero, so rate() has a series from the first scrape', async () => {
    const s = await scrape(createMetrics({ defaultMetrics: false }));
    expect(s.value('quotaflow_ingest_requests_total', { result: 'accepted' })).toBe(0);
    expect(s.value('quotaflow_ingest_requests_total', { result: 'unavailable' })).toBe(0);
    expect(s.value('quotaflow_ingest_events_total', { result: 'rejected' })).toBe(0);
    expect(s.value('quotaflow_dead_letters_total', { reason: 'conflicting_duplicate' })).toBe(0);
    expect(s.value('quotaflow_rows_written_total', { table: 'usage_events' })).toBe(0);
    expect(s.value('quotaflow_routing_decisions_total', { outcome: 'none' })).toBe(0);
    expect(s.value('quotaflow_routing_exclusions_total', { reason: 'breaker_open' })).toBe(0);
    expect(s.value('quotaflow_consumer_lag_collect_errors_total')).toBe(0);
    // No tenant or user label anywhere.
    for (const name of ['quotaflow_ingest_requests_total', 'quotaflow_rows_written_total', 'quotaflow_routing_exclusions_total']) {
      for (const sample of s.samples(name)) expect(Object.keys(sample.labels)).toHaveLength(1);
    }
  });

  it('prefixes the default process metrics (event-loop lag, heap) with quotaflow_', async () => {
    const s = await scrape(createMetrics());
    for (const f of [
      'quotaflow_nodejs_eventloop_lag_seconds',
      'quotaflow_nodejs_heap_size_used_bytes',
      'quotaflow_process_resident_memory_bytes',
    ]) {
      expect(s.families.has(f), f).toBe(true);
    }
    for (const f of s.families) expect(f).toMatch(/^quotaflow_[a-z0-9_]+$/);
  });

  it('ingest: requests by result, events by result, produce latency by outcome', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.ingest.request('accepted');
    m.ingest.request('accepted');
    m.ingest.request('unauthorized');
    m.ingest.events(7, 2);
    m.ingest.events(3, 0);
    m.ingest.produced(0.004, true);
    m.ingest.produced(2, false);
    const s = await scrape(m);
    expect(s.value('quotaflow_ingest_requests_total', { result: 'accepted' })).toBe(2);
    expect(s.value('quotaflow_ingest_requests_total', { result: 'unauthorized' })).toBe(1);
    expect(s.value('quotaflow_ingest_events_total', { result: 'accepted' })).toBe(10);
    expect(s.value('quotaflow_ingest_events_total', { result: 'rejected' })).toBe(2);
    expect(s.value('quotaflow_ingest_produce_duration_seconds_count', { outcome: 'ok' })).toBe(1);
    // 0.004 s falls in the 5 ms bucket, not in the 2.5 ms one.
    expect(s.value('quotaflow_ingest_produce_duration_seconds_bucket', { outcome: 'ok', le: '0.0025' })).toBe(0);
    expect(s.value('quotaflow_ingest_produce_duration_seconds_bucket', { outcome: 'ok', le: '0.005' })).toBe(1);
    expect(s.value('quotaflow_ingest_produce_duration_seconds_sum', { outcome: 'error' })).toBe(2);
  });

  it('routing: one decision per call, one exclusion per excluded candidate', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.routing.decision({ chosen: { id: 'a' }, excluded: [{ reason: 'compliance_mismatch' }] });
    m.routing.decision({ chosen: null, excluded: [{ reason: 'quota_exhausted' }, { reason: 'compliance_mismatch' }] });
    const s = await scrape(m);
    expect(s.value('quotaflow_routing_decisions_total', { outcome: 'chosen' })).toBe(1);
    expect(s.value('quotaflow_routing_decisions_total', { outcome: 'none' })).toBe(1);
    expect(s.value('quotaflow_routing_exclusions_total', { reason: 'compliance_mismatch' })).toBe(2);
    expect(s.value('quotaflow_routing_exclusions_total', { reason: 'quota_exhausted' })).toBe(1);
  });

  it('pipeline, quotas and anomalies', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.pipeline.batch('usage', 500, 0.2);
    m.pipeline.batch('usage', 1_500, 0.3);
    m.quotas.utilisation('team-day', 0.8125);
    m.quotas.utilisation('team-day', 1.2);
    m.anomalies.declareKinds(['token_spike', 'runaway_loop']);
    m.anomalies.changed('runaway_loop', 'opened');
    const s = await scrape(m);
    expect(s.value('quotaflow_processor_batch_size_messages_count', { pipeline: 'usage' })).toBe(2);
    expect(s.value('quotaflow_processor_batch_size_messages_sum', { pipeline: 'usage' })).toBe(2_000);
    expect(s.value('quotaflow_processor_batch_size_messages_bucket', { pipeline: 'usage', le: '1000' })).toBe(1);
    expect(s.value('quotaflow_processor_flush_duration_seconds_sum', { pipeline: 'usage' })).toBeCloseTo(0.5, 10);
    expect(s.value('quotaflow_quota_utilisation_ratio', { quota_id: 'team-day' })).toBe(1.2); // a gauge: the last value
    expect(s.value('quotaflow_anomalies_total', { kind: 'runaway_loop', change: 'opened' })).toBe(1);
    expect(s.value('quotaflow_anomalies_total', { kind: 'token_spike', change: 'resolved' })).toBe(0);
  });

  it('lag: a group set replaces its partitions (a partition gone disappears), other groups stay', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.lag.set('g1', [
      { topic: 't', partition: 0, lag: 5 },
      { topic: 't', partition: 1, lag: 7 },
    ]);
    m.lag.set('g2', [{ topic: 'u', partition: 0, lag: 1 }]);
    m.lag.set('g1', [{ topic: 't', partition: 0, lag: 2 }]);
    m.lag.failed();
    const s = await scrape(m);
    const lags = s.samples('quotaflow_consumer_lag_messages').sort((x, y) => (x.labels.group ?? '').localeCompare(y.labels.group ?? ''));
    expect(lags).toEqual([
      { labels: { group: 'g1', topic: 't', partition: '0' }, value: 2 },
      { labels: { group: 'g2', topic: 'u', partition: '0' }, value: 1 },
    ]);
    expect(s.value('quotaflow_consumer_lag_collect_errors_total')).toBe(1);
  });

  it('two registries in one process are independent', async () => {
    const a = createMetrics({ defaultMetrics: false });
    const b = createMetrics({ defaultMetrics: false });
    a.ingest.request('accepted');
    expect((await scrape(b)).value('quotaflow_ingest_requests_total', { result: 'accepted' })).toBe(0);
  });
});

describe('withStoreMetrics', () => {
  const event = (timestamp: number) => ({ timestamp }) as UsageEventRow;
  const dead = (reason: DeadLetterRow['reason']) => ({ reason }) as DeadLetterRow;
  const outcome = (events: UsageEventRow[], deadLetters: DeadLetterRow[]): BatchOutcome => ({ events, deadLetters, duplicates: 0 });

  it('counts rows by table and dead letters by reason, and observes the oldest event age once per batch', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const inner: UsageStore = { lookupSeen: async () => new Map(), write: async () => undefined };
    const store = withStoreMetrics(inner, m.store, () => 100_000);
    await store.write(
      outcome([event(97_500), event(99_000), event(98_000)], [dead('invalid_json'), dead('invalid_event'), dead('invalid_json')]),
    );
    await store.write(outcome([], [dead('conflicting_duplicate')])); // no events: no freshness observation
    const s = await scrape(m);
    expect(s.value('quotaflow_rows_written_total', { table: 'usage_events' })).toBe(3);
    expect(s.value('quotaflow_rows_written_total', { table: 'dead_letters' })).toBe(4);
    expect(s.value('quotaflow_dead_letters_total', { reason: 'invalid_json' })).toBe(2);
    expect(s.value('quotaflow_dead_letters_total', { reason: 'invalid_event' })).toBe(1);
    expect(s.value('quotaflow_dead_letters_total', { reason: 'conflicting_duplicate' })).toBe(1);
    expect(s.value('quotaflow_event_freshness_seconds_count')).toBe(1);
    expect(s.value('quotaflow_event_freshness_seconds_sum')).toBe(2.5); // (100,000 - 97,500) ms
  });

  it('counts nothing when the write fails', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const failing: UsageStore = {
      lookupSeen: async () => new Map(),
      write: async () => {
        throw new Error('ClickHouse down');
      },
    };
    await expect(withStoreMetrics(failing, m.store).write(outcome([event(1)], [dead('invalid_json')]))).rejects.toThrow('ClickHouse down');
    const s = await scrape(m);
    expect(s.value('quotaflow_rows_written_total', { table: 'usage_events' })).toBe(0);
    expect(s.value('quotaflow_dead_letters_total', { reason: 'invalid_json' })).toBe(0);
    expect(s.value('quotaflow_event_freshness_seconds_count')).toBe(0);
  });
});

describe('GET /metrics', () => {
  it('answers the registry in the Prometheus text format, without an API key', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    metrics.ingest.request('accepted');
    const app = buildApp({ logger: false, bodyLimitBytes: 1_024, readiness: {}, metrics });
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(metrics.registry.contentType);
    expect(parseScrape(res.body).value('quotaflow_ingest_requests_total', { result: 'accepted' })).toBe(1);
    await app.close();
  });

  it('is not served without metrics', async () => {
    const app = buildApp({ logger: false, bodyLimitBytes: 1_024, readiness: {} });
    expect((await app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
    await app.close();
  });
});
