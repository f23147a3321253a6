-- Weekly reports (issue 6): one row per (tenant, ISO week), the three renderings of the same
-- report (processors/reports). Regenerating a week writes a new row with a later generated_at,
-- and the latest one wins (read with FINAL).
CREATE TABLE IF NOT EXISTS reports
(
    tenant        String,
    week          String COMMENT 'ISO week in time_zone, e.g. 2026-W47',
    time_zone     String COMMENT 'IANA zone the week runs in: Monday 00:00 to Monday 00:00 local',
    period_start  DateTime64(3, 'UTC') COMMENT 'week start, inclusive',
    period_end    DateTime64(3, 'UTC') COMMENT 'week end, exclusive',
    generated_at  DateTime64(3, 'UTC') COMMENT 'version: the latest row per (tenant, week) wins',
    json          String COMMENT 'the report document (schemas/report.ts WeeklyReport)',
    markdown      String,
    html          String COMMENT 'self-contained page: inline CSS and SVG, no script, no network'
)
ENGINE = ReplacingMergeTree(generated_at)
-- Serves "the report of tenant T for week W" (GET /v1/reports/:tenant/weekly) and the list of a
-- tenant's weeks; one row per key after merges.
ORDER BY (tenant, week)
SETTINGS non_replicated_deduplication_window = 1000;

-- The report scheduler's log (processors/reports/scheduler.ts): one row per tenant report a
-- scheduled run attempted, with its outcome. The last success of a job is its latest ok row.
CREATE TABLE IF NOT EXISTS report_runs
(
    run_id       String COMMENT 'one id per scheduled run: the rows of one run share it',
    job          LowCardinality(String) COMMENT 'scheduler job, e.g. weekly-report:Europe/Berlin',
    tenant       String,
    week         String COMMENT 'ISO week reported',
    started_at   DateTime64(3, 'UTC'),
    finished_at  DateTime64(3, 'UTC'),
    status       LowCardinality(String) COMMENT 'ok | failed',
    error        String COMMENT 'the error message when failed, else empty'
)
ENGINE = MergeTree
-- Serves "latest runs of job J" (last success, failures to look at); a few rows per week.
ORDER BY (job, started_at, tenant)
SETTINGS non_replicated_deduplication_window = 1000;
