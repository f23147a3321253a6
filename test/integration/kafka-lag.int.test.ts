/**
 * The consumer lag collector against a real broker (observability/kafka-lag.ts): the offsets
 * kafkajs returns for a committed partition and for one the group never committed give the lag
 * the arithmetic promises. Skipped without a broker (QUOTAFLOW_SKIP_KAFKA=1).
 */
import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { kafkaLagAdmin, type LagCollector, startLagCollector } from '../../observability/kafka-lag.ts';
import { createMetrics } from '../../observability/metrics.ts';
import { kafkaBrokers, unique } from '../helpers/kafka.ts';
import { parseScrape } from '../helpers/prometheus.ts';

const brokers = kafkaBrokers();

describe.skipIf(brokers.length === 0)('consumer lag on a real broker', () => {
  it('partition 0: end 10 - committed 6 = 4; partition 1, never committed: end 4 - start 0 = 4', async () => {
    const topic = unique('qf.it.lag');
    const group = unique('qf.it.lag-group');
    const kafka = new kafkajs.Kafka({ clientId: 'qf-it-lag', brokers, logLevel: kafkajs.logLevel.NOTHING });
    const admin = kafka.admin();
    const producer = kafka.producer();
    await admin.connect();
    await producer.connect();
    const metrics = createMetrics({ defaultMetrics: false });
    let collector: LagCollector | undefined;
    try {
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 2, replicationFactor: 1 }] });
      const messages = (partition: number, n: number) => Array.from({ length: n }, (_, i) => ({ partition, value: `m${i}` }));
      await producer.send({ topic, acks: -1, messages: [...messages(0, 10), ...messages(1, 4)] });
      await admin.setOffsets({ groupId: group, topic, partitions: [{ partition: 0, offset: '6' }] });

      collector = startLagCollector({
        targets: [{ group, topic }],
        metrics: metrics.lag,
        intervalMs: 3_600_000, // the first round runs at start; collect() joins it
        connect: kafkaLagAdmin({ brokers, clientId: 'qf-it' }),
      });
      expect(await collector.collect()).toBe(true);
      const s = parseScrape(await metrics.registry.metrics());
      expect(s.value('quotaflow_consumer_lag_messages', { group, topic, partition: '0' })).toBe(4);
      expect(s.value('quotaflow_consumer_lag_messages', { group, topic, partition: '1' })).toBe(4);
    } finally {
      await collector?.stop();
      await producer.disconnect();
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });
});
