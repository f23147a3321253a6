/**
 * `quotaflow all` in embedded mode: one process with HTTP ingest, the in-process transport, the
 * processor on chDB and the read API. Events posted over HTTP show up in GET /v1/usage, a key
 * reads only its own tenant, readiness reports the store, and SIGTERM drains before exiting 0.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/kafka.ts';
import { freePort, startRoleProcess, waitHttpOk } from '../helpers/roles.ts';

const dir = mkdtempSync(join(tmpdir(), 'qf-all-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const A = 'key-a-0123456789abcdef';
const B = 'key-b-0123456789abcdef';

describe('quotaflow all (embedded)', () => {
  it('ingests over HTTP, aggregates, answers GET /v1/usage per tenant, and drains on SIGTERM', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const proc = startRoleProcess('all', {
      CLICKHOUSE_PATH: join(dir, 'data'),
      HTTP_PORT: String(port),
      INGEST_API_KEYS: `${A}=tenant-a,${B}=tenant-b`,
      PIPELINE_BATCH_MAX_WAIT_MS: '50',
    });
    try {
      await waitHttpOk(`${base}/readyz`);
      expect(await (await fetch(`${base}/readyz`)).json()).toEqual({ ready: true, checks: { clickhouse: true } });
      const events = Array.from({ length: 50 }, (_, i) =>
        JSON.stringify({
          event_id: `e${i}`,
          timestamp: '2026-11-29T10:00:00Z',
          provider: 'openai',
          model: 'gpt-4o',
          input_tokens: 1_000,
          output_tokens: 10,
        }),
      );
      const res = await fetch(`${base}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${A}`, 'content-type': 'application/x-ndjson' },
        body: events.join('\n'),
      });
      expect(res.status).toBe(202);
      const usage = async (key: string) =>
        (
          await fetch(`${base}/v1/usage?from=2026-11-29T00:00:00Z&to=2026-11-30T00:00:00Z`, { headers: { authorization: `Bearer ${key}` } })
        ).json() as Promise<{
          tenant: string;
          rows: Array<{ model: string; requests: number; input_tokens: number; cost_usd: string }>;
        }>;
      await until(async () => (await usage(A)).rows.length > 0, 'the events to be aggregated', 30_000);
      const a = await usage(A);
      expect(a.tenant).toBe('tenant-a');
      // 50 x (1,000 x $2.50 + 10 x $10) / 1M = 50 x $0.0026 = $0.13
      expect(a.rows).toEqual([expect.objectContaining({ model: 'gpt-4o', requests: 50, input_tokens: 50_000, cost_usd: '0.13' })]);
      expect((await usage(B)).rows).toEqual([]); // tenant B sees nothing of tenant A
      expect((await fetch(`${base}/v1/usage`)).status).toBe(401);
    } finally {
      expect(await proc.stop()).toBe(0);
    }
  });
});

describe('quotaflow all: SIGTERM right after a 202', () => {
  it('loses nothing it acknowledged: the pending batch is drained before exit', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const env = {
      CLICKHOUSE_PATH: join(dir, 'drain'),
      HTTP_PORT: String(port),
      INGEST_API_KEYS: `${A}=tenant-a`,
      PIPELINE_BATCH_MAX_WAIT_MS: '60000', // nothing would flush by age before the SIGTERM
    };
    const first = startRoleProcess('all', env);
    await waitHttpOk(`${base}/readyz`);
    const res = await fetch(`${base}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${A}`, 'content-type': 'application/x-ndjson' },
      body: [
        JSON.stringify({
          event_id: 'd1',
          timestamp: '2026-11-29T10:00:00Z',
          provider: 'openai',
          model: 'gpt-4o',
          input_tokens: 7,
          output_tokens: 1,
        }),
        'not json', // a dead letter, also acknowledged
      ].join('\n'),
    });
    expect(res.status).toBe(202);
    expect(await first.stop()).toBe(0); // SIGTERM at once

    const second = startRoleProcess('all', env);
    try {
      await waitHttpOk(`${base}/readyz`);
      const usage = (await (await fetch(`${base}/v1/usage`, { headers: { authorization: `Bearer ${A}` } })).json()) as {
        rows: Array<{ requests: number; input_tokens: number }>;
      };
      expect(usage.rows).toEqual([expect.objectContaining({ requests: 1, input_tokens: 7 })]);
    } finally {
      expect(await second.stop()).toBe(0);
    }
  });
});
