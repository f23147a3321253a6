/**
 * Versioned ClickHouse migrations: `schemas/clickhouse/NNNN_verb_object.up.sql`, applied in
 * number order, each once, recorded in `schema_migrations`. A merged migration is never edited:
 * add a new one.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClickHouseClient } from './clickhouse.ts';

export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'schemas', 'clickhouse');

export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

/** Split a migration file into statements: `;` at the end of a line ends one; `--` comments kept. */
export function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter((s) => s.replace(/^--.*$/gm, '').trim().length > 0);
}

/** Read the migration files, in version order. @throws Error on a bad file name or a repeated version. */
export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const seen = new Set<number>();
  return readdirSync(dir)
    .filter((f) => f.endsWith('.up.sql'))
    .sort()
    .map((file) => {
      const m = /^(\d{4})_([a-z0-9_]+)\.up\.sql$/.exec(file);
      if (!m) throw new Error(`migration file name ${file} does not match NNNN_verb_object.up.sql`);
      const version = Number(m[1]);
      if (seen.has(version)) throw new Error(`two migrations with version ${version}`);
      seen.add(version);
      return { version, name: m[2] as string, statements: splitStatements(readFileSync(join(dir, file), 'utf8')) };
    });
}

/**
 * Apply the migrations not yet applied. Idempotent: statements use IF NOT EXISTS, so a
 * migration interrupted half way is completed by the next run.
 * @returns the versions applied by this call.
 */
export async function migrate(client: ClickHouseClient, migrations = loadMigrations()): Promise<number[]> {
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS schema_migrations
      (version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
      ENGINE = MergeTree ORDER BY version`,
  });
  const rows = await (await client.query({ query: 'SELECT version FROM schema_migrations', format: 'JSONEachRow' })).json<{
    version: number;
  }>();
  const applied = new Set(rows.map((r) => Number(r.version)));
  const done: number[] = [];
  for (const m of migrations) {
    if (applied.has(m.version)) continue;
    for (const query of m.statements) await client.command({ query });
    await client.insert({ table: 'schema_migrations', values: [{ version: m.version, name: m.name }], format: 'JSONEachRow' });
    done.push(m.version);
  }
  return done;
}
