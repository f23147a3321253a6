-- Optimisation recommendations (issue 6) and their feedback loop: one row per (tenant,
-- recommendation_id) after merges. processors/recommendations/feedback.ts writes a new version of
-- the row (later `updated_at`) when a recommendation is re-computed while open, and when its state
-- changes (open -> adopted | dismissed). Adopting copies the estimate into the baseline columns, so
-- later weeks can compare the measured change with what was promised. Read with FINAL.
CREATE TABLE IF NOT EXISTS recommendations
(
    tenant              String,
    recommendation_id   String COMMENT 'sha256 hex of tenant, kind and subject: the same finding always has the same id',
    kind                LowCardinality(String) COMMENT 'cache_repeated_prompts | cap_max_tokens | right_size_model | batch_small_calls | trim_prompts | spread_load',
    subject             String COMMENT 'JSON object: what it is about (provider, model, user_id, task_id, prompt_hash)',
    title               String,
    rationale           String,
    evidence            String COMMENT 'JSON object {query, params, figures}: the SQL behind it with its bound parameters',
    estimated_tokens    UInt64 COMMENT 'estimated saving, tokens per 30 days',
    estimated_usd       Decimal(38, 12) COMMENT 'estimated saving, USD per 30 days (0 when priced = 0)',
    priced              UInt8 COMMENT '1 when the model had a list price; 0: the USD figures are unknown, not 0',
    confidence          LowCardinality(String) COMMENT 'low | medium | high',
    window_from         DateTime64(3, 'UTC') COMMENT 'range the estimate was measured on, inclusive',
    window_to           DateTime64(3, 'UTC') COMMENT 'range the estimate was measured on, exclusive',
    state               LowCardinality(String) COMMENT 'open | adopted | dismissed',
    adopted_at          Nullable(DateTime64(3, 'UTC')) COMMENT 'when it was adopted (the last time it moved to adopted)',
    baseline_tokens     UInt64 COMMENT 'estimated_tokens when adopted: the monthly waste before the change',
    baseline_usd        Decimal(38, 12) COMMENT 'estimated_usd when adopted: the monthly waste before the change',
    created_at          DateTime64(3, 'UTC') COMMENT 'first time this id was saved',
    updated_at          DateTime64(3, 'UTC') COMMENT 'version: the latest row per (tenant, recommendation_id) wins'
)
ENGINE = ReplacingMergeTree(updated_at)
-- Serves "the recommendations of tenant T" (CLI, weekly report) and the point lookup of one id
-- when its state changes. The id closes the key, so each recommendation is one row after merges.
-- No partitioning: a few dozen rows per tenant.
ORDER BY (tenant, recommendation_id)
SETTINGS non_replicated_deduplication_window = 1000;
