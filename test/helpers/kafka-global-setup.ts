/**
 * vitest globalSetup for the integration project: make a real Kafka broker available.
 * One place chooses (STYLE.md 13): KAFKA_BROKERS if set (CI starts the broker in .ci/run);
 * else the local broker from Apache's jars (scripts/kafka-local.sh, fetched with mvn), started
 * here and stopped after the run. This machine has no Docker engine, so testcontainers is not
 * used; set KAFKA_BROKERS to point the tests at any other broker.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';

let startedHere = false;

export default function setup(project: TestProject): () => void {
  let brokers = process.env.KAFKA_BROKERS;
  if (!brokers && process.env.QUOTAFLOW_SKIP_KAFKA !== '1') {
    // A broker that was already running is someone else's: never stop it. The script says so on
    // stderr, so ask it before starting.
    const running = spawnSync('scripts/kafka-local.sh', ['status'], { encoding: 'utf8' }).status === 0; // 1: not running
    const out = execFileSync('scripts/kafka-local.sh', ['start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    brokers = /KAFKA_BROKERS=(\S+)/.exec(out)?.[1];
    startedHere = !running;
  }
  project.provide('kafkaBrokers', brokers ?? '');
  return () => {
    if (startedHere) execFileSync('scripts/kafka-local.sh', ['stop'], { stdio: 'inherit' });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string;
  }
}
