/**
 * The weekly report as Markdown (GitHub-flavoured tables). Every string that comes from data
 * (tenant, user and task ids, model names, quota ids, recommendation text) goes through `md()`,
 * so a `|`, a newline or raw HTML in an id cannot break a table or inject markup.
 */
import type { Breakdown, ReportTotals, WeeklyReport } from '../../schemas/report.ts';
import { dayLabel, fmtCost, fmtInt, fmtRate, fmtSaving, fmtUsd, label, localTime, periodLine, subjectText, totalsRows } from './format.ts';

/**
 * Escape text for a Markdown table cell or inside a paragraph (never at a line start): HTML-significant
 * characters become entities; the characters that open emphasis, code, links, strike-through or end
 * a cell (\\ ` * _ [ ] | ~) are backslash-escaped; line breaks become spaces.
 */
export function md(text: string): string {
  return text
    .replace(/[\r\n]+/g, ' ')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/[\\`*_[\]|~]/g, (c) => `\\${c}`);
}

function table(head: readonly string[], body: ReadonlyArray<readonly string[]>): string {
  if (body.length === 0) return '_None._\n';
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return `${[line(head), line(head.map(() => '---')), ...body.map(line)].join('\n')}\n`;
}

const tokens = (t: ReportTotals) => fmtInt(t.input_tokens + t.output_tokens);

function breakdownTable<K>(b: Breakdown<K>, head: readonly string[], key: (row: K) => string[]): string {
  const body = b.rows.map((r) => [...key(r), fmtInt(r.requests), tokens(r), fmtCost(r)]);
  if (b.other)
    body.push([
      `other (${fmtInt(b.other.groups)})`,
      ...head.slice(1).map(() => ''),
      fmtInt(b.other.requests),
      tokens(b.other),
      fmtCost(b.other),
    ]);
  return table([...head, 'Requests', 'Tokens', 'Cost'], body);
}

/** Render `r` as a Markdown document (ends with a newline). */
export function renderMarkdown(r: WeeklyReport): string {
  const out: string[] = [];
  out.push(`# Weekly report: ${md(r.tenant)}, ${r.week}\n`);
  out.push(
    `${md(periodLine(r))}  \nGenerated ${md(r.generated_at)}${r.complete ? '' : ' (**week not over yet: partial**)'}; sums from \`${r.source_table}\`.\n`,
  );

  out.push('## Totals\n');
  out.push(
    table(
      ['', 'This week', `Previous week (${r.previous.week})`, 'Change'],
      totalsRows(r).map((row) => row.map(md)),
    ),
  );

  out.push('## Daily\n');
  out.push(
    table(
      ['Day', 'Requests', 'Tokens', 'Cost'],
      r.daily.map((d) => [dayLabel(d.date), fmtInt(d.requests), tokens(d), md(fmtCost(d))]),
    ),
  );

  out.push('## Cost by provider/model\n');
  out.push(breakdownTable(r.by_model, ['Provider', 'Model'], (m) => [md(m.provider), md(m.model)]));
  out.push('## Cost by user\n');
  out.push(breakdownTable(r.by_user, ['User'], (u) => [md(label(u.user_id))]));
  out.push('## Cost by task\n');
  out.push(breakdownTable(r.by_task, ['Task'], (t) => [md(label(t.task_id))]));

  out.push('## Task completion\n');
  const c = r.completion;
  out.push(
    `Share of calls with status \`ok\`: **${md(fmtRate(c.overall.rate))}** (${fmtInt(c.overall.ok)} of ${fmtInt(c.overall.requests)} calls).\n`,
  );
  const taskBody = c.by_task.map((t) => [md(t.task_id), fmtInt(t.requests), fmtInt(t.ok), md(fmtRate(t.rate))]);
  if (c.other_tasks)
    taskBody.push([
      `other (${fmtInt(c.other_tasks.groups)})`,
      fmtInt(c.other_tasks.requests),
      fmtInt(c.other_tasks.ok),
      md(fmtRate(c.other_tasks.rate)),
    ]);
  out.push(table(['Task', 'Calls', 'OK', 'Completion'], taskBody));

  out.push('## Quotas\n');
  out.push('Peak: the window of the week with the highest usage (see docs/reports.md).\n');
  out.push(
    table(
      ['Quota', 'Window', 'Metric', 'Limit', 'Peak used', 'Peak %', 'State', 'Alerts (soft/hard/recovered)'],
      r.quotas.map((q) => [
        md(q.id),
        md(q.window),
        q.metric,
        md(q.metric === 'usd' ? fmtUsd(q.limit) : q.limit),
        md(q.metric === 'usd' ? fmtUsd(q.peak.used) : q.peak.used),
        md(`${q.peak.percent}%`),
        q.peak.state,
        `${q.alerts.soft}/${q.alerts.hard}/${q.alerts.recovered}`,
      ]),
    ),
  );
  out.push('### Alerts fired\n');
  out.push(
    table(
      ['Fired at', 'Quota', 'Kind', 'Used', 'Limit', '%'],
      r.alerts.map((a) => [
        md(localTime(a.fired_at, r.time_zone)),
        md(a.quota_id),
        md(a.kind),
        md(a.used),
        md(a.limit),
        md(`${a.percent}%`),
      ]),
    ),
  );

  out.push('## Anomalies\n');
  if (r.anomalies.total > r.anomalies.items.length)
    out.push(`${r.anomalies.total} anomalies; the ${r.anomalies.items.length} with the highest score:\n`);
  out.push(
    table(
      ['Start', 'Kind', 'Series', 'Metric', 'Expected', 'Actual', 'Score', 'Status'],
      r.anomalies.items.map((a) => [
        md(localTime(a.window_start, r.time_zone)),
        md(a.kind),
        md(`${a.dimension}: ${a.series_key}`),
        md(a.metric),
        md(String(a.expected)),
        md(String(a.actual)),
        md(a.score.toFixed(3)),
        md(a.status),
      ]),
    ),
  );

  out.push('## Recommendations (ranked by estimated monthly saving)\n');
  if (!r.recommendations.available) out.push('_The recommendation engine was not run for this report._\n');
  else {
    out.push(
      table(
        ['#', 'Recommendation', 'Kind', 'Subject', 'Saving / month (USD)', 'Saving / month (tokens)', 'Confidence'],
        r.recommendations.items.map((x, i) => [
          String(i + 1),
          md(x.title),
          md(x.kind),
          md(subjectText(x.subject)),
          md(fmtSaving(x.estimated_monthly_saving)),
          fmtInt(x.estimated_monthly_saving.tokens),
          md(x.confidence),
        ]),
      ),
    );
    for (const [i, x] of r.recommendations.items.entries()) out.push(`${i + 1}\\. **${md(x.title)}**: ${md(x.rationale)}\n`);
    out.push('### Adopted recommendations: measured effect\n');
    out.push(
      table(
        ['Recommendation', 'Estimated (USD)', 'Actual (USD)', 'Actual / estimated'],
        r.recommendations.adopted.map((a) => [
          md(a.id),
          md(fmtUsd(String(a.estimated_usd))),
          md(a.actual_usd === null ? 'n/a' : fmtUsd(String(a.actual_usd))),
          md(a.ratio === null ? 'n/a' : a.ratio.toFixed(2)),
        ]),
      ),
    );
  }
  return out.join('\n');
}
