/** Spawn quotaflow roles as real processes (`node bin/quotaflow.js <role>`) for integration tests. */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { until } from './kafka.ts';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface RoleProcess {
  proc: ChildProcess;
  /** Everything the process wrote to stderr (JSON log lines). */
  logs(): string;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL (kill -9) and wait until it is gone. */
  kill9(): Promise<void>;
}

/** @param nodeArgs extra node flags (e.g. `--cpu-prof`), placed before the script. */
export function startRoleProcess(role: string, env: Record<string, string>, nodeArgs: string[] = []): RoleProcess {
  const proc = spawn('node', [...nodeArgs, 'bin/quotaflow.js', role], {
    // HTTP_PORT 0 (a free port) unless the test gives one: every role listens now, the processor too.
    env: { ...process.env, LOG_LEVEL: 'info', HTTP_PORT: '0', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 2_000_000) stderr = stderr.slice(-1_000_000);
  });
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code, signal) => {
      // A role that died by a signal (a native crash at exit, a kill) says so in its logs.
      if (signal !== null) stderr += `\n[role process ended by signal ${signal}]\n`;
      resolve(code);
    }),
  );
  return {
    proc,
    logs: () => stderr,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
    async kill9() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** Wait until GET url answers 200. */
export async function waitHttpOk(url: string, timeoutMs = 60_000): Promise<void> {
  await until(
    async () => {
      try {
        return (await fetch(url)).ok;
      } catch {
        return false;
      }
    },
    `${url} to answer 200`,
    timeoutMs,
  );
}
