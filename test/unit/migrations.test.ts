import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadMigrations, MIGRATIONS_DIR, splitStatements } from '../../storage/migrate.ts';

const tmp = mkdtempSync(join(tmpdir(), 'quotaflow-migrations-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A fresh temporary folder holding the given files. */
function folderWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmp, 'm-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** The statement without its `--` comment lines, trimmed. */
const code = (statement: string) => statement.replace(/^\s*--.*$/gm, '').trim();

describe('splitStatements', () => {
  it.each<[string, string, string[]]>([
    [
      'two statements',
      'CREATE TABLE a (x UInt8) ENGINE = Memory;\nCREATE TABLE b (x UInt8) ENGINE = Memory;\n',
      ['CREATE TABLE a (x UInt8) ENGINE = Memory', 'CREATE TABLE b (x UInt8) ENGINE = Memory'],
    ],
    ['the last statement may lack its ;', 'SELECT 1;\nSELECT 2', ['SELECT 1', 'SELECT 2']],
    ['spaces and tabs after ; still end it', 'SELECT 1;  \t\nSELECT 2;', ['SELECT 1', 'SELECT 2']],
    ['CRLF line ends', 'SELECT 1;\r\nSELECT 2;\r\n', ['SELECT 1', 'SELECT 2']],
    ['a ; inside a line does not end a statement', "SELECT 'a;b', 1; SELECT 2;\n", ["SELECT 'a;b', 1; SELECT 2"]],
    [
      'a multi-line statement stays whole',
      'CREATE TABLE t\n(\n  x UInt8\n)\nENGINE = MergeTree\nORDER BY x;\n',
      ['CREATE TABLE t\n(\n  x UInt8\n)\nENGINE = MergeTree\nORDER BY x'],
    ],
    [
      'comments are kept with the statement below them',
      '-- the table\nCREATE TABLE t (x UInt8) ENGINE = Memory;\n',
      ['-- the table\nCREATE TABLE t (x UInt8) ENGINE = Memory'],
    ],
    ['a comment-only chunk is dropped', 'SELECT 1;\n-- trailing note\n\n', ['SELECT 1']],
    ['empty and blank chunks are dropped', '\n\n;\n  ;\nSELECT 1;\n;\n', ['SELECT 1']],
    ['an empty file has no statements', '', []],
    ['a comment-only file has no statements', '-- nothing yet\n-- really\n', []],
  ])('%s', (_label, sql, expected) => {
    expect(splitStatements(sql)).toEqual(expected);
  });
});

describe('loadMigrations (temporary folders)', () => {
  it('orders by version and ignores files that are not .up.sql', () => {
    const dir = folderWith({
      '0002_create_b.up.sql': 'CREATE TABLE IF NOT EXISTS b (x UInt8) ENGINE = Memory;\n',
      '0001_create_a.up.sql': '-- a\nCREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = Memory;\nSELECT 1;\n',
      '0001_create_a.down.sql': 'DROP TABLE a;\n',
      'README.md': '# notes\n',
    });
    expect(loadMigrations(dir)).toEqual([
      { version: 1, name: 'create_a', statements: ['-- a\nCREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = Memory', 'SELECT 1'] },
      { version: 2, name: 'create_b', statements: ['CREATE TABLE IF NOT EXISTS b (x UInt8) ENGINE = Memory'] },
    ]);
  });

  it.each(['1_create_a.up.sql', '0001-create-a.up.sql', '0001_Create_A.up.sql', '00001_create_a.up.sql', '0001_.up.sql'])(
    'rejects the file name %s',
    (name) => {
      expect(() => loadMigrations(folderWith({ [name]: 'SELECT 1;\n' }))).toThrow(/does not match NNNN_verb_object\.up\.sql/);
    },
  );

  it('rejects two migrations with the same version', () => {
    const dir = folderWith({ '0001_create_a.up.sql': 'SELECT 1;\n', '0001_create_b.up.sql': 'SELECT 2;\n' });
    expect(() => loadMigrations(dir)).toThrow('two migrations with version 1');
  });

  it('an empty folder has no migrations', () => {
    expect(loadMigrations(folderWith({}))).toEqual([]);
  });
});

describe('the real migrations (schemas/clickhouse)', () => {
  const migrations = loadMigrations();
  const statements = migrations.flatMap((m) => m.statements.map((s) => ({ version: m.version, s })));
  const tables = statements.filter(({ s }) => /^CREATE TABLE\b/i.test(code(s)));
  const tableName = (s: string) => /^CREATE TABLE (?:IF NOT EXISTS )?([a-z0-9_]+)/i.exec(code(s))?.[1] as string;

  it('MIGRATIONS_DIR is schemas/clickhouse and every .up.sql file is loaded', () => {
    expect(MIGRATIONS_DIR.replaceAll('\\', '/')).toMatch(/\/schemas\/clickhouse$/);
    expect(migrations).toHaveLength(readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.up.sql')).length);
  });

  it('has versions 1..n, in order, with verb_object names', () => {
    expect(migrations.length).toBeGreaterThanOrEqual(3);
    expect(migrations.map((m) => m.version)).toEqual(migrations.map((_, i) => i + 1));
    for (const m of migrations) expect(m.name).toMatch(/^[a-z]+_[a-z0-9_]+$/);
  });

  it('every migration has statements, and none is empty or comment-only', () => {
    for (const m of migrations) {
      expect(m.statements.length, `migration ${m.version}`).toBeGreaterThan(0);
      for (const s of m.statements) expect(code(s).length, `migration ${m.version}: ${s}`).toBeGreaterThan(0);
    }
  });

  it('no statement keeps a trailing ; (the client sends one statement per call)', () => {
    for (const { s } of statements) expect(s.trimEnd().endsWith(';'), s).toBe(false);
  });

  it('no comment line ends with ; (splitStatements would cut the statement there)', () => {
    for (const file of readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.up.sql'))) {
      const bad = readFileSync(join(MIGRATIONS_DIR, file), 'utf8')
        .split('\n')
        .filter((line) => /^\s*--.*;\s*$/.test(line));
      expect(bad, file).toEqual([]);
    }
  });

  // ClickHouse has no ALTER TABLE IF EXISTS (a syntax error on chDB 26.7): a MODIFY TTL, which sets
  // the same TTL again when re-run, is the one statement allowed without IF [NOT] EXISTS, and only
  // on a table an earlier statement created (test/integration/retention.int.test.ts re-runs them).
  const modifyTtl = (s: string) => /^ALTER TABLE (\w+)\s+MODIFY TTL\b[^,]*$/i.exec(code(s))?.[1];

  it('every statement is idempotent (IF NOT EXISTS / IF EXISTS, or a MODIFY TTL), so an interrupted migration can be re-run', () => {
    for (const { version, s } of statements) {
      if (modifyTtl(s) === undefined) expect(code(s), `migration ${version}`).toMatch(/\bIF (NOT )?EXISTS\b/i);
    }
  });

  it('a MODIFY TTL alters a table created by an earlier statement, one command per statement', () => {
    const created = new Set<string>();
    let ttls = 0;
    for (const { version, s } of statements) {
      if (/^CREATE TABLE\b/i.test(code(s))) created.add(tableName(s));
      if (!/\bMODIFY TTL\b/i.test(code(s))) continue;
      ttls++;
      const table = modifyTtl(s);
      expect(table, `migration ${version}: ${s}`).toBeDefined();
      expect(created.has(table as string), `migration ${version}: ${table} is not created before it`).toBe(true);
    }
    expect(ttls).toBeGreaterThan(0);
  });

  it('creates the tables the pipeline writes and the API reads', () => {
    expect(tables.map(({ s }) => tableName(s))).toEqual(
      expect.arrayContaining(['usage_events', 'usage_event_ids', 'usage_minute', 'usage_hour', 'usage_day', 'dead_letters']),
    );
  });

  it('every CREATE TABLE has an ORDER BY with a -- comment above it (STYLE: each ORDER BY is commented)', () => {
    expect(tables.length).toBeGreaterThan(0);
    for (const { version, s } of tables) {
      const lines = s.split('\n');
      const create = lines.findIndex((l) => /^\s*CREATE TABLE\b/i.test(l));
      const orderBy = lines.findIndex((l) => /^\s*ORDER BY\b/i.test(l));
      const where = `migration ${version}, table ${tableName(s)}`;
      expect(orderBy, `${where}: no ORDER BY`).toBeGreaterThan(create);
      // A comment about the physical design, between the CREATE TABLE line and the ORDER BY.
      const comments = lines.slice(create + 1, orderBy).filter((l) => /^\s*--\s*\S/.test(l));
      expect(comments.length, `${where}: ORDER BY without a comment above it`).toBeGreaterThan(0);
    }
  });

  it('every MergeTree-family table sets non_replicated_deduplication_window', () => {
    const mergeTrees = tables.filter(({ s }) => /\bENGINE\s*=\s*\w*MergeTree\b/i.test(code(s)));
    expect(mergeTrees.length).toBe(tables.length); // all tables here are MergeTree-family
    for (const { version, s } of mergeTrees) {
      expect(code(s), `migration ${version}, table ${tableName(s)}`).toMatch(
        /\bSETTINGS\b[^;]*\bnon_replicated_deduplication_window\s*=\s*[1-9]\d*/i,
      );
    }
  });

  it('views and copied tables only refer to tables created before them', () => {
    const created = new Set<string>();
    for (const { version, s } of statements) {
      const c = code(s);
      const refs = [
        /^CREATE TABLE (?:IF NOT EXISTS )?\w+ AS (\w+)\s/i.exec(c)?.[1], // CREATE TABLE x AS y (copy of y's columns)
        /^CREATE MATERIALIZED VIEW (?:IF NOT EXISTS )?\w+ TO (\w+)/i.exec(c)?.[1],
        /^CREATE MATERIALIZED VIEW[\s\S]*?\bFROM (\w+)/i.exec(c)?.[1],
      ].filter((r): r is string => r !== undefined && r.toUpperCase() !== 'SELECT');
      for (const r of refs) expect(created.has(r), `migration ${version} refers to ${r} before it exists`).toBe(true);
      const name = /^CREATE (?:TABLE|MATERIALIZED VIEW) (?:IF NOT EXISTS )?(\w+)/i.exec(c)?.[1];
      if (name) created.add(name);
    }
  });
});
