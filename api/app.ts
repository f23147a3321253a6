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
 * - `GET /v1/quotas` (api): see api/routes/quotas.route.ts.
 * - `POST /v1/route` (api, when a routing snapshot is given): see api/routes/route.route.ts.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Logger } from 'pino';
import { REDACTED_HEADERS } from '../ingest/http/api-keys.ts';
import { type EventsRouteOptions, eventsRoute } from '../ingest/http/events.route.ts';
import { HealthResponse } from '../ingest/http/schemas.ts';
import type { QuotaSpec } from '../schemas/quota.ts';
import { quotasRoute } from './routes/quotas.route.ts';
import { routeRoute } from './routes/route.route.ts';
import { type UsageRouteOptions, usageRoute } from './routes/usage.route.ts';
import type { RoutingSnapshots } from './routing-snapshot.ts';

/** The read API's dependencies: the usage route's, plus quotas and the routing snapshot. */
export interface ApiDeps extends UsageRouteOptions {
  /** Config `quotas`; `/v1/quotas` lists the caller's tenant's. Default none. */
  quotas?: ReadonlyArray<QuotaSpec>;
  /** Serves `POST /v1/route`; without it the route is not registered. */
  routing?: Pick<RoutingSnapshots, 'current' | 'remaining'>;
  /** Current time, epoch ms (quota windows). Default Date.now. */
  now?: () => number;
}

export interface AppDeps {
  /**
   * A pino logger (the roles pass theirs, built with `REDACTED_HEADERS`), fastify logger options
   * (redaction is added), or false for none.
   */
  logger?: Logger | FastifyServerOptions['logger'];
  /** Largest accepted request body, bytes (over -> 413). */
  bodyLimitBytes: number;
  /** Readiness probes by dependency name; each resolves true when the dependency answers. */
  readiness: Record<string, () => Promise<boolean>>;
  ingest?: EventsRouteOptions;
  api?: ApiDeps;
}

function isPino(l: AppDeps['logger']): l is Logger {
  return typeof l === 'object' && l !== null && typeof (l as Logger).child === 'function';
}

/**
 * Build the app; it does not listen (the role does; tests use `app.inject()`). Request ids are
 * random UUIDs, so a dead letter's `source` (`http:<request id>:<index>`) is unique across
 * restarts and replicas.
 */
export function buildApp(deps: AppDeps): FastifyInstance {
  const common = { bodyLimit: deps.bodyLimitBytes, genReqId: () => randomUUID(), disableRequestLogging: true };
  const app = (isPino(deps.logger)
    ? Fastify({ ...common, loggerInstance: deps.logger })
    : Fastify({
        ...common,
        logger: deps.logger ? { redact: REDACTED_HEADERS, ...(deps.logger === true ? {} : deps.logger) } : false,
      })) as unknown as FastifyInstance;

  app.get('/healthz', { schema: { response: { 200: HealthResponse } } }, async () => ({ status: 'ok' as const }));
  app.get('/readyz', async (_req, reply) => {
    const names = Object.keys(deps.readiness);
    const results = await Promise.all(names.map((n) => (deps.readiness[n] as () => Promise<boolean>)().catch(() => false)));
    const checks = Object.fromEntries(names.map((n, i) => [n, results[i]]));
    const ready = results.every(Boolean);
    return reply.code(ready ? 200 : 503).send({ ready, checks });
  });
  if (deps.ingest) void app.register(eventsRoute, deps.ingest);
  if (deps.api) {
    const { clickhouse, keys, quotas = [], routing, now } = deps.api;
    void app.register(usageRoute, { clickhouse, keys });
    void app.register(quotasRoute, { clickhouse, keys, quotas, ...(now ? { now } : {}) });
    if (routing) void app.register(routeRoute, { keys, routing });
  }
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: { code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` } }),
  );
  return app;
}
