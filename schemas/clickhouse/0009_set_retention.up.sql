-- Retention (issue 7, README "Retention", docs/operations.md). Defaults:
--
--   table            kept                          counted from
--   usage_events     400 days                      stored_at   (new column: when the row was written)
--   usage_event_ids  5 years (as long as usage_day) stored_at   (new column)
--   usage_minute     35 days                       stored_at   (new column: the row's last write)
--   usage_hour       400 days                      stored_at
--   usage_day        5 years                       stored_at
--   dead_letters     90 days                       received_at
--   quota_alerts     400 days                      fired_at
--   anomalies        400 days                      updated_at  (the episode's last update)
--   reports          400 days                      generated_at
--   report_runs      90 days                       started_at
--   recommendations, contexts, schema_migrations: kept (no TTL). Recommendations are a few rows per
--   tenant and adopted ones keep their baseline; contexts are users' data, deleted by tombstones.
--
-- Why arrival time and not event time: ClickHouse drops rows whose TTL has already passed as soon
-- as they are written (measured on chDB 26.7: an insert of a 2023 row was gone before the next
-- query), so an event-time TTL would silently discard an import of last year's provider export
-- (quotaflow import, reconcile, the demo's 2023 traces). Counted from arrival, live traffic ages
-- exactly as with event time, and imported history is kept for the same period after its import.
-- stored_at is ClickHouse's own clock at the insert, not the processor's ingested_at: a replay
-- with an injected clock, or a processor with a wrong clock, cannot make rows expire early. On a
-- store that already holds data, the rows written before this migration count from its run.
--
-- Why the day table and the id index keep 5 years: the id index is what makes "an event_id is
-- counted once, ever" hold; it must outlive every aggregate that could count a replay twice.
--
-- The processor's roll-up repair (processors/rollup-repair.ts) only compares days whose raw rows
-- were all written in the last 30 days, so every usage table must keep more than 32 days.
--
-- TTL is applied when parts merge (by default at most every 4 hours per partition:
-- merge_with_ttl_timeout), so expired rows disappear some time after their deadline, not at it.
-- Modifying a TTL also rewrites the existing parts in the background (materialize_ttl_after_modify).
-- To change a period: add a later migration with the same ALTER and another INTERVAL, or run it by
-- hand (quotaflow sql, clickhouse-client); to keep a table forever: ALTER TABLE <table> REMOVE TTL.
--
-- Idempotent: ADD COLUMN IF NOT EXISTS, and MODIFY TTL sets the same TTL again when re-run.
-- ClickHouse has no ALTER TABLE IF EXISTS (a syntax error), so these ALTERs rely on the tables of
-- migrations 0001-0007, applied before this one.

-- MATERIALIZED, not DEFAULT: computed on every insert (the views' included) unless the insert names
-- the column, and left out of SELECT * and of INSERT ... SELECT column matching (the roll-up repair
-- inserts the minute view's own SELECT). max: a merged aggregate row keeps its latest write time.
ALTER TABLE usage_events
    ADD COLUMN IF NOT EXISTS stored_at DateTime('UTC') MATERIALIZED now() COMMENT 'when the row was written (retention)';

ALTER TABLE usage_events
    MODIFY TTL stored_at + INTERVAL 400 DAY;

ALTER TABLE usage_event_ids
    ADD COLUMN IF NOT EXISTS stored_at DateTime('UTC') MATERIALIZED now() COMMENT 'when the id was stored (retention)';

ALTER TABLE usage_event_ids
    MODIFY TTL stored_at + INTERVAL 5 YEAR;

ALTER TABLE usage_minute
    ADD COLUMN IF NOT EXISTS stored_at SimpleAggregateFunction(max, DateTime('UTC')) MATERIALIZED now() COMMENT 'last write to this row (retention)';

ALTER TABLE usage_minute
    MODIFY TTL stored_at + INTERVAL 35 DAY;

ALTER TABLE usage_hour
    ADD COLUMN IF NOT EXISTS stored_at SimpleAggregateFunction(max, DateTime('UTC')) MATERIALIZED now() COMMENT 'last write to this row (retention)';

ALTER TABLE usage_hour
    MODIFY TTL stored_at + INTERVAL 400 DAY;

ALTER TABLE usage_day
    ADD COLUMN IF NOT EXISTS stored_at SimpleAggregateFunction(max, DateTime('UTC')) MATERIALIZED now() COMMENT 'last write to this row (retention)';

ALTER TABLE usage_day
    MODIFY TTL stored_at + INTERVAL 5 YEAR;

ALTER TABLE dead_letters
    MODIFY TTL toDateTime(received_at) + INTERVAL 90 DAY;

ALTER TABLE quota_alerts
    MODIFY TTL toDateTime(fired_at) + INTERVAL 400 DAY;

ALTER TABLE anomalies
    MODIFY TTL toDateTime(updated_at) + INTERVAL 400 DAY;

ALTER TABLE reports
    MODIFY TTL toDateTime(generated_at) + INTERVAL 400 DAY;

ALTER TABLE report_runs
    MODIFY TTL toDateTime(started_at) + INTERVAL 90 DAY;
