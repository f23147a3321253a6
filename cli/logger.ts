/**
 * Structured logs (pino, JSON lines on stderr so stdout stays for command output).
 * Stable event keys: every line has `event` (e.g. `role.started`, `batch.retry`) plus fields.
 */
import { type Logger, pino } from 'pino';
import { REDACTED_HEADERS } from '../ingest/http/api-keys.ts';

export type { Logger };

/** @param level config `log_level` (env LOG_LEVEL). */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'quotaflow' }, redact: REDACTED_HEADERS }, pino.destination(2));
}

/** Route kafkajs log lines into pino (kafkajs levels: 1 error, 2 warn, 4 info, 5 debug). */
export function kafkaLogCreator(logger: Logger) {
  return () =>
    ({ level, log }: { level: number; log: { message: string } & Record<string, unknown> }) => {
      const { message, ...fields } = log;
      const child = { event: 'kafka.client', ...fields };
      if (level <= 1) logger.error(child, message);
      else if (level === 2) logger.warn(child, message);
      else logger.debug(child, message);
    };
}
