/**
 * Parsers of provider usage exports (issue 6, SPEC.md section 7), into per UTC day and model
 * counts. Pure: the caller reads the file. Field names and nesting as in
 * ../shared/data/usage-formats/README.md:
 *
 * OpenAI organisation usage API, completions (`GET /v1/organization/usage/completions`): a page
 * `{object: "page", data: [bucket...], has_more}` or the concatenated `data` arrays (a list of
 * buckets, as the OpenAI cookbook saves them). Bucket: `start_time`, `end_time` (Unix seconds),
 * `results[]`; result `object: "organization.usage.completions.result"` with `input_tokens`
 * (cached included), `output_tokens`, `input_cached_tokens`, `num_model_requests`, `model` (null
 * without `group_by=model`), `input_audio_tokens` (kept apart: older API versions counted audio
 * outside `input_tokens`, newer ones inside), other keys ignored.
 *
 * Anthropic Admin API usage report (`GET /v1/organizations/usage_report/messages`):
 * `{data: [bucket...], has_more}`; bucket `starting_at`, `ending_at` (RFC 3339), `results[]` with
 * `uncached_input_tokens`, `cache_creation.{ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}`,
 * `cache_read_input_tokens`, `output_tokens`, `model` (null without grouping). Input tokens =
 * uncached + cache writes + cache reads, cached = cache reads, the way quotaflow's Anthropic
 * normaliser counts a call (ingest/sdk/providers.ts). The report has no request count.
 *
 * A bucket counts on the UTC day its start falls in. Models are compared by alias: a dated
 * snapshot name (`gpt-4o-mini-2024-07-18`) counts under its alias (`gpt-4o-mini`), on both sides.
 * Without a model, a row is the total over all models, with model `*`.
 */
import { DATED_SNAPSHOT } from '../../domain/pricing.ts';

/** Counts of one (day, model). `requests` is null when the export has no request count. */
export interface UsageCounts {
  requests: number | null;
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
}

/** One day and model of an export. */
export interface ExportDay extends UsageCounts {
  /** UTC day, YYYY-MM-DD. */
  day: string;
  /** Model alias, or `*` for all models. */
  model: string;
  /** OpenAI `input_audio_tokens` (0 for Anthropic), shown beside the input tokens. */
  audio_input_tokens: number;
}

export type ExportFormat = 'openai.usage.completions' | 'anthropic.usage_report.messages';

export interface UsageExport {
  format: ExportFormat;
  /** quotaflow's provider name for this export (`gen_ai.provider.name`). */
  provider: 'openai' | 'anthropic';
  /** Range the buckets cover: first bucket start (inclusive) to last bucket end (exclusive), epoch ms. */
  fromMs: number;
  toMs: number;
  /** true when results are per model; false: totals over all models (model `*`). */
  byModel: boolean;
  /** The export said more pages follow (`has_more`): it is not the whole range. */
  hasMore: boolean;
  /** Sorted by day, then model. Days of empty buckets are present with zeros when not by model. */
  days: ExportDay[];
}

/** An export that cannot be read; `message` names the field path and the reason. */
export class UsageExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageExportError';
  }
}

/** A dated snapshot name's alias (`gpt-4o-2024-08-06` -> `gpt-4o`); other names unchanged. */
export function modelAlias(model: string): string {
  return DATED_SNAPSHOT.exec(model)?.[1] ?? model;
}

/** UTC day of an epoch-ms instant, YYYY-MM-DD. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const NO_BUCKETS = 'data: no buckets (the export is empty)';

function count(obj: Record<string, unknown>, key: string, path: string, required: boolean): number {
  const v = obj[key];
  if (v === undefined || v === null) {
    if (required) throw new UsageExportError(`${path}.${key}: missing`);
    return 0;
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new UsageExportError(`${path}.${key}: must be a whole number >= 0, got ${JSON.stringify(v)}`);
  return v;
}

function modelOf(obj: Record<string, unknown>, path: string): string | null {
  const m = obj.model;
  if (m === undefined || m === null) return null;
  if (typeof m !== 'string' || m === '')
    throw new UsageExportError(`${path}.model: must be a non-empty string or null, got ${JSON.stringify(m)}`);
  return modelAlias(m);
}

/** Sums per (day, model) and the export's shape, shared by both formats. */
class DayTotals {
  private readonly map = new Map<string, ExportDay>();
  private readonly bucketDays = new Set<string>();
  private withModel = 0;
  private withoutModel = 0;
  fromMs = Number.POSITIVE_INFINITY;
  toMs = Number.NEGATIVE_INFINITY;

  bucket(startMs: number, endMs: number, path: string): string {
    if (endMs <= startMs) throw new UsageExportError(`${path}: ends before it starts`);
    this.fromMs = Math.min(this.fromMs, startMs);
    this.toMs = Math.max(this.toMs, endMs);
    const day = utcDay(startMs);
    this.bucketDays.add(day);
    return day;
  }

  add(day: string, model: string | null, c: UsageCounts & { audio_input_tokens: number }, path: string): void {
    if (c.cached_input_tokens > c.input_tokens) throw new UsageExportError(`${path}: cached input tokens exceed input tokens`);
    if (model === null) this.withoutModel++;
    else this.withModel++;
    if (this.withModel > 0 && this.withoutModel > 0) throw new UsageExportError(`${path}.model: some results have a model and some do not`);
    const key = `${day}\u0000${model ?? '*'}`;
    const row = this.map.get(key) ?? {
      day,
      model: model ?? '*',
      requests: c.requests === null ? null : 0,
      input_tokens: 0,
      output_tokens: 0,
      cached_input_tokens: 0,
      audio_input_tokens: 0,
    };
    row.requests = row.requests === null || c.requests === null ? null : row.requests + c.requests;
    row.input_tokens += c.input_tokens;
    row.output_tokens += c.output_tokens;
    row.cached_input_tokens += c.cached_input_tokens;
    row.audio_input_tokens += c.audio_input_tokens;
    this.map.set(key, row);
  }

  finish(format: ExportFormat, provider: UsageExport['provider'], hasMore: boolean, withRequests: boolean): UsageExport {
    if (!Number.isFinite(this.fromMs)) throw new UsageExportError(NO_BUCKETS);
    const byModel = this.withModel > 0;
    if (!byModel) {
      for (const day of this.bucketDays) {
        const key = `${day}\u0000*`;
        if (!this.map.has(key))
          this.map.set(key, {
            day,
            model: '*',
            requests: withRequests ? 0 : null,
            input_tokens: 0,
            output_tokens: 0,
            cached_input_tokens: 0,
            audio_input_tokens: 0,
          });
      }
    }
    const days = [...this.map.values()].sort((a, b) => (a.day === b.day ? (a.model < b.model ? -1 : 1) : a.day < b.day ? -1 : 1));
    return { format, provider, fromMs: this.fromMs, toMs: this.toMs, byModel, hasMore, days };
  }
}

function bucketsOf(json: unknown): { buckets: unknown[]; hasMore: boolean } {
  if (Array.isArray(json)) return { buckets: json, hasMore: false };
  if (isObject(json) && Array.isArray(json.data)) return { buckets: json.data, hasMore: json.has_more === true };
  throw new UsageExportError('top level: must be a list of buckets or an object with a data list');
}

/**
 * Parse an OpenAI completions usage export (module doc).
 * @throws UsageExportError naming the field path (`data[3].results[0].input_tokens`) and the reason.
 */
export function parseOpenAiCompletionsUsage(json: unknown): UsageExport {
  const { buckets, hasMore } = bucketsOf(json);
  const totals = new DayTotals();
  buckets.forEach((b, i) => {
    const path = `data[${i}]`;
    if (!isObject(b)) throw new UsageExportError(`${path}: must be an object`);
    const start = count(b, 'start_time', path, true);
    const end = count(b, 'end_time', path, true);
    const day = totals.bucket(start * 1000, end * 1000, path);
    if (!Array.isArray(b.results)) throw new UsageExportError(`${path}.results: must be a list`);
    b.results.forEach((r, j) => {
      const rp = `${path}.results[${j}]`;
      if (!isObject(r)) throw new UsageExportError(`${rp}: must be an object`);
      if (r.object !== undefined && r.object !== 'organization.usage.completions.result')
        throw new UsageExportError(
          `${rp}.object: expected organization.usage.completions.result, got ${JSON.stringify(r.object)} (only the completions usage export is read)`,
        );
      totals.add(
        day,
        modelOf(r, rp),
        {
          requests: count(r, 'num_model_requests', rp, true),
          input_tokens: count(r, 'input_tokens', rp, true),
          output_tokens: count(r, 'output_tokens', rp, true),
          cached_input_tokens: count(r, 'input_cached_tokens', rp, false),
          audio_input_tokens: count(r, 'input_audio_tokens', rp, false),
        },
        rp,
      );
    });
  });
  return totals.finish('openai.usage.completions', 'openai', hasMore, true);
}

function rfc3339Ms(obj: Record<string, unknown>, key: string, path: string): number {
  const v = obj[key];
  const ms = typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2})$/.test(v) ? Date.parse(v) : Number.NaN;
  if (Number.isNaN(ms)) throw new UsageExportError(`${path}.${key}: must be an RFC 3339 date-time with a zone, got ${JSON.stringify(v)}`);
  return ms;
}

/**
 * Parse an Anthropic messages usage report (module doc).
 * @throws UsageExportError naming the field path and the reason.
 */
export function parseAnthropicMessagesUsage(json: unknown): UsageExport {
  const { buckets, hasMore } = bucketsOf(json);
  const totals = new DayTotals();
  buckets.forEach((b, i) => {
    const path = `data[${i}]`;
    if (!isObject(b)) throw new UsageExportError(`${path}: must be an object`);
    const day = totals.bucket(rfc3339Ms(b, 'starting_at', path), rfc3339Ms(b, 'ending_at', path), path);
    if (!Array.isArray(b.results)) throw new UsageExportError(`${path}.results: must be a list`);
    b.results.forEach((r, j) => {
      const rp = `${path}.results[${j}]`;
      if (!isObject(r)) throw new UsageExportError(`${rp}: must be an object`);
      const creation = r.cache_creation;
      if (creation !== undefined && creation !== null && !isObject(creation))
        throw new UsageExportError(`${rp}.cache_creation: must be an object`);
      const writes = isObject(creation)
        ? count(creation, 'ephemeral_5m_input_tokens', `${rp}.cache_creation`, false) +
          count(creation, 'ephemeral_1h_input_tokens', `${rp}.cache_creation`, false)
        : 0;
      const reads = count(r, 'cache_read_input_tokens', rp, false);
      totals.add(
        day,
        modelOf(r, rp),
        {
          requests: null,
          input_tokens: count(r, 'uncached_input_tokens', rp, true) + writes + reads,
          output_tokens: count(r, 'output_tokens', rp, true),
          cached_input_tokens: reads,
          audio_input_tokens: 0,
        },
        rp,
      );
    });
  });
  return totals.finish('anthropic.usage_report.messages', 'anthropic', hasMore, false);
}

/**
 * Parse either export, told apart by its buckets: `start_time` (OpenAI) or `starting_at` (Anthropic).
 * @throws UsageExportError when neither shape matches, or from the parser.
 */
export function parseUsageExport(json: unknown): UsageExport {
  const { buckets } = bucketsOf(json);
  // The first bucket tells the format apart; a problem with it is named as data[0].
  const first = buckets[0];
  if (buckets.length === 0) throw new UsageExportError(NO_BUCKETS);
  if (!isObject(first)) throw new UsageExportError('data[0]: must be an object');
  if ('start_time' in first) return parseOpenAiCompletionsUsage(json);
  if ('starting_at' in first) return parseAnthropicMessagesUsage(json);
  throw new UsageExportError(
    'data[0]: not a known usage export (OpenAI completions usage buckets have start_time, Anthropic usage report buckets have starting_at)',
  );
}
