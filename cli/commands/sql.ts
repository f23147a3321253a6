/** `quotaflow sql "SELECT ..."`: SQL exploration of the store, printed by ClickHouse itself. */
import type { LoadedConfig } from '../../config/load.ts';
import { withStore } from '../pipeline.ts';

export const SQL_FORMATS = ['PrettyCompactMonoBlock', 'TSVWithNames', 'CSVWithNames', 'JSONEachRow'] as const;

export async function runSql(loaded: LoadedConfig, query: string, format: string): Promise<void> {
  await withStore(loaded, async (client) => {
    // The format is one of SQL_FORMATS (checked by the CLI); the client passes it as a setting.
    const rs = await client.query({ query, format: format as 'JSONEachRow' });
    process.stdout.write(await rs.text());
  });
}
