/**
 * quotaflow configuration: one file (JSON or YAML) plus environment overrides, validated once
 * at start into a frozen object (see `config/load.ts`). Units are in the names.
 */
import { type Static, Type } from '@sinclair/typebox';
import { AlertsConfigSchema } from './alerts.ts';
import { AnomaliesConfigSchema } from './anomalies-config.ts';
import { ContextsConfigSchema } from './contexts-config.ts';
import { QuotaSpec } from './quota.ts';
import { ReportsConfigSchema } from './reports-config.ts';
import { TeamSpec } from './team.ts';

// `expected`: the reason schemas/schema-problems.ts gives for a value that fits neither branch.
const Price = Type.Union([Type.Number({ minimum: 0 }), Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?$' })], {
  expected: 'a number >= 0 or a decimal string such as "0.15"',
});

/**
 * One price-table entry (domain/pricing.ts `PriceEntry`). `unit` and the decimals/absurdity
 * limits are checked by `PriceTable`, which names the field and the reason.
 */
export const PriceEntrySchema = Type.Object(
  {
    provider: Type.String({ minLength: 1 }),
    model: Type.String({ minLength: 1 }),
    effective_from: Type.String({ minLength: 10, description: 'RFC 3339 date or date-time (UTC if no zone)' }),
    unit: Type.Optional(
      Type.String({ description: 'per_1m (default): prices are USD per 1M tokens; per_1k: USD per 1K tokens (x1000 at load).' }),
    ),
    input_per_1m: Price,
    cached_input_per_1m: Type.Optional(Price),
    output_per_1m: Price,
    reasoning_per_1m: Type.Optional(Price),
    long_context: Type.Optional(
      Type.Object(
        {
          above_input_tokens: Type.Integer({ minimum: 1, description: 'The tier applies to calls with strictly more input tokens.' }),
          input_per_1m: Price,
          cached_input_per_1m: Type.Optional(Price),
          output_per_1m: Price,
          reasoning_per_1m: Type.Optional(Price),
        },
        {
          additionalProperties: false,
          description:
            'Long-context tier: a call above the boundary is priced whole (input, cached, output, reasoning) at these prices, in the entry unit.',
        },
      ),
    ),
  },
  { additionalProperties: false },
);

export const API_KEY_ROLES = ['read', 'admin'] as const;

/** One read-API key (config `api_keys`); `tenant` is required for `read` and absent for `admin` (checked at load). */
export const ApiKeySchema = Type.Object(
  {
    key: Type.String({ minLength: 16, maxLength: 256 }),
    tenant: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'The only tenant a read key reads.' })),
    role: Type.Union(
      API_KEY_ROLES.map((r) => Type.Literal(r)),
      { description: 'read: one tenant; admin: every tenant.' },
    ),
  },
  { additionalProperties: false },
);

const Tags = (description: string) => Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { default: [], description });

/** One routing candidate (domain/routing.ts `RoutingCandidate`): a provider/model pair with tags and prices. */
export const RoutingCandidateSchema = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 128, description: 'Unique among the candidates.' }),
    provider: Type.String({ minLength: 1, maxLength: 128, description: 'Provider account, as in usage events (openai, anthropic, ...).' }),
    model: Type.String({ minLength: 1, maxLength: 256 }),
    capabilities: Tags('Feature tags: vision, tools, json_mode, long_context, ...'),
    compliance: Tags('Compliance tags: gdpr, eu_residency, soc2, no_training, ...'),
    price: Type.Optional(
      Type.Object(
        {
          input_per_1m: Type.Number({ minimum: 0, description: 'USD per 1M input tokens.' }),
          output_per_1m: Type.Number({ minimum: 0, description: 'USD per 1M output tokens.' }),
        },
        {
          additionalProperties: false,
          description: 'When omitted, config/load.ts fills it from the price table (base list price in force at load time).',
        },
      ),
    ),
    min_remaining_tokens: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          "The brief's TOKEN_THRESHOLD: below this many tokens left in a tokens quota that applies, the candidate ranks after the others.",
      }),
    ),
  },
  { additionalProperties: false },
);

/** Criterion weights (domain/routing.ts `RoutingWeights`); divided by their sum. Default 30/25/20/15/10. */
export const RoutingWeightsSchema = Type.Object(
  {
    performance: Type.Number({ minimum: 0 }),
    cost: Type.Number({ minimum: 0 }),
    features: Type.Number({ minimum: 0 }),
    stability: Type.Number({ minimum: 0 }),
    compliance: Type.Number({ minimum: 0 }),
  },
  { additionalProperties: false },
);

export const ConfigSchema = Type.Object(
  {
    clickhouse: Type.Object(
      {
        mode: Type.Union([Type.Literal('embedded'), Type.Literal('server')], { default: 'embedded' }),
        /** Embedded data folder (chDB); one process owns it at a time. */
        path: Type.String({ minLength: 1, default: '.quotaflow/data' }),
        url: Type.String({ default: 'http://127.0.0.1:8123' }),
        username: Type.String({ default: 'default' }),
        password: Type.String({ default: '' }),
        database: Type.String({ minLength: 1, default: 'default' }),
      },
      { additionalProperties: false, default: {} },
    ),
    pipeline: Type.Object(
      {
        /**
         * Events per processor batch (one ClickHouse insert). An insert has a fixed cost (a part per
         * table and view: about 100 ms of CPU on chDB), so 25,000 costs about 7 µs less per event
         * than 10,000 (docs/benchmarks.md); memory grows about 2.5 KB per event in flight.
         */
        batch_max_messages: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 25_000 }),
        batch_max_wait_ms: Type.Integer({ minimum: 1, maximum: 60_000, default: 500 }),
        /** In-process transport: uncommitted messages held before producers wait. */
        transport_capacity: Type.Integer({ minimum: 1, maximum: 10_000_000, default: 50_000 }),
        /** How far in the future an event time may be (clock skew), ms. */
        max_future_skew_ms: Type.Integer({ minimum: 0, maximum: 86_400_000, default: 600_000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** pino level of the roles' JSON logs on stderr. */
    log_level: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
      { default: 'info' },
    ),
    /** Event transport: in-process (embedded, one process) or Apache Kafka. */
    transport: Type.Union([Type.Literal('in-process'), Type.Literal('kafka')], { default: 'in-process' }),
    kafka: Type.Object(
      {
        brokers: Type.Array(Type.String({ pattern: '^[^\\s:]+:\\d+$' }), { minItems: 1, default: ['127.0.0.1:19092'] }),
        client_id: Type.String({ minLength: 1, default: 'quotaflow' }),
        usage_topic: Type.String({ minLength: 1, default: 'quotaflow.usage.v1' }),
        dlq_topic: Type.String({ minLength: 1, default: 'quotaflow.usage.dlq' }),
        consumer_group: Type.String({ minLength: 1, default: 'quotaflow-processor' }),
        /** Partitions of the topics when quotaflow creates them (the unit of processor parallelism). */
        partitions: Type.Integer({ minimum: 1, maximum: 1_000, default: 4 }),
        /** Consumer group session timeout: a crashed processor's partitions move after this long, ms. */
        session_timeout_ms: Type.Integer({ minimum: 6_000, maximum: 300_000, default: 30_000 }),
        /** How long ingest waits for the broker to acknowledge a produce before answering 503, ms. */
        produce_timeout_ms: Type.Integer({ minimum: 100, maximum: 120_000, default: 5_000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    http: Type.Object(
      {
        host: Type.String({ minLength: 1, default: '127.0.0.1' }),
        port: Type.Integer({ minimum: 0, maximum: 65_535, default: 8080 }),
        /** Largest accepted request body, bytes. */
        body_limit_bytes: Type.Integer({ minimum: 1_024, maximum: 104_857_600, default: 5_242_880 }),
        /** Most events in one ingest request. */
        max_events_per_request: Type.Integer({ minimum: 1, maximum: 100_000, default: 10_000 }),
        /**
         * Most time to receive a whole request (headers and body), ms; a client that takes longer
         * is cut off (408). Bounds how long a stalled upload holds its share of
         * `max_in_flight_bytes`. Node checks it every quarter of it (at most every 5 s).
         */
        request_timeout_ms: Type.Integer({ minimum: 1_000, maximum: 3_600_000, default: 30_000 }),
        /**
         * Most request body bytes the ingest routes (/v1/events, /v1/contexts) hold at once; a request
         * that would go over gets 503 `overloaded` before its body is read (ingest/http/in-flight.ts).
         * A request larger than this is still admitted when nothing else is in flight. Default 32 MiB:
         * about 250 MB of heap at the bound (docs/operations.md, "Memory of the ingest role").
         */
        max_in_flight_bytes: Type.Integer({ minimum: 1_024, maximum: 17_179_869_184, default: 33_554_432 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Ingest API keys; each key may write events of its tenant only. Env: INGEST_API_KEYS="key=tenant,key2=tenant2". */
    ingest_keys: Type.Array(
      Type.Object(
        { key: Type.String({ minLength: 16, maxLength: 256 }), tenant: Type.String({ minLength: 1, maxLength: 128 }) },
        { additionalProperties: false },
      ),
      { default: [] },
    ),
    /**
     * Read-API keys with a role (api/routes): `read` reads one tenant's data only (`tenant` required),
     * `admin` reads any tenant (no `tenant`). They cannot ingest. An ingest key also reads its own
     * tenant, as a read key. Env: API_KEYS="key=read:tenant,key2=admin".
     */
    api_keys: Type.Array(ApiKeySchema, { default: [] }),
    /** Extra price entries; they are added to the default table (same model and date: yours must not clash). */
    prices: Type.Array(PriceEntrySchema, { default: [] }),
    /** Start from the shipped default price table (config/prices.default.yaml). */
    use_default_prices: Type.Boolean({ default: true }),
    /** Quotas (schemas/quota.ts); checked by `checkQuotaSpecs`, which lists each problem once. */
    quotas: Type.Array(QuotaSpec, { default: [] }),
    /** Teams of a tenant (schemas/team.ts): members of team-scoped quotas and their shares; checked by `checkTeamSpecs`. */
    teams: Type.Array(TeamSpec, { default: [] }),
    /** Routing decision (SPEC.md section 4), served from an in-memory snapshot. */
    routing: Type.Object(
      {
        candidates: Type.Array(RoutingCandidateSchema, { default: [] }),
        weights: Type.Optional(RoutingWeightsSchema),
        /** How often the snapshot is rebuilt from the aggregates, ms. */
        refresh_ms: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 5_000 }),
        /** A candidate whose recent error rate is above this share (0..1] is excluded. */
        max_error_rate: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.2 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Quota alerts (schemas/alerts.ts): evaluation period and the signed webhook; checked by `checkAlertsConfig`. */
    alerts: AlertsConfigSchema,
    /** Anomaly detection in the processor role (schemas/anomalies-config.ts, docs/anomaly-detection.md). */
    anomalies: AnomaliesConfigSchema,
    /** Conversation context sync (schemas/contexts-config.ts, docs/contexts.md): topic, content policy, limits. */
    contexts: ContextsConfigSchema,
    /** Weekly reports (schemas/reports-config.ts, docs/reports.md): schedule and tenant time zones; checked by `checkReportsConfig`. */
    reports: ReportsConfigSchema,
    /** Reconciliation with a provider's usage export (`quotaflow reconcile`, docs/recommendations.md). */
    reconcile: Type.Object(
      {
        /** A day/model row is flagged when a count differs from the provider's by more than this share (0.01 = 1%). */
        tolerance: Type.Number({ minimum: 0, maximum: 1, default: 0.01 }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);
export type Config = Static<typeof ConfigSchema>;

/**
 * Environment variables that override config keys. Values are coerced: integers for numeric keys,
 * comma-separated lists for `kafka.brokers`, `key=tenant` pairs for `ingest_keys`, `key=read:tenant`
 * or `key=admin` pairs for `api_keys`.
 */
type EnvSection = 'clickhouse' | 'pipeline' | 'kafka' | 'http' | 'alerts' | '';
export const ENV_OVERRIDES: Record<string, readonly [section: EnvSection, key: string]> = {
  QUOTAFLOW_TRANSPORT: ['', 'transport'],
  LOG_LEVEL: ['', 'log_level'],
  KAFKA_BROKERS: ['kafka', 'brokers'],
  KAFKA_CLIENT_ID: ['kafka', 'client_id'],
  KAFKA_USAGE_TOPIC: ['kafka', 'usage_topic'],
  KAFKA_DLQ_TOPIC: ['kafka', 'dlq_topic'],
  KAFKA_CONSUMER_GROUP: ['kafka', 'consumer_group'],
  KAFKA_PARTITIONS: ['kafka', 'partitions'],
  KAFKA_PRODUCE_TIMEOUT_MS: ['kafka', 'produce_timeout_ms'],
  KAFKA_SESSION_TIMEOUT_MS: ['kafka', 'session_timeout_ms'],
  HTTP_HOST: ['http', 'host'],
  HTTP_PORT: ['http', 'port'],
  HTTP_BODY_LIMIT_BYTES: ['http', 'body_limit_bytes'],
  HTTP_MAX_EVENTS_PER_REQUEST: ['http', 'max_events_per_request'],
  HTTP_REQUEST_TIMEOUT_MS: ['http', 'request_timeout_ms'],
  HTTP_MAX_IN_FLIGHT_BYTES: ['http', 'max_in_flight_bytes'],
  INGEST_API_KEYS: ['', 'ingest_keys'],
  API_KEYS: ['', 'api_keys'],
  CLICKHOUSE_MODE: ['clickhouse', 'mode'],
  CLICKHOUSE_PATH: ['clickhouse', 'path'],
  CLICKHOUSE_URL: ['clickhouse', 'url'],
  CLICKHOUSE_USER: ['clickhouse', 'username'],
  CLICKHOUSE_PASSWORD: ['clickhouse', 'password'],
  CLICKHOUSE_DATABASE: ['clickhouse', 'database'],
  PIPELINE_BATCH_MAX_MESSAGES: ['pipeline', 'batch_max_messages'],
  PIPELINE_BATCH_MAX_WAIT_MS: ['pipeline', 'batch_max_wait_ms'],
  PIPELINE_TRANSPORT_CAPACITY: ['pipeline', 'transport_capacity'],
  PIPELINE_MAX_FUTURE_SKEW_MS: ['pipeline', 'max_future_skew_ms'],
  ALERTS_WEBHOOK_URL: ['alerts', 'webhook_url'],
  ALERTS_WEBHOOK_SECRET: ['alerts', 'webhook_secret'],
};
