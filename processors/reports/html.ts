/**
 * The weekly report as one self-contained HTML page: inline CSS, charts as inline SVG
 * (charts.ts), no script, no external resource. A Content-Security-Policy meta tag forbids any
 * fetch (`default-src 'none'`), so the page provably needs no network to view.
 *
 * Every string from the data goes through `esc()`; chart text is escaped by Vega. Tables carry a
 * `data-table` attribute and charts sit in `<figure data-chart>` so tests can find them.
 */
import type { Breakdown, ReportTotals, WeeklyReport } from '../../schemas/report.ts';
import { dailyCostChart, dailyTokensChart, modelChart, quotaChart } from './charts.ts';
import { dayLabel, fmtCost, fmtInt, fmtRate, fmtSaving, fmtUsd, label, localTime, periodLine, subjectText, totalsRows } from './format.ts';

/** The CSP of the page (also sent as a header by the API): nothing may load, inline styles may apply. */
export const REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/** Escape text for HTML element content and double-quoted attribute values. */
export function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;margin:0;background:#f6f7f9}
main{max-width:1040px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde1e6;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}.meta{color:#5b6472;margin:0 0 12px}
table{border-collapse:collapse;background:#fff;margin:6px 0 10px;min-width:50%}
th,td{border:1px solid #dde1e6;padding:4px 8px;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#eef1f5}
figure{background:#fff;border:1px solid #dde1e6;margin:8px 0;padding:8px;display:inline-block}
figcaption{font-weight:600;margin-bottom:4px}.empty{color:#5b6472;font-style:italic}
.badge{display:inline-block;padding:0 6px;border-radius:8px;background:#fde2c8}.partial{background:#fff3cd;padding:6px 10px}
`;

/** One table: `head` and `rows` are already-escaped HTML; columns listed in `numeric` are right-aligned. */
function table(name: string, head: readonly string[], rows: ReadonlyArray<readonly string[]>, numeric: readonly number[] = []): string {
  if (rows.length === 0) return `<p class="empty" data-empty="${esc(name)}">None.</p>`;
  const cell = (tag: 'th' | 'td', v: string, i: number) => `<${tag}${numeric.includes(i) ? ' class="n"' : ''}>${v}</${tag}>`;
  return `<table data-table="${esc(name)}"><thead><tr>${head.map((h, i) => cell('th', h, i)).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((v, i) => cell('td', v, i)).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

const figure = (name: string, caption: string, svg: string) =>
  `<figure data-chart="${esc(name)}"><figcaption>${esc(caption)}</figcaption>${svg}</figure>`;

const tokens = (t: ReportTotals) => fmtInt(t.input_tokens + t.output_tokens);

function breakdownTable<K>(name: string, b: Breakdown<K>, head: readonly string[], key: (row: K) => string[]): string {
  const n = head.length;
  const rows = b.rows.map((r) => [...key(r).map(esc), fmtInt(r.requests), tokens(r), esc(fmtCost(r))]);
  if (b.other)
    rows.push([
      `other (${fmtInt(b.other.groups)})`,
      ...head.slice(1).map(() => ''),
      fmtInt(b.other.requests),
      tokens(b.other),
      esc(fmtCost(b.other)),
    ]);
  return table(name, [...head.map(esc), 'Requests', 'Tokens', 'Cost'], rows, [n, n + 1, n + 2]);
}

/** Render `r` as a complete HTML document. @throws whatever the chart renderer throws. */
export async function renderHtml(r: WeeklyReport): Promise<string> {
  const z = r.time_zone;
  const [dailyCost, dailyTokens, models, quotas] = await Promise.all([
    dailyCostChart(r),
    dailyTokensChart(r),
    modelChart(r),
    r.quotas.length > 0 ? quotaChart(r.quotas) : Promise.resolve(''),
  ]);
  const s: string[] = [];
  s.push(`<h1>Weekly report: ${esc(r.tenant)}, ${esc(r.week)}</h1>`);
  s.push(`<p class="meta">${esc(periodLine(r))}. Generated ${esc(r.generated_at)}; sums from <code>${esc(r.source_table)}</code>.</p>`);
  if (!r.complete) s.push('<p class="partial">This week was not over when the report was generated: the figures are partial.</p>');

  s.push('<h2>Totals</h2>');
  s.push(
    table(
      'totals',
      ['', 'This week', `Previous week (${esc(r.previous.week)})`, 'Change'],
      totalsRows(r).map((row) => row.map(esc)),
      [1, 2, 3],
    ),
  );

  s.push('<h2>Daily</h2>');
  s.push(figure('daily-cost', 'Cost per day (USD, priced calls)', dailyCost));
  s.push(figure('daily-tokens', 'Tokens per day (input + output)', dailyTokens));
  s.push(
    table(
      'daily',
      ['Day', 'Requests', 'Tokens', 'Cost'],
      r.daily.map((d) => [esc(dayLabel(d.date)), fmtInt(d.requests), tokens(d), esc(fmtCost(d))]),
      [1, 2, 3],
    ),
  );

  s.push('<h2>Cost by provider/model</h2>');
  s.push(
    figure(
      'by-model',
      models.metric === 'cost' ? 'Cost by provider/model (USD)' : 'Tokens by provider/model (no priced calls)',
      models.svg,
    ),
  );
  s.push(breakdownTable('by-model', r.by_model, ['Provider', 'Model'], (m) => [m.provider, m.model]));
  s.push('<h2>Cost by user</h2>');
  s.push(breakdownTable('by-user', r.by_user, ['User'], (u) => [label(u.user_id)]));
  s.push('<h2>Cost by task</h2>');
  s.push(breakdownTable('by-task', r.by_task, ['Task'], (t) => [label(t.task_id)]));

  s.push('<h2>Task completion</h2>');
  const c = r.completion;
  s.push(
    `<p>Share of calls with status <code>ok</code>: <strong>${esc(fmtRate(c.overall.rate))}</strong> (${fmtInt(c.overall.ok)} of ${fmtInt(c.overall.requests)} calls).</p>`,
  );
  const taskRows = c.by_task.map((t) => [esc(t.task_id), fmtInt(t.requests), fmtInt(t.ok), esc(fmtRate(t.rate))]);
  if (c.other_tasks)
    taskRows.push([
      `other (${fmtInt(c.other_tasks.groups)})`,
      fmtInt(c.other_tasks.requests),
      fmtInt(c.other_tasks.ok),
      esc(fmtRate(c.other_tasks.rate)),
    ]);
  s.push(table('completion', ['Task', 'Calls', 'OK', 'Completion'], taskRows, [1, 2, 3]));

  s.push('<h2>Quotas</h2>');
  if (r.quotas.length === 0) s.push('<p class="empty" data-empty="quotas">No quota is configured for this tenant.</p>');
  else {
    s.push(figure('quotas', 'Peak utilisation per quota (rule: soft threshold; dashed: limit)', quotas));
    s.push(
      table(
        'quotas',
        ['Quota', 'Window', 'Metric', 'Limit', 'Peak used', 'Peak %', 'State', 'Peak window', 'Alerts (soft/hard/recovered)'],
        r.quotas.map((q) => [
          esc(q.id),
          esc(q.window),
          esc(q.metric),
          esc(q.metric === 'usd' ? fmtUsd(q.limit) : fmtInt(Number(q.limit))),
          esc(q.metric === 'usd' ? fmtUsd(q.peak.used) : fmtInt(Number(q.peak.used))),
          `${q.peak.percent}%`,
          `<span class="badge">${esc(q.peak.state)}</span>`,
          esc(`${localTime(q.peak.window_start, z)} to ${localTime(q.peak.window_end, z)}`),
          `${q.alerts.soft}/${q.alerts.hard}/${q.alerts.recovered}`,
        ]),
        [3, 4, 5],
      ),
    );
  }
  s.push('<h3>Alerts fired</h3>');
  s.push(
    table(
      'alerts',
      ['Fired at', 'Quota', 'Kind', 'Used', 'Limit', '%'],
      r.alerts.map((a) => [esc(localTime(a.fired_at, z)), esc(a.quota_id), esc(a.kind), esc(a.used), esc(a.limit), `${a.percent}%`]),
      [3, 4, 5],
    ),
  );

  s.push('<h2>Anomalies</h2>');
  if (r.anomalies.total > r.anomalies.items.length)
    s.push(`<p>${r.anomalies.total} anomalies; the ${r.anomalies.items.length} with the highest score:</p>`);
  s.push(
    table(
      'anomalies',
      ['Start', 'Kind', 'Series', 'Metric', 'Expected', 'Actual', 'Score', 'Status'],
      r.anomalies.items.map((a) => [
        esc(localTime(a.window_start, z)),
        esc(a.kind),
        esc(`${a.dimension}: ${a.series_key}`),
        esc(a.metric),
        esc(String(a.expected)),
        esc(String(a.actual)),
        a.score.toFixed(3),
        esc(a.status),
      ]),
      [4, 5, 6],
    ),
  );

  s.push('<h2>Recommendations</h2>');
  if (!r.recommendations.available)
    s.push('<p class="empty" data-empty="recommendations">The recommendation engine was not run for this report.</p>');
  else {
    s.push('<p>Ranked by estimated monthly saving.</p>');
    s.push(
      table(
        'recommendations',
        ['#', 'Recommendation', 'Kind', 'Subject', 'Saving / month (USD)', 'Saving / month (tokens)', 'Confidence'],
        r.recommendations.items.map((x, i) => [
          String(i + 1),
          `<strong>${esc(x.title)}</strong><br>${esc(x.rationale)}`,
          esc(x.kind),
          esc(subjectText(x.subject)),
          esc(fmtSaving(x.estimated_monthly_saving)),
          fmtInt(x.estimated_monthly_saving.tokens),
          esc(x.confidence),
        ]),
        [0, 4, 5],
      ),
    );
    s.push('<h3>Adopted recommendations: measured effect</h3>');
    s.push(
      table(
        'adopted',
        ['Recommendation', 'Estimated (USD)', 'Actual (USD)', 'Actual / estimated'],
        r.recommendations.adopted.map((a) => [
          esc(a.id),
          esc(fmtUsd(String(a.estimated_usd))),
          esc(a.actual_usd === null ? 'n/a' : fmtUsd(String(a.actual_usd))),
          a.ratio === null ? 'n/a' : a.ratio.toFixed(2),
        ]),
        [1, 2, 3],
      ),
    );
  }
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${esc(REPORT_CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(`quotaflow weekly report: ${r.tenant}, ${r.week}`)}</title>
<style>${STYLE}</style>
</head>
<body><main>
${s.join('\n')}
</main></body>
</html>
`;
}
