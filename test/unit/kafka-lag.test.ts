/**
 * Consumer lag arithmetic (observability/kafka-lag.ts `partitionLags`) and the collector's rounds
 * over a fake admin: end offset - committed offset per partition, no commit = everything
 * retained, failed rounds keep the last values and reconnect.
 */
import { describe, expect, it } from 'vitest';
import { type LagAdmin, partitionLags, startLagCollector } from '../../observability/kafka-lag.ts';
import { createMetrics } from '../../observability/metrics.ts';
import { parseScrape } from '../helpers/prometheus.ts';

describe('partitionLags', () => {
  it.each([
    // [case, high, low, committed, lag]
    ['committed inside the log: high - committed', '1000', '0', '940', 60],
    ['caught up', '1000', '0', '1000', 0],
    ['never committed (-1): everything retained, high - low', '1000', '200', '-1', 800],
    ['committed before the earliest retained offset: high - low', '1000', '200', '150', 800],
    ['committed past the end (topic re-created): 0, never negative', '10', '0', '25', 0],
    ['empty partition, no commit', '0', '0', '-1', 0],
    ['int64 offsets beyond 2^53 stay exact in the difference', '9007199254740993', '0', '9007199254740990', 3],
  ] as const)('%s', (_case, high, low, committed, lag) => {
    expect(partitionLags('t', [{ partition: 3, high, low }], [{ partition: 3, offset: committed }])).toEqual([
      { topic: 't', partition: 3, lag },
    ]);
  });

  it('per partition, in partition order; a partition the group never committed is missing from its offsets', () => {
    const ends = [
      { partition: 2, high: '50', low: '10' },
      { partition: 0, high: '100', low: '0' },
      { partition: 1, high: '7', low: '0' },
    ];
    const committed = [
      { partition: 0, offset: '90' },
      { partition: 1, offset: '7' },
    ];
    expect(partitionLags('usage', ends, committed)).toEqual([
      { topic: 'usage', partition: 0, lag: 10 },
      { topic: 'usage', partition: 1, lag: 0 },
      { topic: 'usage', partition: 2, lag: 40 }, // 50 - 10: no commit
    ]);
  });

  it('rejects an offset that is not an integer string, naming topic, partition and field', () => {
    expect(() => partitionLags('usage', [{ partition: 4, high: '12x', low: '0' }], [])).toThrow(
      'topic usage partition 4: high must be an integer offset string, got "12x"',
    );
    expect(() => partitionLags('usage', [{ partition: 0, high: '5', low: '0' }], [{ partition: 0, offset: '' }])).toThrow(
      'topic usage partition 0: committed offset must be an integer offset string',
    );
  });
});

/** A fake admin over fixed offsets; `fail` makes the next calls reject. */
function fakeAdmin(state: {
  ends: Record<string, Array<{ partition: number; high: string; low: string }>>;
  committed: Record<string, Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }>>;
  fail?: boolean;
  connects: number;
  disconnects: number;
}) {
  return async (): Promise<LagAdmin> => {
    state.connects++;
    return {
      async fetchTopicOffsets(topic) {
        if (state.fail) throw new Error('broker down');
        return state.ends[topic] ?? [];
      },
      async fetchOffsets({ groupId }) {
        if (state.fail) throw new Error('broker down');
        return state.committed[groupId] ?? [];
      },
      async disconnect() {
        state.disconnects++;
      },
    };
  };
}

describe('startLagCollector', () => {
  it('sets the lag of each group and topic, keeps it through a failed round, reconnects after it', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const state = {
      ends: {
        usage: [
          { partition: 0, high: '100', low: '0' },
          { partition: 1, high: '40', low: '0' },
        ],
        dlq: [{ partition: 0, high: '3', low: '0' }],
      },
      committed: {
        proc: [{ topic: 'usage', partitions: [{ partition: 0, offset: '75' }] }],
        'proc.dlq': [{ topic: 'dlq', partitions: [{ partition: 0, offset: '-1' }] }],
      },
      fail: false,
      connects: 0,
      disconnects: 0,
    };
    const errors: unknown[] = [];
    const collector = startLagCollector({
      targets: [
        { group: 'proc', topic: 'usage' },
        { group: 'proc.dlq', topic: 'dlq' },
      ],
      metrics: metrics.lag,
      intervalMs: 3_600_000, // rounds only when the test calls collect()
      connect: fakeAdmin(state),
      onError: (e) => errors.push(e),
    });
    const lag = async (group: string, topic: string, partition: string) =>
      parseScrape(await metrics.registry.metrics()).value('quotaflow_consumer_lag_messages', { group, topic, partition });
    try {
      expect(await collector.collect()).toBe(true);
      expect(await lag('proc', 'usage', '0')).toBe(25); // 100 - 75
      expect(await lag('proc', 'usage', '1')).toBe(40); // no commit: 40 - 0
      expect(await lag('proc.dlq', 'dlq', '0')).toBe(3);

      state.fail = true;
      expect(await collector.collect()).toBe(false);
      expect(errors).toHaveLength(1);
      expect(await lag('proc', 'usage', '0')).toBe(25); // kept
      expect(parseScrape(await metrics.registry.metrics()).value('quotaflow_consumer_lag_collect_errors_total')).toBe(1);

      state.fail = false;
      state.committed.proc = [
        {
          topic: 'usage',
          partitions: [
            { partition: 0, offset: '100' },
            { partition: 1, offset: '40' },
          ],
        },
      ];
      expect(await collector.collect()).toBe(true);
      expect(await lag('proc', 'usage', '0')).toBe(0);
      expect(await lag('proc', 'usage', '1')).toBe(0);
      expect(state.connects).toBe(2); // the failed round dropped the connection; the next one reconnected
    } finally {
      await collector.stop();
    }
    expect(state.disconnects).toBe(2);
  });
});
