/**
 * The CLI as a user runs it (`node bin/quotaflow.js ...`), each command in its own process on a
 * temp data folder: demo totals, re-run idempotence, the locked-folder error, bad config.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'qf-cli-'));
const env = { ...process.env, CLICKHOUSE_PATH: join(dir, 'data') };

async function quotaflow(args: string[], extraEnv: Record<string, string> = {}) {
  try {
    const r = await run('node', ['bin/quotaflow.js', ...args], { env: { ...env, ...extraEnv }, maxBuffer: 16 * 2 ** 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('quotaflow CLI', () => {
  it('demo replays the bundled samples and prints totals; a second run adds 0 events', async () => {
    const first = await quotaflow(['demo']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/41,016 events .* 41,016 accepted \(new\)/);
    expect(first.stdout).toMatch(/azure-code\s+8,819\s+18,059,974\s+245,896/);
    expect(first.stdout).toMatch(/azure-conv\s+19,366\s+22,361,870\s+4,088,665/);
    const second = await quotaflow(['demo']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/ 0 accepted \(new\), 41,016 duplicates/);
    expect(second.stdout).toMatch(/azure-code\s+8,819\s+18,059,974\s+245,896/);
  });

  it('sql runs a query on the store', async () => {
    const r = await quotaflow(['sql', 'SELECT count() AS n FROM usage_events', '--format', 'TSVWithNames']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('n\n41016\n');
  });

  it('sql is read-only: writes, DDL and file() are refused and the store is untouched', async () => {
    for (const q of ['DROP TABLE usage_day', 'SELECT 1; DROP TABLE usage_day', "SELECT * FROM file('/etc/hostname', 'LineAsString')"]) {
      const r = await quotaflow(['sql', q]);
      expect(r.code, q).toBe(1);
      expect(r.stderr, q).toContain('readonly mode');
    }
    const after = await quotaflow(['sql', 'SELECT sum(requests) AS n FROM usage_day', '--format', 'TSVWithNames']);
    expect(after.stdout).toBe('n\n41016\n');
  });

  it('says clearly when another process holds the data folder', async () => {
    const holder: ChildProcess = spawn('node', ['bin/quotaflow.js', 'sql', 'SELECT sleep(3)'], { env, stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 1_500)); // let the holder open the folder
      const r = await quotaflow(['sql', 'SELECT 1']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('is in use by another quotaflow process');
      // One line: no stack trace, and not chDB's own "Code: 76. DB::Exception: Cannot lock file" before it.
      expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(/^quotaflow: /);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it.each<[string, string[], RegExp]>([
    ['an unknown table', ['sql', 'SELECT * FROM nope'], /^quotaflow: ClickHouse error 60 \(UNKNOWN_TABLE\): .*nope/],
    ['a syntax error', ['sql', 'SELEC 1'], /^quotaflow: ClickHouse error 62 \(SYNTAX_ERROR\): Syntax error/],
    ['a write in read-only mode', ['sql', 'DROP TABLE usage_day'], /^quotaflow: ClickHouse error 164 \(READONLY\): .*readonly mode/],
    [
      'a report written into a folder that does not exist',
      ['report', '--tenant', 'azure-code', '--week', '2023-W47', '--out', '/nonexistent/dir/x.html'],
      /^quotaflow: --out \/nonexistent\/dir\/x\.html: cannot write: no such folder \/nonexistent\/dir$/,
    ],
  ])('%s fails with one line on stderr, no stack trace', async (_label, args, line) => {
    const r = await quotaflow(args);
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
    expect(r.stderr.trimEnd()).toMatch(line);
  });

  it('a bad config lists every problem and exits non-zero', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'clickhouse:\n  mode: cloud\npipeline:\n  batch_max_messages: -1\nunknown_key: 1\n');
    const r = await quotaflow(['--config', file, 'check-config']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('clickhouse.mode');
    expect(r.stderr).toContain('pipeline.batch_max_messages');
    expect(r.stderr).toContain('unknown_key');
  });
});
