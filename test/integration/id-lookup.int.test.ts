/**
 * The usage id lookup with long event ids against a filled id index (processors/clickhouse-writer.ts
 * lookupSeen, storage/lookup-chunks.ts). Lookups used to be cut by key count only (20,000 per
 * query); with ids of 120 characters one query then bound about 2.5 MB of ids, past the size
 * (about 1 MiB) at which chDB's lookup turns from a fraction of a second into minutes, growing
 * with the keys stored (measured: 16.8 s with 200,000 stored keys; here, 1,000,000, it did not end
 * within the 60 s timeout). The test asserts the result; the lookup's speed is guarded only by the
 * test timeout (a hang, not a figure: figures are in docs/benchmarks.md).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUsageStore, type UsageStore } from '../../processors/clickhouse-writer.ts';
import { dedupKey } from '../../processors/usage.processor.ts';
import { openTestStore, type TestStore } from '../helpers/store.ts';

const LONG = 'x'.repeat(111);
const idOf = (i: number) => `${String(i).padStart(8, '0')}-${LONG}`; // 120 characters (event ids may have 128)

let store: TestStore;
let usage: UsageStore;
beforeAll(async () => {
  store = await openTestStore();
  usage = createUsageStore(store.client);
  // 1,000,000 stored keys of 4 tenants; the ids the test looks for are every 50th of the first 1,000.
  await store.client.command({
    query: `INSERT INTO usage_event_ids (tenant, event_id, fingerprint, timestamp)
            SELECT concat('t', toString(number % 4)), concat(leftPad(toString(number), 8, '0'), '-', repeat('x', 111)),
                   concat('fp', toString(number)), now64(3)
            FROM numbers(1000000)`,
  });
}, 120_000);
afterAll(async () => store?.close());

describe('usage id lookup', () => {
  it('finds exactly the stored keys among 20,000 long ids, with their fingerprints', async () => {
    // Stored: number n under tenant t(n % 4). Asked: 19,000 new ids (n >= 2,000,000) and, of the
    // first 1,000 stored ones, every 50th and every 7th (+1), under their own tenant.
    const keys = Array.from({ length: 20_000 }, (_, k) => {
      const n = k < 1_000 ? k : 2_000_000 + k;
      return { tenant: `t${n % 4}`, event_id: idOf(n) };
    }).filter((_, k) => k >= 1_000 || k % 50 === 0 || k % 7 === 1);
    const seen = await usage.lookupSeen(keys);
    const expected = new Map<string, string>();
    for (const k of keys) {
      const n = Number(k.event_id.slice(0, 8));
      if (n < 1_000_000) expected.set(dedupKey(k.tenant, k.event_id), `fp${n}`);
    }
    expect(expected.size).toBeGreaterThan(100);
    expect(seen).toEqual(expected);
  }, 60_000);

  it('a stored id under another tenant is not seen', async () => {
    const seen = await usage.lookupSeen([{ tenant: 't1', event_id: idOf(0) }]); // stored as t0
    expect(seen.size).toBe(0);
  });
});
