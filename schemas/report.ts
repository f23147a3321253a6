/**
 * The weekly report document (issue 6, SPEC.md section 7): what `processors/reports/weekly.ts`
 * builds, `GET /v1/reports/:tenant/weekly` serves as JSON, and the Markdown and HTML renderers read.
 *
 * Units: token and request counts are integers; money is USD as an exact decimal string (no
 * exponent; `cost_usd` covers priced and reported events only, `unpriced_requests` counts the
 * calls whose cost is unknown); times are RFC 3339 UTC strings; percentages are numbers rounded
 * to 2 decimals; shares are 0..1 rounded to 4 decimals.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';

export const REPORT_VERSION = 1;

const Usd = Type.String({ pattern: '^-?[0-9]+(\\.[0-9]+)?$', description: 'USD, exact decimal string.' });
const Amount = Type.String({
  pattern: '^-?[0-9]+(\\.[0-9]+)?$',
  description: 'Exact decimal string in the metric unit (tokens, requests or USD).',
});
const Count = Type.Integer({ minimum: 0 });
const Time = Type.String({ description: 'RFC 3339, UTC.' });
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

/** Sums over a set of usage rows. */
export const ReportTotals = Type.Object(
  {
    requests: Count,
    input_tokens: Count,
    output_tokens: Count,
    cached_input_tokens: Count,
    reasoning_tokens: Count,
    cost_usd: Usd,
    unpriced_requests: Type.Integer({ minimum: 0, description: 'Calls whose model had no price: not in cost_usd.' }),
  },
  { additionalProperties: false },
);
export type ReportTotals = Static<typeof ReportTotals>;

const Change = Nullable(Type.Number({ description: '(this week - previous) / previous x 100, 2 decimals; null when previous is 0.' }));

/** Week-over-week change of each total, percent. */
export const ReportChange = Type.Object(
  {
    requests: Change,
    input_tokens: Change,
    output_tokens: Change,
    cached_input_tokens: Change,
    reasoning_tokens: Change,
    cost_usd: Change,
  },
  { additionalProperties: false },
);

export const ReportDay = Type.Composite([
  Type.Object({
    date: Type.String({ description: 'Local date YYYY-MM-DD in the report time zone.' }),
    start: Time,
    end: Time,
  }),
  ReportTotals,
]);
export type ReportDay = Static<typeof ReportDay>;

/** The groups past the top N of a breakdown, summed. */
const OtherRow = Nullable(
  Type.Composite([Type.Object({ groups: Type.Integer({ minimum: 1, description: 'Groups summed here.' }) }), ReportTotals]),
);

/** A breakdown: the top N groups by cost (then tokens), and the rest summed in `other` (null when none). */
const breakdown = <T extends TSchema>(row: T) => Type.Object({ rows: Type.Array(row), other: OtherRow }, { additionalProperties: false });

export const ModelBreakdown = breakdown(Type.Composite([Type.Object({ provider: Type.String(), model: Type.String() }), ReportTotals]));
export const UserBreakdown = breakdown(
  Type.Composite([Type.Object({ user_id: Type.String({ description: 'Empty: calls without a user.' }) }), ReportTotals]),
);
export const TaskBreakdown = breakdown(
  Type.Composite([Type.Object({ task_id: Type.String({ description: 'Empty: calls without a task.' }) }), ReportTotals]),
);
export type Breakdown<K> = { rows: Array<K & ReportTotals>; other: (ReportTotals & { groups: number }) | null };

const Completion = Type.Object(
  {
    requests: Count,
    ok: Type.Integer({ minimum: 0, description: "Calls with status 'ok'." }),
    rate: Nullable(Type.Number({ minimum: 0, maximum: 1, description: 'ok / requests, 4 decimals; null without calls.' })),
  },
  { additionalProperties: false },
);

export const ReportCompletion = Type.Object(
  {
    overall: Completion,
    by_task: Type.Array(Type.Composite([Type.Object({ task_id: Type.String() }), Completion]), {
      description: 'Tasks with a task_id, most calls first, top N.',
    }),
    other_tasks: Nullable(Type.Composite([Type.Object({ groups: Type.Integer({ minimum: 1 }) }), Completion])),
  },
  { additionalProperties: false },
);

export const ReportQuotaAlert = Type.Object(
  {
    alert_id: Type.String(),
    quota_id: Type.String(),
    kind: Type.String({ description: 'soft | hard | recovered' }),
    metric: Type.String(),
    used: Amount,
    limit: Amount,
    percent: Type.Number(),
    window_start: Time,
    window_end: Time,
    fired_at: Time,
  },
  { additionalProperties: false },
);
export type ReportQuotaAlert = Static<typeof ReportQuotaAlert>;

export const ReportQuota = Type.Object(
  {
    id: Type.String(),
    metric: Type.String({ description: 'tokens | requests | usd' }),
    scope: Type.Record(Type.String(), Type.String(), { description: 'The quota scope as configured.' }),
    window: Type.String({ description: 'Readable window: "calendar day (Europe/Berlin)", "rolling 60 min".' }),
    limit: Amount,
    soft_threshold: Type.Number({ description: 'Share of the limit, 0..1.' }),
    peak: Type.Object(
      {
        used: Amount,
        percent: Type.Number({ description: 'used / limit x 100, truncated to 2 decimals (quotaStatus).' }),
        state: Type.String({ description: 'ok | soft | exhausted at the peak.' }),
        window_start: Time,
        window_end: Time,
      },
      { additionalProperties: false, description: 'The window of the week with the highest usage (see docs/reports.md).' },
    ),
    alerts: Type.Object({ soft: Count, hard: Count, recovered: Count }, { additionalProperties: false }),
  },
  { additionalProperties: false },
);
export type ReportQuota = Static<typeof ReportQuota>;

export const ReportAnomaly = Type.Object(
  {
    anomaly_id: Type.String(),
    kind: Type.String(),
    dimension: Type.String(),
    series_key: Type.String(),
    window_start: Time,
    window_end: Time,
    score: Type.Number(),
    expected: Type.Number(),
    actual: Type.Number(),
    metric: Type.String(),
    status: Type.String(),
  },
  { additionalProperties: false },
);
export type ReportAnomaly = Static<typeof ReportAnomaly>;

/** A recommendation as processors/recommendations produces it (its `Recommendation`). */
export const ReportRecommendation = Type.Object(
  {
    id: Type.String(),
    kind: Type.String(),
    tenant: Type.String(),
    subject: Type.Object(
      {
        provider: Type.Optional(Type.String()),
        model: Type.Optional(Type.String()),
        user_id: Type.Optional(Type.String()),
        task_id: Type.Optional(Type.String()),
        prompt_hash: Type.Optional(Type.String()),
      },
      { description: 'What it is about; absent fields are not part of it.' },
    ),
    title: Type.String(),
    rationale: Type.String(),
    evidence: Type.Object({
      query: Type.String(),
      params: Type.Record(Type.String(), Type.Unknown()),
      figures: Type.Record(Type.String(), Type.Union([Type.Number(), Type.String()])),
    }),
    estimated_monthly_saving: Type.Object({
      tokens: Type.Number(),
      usd: Usd,
      priced: Type.Optional(Type.Boolean({ description: 'false: the model has no list price, usd "0" means unknown.' })),
    }),
    confidence: Type.String({ description: 'low | medium | high' }),
    window: Type.Object({ from: Time, to: Time }, { description: 'Range the estimate was measured on, [from, to).' }),
  },
  { description: 'Ranked by estimated_monthly_saving.usd, then tokens, then id.' },
);
export type ReportRecommendation = Static<typeof ReportRecommendation>;

export const ReportAdoption = Type.Object(
  {
    id: Type.String(),
    kind: Type.Optional(Type.String()),
    estimated_usd: Type.Union([Usd, Type.Number()]),
    actual_usd: Type.Union([Usd, Type.Number(), Type.Null()]),
    ratio: Nullable(Type.Number({ description: 'actual / estimated.' })),
  },
  { description: 'Measured effect of an adopted recommendation in the report week.' },
);
export type ReportAdoption = Static<typeof ReportAdoption>;

export const WeeklyReport = Type.Object(
  {
    version: Type.Literal(REPORT_VERSION),
    tenant: Type.String(),
    week: Type.String({ pattern: '^\\d{4}-W\\d{2}$', description: 'ISO week in time_zone.' }),
    time_zone: Type.String(),
    period: Type.Object(
      { start: Time, end: Time, hours: Type.Number({ description: '167, 168 or 169 (DST).' }) },
      { additionalProperties: false },
    ),
    previous: Type.Object({ week: Type.String(), start: Time, end: Time }, { additionalProperties: false }),
    generated_at: Time,
    complete: Type.Boolean({ description: 'Whether the week had ended when the report was generated.' }),
    source_table: Type.String({ description: 'usage_hour, or usage_minute where the zone has non-whole-hour offsets.' }),
    totals: Type.Object({ week: ReportTotals, previous: ReportTotals, change_percent: ReportChange }, { additionalProperties: false }),
    daily: Type.Array(ReportDay, { minItems: 7, maxItems: 7 }),
    by_model: ModelBreakdown,
    by_user: UserBreakdown,
    by_task: TaskBreakdown,
    completion: ReportCompletion,
    quotas: Type.Array(ReportQuota),
    alerts: Type.Array(ReportQuotaAlert, { description: 'Quota alerts fired in the week, oldest first.' }),
    anomalies: Type.Object(
      { total: Count, items: Type.Array(ReportAnomaly, { description: 'Highest score first, at most 50.' }) },
      { additionalProperties: false },
    ),
    recommendations: Type.Object(
      {
        available: Type.Boolean({ description: 'false when no recommendation engine was wired in.' }),
        items: Type.Array(ReportRecommendation),
        adopted: Type.Array(ReportAdoption),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
export type WeeklyReport = Static<typeof WeeklyReport>;
