/**
 * One ordered, idempotent shutdown for every role (STYLE.md 8). Components register their stop
 * functions in start order; `stop()` runs them in reverse: intake first (HTTP server), then the
 * consumers (finish and commit the batches in flight), then producers and clients.
 * SIGTERM, SIGINT, an uncaught exception and an unhandled rejection all call it; the process
 * exits 1 when an error triggered the stop, 0 otherwise. A flush is never cut in half: the
 * stop functions themselves own their deadlines.
 */
import type { Logger } from './logger.ts';

export interface Lifecycle {
  /** Register a stop function; they run in reverse order of registration. */
  add(name: string, stop: () => Promise<void>): void;
  /** Stop everything (once). Resolves when all stop functions settled. */
  stop(err?: unknown): Promise<void>;
  /** Exit the process when stopped by a signal or a fatal error. */
  installProcessHandlers(): void;
}

export function createLifecycle(logger: Logger): Lifecycle {
  const stops: Array<{ name: string; stop: () => Promise<void> }> = [];
  let stopping: Promise<void> | null = null;
  let failed = false;
  const lifecycle: Lifecycle = {
    add(name, stop) {
      stops.push({ name, stop });
    },
    stop(err?: unknown) {
      if (err !== undefined) {
        failed = true;
        logger.error({ event: 'lifecycle.fatal', err }, 'stopping after an error');
      }
      stopping ??= (async () => {
        for (const { name, stop } of [...stops].reverse()) {
          const started = Date.now();
          try {
            await stop();
            logger.info({ event: 'lifecycle.stopped', component: name, duration_ms: Date.now() - started });
          } catch (e) {
            failed = true;
            logger.error({ event: 'lifecycle.stop_failed', component: name, err: e });
          }
        }
        // A process stopped by an error must not look like a clean exit to its supervisor.
        if (failed) process.exitCode = 1;
      })();
      return stopping;
    },
    installProcessHandlers() {
      const exit = () => process.exit(failed ? 1 : 0);
      for (const signal of ['SIGTERM', 'SIGINT'] as const) {
        process.once(signal, () => {
          logger.info({ event: 'lifecycle.signal', signal });
          void lifecycle.stop().then(exit);
        });
      }
      process.on('uncaughtException', (err) => void lifecycle.stop(err).then(exit));
      process.on('unhandledRejection', (err) => void lifecycle.stop(err).then(exit));
    },
  };
  return lifecycle;
}
