/**
 * The fastify app factory (STYLE.md 11): builds the server for the roles asked for and never
 * listens. `quotaflow ingest` registers the ingest routes, `quotaflow api` the read routes,
 * `quotaflow all` both, on one server.
 *
 * Routes:
 * - `GET /healthz`: 200 `{ status: "ok" }` while the process runs (liveness).
 * - `GET /readyz`: 200 `{ ready: true, checks }` when every dependency answers, else 503
 *   `{ ready: false, checks }`; `checks` maps a dependency (kafka, clickhouse) to a boolean.
 * - `POST /v1/events` (ingest): see ingest/http/events.route.ts and docs/http-ingest.md.
 * - `GET /v1/usage` (api): see api/routes/usage.route.ts.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { type EventsRouteOptions, eventsRoute } from '../ingest/http/events.route.ts';
import { type UsageRouteOptions, usageRoute } from './routes/usage.route.ts';

export interface AppDeps {
  /** fastify logger option (a pino instance or config; false in tests). */
  logger: FastifyServerOptions['loggerInstance'] | false;
  /** Largest accepted request body, bytes. */
  bodyLimitBytes: number;
  /** Readiness probes by dependency name; each resolves true when the dependency answers. */
  readiness: Record<string, () => Promise<boolean>>;
  ingest?: EventsRouteOptions;
  api?: UsageRouteOptions;
}

export function buildApp(deps: AppDeps): FastifyInstance {
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: false }),
    bodyLimit: deps.bodyLimitBytes,
    // Never log credentials.
    disableRequestLogging: true,
  }) as unknown as FastifyInstance;

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const names = Object.keys(deps.readiness);
    const results = await Promise.all(names.map((n) => (deps.readiness[n] as () => Promise<boolean>)().catch(() => false)));
    const checks = Object.fromEntries(names.map((n, i) => [n, results[i]]));
    const ready = results.every(Boolean);
    return reply.code(ready ? 200 : 503).send({ ready, checks });
  });
  if (deps.ingest) app.register(eventsRoute, deps.ingest);
  if (deps.api) app.register(usageRoute, deps.api);
  return app;
}
