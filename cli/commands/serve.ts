/** `quotaflow ingest|processor|api|all`: run a long-lived role until SIGTERM/SIGINT. */
import type { LoadedConfig } from '../../config/load.ts';
import { createLifecycle } from '../lifecycle.ts';
import { createLogger } from '../logger.ts';
import { type Role, startRole } from '../roles.ts';

/** Start the role; on a start-up failure stop what started and hand the error to `fail`. */
export async function serve(role: Role, loaded: LoadedConfig, fail: (err: unknown) => never): Promise<void> {
  const logger = createLogger(loaded.config.log_level);
  const lifecycle = createLifecycle(logger);
  lifecycle.installProcessHandlers();
  try {
    await startRole(role, { loaded, logger, lifecycle });
  } catch (err) {
    await lifecycle.stop();
    fail(err);
  }
}
