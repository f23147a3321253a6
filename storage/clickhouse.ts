/**
 * One way to reach ClickHouse: `@clickhouse/client`, either against a server (HTTP) or on the
 * embedded engine chDB (`chdb/connection` plugs chDB in as the client's connection), so every
 * query and insert runs the same code in both modes.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type ClickHouseClient, ClickHouseError, createClient } from '@clickhouse/client';

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
  // Checked before chDB opens the folder: chDB prints its own "Code: 76. DB::Exception: Cannot
  // lock file" on stderr when it finds the folder held, before our message.
  if (heldByAnotherProcess(path)) throw new DataFolderLockedError(path);
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
 * Whether `err` is an error ClickHouse answered (a bad query, a refused write, a missing table),
 * as opposed to a failure to reach it. TRICKY: the errors of the embedded engine come from chDB's
 * own copy of the client's error class, so `instanceof ClickHouseError` is false for them; both
 * carry the ClickHouse error `code` (a number as text, e.g. "60") and `type` (`UNKNOWN_TABLE`).
 */
export function isClickHouseError(err: unknown): err is Error & { code: string; type?: string } {
  return err instanceof ClickHouseError || (err instanceof Error && /^\d+$/.test(String((err as { code?: unknown }).code)));
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
  return /Cannot lock file/.test(text) || heldByAnotherProcess(path);
}

/** Whether `<path>/status` names a live process other than this one (see isLockedByAnotherProcess). */
function heldByAnotherProcess(path: string): boolean {
  let pid: number;
  try {
    pid = Number(/PID:\s*(\d+)/.exec(readFileSync(join(path, 'status'), 'utf8'))?.[1]);
  } catch {
    return false; // no status file: nobody holds the folder
  }
  if (!pid || pid === process.pid) return false;
  try {
    process.kill(pid, 0); // signal 0: only checks that the process exists
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // it exists, under another user
  }
}
