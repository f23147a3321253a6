/**
 * The ClickHouse client as openClickHouse gives it, on the embedded engine: every insert lands,
 * whatever the inserts before it carried. chDB keeps an insert's settings on its session, so an
 * insert without an `insert_deduplication_token` used to inherit the previous insert's token and
 * be dropped as a duplicate of it, silently.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestStore, queryRows, type TestStore } from '../helpers/store.ts';

let store: TestStore;
beforeAll(async () => {
  store = await openTestStore();
  await store.client.command({
    query: 'CREATE TABLE t (x UInt32) ENGINE = MergeTree ORDER BY x SETTINGS non_replicated_deduplication_window = 100',
  });
});
afterAll(async () => store?.close());

const count = async () => Number((await queryRows<{ n: string }>(store.client, 'SELECT count() AS n FROM t'))[0]!.n);

describe('inserts on the embedded engine', () => {
  it('an insert without a token after one with a token is not taken for a duplicate', async () => {
    await store.client.insert({
      table: 't',
      values: [{ x: 1 }],
      format: 'JSONEachRow',
      clickhouse_settings: { insert_deduplication_token: 'a' },
    });
    await store.client.insert({ table: 't', values: [{ x: 2 }], format: 'JSONEachRow' });
    await store.client.insert({ table: 't', values: [{ x: 3 }], format: 'JSONEachRow' });
    expect(await count()).toBe(3);
  });

  it('a repeated token still de-duplicates', async () => {
    await store.client.insert({
      table: 't',
      values: [{ x: 4 }],
      format: 'JSONEachRow',
      clickhouse_settings: { insert_deduplication_token: 'b' },
    });
    await store.client.insert({
      table: 't',
      values: [{ x: 4 }],
      format: 'JSONEachRow',
      clickhouse_settings: { insert_deduplication_token: 'b' },
    });
    expect(await count()).toBe(4);
  });
});
