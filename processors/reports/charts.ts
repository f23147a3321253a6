/**
 * The weekly report's charts as inline SVG, drawn server-side by Vega-Lite (compiled to Vega) and
 * Vega's headless SVG renderer: no browser, no canvas, no network (data is inline). Vega escapes
 * every text it writes into the SVG, so ids from the data cannot inject markup.
 *
 * Each chart draws one bar per datum (`aria-roledescription="bar"` on each bar's path, which the
 * HTML test counts): the daily charts one per day with calls, the model chart one per row of the
 * breakdown, the quota chart one per quota.
 */

import { DateTime } from 'luxon';
import type { ReportQuota, WeeklyReport } from '../../schemas/report.ts';
import { label } from './format.ts';

type VegaLiteSpec = Record<string, unknown>;

const CONFIG = {
  background: 'white',
  config: { font: 'sans-serif', view: { stroke: null }, axis: { labelFontSize: 11, titleFontSize: 11 } },
};

/**
 * Render a Vega-Lite spec to an SVG string. Loaded lazily: only report rendering pays for Vega.
 * @throws whatever Vega-Lite or Vega throw on an invalid spec.
 */
export async function toSvg(spec: VegaLiteSpec): Promise<string> {
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const compiled = vegaLite.compile({ ...CONFIG, ...spec } as Parameters<typeof vegaLite.compile>[0]).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    // Scale down on narrow screens; keep the intrinsic size as the maximum.
    return svg.replace('<svg ', '<svg style="max-width:100%;height:auto" ');
  } finally {
    view.finalize();
  }
}

/** d3-format of USD axes: `$1,234.5`, up to 4 decimals, trailing zeros dropped. */
const USD_AXIS = '$,.4~f';

/** A short axis label of a local date: `Mon 02-05`. */
const dayTick = (date: string) => DateTime.fromISO(date, { zone: 'utc' }).toFormat('ccc MM-dd');

/** A daily bar chart of `value` over the 7 days of the week; days without calls have no bar. */
function dailySpec(r: WeeklyReport, value: (d: WeeklyReport['daily'][number]) => number, title: string, format: string): VegaLiteSpec {
  const days = r.daily.map((d) => dayTick(d.date));
  return {
    width: 560,
    height: 180,
    data: { values: r.daily.filter((d) => d.requests > 0).map((d) => ({ day: dayTick(d.date), value: value(d) })) },
    mark: { type: 'bar', color: '#4c78a8' },
    encoding: {
      x: { field: 'day', type: 'ordinal', scale: { domain: days }, axis: { labelAngle: 0 }, title: null },
      y: { field: 'value', type: 'quantitative', title, axis: { format } },
    },
  };
}

/** Daily cost, USD (priced calls only). */
export const dailyCostChart = (r: WeeklyReport) => toSvg(dailySpec(r, (d) => Number(d.cost_usd), 'Cost (USD)', USD_AXIS));

/** Daily tokens, input + output. */
export const dailyTokensChart = (r: WeeklyReport) => toSvg(dailySpec(r, (d) => d.input_tokens + d.output_tokens, 'Tokens', ',~d'));

/**
 * Cost by provider/model, one bar per row of the breakdown (and one for "other"). When no call of
 * the week had a price the bars show tokens instead, and `metric` says so.
 */
export async function modelChart(r: WeeklyReport): Promise<{ svg: string; metric: 'cost' | 'tokens' }> {
  const rows = [
    ...r.by_model.rows.map((m) => ({ name: `${m.provider}/${m.model}`, ...m })),
    ...(r.by_model.other ? [{ name: 'other', ...r.by_model.other }] : []),
  ];
  const priced = rows.some((m) => Number(m.cost_usd) > 0);
  const svg = await toSvg({
    width: 480,
    height: { step: 22 },
    data: { values: rows.map((m) => ({ name: m.name, value: priced ? Number(m.cost_usd) : m.input_tokens + m.output_tokens })) },
    mark: { type: 'bar', color: '#72b7b2' },
    encoding: {
      y: { field: 'name', type: 'nominal', sort: null, title: null, axis: { labelLimit: 260 } },
      x: {
        field: 'value',
        type: 'quantitative',
        title: priced ? 'Cost (USD)' : 'Tokens (no priced calls)',
        axis: { format: priced ? USD_AXIS : ',~d' },
      },
    },
  });
  return { svg, metric: priced ? 'cost' : 'tokens' };
}

const STATE_COLORS = { domain: ['ok', 'soft', 'exhausted'], range: ['#54a24b', '#f58518', '#e45756'] };

/**
 * Quota utilisation: one bar per quota at its peak percent, coloured by state, with a rule at each
 * soft threshold (80% by default) and a dashed rule at 100%.
 */
export function quotaChart(quotas: readonly ReportQuota[]): Promise<string> {
  const thresholds = [...new Set(quotas.map((q) => q.soft_threshold * 100))];
  const top = Math.max(100, ...quotas.map((q) => q.peak.percent));
  return toSvg({
    width: 480,
    height: { step: 26 },
    layer: [
      {
        data: { values: quotas.map((q) => ({ quota: label(q.id), percent: q.peak.percent, state: q.peak.state })) },
        mark: { type: 'bar' },
        encoding: {
          y: { field: 'quota', type: 'nominal', sort: null, title: null },
          x: { field: 'percent', type: 'quantitative', title: 'Peak utilisation (% of limit)', scale: { domain: [0, top] } },
          color: { field: 'state', type: 'nominal', scale: STATE_COLORS, legend: { title: 'State at peak' } },
        },
      },
      {
        data: { values: thresholds.map((t) => ({ x: t })) },
        mark: { type: 'rule', color: '#f58518', strokeWidth: 2 },
        encoding: { x: { field: 'x', type: 'quantitative' } },
      },
      {
        data: { values: [{ x: 100 }] },
        mark: { type: 'rule', color: '#e45756', strokeDash: [4, 3] },
        encoding: { x: { field: 'x', type: 'quantitative' } },
      },
    ],
  });
}
