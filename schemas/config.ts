/**
 * quotaflow configuration: one file (JSON or YAML) plus environment overrides, validated once
 * at start into a frozen object (see `config/load.ts`). Units are in the names.
 */
import { type Static, Type } from '@sinclair/typebox';

const Price = Type.Union([Type.Number({ minimum: 0 }), Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?$' })]);

export const PriceEntrySchema = Type.Object(
  {
    provider: Type.String({ minLength: 1 }),
    model: Type.String({ minLength: 1 }),
    effective_from: Type.String({ minLength: 10, description: 'RFC 3339 date or date-time (UTC if no zone)' }),
    input_per_1m: Price,
    cached_input_per_1m: Type.Optional(Price),
    output_per_1m: Price,
    reasoning_per_1m: Type.Optional(Price),
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
        batch_max_messages: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 10_000 }),
        batch_max_wait_ms: Type.Integer({ minimum: 1, maximum: 60_000, default: 500 }),
        /** In-process transport: uncommitted messages held before producers wait. */
        transport_capacity: Type.Integer({ minimum: 1, maximum: 10_000_000, default: 50_000 }),
        /** How far in the future an event time may be (clock skew), ms. */
        max_future_skew_ms: Type.Integer({ minimum: 0, maximum: 86_400_000, default: 600_000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Extra price entries; they are added to the default table (same model and date: yours must not clash). */
    prices: Type.Array(PriceEntrySchema, { default: [] }),
    /** Start from the shipped default price table (config/prices.default.yaml). */
    use_default_prices: Type.Boolean({ default: true }),
  },
  { additionalProperties: false },
);
export type Config = Static<typeof ConfigSchema>;

/** Environment variables that override config keys (strings coerced to the key's type). */
export const ENV_OVERRIDES: Record<string, readonly [section: 'clickhouse' | 'pipeline', key: string]> = {
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
};
