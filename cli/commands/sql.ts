/** `quotaflow sql "SELECT ..."`: read-only SQL exploration of the store, printed by ClickHouse itself. */
import type { LoadedConfig } from '../../config/load.ts';
import { withStore } from '../pipeline.ts';

export const SQL_FORMATS = ['PrettyCompactMonoBlock', 'TSVWithNames', 'CSVWithNames', 'JSONEachRow'] as const;

export async function runSql(loaded: LoadedConfig, query: string, format: string): Promise<void> {
  await withStore(loaded, async (client) => {
    // The format is one of SQL_FORMATS (checked by the CLI). `readonly=1`: exploration only; no
    // write, DDL, settings change or file()/url() table function can run from here.
    // https://clickhouse.com/docs/operations/settings/permissions-for-queries#readonly
    const rs = await client.query({ query, format: format as 'JSONEachRow', clickhouse_settings: { readonly: '1' } });
    process.stdout.write(await rs.text());
  });
}
