/** `quotaflow migrate`: apply pending ClickHouse migrations and say which. */
import type { LoadedConfig } from '../../config/load.ts';
import { openClickHouse } from '../../storage/clickhouse.ts';
import { migrate } from '../../storage/migrate.ts';

export async function runMigrate(loaded: LoadedConfig): Promise<void> {
  const client = await openClickHouse(loaded.config.clickhouse);
  try {
    const applied = await migrate(client);
    process.stdout.write(applied.length ? `applied migrations ${applied.join(', ')}\n` : 'schema is up to date\n');
  } finally {
    await client.close();
  }
}
