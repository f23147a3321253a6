/** Kafka helpers for integration tests: the broker address and unique names per test. */
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';

/** Broker list from the global setup; '' when Kafka tests are switched off (QUOTAFLOW_SKIP_KAFKA=1). */
export function kafkaBrokers(): string[] {
  const b = inject('kafkaBrokers');
  return b ? b.split(',') : [];
}

/** A name no other test uses (topics, consumer groups). */
export function unique(prefix: string): string {
  return `${prefix}.${randomUUID().slice(0, 8)}`;
}

/** Poll until `cond()` is true; never a fixed sleep. @throws after `timeoutMs`. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
