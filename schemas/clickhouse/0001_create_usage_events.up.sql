-- Raw usage events, one row per accepted (validated, de-duplicated, priced) event.
-- Analysts: filter on tenant and a time range; both are in the sort key.
CREATE TABLE IF NOT EXISTS usage_events
(
    tenant              String,
    event_id            String,
    timestamp           DateTime64(3, 'UTC')  COMMENT 'event time: when the call finished',
    window_start        DateTime('UTC')       COMMENT 'start of the 1-minute tumbling window of timestamp (assigned by the processor)',
    user_id             String,
    task_id             String,
    provider            LowCardinality(String) COMMENT 'gen_ai.provider.name, lower case',
    model               LowCardinality(String),
    operation           LowCardinality(String),
    status              LowCardinality(String) COMMENT 'ok | error | rate_limited | timeout | cancelled',
    finish_reason       LowCardinality(String),
    input_tokens        UInt32 COMMENT 'all prompt tokens, cached included',
    output_tokens       UInt32 COMMENT 'all completion tokens, reasoning included',
    cached_input_tokens UInt32,
    reasoning_tokens    UInt32,
    max_tokens          Nullable(UInt32),
    latency_ms          Nullable(Float64),
    prompt_hash         String,
    cost_usd            Decimal(38, 12) COMMENT 'USD; 0 when cost_source = unpriced',
    cost_source         LowCardinality(String) COMMENT 'reported (by the client) | price_table | unpriced',
    tags                Map(String, String),
    fingerprint         String COMMENT 'hash of the usage fields, to tell a replay from a conflicting duplicate',
    source              String COMMENT 'where the event came from: topic/partition/offset or file:line',
    ingested_at         DateTime64(3, 'UTC')
)
ENGINE = MergeTree
-- Monthly partitions: retention drops whole months; time-range queries prune partitions.
PARTITION BY toYYYYMM(timestamp)
-- Serves "this tenant's events in a time range" (reports, drill-down from an aggregate).
ORDER BY (tenant, timestamp, event_id)
-- Replaying the same insert block (same insert_deduplication_token) is a no-op.
SETTINGS non_replicated_deduplication_window = 1000;

-- De-duplication index: one row per (tenant, event_id) ever accepted. The processor looks a
-- batch's keys up here before writing, so an id is counted once, ever.
CREATE TABLE IF NOT EXISTS usage_event_ids
(
    tenant      String,
    event_id    String,
    fingerprint String,
    timestamp   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
-- Point lookups by the idempotency key.
ORDER BY (tenant, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_event_ids_mv TO usage_event_ids AS
SELECT tenant, event_id, fingerprint, timestamp FROM usage_events;
