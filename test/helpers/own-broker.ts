/**
 * A private Kafka broker for a test that must stop and restart it: scripts/kafka-local.sh with its
 * own KAFKA_LOCAL_DIR (data, logs, pid) and free ports, from the same jars as the shared broker,
 * which it never touches.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './roles.ts';

const run = promisify(execFile);

export interface OwnBroker {
  /** `127.0.0.1:<port>` */
  bootstrap: string;
  /** Start (first call formats the data folder); resolves once the broker answers a metadata request. */
  start(): Promise<void>;
  /** SIGTERM the broker's JVM and wait until it is gone (the script's `stop`; data kept). */
  stop(): Promise<void>;
  /** Stop it and delete its folder. */
  dispose(): Promise<void>;
}

export async function ownBroker(): Promise<OwnBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'qf-broker-'));
  const port = await freePort();
  const controllerPort = await freePort();
  const env = {
    ...process.env,
    KAFKA_LOCAL_DIR: dir,
    KAFKA_PORT: String(port),
    KAFKA_CONTROLLER_PORT: String(controllerPort),
    KAFKA_HEAP: '-Xmx256m -Xms128m',
  };
  const script = (cmd: string) => run('scripts/kafka-local.sh', [cmd], { env, timeout: 120_000 });
  return {
    bootstrap: `127.0.0.1:${port}`,
    start: async () => void (await script('start')),
    stop: async () => void (await script('stop')),
    async dispose() {
      try {
        await script('stop');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
