-- Anomalies found over the usage aggregates (issue 5): one row per anomaly episode of one series
-- and kind. A series is one (tenant, dimension, key): e.g. dimension 'model', key 'openai/gpt-4o'.
-- The detector keeps at most one open anomaly per (series, kind); it rewrites the same row (same
-- anomaly_id, later `updated_at`) while the episode lasts and when it resolves.
CREATE TABLE IF NOT EXISTS anomalies
(
    anomaly_id   String COMMENT 'sha256 hex of tenant, kind, dimension, series key and episode start (ms)',
    tenant       String,
    kind         LowCardinality(String) COMMENT 'spend_spike | token_spike | short_request_burst | runaway_loop | error_spike | rate_limit_spike | quota_burn',
    detector     LowCardinality(String) COMMENT 'name and version of the detector that scored it',
    dimension    LowCardinality(String) COMMENT 'what the series is keyed by: tenant | user | api_key | model | provider | task | prompt',
    series_key   String COMMENT 'the key within the dimension, e.g. a user id or provider/model',
    user_id      String COMMENT 'when the series is one user, else empty',
    provider     LowCardinality(String) COMMENT 'when the series is one provider or model, else empty',
    model        LowCardinality(String) COMMENT 'when the series is one model, else empty',
    window_start DateTime64(3, 'UTC') COMMENT 'episode start: first anomalous minute, inclusive',
    window_end   DateTime64(3, 'UTC') COMMENT 'last anomalous minute end, exclusive; grows while open',
    score        Float64 COMMENT 'highest anomaly score of the episode, 0..1',
    expected     Float64 COMMENT 'baseline value of the metric at the peak, in metric units',
    actual       Float64 COMMENT 'observed value at the peak, in metric units',
    metric       LowCardinality(String) COMMENT 'what expected/actual measure: tokens_per_min | usd_per_min | requests_per_min | error_rate | repeats | minutes_to_exhaustion',
    status       LowCardinality(String) COMMENT 'open | resolved',
    details      String COMMENT 'JSON object with detector-specific evidence',
    detected_at  DateTime64(3, 'UTC') COMMENT 'when the episode was first reported',
    updated_at   DateTime64(3, 'UTC') COMMENT 'version: the latest row per anomaly_id wins'
)
ENGINE = ReplacingMergeTree(updated_at)
-- Monthly partitions, like usage_events: retention drops whole months.
PARTITION BY toYYYYMM(window_start)
-- Serves "anomalies of tenant T in a time range, by kind" (GET /v1/anomalies, weekly report),
-- anomaly_id closes the key so each episode is one row after merges (read with FINAL).
ORDER BY (tenant, window_start, kind, anomaly_id)
SETTINGS non_replicated_deduplication_window = 1000;
