/**
 * One way to reach ClickHouse: `@clickhouse/client`, either against a server (HTTP) or on the
 * embedded engine chDB (`chdb/connection` plugs chDB in as the client's connection), so every
 * query and insert runs the same code in both modes.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type ClickHouseClient, ClickHouseError, createClient, parseError } from '@clickhouse/client';

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
    const chdb = createChdbConnection({ path });
    const connection = chdb as unknown as NonNullable<Parameters<typeof createClient>[0]>['connection'];
    return withRawInserts(withFreshInsertSettings(createClient({ connection })), chdb.chdb);
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

/** The part of chDB's connection extension used for inserts (`chdb/connection`, `.chdb`). */
interface ChdbRawInserter {
  rawInsert(params: {
    table: string;
    values: Buffer;
    format: 'JSONEachRow' | 'JSONCompactEachRow';
    columns?: readonly string[];
    settings?: Record<string, string | number | boolean>;
  }): Promise<unknown>;
}

/**
 * Embedded inserts of row arrays go through chDB's raw insert: the same table, columns, format,
 * rows (one JSON text per row, as `@clickhouse/client` encodes them) and settings, but the
 * settings travel in the INSERT's own SETTINGS clause and the payload is handed to the engine as
 * bytes. Through the connection's generic path the settings become `SET ...;` statements in
 * front of the INSERT and the payload is appended to that SQL text: about 2 µs more CPU per row
 * of a 24-column `usage_events` insert (25,000-row batches on chDB 26.7; see
 * docs/benchmarks.md). Any other `values` (a stream) takes the generic path.
 */
function withRawInserts(client: ClickHouseClient, chdb: ChdbRawInserter): ClickHouseClient {
  const generic = client.insert.bind(client);
  client.insert = (async (params: Parameters<ClickHouseClient['insert']>[0]) => {
    const format = params.format ?? 'JSONCompactEachRow';
    if (!Array.isArray(params.values) || (format !== 'JSONEachRow' && format !== 'JSONCompactEachRow')) return generic(params);
    const query_id = params.query_id ?? randomUUID();
    if (params.values.length === 0) return { executed: false, query_id, response_headers: {} };
    let text = '';
    for (const row of params.values) text += `${JSON.stringify(row)}\n`;
    const settings: Record<string, string | number | boolean> = { insert_deduplication_token: '' };
    for (const [k, v] of Object.entries(params.clickhouse_settings ?? {}))
      if (v !== undefined) settings[k] = v as string | number | boolean;
    const columns = Array.isArray(params.columns) ? params.columns : undefined;
    try {
      await chdb.rawInsert({ table: params.table, values: Buffer.from(text), format, ...(columns ? { columns } : {}), settings });
    } catch (err) {
      // Same error shape as the generic path: a ClickHouseError with the engine's code and type.
      const mapped = parseError(err instanceof Error && err.message ? err.message : String(err));
      if (mapped !== err) mapped.cause = err;
      throw mapped;
    }
    return { executed: true, query_id, response_headers: {} };
  }) as ClickHouseClient['insert'];
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
