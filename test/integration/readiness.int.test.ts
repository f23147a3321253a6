/**
 * `/readyz` follows the broker: `quotaflow ingest` on a private Kafka broker (its own port and
 * folder, test/helpers/own-broker.ts) answers 200 while the broker runs, 503 with checks.kafka =
 * false once it is stopped (SIGTERM), and 200 again after it is restarted, without a restart of
 * the role. ClickHouse readiness is not tested here: the embedded engine lives in the process and
 * cannot be stopped apart from it, and no ClickHouse server runs on this machine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unique, until } from '../helpers/kafka.ts';
import { type OwnBroker, ownBroker } from '../helpers/own-broker.ts';
import { freePort, startRoleProcess } from '../helpers/roles.ts';

const skip = process.env.QUOTAFLOW_SKIP_KAFKA === '1';
let broker: OwnBroker | undefined;

beforeAll(async () => {
  if (skip) return;
  broker = await ownBroker();
  await broker.start();
}, 180_000);
afterAll(async () => broker?.dispose(), 120_000);

interface Ready {
  status: number;
  body: { ready: boolean; checks: Record<string, boolean> } | null;
}

async function readyz(url: string): Promise<Ready> {
  try {
    const res = await fetch(`${url}/readyz`);
    return { status: res.status, body: (await res.json()) as Ready['body'] };
  } catch {
    return { status: 0, body: null }; // not listening yet
  }
}

describe.skipIf(skip)('readiness reflects the Kafka broker', () => {
  it('200 while the broker runs, 503 with checks.kafka=false when it is stopped, 200 again when it is back', async () => {
    const b = broker as OwnBroker;
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const ingest = startRoleProcess('ingest', {
      QUOTAFLOW_TRANSPORT: 'kafka',
      KAFKA_BROKERS: b.bootstrap,
      KAFKA_USAGE_TOPIC: unique('qf.ready.usage'),
      KAFKA_DLQ_TOPIC: unique('qf.ready.dlq'),
      HTTP_PORT: String(port),
      INGEST_API_KEYS: 'key-a-0123456789abcdef=tenant-a',
    });
    try {
      await until(async () => (await readyz(url)).status === 200, 'the ingest role to be ready');
      expect(await readyz(url)).toEqual({ status: 200, body: { ready: true, checks: { kafka: true } } });

      await b.stop();
      await until(async () => (await readyz(url)).status === 503, '/readyz to answer 503 after the broker stopped', 60_000);
      expect(await readyz(url)).toEqual({ status: 503, body: { ready: false, checks: { kafka: false } } });
      // Liveness is not readiness: the process is alive and says so.
      expect((await fetch(`${url}/healthz`)).status).toBe(200);

      await b.start();
      await until(async () => (await readyz(url)).status === 200, '/readyz to answer 200 after the broker is back', 60_000);
      expect(await readyz(url)).toEqual({ status: 200, body: { ready: true, checks: { kafka: true } } });
    } finally {
      expect(await ingest.stop()).toBe(0);
    }
  }, 300_000);
});
