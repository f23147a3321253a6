/**
 * One way to reach ClickHouse: `@clickhouse/client`, either against a server (HTTP) or on the
 * embedded engine chDB (`chdb/connection` plugs chDB in as the client's connection), so every
 * query and insert runs the same code in both modes.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type ClickHouseClient, createClient } from '@clickhouse/client';

export type { ClickHouseClient };

export type ClickHouseConfig =
  | { mode: 'embedded' /** data folder; one process owns it at a time */; path: string }
  | { mode: 'server'; url: string; username: string; password: string; database: string };

/** The embedded data folder is already open in another process (chDB allows one owner). */
export class DataFolderLockedError extends Error {
  readonly code = 'QF_DATA_FOLDER_LOCKED';
  constructor(readonly path: string) {
    super(
      `the embedded ClickHouse data folder ${path} is in use by another quotaflow process ` +
        '(chDB lets one process open a folder at a time). Stop that process, or point ' +
        'CLICKHOUSE_PATH at another folder.',
    );
    this.name = 'DataFolderLockedError';
  }
}

/**
 * Open a ClickHouse client for the configured mode. Embedded: creates the folder if needed.
 * @throws DataFolderLockedError when another process holds the embedded folder.
 */
export async function openClickHouse(config: ClickHouseConfig): Promise<ClickHouseClient> {
  if (config.mode === 'server') {
    return createClient({
      url: config.url,
      username: config.username,
      password: config.password,
      database: config.database,
      // Inserts may carry tens of thousands of rows; do not time out a healthy large insert.
      request_timeout: 120_000,
    });
  }
  const path = resolve(config.path);
  mkdirSync(path, { recursive: true });
  // Loaded lazily: the server mode must not pay for (or require) the 500 MB engine.
  const { createChdbConnection } = await import('chdb/connection');
  try {
    // NOTE: chdb ships its own copy of the client-common types; the objects are the same shape.
    const connection = createChdbConnection({ path }) as unknown as NonNullable<Parameters<typeof createClient>[0]>['connection'];
    return withFreshInsertSettings(createClient({ connection }));
  } catch (err) {
    if (isLockedByAnotherProcess(path, err)) throw new DataFolderLockedError(path);
    throw err;
  }
}

/**
 * TRICKY: chDB keeps an insert's settings on its session, so an insert that gives no
 * `insert_deduplication_token` inherited the previous insert's token and was dropped, silently,
 * as a duplicate of it (test/integration/clickhouse-client.int.test.ts). Every insert therefore
 * states its token: its own, or '' (no token: the server's default, de-duplication by block hash).
 */
function withFreshInsertSettings(client: ClickHouseClient): ClickHouseClient {
  const insert = client.insert.bind(client);
  client.insert = ((params: Parameters<ClickHouseClient['insert']>[0]) =>
    insert({
      ...params,
      clickhouse_settings: { insert_deduplication_token: '', ...params.clickhouse_settings },
    })) as ClickHouseClient['insert'];
  return client;
}

/**
 * TRICKY: chDB reports a held folder only as text ("Cannot lock file <dir>/status", code 76),
 * sometimes only on stderr. The owner writes its PID into `<dir>/status` while it has the
 * folder open (ClickHouse server convention), so a live PID there is the reliable signal.
 */
function isLockedByAnotherProcess(path: string, err: unknown): boolean {
  const text = `${(err as Error)?.message ?? ''} ${((err as Error)?.cause as Error)?.message ?? ''}`;
  if (/Cannot lock file/.test(text)) return true;
  try {
    const pid = Number(/PID:\s*(\d+)/.exec(readFileSync(join(path, 'status'), 'utf8'))?.[1]);
    if (!pid || pid === process.pid) return false;
    process.kill(pid, 0); // throws if no such process
    return true;
  } catch {
    return false;
  }
}
