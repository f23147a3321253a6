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
 * - `GET /v1/quotas`, `GET /v1/quotas/:tenant` (api): see api/routes/quotas.route.ts.
 * - `GET /v1/allocations/:team` (api): see api/routes/allocations.route.ts.
 * - `GET /v1/anomalies` (api): see api/routes/anomalies.route.ts.
 * - `POST /v1/route` (api, when a routing snapshot is given): see api/routes/route.route.ts.
 * - `GET /v1/reports/:tenant/weekly` (api, when a report service is given): see api/routes/reports.route.ts.
 * - `GET /metrics` (every role, when metrics are given): Prometheus text format of the process's
 *   registry (observability/metrics.ts, docs/observability.md). No API key: scraped on the
 *   internal network, like /healthz and /readyz.
 * - `GET /docs` (every role): the OpenAPI document of these routes, built from their TypeBox
 *   schemas by @fastify/swagger, shown by @fastify/swagger-ui (its assets ship in the package, so
 *   it works offline); the JSON at `/docs/json`, YAML at `/docs/yaml`.
 * Read routes take the keys of ingest/http/api-keys.ts (ingest keys read their own tenant; read
 * keys one tenant; admin keys every tenant).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Type } from '@sinclair/typebox';
import Fastify, { type FastifyInstance, type FastifyServerOptions, LogController } from 'fastify';
import type { Logger } from 'pino';
import type { TeamMembership } from '../domain/team-allocation.ts';
import { REDACTED_HEADERS } from '../ingest/http/api-keys.ts';
import { type ContextsRouteOptions, contextsRoute } from '../ingest/http/contexts.route.ts';
import { type EventsRouteOptions, eventsRoute } from '../ingest/http/events.route.ts';
import { HealthResponse } from '../ingest/http/schemas.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { QuotaSpec } from '../schemas/quota.ts';
import { frameworkErrorReply, MAX_PATH_PARAM_CHARS, readErrorHandler } from './read-errors.ts';
import { allocationsRoute } from './routes/allocations.route.ts';
import { anomaliesRoute } from './routes/anomalies.route.ts';
import { contextsReadRoute } from './routes/contexts.route.ts';
import { quotasRoute } from './routes/quotas.route.ts';
import { type ReportsRouteOptions, reportsRoute } from './routes/reports.route.ts';
import { routeRoute } from './routes/route.route.ts';
import { type UsageRouteOptions, usageRoute } from './routes/usage.route.ts';
import type { RoutingSnapshots } from './routing-snapshot.ts';

/** The read API's dependencies: the usage route's, plus quotas and the routing snapshot. */
export interface ApiDeps extends UsageRouteOptions {
  /** Config `quotas`; `/v1/quotas` lists the caller's tenant's. Default none. */
  quotas?: ReadonlyArray<QuotaSpec>;
  /** Config `teams`: members of team-scoped quotas and their shares (`/v1/allocations/:team`). Default none. */
  teams?: ReadonlyArray<TeamMembership>;
  /** Serves `POST /v1/route`; without it the route is not registered. */
  routing?: Pick<RoutingSnapshots, 'current' | 'remaining'>;
  /** Serves `GET /v1/reports/:tenant/weekly` (processors/reports/report-service.ts); without it the route is not registered. */
  reports?: ReportsRouteOptions['reports'];
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
  /**
   * Most time to receive a whole request, ms (config `http.request_timeout_ms`); slower clients
   * are cut off with 408. Default 30,000.
   */
  requestTimeoutMs?: number;
  /** Readiness probes by dependency name; each resolves true when the dependency answers. */
  readiness: Record<string, () => Promise<boolean>>;
  ingest?: EventsRouteOptions;
  /** `POST /v1/contexts` (ingest/http/contexts.route.ts): with a context producer, ingest and all roles. */
  contexts?: ContextsRouteOptions;
  api?: ApiDeps;
  /** Serves `GET /metrics` and records ingest and routing metrics; without it neither. */
  metrics?: Metrics;
}

const ReadyResponse = Type.Object(
  {
    ready: Type.Boolean(),
    checks: Type.Record(Type.String(), Type.Boolean(), { description: 'Dependency (kafka, clickhouse) -> answers.' }),
  },
  { additionalProperties: false },
);

function isPino(l: AppDeps['logger']): l is Logger {
  return typeof l === 'object' && l !== null && typeof (l as Logger).child === 'function';
}

/**
 * Build the app; it does not listen (the role does; tests use `app.inject()`). Request ids are
 * random UUIDs, so a dead letter's `source` (`http:<request id>:<index>`) is unique across
 * restarts and replicas.
 */
export function buildApp(deps: AppDeps): FastifyInstance {
  const requestTimeoutMs = deps.requestTimeoutMs ?? 30_000;
  // Router errors (a bad %-escape, an over-long path parameter) answer in the app's error shape
  // (api/read-errors.ts), like every other error.
  const common = {
    bodyLimit: deps.bodyLimitBytes,
    genReqId: () => randomUUID(),
    // Request lines are the routes' own (with `event` keys), not fastify's.
    logController: new LogController({ disableRequestLogging: true }),
    // Node answers 408 to a request not received in full within requestTimeout, looking every
    // connectionsCheckingInterval (its default, 30 s, would double a short timeout). fastify
    // does not pass that interval on, hence the factory, which then also sets fastify's own
    // keep-alive default (72 s: longer than the usual load balancer's idle timeout).
    serverFactory: (handler: http.RequestListener) =>
      http.createServer(
        {
          requestTimeout: requestTimeoutMs,
          headersTimeout: Math.min(60_000, requestTimeoutMs),
          keepAliveTimeout: 72_000,
          connectionsCheckingInterval: Math.max(250, Math.min(5_000, Math.round(requestTimeoutMs / 4))),
        },
        handler,
      ),
    routerOptions: { maxParamLength: MAX_PATH_PARAM_CHARS },
    frameworkErrors: frameworkErrorReply,
  };
  const app = (isPino(deps.logger)
    ? Fastify({ ...common, loggerInstance: deps.logger })
    : Fastify({
        ...common,
        logger: deps.logger ? { redact: REDACTED_HEADERS, ...(deps.logger === true ? {} : deps.logger) } : false,
      })) as unknown as FastifyInstance;

  // Errors of routes without a handler of their own (probes, /docs) in the same shape; the route
  // plugins set theirs (the read routes this one, the ingest routes ingest/http/errors.ts).
  app.setErrorHandler(readErrorHandler);

  // The OpenAPI document collects routes as they are added: registered before every route.
  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'quotaflow API',
        version: '1',
        description: 'Usage ingest, quotas, team allocations, usage and routing (see README.md).',
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer <API key>' },
          apiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        },
      },
    },
  });
  void app.register(swaggerUi, { routePrefix: '/docs' });

  // In a plugin, so the routes are added after swagger has loaded and show up in /docs.
  void app.register(async (probes) => {
    probes.get('/healthz', { schema: { response: { 200: HealthResponse } } }, async () => ({ status: 'ok' as const }));
    probes.get('/readyz', { schema: { response: { 200: ReadyResponse, 503: ReadyResponse } } }, async (_req, reply) => {
      const names = Object.keys(deps.readiness);
      const results = await Promise.all(names.map((n) => (deps.readiness[n] as () => Promise<boolean>)().catch(() => false)));
      const checks = Object.fromEntries(names.map((n, i) => [n, results[i]]));
      const ready = results.every(Boolean);
      return reply.code(ready ? 200 : 503).send({ ready, checks });
    });
    const registry = deps.metrics?.registry;
    if (registry) {
      probes.get('/metrics', { schema: { summary: 'Prometheus metrics (text exposition format)' } }, async (_req, reply) =>
        reply.type(registry.contentType).send(await registry.metrics()),
      );
    }
  });
  const metrics = deps.metrics;
  if (deps.ingest) void app.register(eventsRoute, metrics ? { ...deps.ingest, metrics: metrics.ingest } : deps.ingest);
  if (deps.contexts) void app.register(contextsRoute, deps.contexts);
  if (deps.api) {
    const { clickhouse, keys, quotas = [], teams = [], routing, now } = deps.api;
    const clock = now ? { now } : {};
    void app.register(usageRoute, { clickhouse, keys, ...clock });
    void app.register(quotasRoute, { clickhouse, keys, quotas, teams, ...clock });
    void app.register(allocationsRoute, { clickhouse, keys, quotas, teams, ...clock });
    void app.register(anomaliesRoute, { clickhouse, keys });
    void app.register(contextsReadRoute, { clickhouse, keys });
    if (routing) void app.register(routeRoute, { keys, routing, ...(metrics ? { metrics: metrics.routing } : {}) });
    if (deps.api.reports) void app.register(reportsRoute, { keys, reports: deps.api.reports });
  }
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: { code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` } }),
  );
  return app;
}
