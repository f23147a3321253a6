/**
 * The HTTP ingest app: a fastify instance with `POST /v1/events` and `GET /healthz`.
 * It never listens; the caller (main/CLI) does, and tests use `app.inject()`.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Producer } from '../transport/transport.ts';
import { type EventsRouteOptions, eventsRoute, type IngestKey } from './events.route.ts';
import { HealthResponse } from './schemas.ts';

export interface IngestAppDeps {
  /** Config `http` slice. `bodyLimitBytes`: largest body, bytes (over -> 413); `maxEventsPerRequest`: events per request. */
  http: { bodyLimitBytes: number; maxEventsPerRequest: number };
  /** Config `kafka` slice. `produceTimeoutMs`: wait for the transport's acknowledgement, ms (then 503). */
  kafka: { produceTimeoutMs: number };
  /** Config `ingest_keys`. */
  keys: ReadonlyArray<IngestKey>;
  /** Usage and dead-letter producers; owned by the caller, which closes them after `app.close()`. */
  usageProducer: Producer;
  dlqProducer: Producer;
  /** fastify `logger` option (pino options or a boolean). API keys are redacted from logged headers. */
  logger?: FastifyServerOptions['logger'];
  /** Current time, epoch ms. Default `Date.now`. */
  now?: () => number;
  /** Allowed clock skew into the future, ms (config `pipeline.max_future_skew_ms`). */
  maxFutureSkewMs?: number;
}

/** Header paths pino must never print: the API key travels in them. */
const REDACT = ['req.headers.authorization', 'req.headers["x-api-key"]'];

function loggerOption(logger: IngestAppDeps['logger']): FastifyServerOptions['logger'] {
  if (logger === undefined || logger === false) return false;
  // NOTE: fastify's default request serializer logs no headers; this guards custom serializers.
  if (logger === true) return { redact: REDACT };
  return { redact: REDACT, ...logger };
}

/**
 * Build the ingest app. It does not listen and is not yet ready: `await app.ready()` (or
 * `app.listen()`, `app.inject()`) loads the plugins. Request ids are random UUIDs, so the dead letters'
 * `source` (`http:<request id>:<index>`) is unique across restarts and replicas.
 */
export function buildIngestApp(deps: IngestAppDeps): FastifyInstance {
  const app = Fastify({
    bodyLimit: deps.http.bodyLimitBytes,
    logger: loggerOption(deps.logger),
    genReqId: () => randomUUID(),
  });

  app.get('/healthz', { schema: { response: { 200: HealthResponse } } }, async () => ({ status: 'ok' as const }));

  const routeOptions: EventsRouteOptions = {
    usageProducer: deps.usageProducer,
    dlqProducer: deps.dlqProducer,
    keys: deps.keys,
    maxEventsPerRequest: deps.http.maxEventsPerRequest,
    produceTimeoutMs: deps.kafka.produceTimeoutMs,
    now: deps.now,
    maxFutureSkewMs: deps.maxFutureSkewMs,
  };
  void app.register(eventsRoute, routeOptions);

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: { code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` } }),
  );
  return app;
}
