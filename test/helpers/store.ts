/** Integration-test helpers: a fresh embedded ClickHouse in a temp folder, and small query shortcuts. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ClickHouseClient, openClickHouse } from '../../storage/clickhouse.ts';
import { migrate } from '../../storage/migrate.ts';

export interface TestStore {
  client: ClickHouseClient;
  path: string;
  close(): Promise<void>;
}

/** One temp data folder per test file (chDB: one open folder per process). */
export async function openTestStore(): Promise<TestStore> {
  const path = mkdtempSync(join(tmpdir(), 'qf-it-'));
  const client = await openClickHouse({ mode: 'embedded', path });
  await migrate(client);
  return {
    client,
    path,
    async close() {
      await client.close();
      rmSync(path, { recursive: true, force: true });
    },
  };
}

export async function queryRows<T = Record<string, unknown>>(
  client: ClickHouseClient,
  query: string,
  params: Record<string, unknown> = {},
): Promise<T[]> {
  const rs = await client.query({ query, query_params: params, format: 'JSONEachRow' });
  return rs.json<T>();
}

/** Sum the token columns of a CSV independently of the importers: plain split on commas. */
export async function csvColumnSums(
  path: string,
  inputCol: number,
  outputCol: number,
): Promise<{ rows: number; input: number; output: number }> {
  const { readFileSync } = await import('node:fs');
  const lines = readFileSync(path, 'utf8')
    .split(/\r?\n/)
    .slice(1)
    .filter((l) => l.trim() !== '');
  let input = 0;
  let output = 0;
  for (const l of lines) {
    const cells = l.split(',');
    input += Number(cells[inputCol]);
    output += Number(cells[outputCol]);
  }
  return { rows: lines.length, input, output };
}
