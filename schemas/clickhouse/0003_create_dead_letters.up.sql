-- Events that were not accepted, with the raw payload and every reason. Nothing is dropped
-- silently: an invalid or conflicting event ends here (and, with Kafka, on quotaflow.usage.dlq).
CREATE TABLE IF NOT EXISTS dead_letters
(
    dead_letter_id String COMMENT 'hash of source position and payload: a replayed batch rewrites the same ids',
    received_at    DateTime64(3, 'UTC'),
    reason         LowCardinality(String) COMMENT 'invalid_json | invalid_event | conflicting_duplicate',
    errors         String COMMENT 'JSON array of {field, reason}',
    tenant         String COMMENT 'as sent, if readable',
    event_id       String COMMENT 'as sent, if readable',
    raw            String COMMENT 'the payload byte for byte (UTF-8)',
    source         String COMMENT 'topic/partition/offset or file:line'
)
ENGINE = ReplacingMergeTree
-- One row per dead letter even when a batch is replayed; read with FINAL for exact counts.
ORDER BY dead_letter_id
SETTINGS non_replicated_deduplication_window = 1000;
