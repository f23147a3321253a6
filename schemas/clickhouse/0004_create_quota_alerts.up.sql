-- Quota threshold alerts (issue 4): one row per alert the processor's evaluator fired
-- (processors/quota-alerts.ts, state machine in domain/quota-alerts.ts). This table is the log of
-- alerts, for reports and for the evaluator's restart; webhook delivery outcomes are in the logs.
-- An alert fires at most once per (quota, period, kind); its id hashes exactly those, so a
-- restarted or second processor writing the same alert writes the same row.
CREATE TABLE IF NOT EXISTS quota_alerts
(
    alert_id       String COMMENT 'sha256 hex of tenant, quota id, period start (ms) and kind',
    kind           LowCardinality(String) COMMENT 'soft | hard | recovered',
    quota_id       String COMMENT 'id of the quota in config',
    tenant         String COMMENT 'quota scope: tenant (NFC)',
    user_id        String COMMENT 'quota scope: user (NFC); empty = any user',
    team           String COMMENT 'quota scope: team (NFC); empty = any team',
    provider       LowCardinality(String) COMMENT 'quota scope: provider, lower case; empty = any provider',
    metric         LowCardinality(String) COMMENT 'tokens | requests | usd',
    used           Decimal(38, 12) COMMENT 'usage in the window when the alert fired, in metric units (tokens, requests or USD)',
    limit          Decimal(38, 12) COMMENT 'hard limit per window, in metric units',
    percent        Float64 COMMENT 'used / limit x 100, truncated to 2 decimals',
    soft_threshold Float64 COMMENT 'share of the limit at which the quota turns soft, 0..1',
    window_kind    LowCardinality(String) COMMENT 'calendar | rolling',
    window_start   DateTime64(3, 'UTC') COMMENT 'measured window, inclusive',
    window_end     DateTime64(3, 'UTC') COMMENT 'measured window, exclusive (rolling: the evaluation time)',
    episode_start  DateTime64(3, 'UTC') COMMENT 'period of the alert: calendar = window_start; rolling = minute the episode opened',
    fired_at       DateTime64(3, 'UTC') COMMENT 'when the evaluator fired it'
)
ENGINE = ReplacingMergeTree
-- Serves "alerts of tenant T (per quota)" for reports and the evaluator's start-up read of the
-- latest period per quota. alert_id closes the key so that the same alert is one row: a retried
-- or concurrent insert of an alert collapses on merge (read with FINAL for exact lists).
-- No partitioning: a handful of rows per quota per window.
ORDER BY (tenant, quota_id, alert_id)
-- Each alert is inserted with insert_deduplication_token = alert_id: a retried insert is a no-op.
SETTINGS non_replicated_deduplication_window = 1000;
