/**
 * Reconciliation, pure parts: the usage-export parsers on the real OpenAI cookbook export
 * (data/usage-formats) and on small exports of each documented shape written here, and the
 * comparison with hand-computed differences and flags.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  compareUsage,
  diffPct,
  type ExportDay,
  type OursDay,
  parseAnthropicMessagesUsage,
  parseOpenAiCompletionsUsage,
  parseUsageExport,
  UsageExportError,
} from '../../processors/reconcile/index.ts';

const FORMATS = join(import.meta.dirname, '..', '..', 'data', 'usage-formats');
const cookbook = JSON.parse(readFileSync(join(FORMATS, 'openai_usage_completions_1d_cookbook.json'), 'utf8')) as unknown;

/** A one-bucket page in the documented shape of the OpenAI usage API (`group_by=model`). */
const OPENAI_PAGE = {
  object: 'page',
  data: [
    {
      object: 'bucket',
      start_time: 1730419200, // 2024-11-01T00:00:00Z
      end_time: 1730505600,
      results: [
        {
          object: 'organization.usage.completions.result',
          input_tokens: 7200,
          output_tokens: 640,
          input_cached_tokens: 2048,
          input_audio_tokens: 120,
          output_audio_tokens: 0,
          num_model_requests: 9,
          project_id: null,
          user_id: null,
          api_key_id: null,
          model: 'gpt-4o-mini-2024-07-18',
          batch: false,
        },
      ],
    },
  ],
  has_more: true,
  next_page: 'next',
};

/** A one-bucket report in the documented shape of Anthropic's messages usage report. */
const ANTHROPIC_REPORT = {
  data: [
    {
      starting_at: '2025-08-01T00:00:00Z',
      ending_at: '2025-08-02T00:00:00Z',
      results: [
        {
          uncached_input_tokens: 2400,
          cache_creation: { ephemeral_1h_input_tokens: 300, ephemeral_5m_input_tokens: 700 },
          cache_read_input_tokens: 4096,
          output_tokens: 900,
          server_tool_use: { web_search_requests: 2 },
          api_key_id: null,
          workspace_id: null,
          model: 'claude-sonnet-4-20250514',
          service_tier: 'standard',
          context_window: '0-200k',
        },
      ],
    },
  ],
  has_more: false,
  next_page: null,
};

describe('OpenAI completions usage export', () => {
  it('reads the real cookbook export: 31 daily buckets, totals over all models, empty days as zeros', () => {
    const e = parseOpenAiCompletionsUsage(cookbook);
    expect(e).toMatchObject({ format: 'openai.usage.completions', provider: 'openai', byModel: false, hasMore: false });
    // start_time 1736616660 = 2025-01-11T17:31:00Z (partial first bucket); end_time 1739208663.
    expect(e.fromMs).toBe(1_736_616_660_000);
    expect(e.toMs).toBe(1_739_208_663_000);
    expect(e.days).toHaveLength(31);
    expect(e.days[0]).toEqual({
      day: '2025-01-11',
      model: '*',
      requests: 470,
      input_tokens: 141_201,
      output_tokens: 9_756,
      cached_input_tokens: 0,
      audio_input_tokens: 0,
    });
    expect(e.days.find((d) => d.day === '2025-01-13')).toEqual({
      day: '2025-01-13',
      model: '*',
      requests: 3_053,
      input_tokens: 3_718_360,
      output_tokens: 97_756,
      cached_input_tokens: 76_544,
      audio_input_tokens: 5_776,
    });
    // 2025-01-20 is one of the five buckets with no results.
    expect(e.days.find((d) => d.day === '2025-01-20')).toMatchObject({ requests: 0, input_tokens: 0, output_tokens: 0 });
    // Sums over the file, added by hand from the buckets' requests: 470 + 150 + 3053 + 157 + 55 + 8 + 2687 + 6335 + 46
    // + 98 + 7 + 19 + 75 + 99 + 14 + 217 + 84 + 5528 + 24 + 48 + 50 + 43 + 18 + 47 + 7 + 8 = 19,347.
    expect(e.days.reduce((n, d) => n + (d.requests ?? 0), 0)).toBe(19_347);
  });

  it('reads a page: per model (dated snapshot under its alias), has_more kept', () => {
    expect(parseUsageExport(OPENAI_PAGE)).toEqual({
      format: 'openai.usage.completions',
      provider: 'openai',
      fromMs: 1_730_419_200_000,
      toMs: 1_730_505_600_000,
      byModel: true,
      hasMore: true,
      days: [
        {
          day: '2024-11-01',
          model: 'gpt-4o-mini',
          requests: 9,
          input_tokens: 7200,
          output_tokens: 640,
          cached_input_tokens: 2048,
          audio_input_tokens: 120,
        },
      ],
    });
  });

  it('names the bad field', () => {
    const bad = (r: Record<string, unknown>) => ({
      data: [{ start_time: 0, end_time: 86_400, results: [{ ...OPENAI_PAGE.data[0]?.results[0], ...r }] }],
    });
    expect(() => parseOpenAiCompletionsUsage(bad({ input_tokens: -1 }))).toThrow(
      'data[0].results[0].input_tokens: must be a whole number >= 0, got -1',
    );
    expect(() => parseOpenAiCompletionsUsage(bad({ num_model_requests: undefined }))).toThrow(
      'data[0].results[0].num_model_requests: missing',
    );
    expect(() => parseOpenAiCompletionsUsage(bad({ input_cached_tokens: 7201 }))).toThrow(
      'data[0].results[0]: cached input tokens exceed input tokens',
    );
    expect(() => parseOpenAiCompletionsUsage(bad({ object: 'organization.costs.result' }))).toThrow(
      /only the completions usage export is read/,
    );
    expect(() => parseOpenAiCompletionsUsage({ data: [{ start_time: 10, end_time: 5, results: [] }] })).toThrow(
      'data[0]: ends before it starts',
    );
    expect(() => parseOpenAiCompletionsUsage({ data: [] })).toThrow('data: no buckets');
    const mixed = {
      data: [
        {
          start_time: 0,
          end_time: 86_400,
          results: [
            { input_tokens: 1, output_tokens: 1, num_model_requests: 1, model: 'a' },
            { input_tokens: 1, output_tokens: 1, num_model_requests: 1, model: null },
          ],
        },
      ],
    };
    expect(() => parseOpenAiCompletionsUsage(mixed)).toThrow('data[0].results[1].model: some results have a model and some do not');
  });
});

describe('Anthropic messages usage report', () => {
  it('input = uncached + cache writes + cache reads; cached = reads; no request count', () => {
    // 2,400 + (300 + 700) + 4,096 = 7,496 input tokens, 4,096 cached.
    expect(parseAnthropicMessagesUsage(ANTHROPIC_REPORT)).toEqual({
      format: 'anthropic.usage_report.messages',
      provider: 'anthropic',
      fromMs: Date.UTC(2025, 7, 1),
      toMs: Date.UTC(2025, 7, 2),
      byModel: true,
      hasMore: false,
      days: [
        {
          day: '2025-08-01',
          model: 'claude-sonnet-4',
          requests: null,
          input_tokens: 7496,
          output_tokens: 900,
          cached_input_tokens: 4096,
          audio_input_tokens: 0,
        },
      ],
    });
  });

  it('is detected by its bucket fields; a bad time is named', () => {
    expect(parseUsageExport(ANTHROPIC_REPORT).format).toBe('anthropic.usage_report.messages');
    expect(() =>
      parseAnthropicMessagesUsage({ data: [{ starting_at: 'yesterday', ending_at: '2025-08-02T00:00:00Z', results: [] }] }),
    ).toThrow('data[0].starting_at: must be an RFC 3339 date-time with a zone, got "yesterday"');
    expect(() => parseUsageExport({ data: [{ when: 1 }] })).toThrow(UsageExportError);
    expect(() => parseUsageExport(42)).toThrow('top level: must be a list of buckets or an object with a data list');
  });

  it.each<[string, unknown, string]>([
    ['an empty list', [], 'data: no buckets (the export is empty)'],
    ['an empty page', { object: 'page', data: [], has_more: false }, 'data: no buckets (the export is empty)'],
    ['a list of non-objects', [1, 'x'], 'data[0]: must be an object'],
    ['an unknown bucket after a non-object', [1, { when: 1 }], 'data[0]: must be an object'],
    ['an unknown bucket', [{ when: 1 }], 'data[0]: not a known usage export'],
  ])('names the problem where it is: %s', (_label, json, expected) => {
    let message: string | undefined;
    try {
      parseUsageExport(json);
    } catch (err) {
      expect(err).toBeInstanceOf(UsageExportError);
      message = (err as Error).message;
    }
    expect(message?.startsWith(expected), message).toBe(true);
  });
});

describe('compareUsage', () => {
  const p = (day: string, model: string, requests: number | null, input: number, output: number, cached = 0): ExportDay => ({
    day,
    model,
    requests,
    input_tokens: input,
    output_tokens: output,
    cached_input_tokens: cached,
    audio_input_tokens: 0,
  });
  const o = (day: string, model: string, requests: number, input: number, output: number, cached = 0, cost = '0'): OursDay => ({
    day,
    model,
    requests,
    input_tokens: input,
    output_tokens: output,
    cached_input_tokens: cached,
    cost_usd: cost,
  });

  it('totals over all models: per day sums, diffs and flags at 1%', () => {
    const rows = compareUsage(
      [p('2025-01-01', '*', 100, 10_000, 1_000), p('2025-01-02', '*', 50, 5_000, 500, 100), p('2025-01-03', '*', 0, 0, 0)],
      [
        // 2025-01-01: 60 + 40 requests, 6,000 + 4,050 = 10,050 input (+50 = +0.5%: within 1%), 600 + 400 output.
        o('2025-01-01', 'gpt-4o', 60, 6_000, 600, 0, '0.1'),
        o('2025-01-01', 'gpt-4o-mini', 40, 4_050, 400, 0, '0.2'),
        // 2025-01-02: output 520 vs 500 (+20 = +4%): flagged.
        o('2025-01-02', 'gpt-4o', 50, 5_000, 520, 100),
        // 2025-01-04: only ours.
        o('2025-01-04', 'gpt-4o', 1, 10, 0),
      ],
      false,
      0.01,
    );
    expect(rows.map((r) => [r.day, r.model, r.diff, r.diff_pct, r.diff_out, r.diff_out_pct, r.flagged, r.reasons])).toEqual([
      ['2025-01-01', '*', 50, 0.5, 0, 0, false, []],
      ['2025-01-02', '*', 0, 0, 20, 4, true, ['output_tokens']],
      ['2025-01-03', '*', 0, 0, 0, 0, false, []],
      ['2025-01-04', '*', 10, null, 0, 0, true, ['only_ours']],
    ]);
    expect(rows[0]).toMatchObject({
      provider_requests: 100,
      ours_requests: 100,
      diff_requests: 0,
      provider_tokens_in: 10_000,
      ours_in: 10_050,
      ours_cost_usd: '0.3',
    });
  });

  it('per model; a difference of exactly the tolerance is not flagged, one token more is; only the provider is flagged', () => {
    const rows = compareUsage(
      [p('2025-01-01', 'gpt-4o', 10, 10_000, 100), p('2025-01-01', 'gpt-4o-mini', 10, 10_000, 100), p('2025-01-02', 'gpt-4o', 3, 30, 3)],
      [o('2025-01-01', 'gpt-4o', 10, 10_100, 100), o('2025-01-01', 'gpt-4o-mini', 10, 9_899, 100)],
      true,
      0.01,
    );
    expect(rows.map((r) => [r.day, r.model, r.diff, r.flagged, r.reasons])).toEqual([
      ['2025-01-01', 'gpt-4o', 100, false, []], // |100| = 1% of 10,000: not more
      ['2025-01-01', 'gpt-4o-mini', -101, true, ['input_tokens']],
      ['2025-01-02', 'gpt-4o', -30, true, ['only_provider', 'requests', 'input_tokens', 'output_tokens']],
    ]);
  });

  it('requests are not compared when the export has none (Anthropic)', () => {
    const [row] = compareUsage(
      [p('2025-08-01', 'claude-sonnet-4', null, 3200, 500, 200)],
      [o('2025-08-01', 'claude-sonnet-4', 7, 3200, 500, 200)],
      true,
      0.01,
    );
    expect(row).toMatchObject({ provider_requests: null, ours_requests: 7, diff_requests: null, flagged: false });
  });

  it('diffPct and the tolerance range', () => {
    expect(diffPct(0, 0)).toBe(0);
    expect(diffPct(5, 0)).toBeNull();
    expect(diffPct(90, 100)).toBe(-10);
    expect(() => compareUsage([], [], false, 1.5)).toThrow('tolerance: must be a share between 0 and 1 (0.01 = 1%), got 1.5');
  });
});
