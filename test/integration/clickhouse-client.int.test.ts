/**
 * The ClickHouse client as openClickHouse gives it, on the embedded engine: every insert lands,
 * whatever the inserts before it carried. chDB keeps an insert's settings on its session, so an
 * insert without an `insert_deduplication_token` used to inherit the previous insert's token and
 * be dropped as a duplicate of it, silently.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isClickHouseError } from '../../storage/clickhouse.ts';
import { openTestStore, queryRows, type TestStore } from '../helpers/store.ts';

let store: TestStore;
beforeAll(async () => {
  store = await openTestStore();
  await store.client.command({
    query: 'CREATE TABLE t (x UInt32) ENGINE = MergeTree ORDER BY x SETTINGS non_replicated_deduplication_window = 100',
  });
  await store.client.command({
    query:
      'CREATE TABLE w (id UInt32, s String, m Map(String, String), d Decimal(38, 12), n Nullable(Float64)) ENGINE = MergeTree ORDER BY id',
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

describe('row inserts (the raw path on the embedded engine)', () => {
  it('writes JSONCompactEachRow rows in the stated column order, text and maps byte for byte', async () => {
    const text = 'tab\there, newline\nthere, quote " backslash \\ and 👩‍💻 ünïcode';
    await store.client.insert({
      table: 'w',
      columns: ['s', 'id', 'm', 'd', 'n'],
      values: [
        [text, 1, { 'a.b': 'x\ty' }, '0.000000000123', null],
        ['', 2, {}, '12345.5', 2.5],
      ],
      format: 'JSONCompactEachRow',
    });
    const rows = await queryRows<{ id: number; s: string; m: Record<string, string>; d: string; n: number | null }>(
      store.client,
      'SELECT id, s, m, toString(d) AS d, n FROM w ORDER BY id',
    );
    expect(rows).toEqual([
      { id: 1, s: text, m: { 'a.b': 'x\ty' }, d: '0.000000000123', n: null },
      { id: 2, s: '', m: {}, d: '12345.5', n: 2.5 },
    ]);
  });

  it('an empty row list writes nothing and does not fail', async () => {
    await store.client.insert({ table: 'w', values: [], format: 'JSONEachRow' });
    expect(Number((await queryRows<{ n: string }>(store.client, 'SELECT count() AS n FROM w WHERE id > 2'))[0]!.n)).toBe(0);
  });

  it('a refused insert is a ClickHouse error with the engine code, and writes no row', async () => {
    const before = (await queryRows<{ n: string }>(store.client, 'SELECT count() AS n FROM w'))[0]!.n;
    const err = await store.client
      .insert({
        table: 'w',
        values: [
          { id: 10, s: 'ok' },
          { id: 'not a number', s: 'bad' },
        ],
        format: 'JSONEachRow',
      })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(isClickHouseError(err)).toBe(true);
    expect((err as { code: string }).code).toMatch(/^\d+$/);
    expect((await queryRows<{ n: string }>(store.client, 'SELECT count() AS n FROM w'))[0]!.n).toBe(before);
  });

  it('a missing table is reported as UNKNOWN_TABLE', async () => {
    const err = await store.client.insert({ table: 'nope', values: [{ x: 1 }], format: 'JSONEachRow' }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isClickHouseError(err)).toBe(true);
    expect((err as { type?: string }).type).toBe('UNKNOWN_TABLE');
  });
});
