/**
 * Config section `contexts`: the cross-platform conversation context sync (docs/contexts.md).
 * Referenced by schemas/config.ts; units are in the names.
 */
import { type Static, Type } from '@sinclair/typebox';

/** The default context topic (Kafka key = (tenant, user_id)). */
export const DEFAULT_CONTEXT_TOPIC = 'quotaflow.context.v1';

/**
 * Largest `max_record_bytes`: a record travels as one Kafka message, and the broker refuses
 * messages over `message.max.bytes` (1,048,588 by default); the rest is room for the key, the
 * headers and the record overhead.
 * https://kafka.apache.org/documentation/#brokerconfigs_message.max.bytes
 */
export const MAX_CONTEXT_RECORD_BYTES = 900_000;

export const ContextsConfigSchema = Type.Object(
  {
    /** Topic of the context change stream. */
    topic: Type.String({ minLength: 1, default: DEFAULT_CONTEXT_TOPIC }),
    /**
     * Whether message text is stored. `default` applies to every tenant not listed in `tenants`.
     * A tenant that does not store text keeps only `content_sha256` + `content_length`: ingest
     * replaces the text before it reaches the topic, so it is never in Kafka, ClickHouse or a dead letter.
     */
    store_content: Type.Object(
      {
        default: Type.Boolean({ default: true }),
        tenants: Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Type.Boolean(), { default: {} }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Largest record (its JSON text, UTF-8 bytes) `POST /v1/contexts` accepts; a larger one is rejected alone. */
    max_record_bytes: Type.Integer({ minimum: 1_024, maximum: MAX_CONTEXT_RECORD_BYTES, default: 262_144 }),
    /** Most records in one `POST /v1/contexts`; more -> 413 `too_many_records`, nothing produced. */
    max_records_per_request: Type.Integer({ minimum: 1, maximum: 100_000, default: 1_000 }),
  },
  { additionalProperties: false, default: {} },
);
export type ContextsConfig = Static<typeof ContextsConfigSchema>;

/**
 * The content policy of `contexts.store_content` as a lookup: tenant (NFC) -> store the text?
 * Tenant names in the map are NFC-normalised as ingest normalises tenants.
 */
export function contentPolicy(storeContent: ContextsConfig['store_content']): (tenant: string) => boolean {
  const byTenant = new Map(Object.entries(storeContent.tenants).map(([t, v]) => [t.normalize('NFC'), v]));
  return (tenant) => byTenant.get(tenant) ?? storeContent.default;
}
