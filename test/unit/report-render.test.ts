/**
 * Weekly report renderers and pure helpers: the JSON schema accepts a real document, Markdown and
 * HTML escape every data string, the HTML is self-contained (CSP, no script, no URL to fetch), the
 * SVG charts draw one bar per day with calls and per quota; number formats, ranking, WoW change,
 * Accept negotiation.
 */
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { formatFromAccept } from '../../api/routes/reports.route.ts';
import { fmtCost, fmtUsd } from '../../processors/reports/format.ts';
import { esc, REPORT_CSP, renderHtml } from '../../processors/reports/html.ts';
import { md, renderMarkdown } from '../../processors/reports/markdown.ts';
import { changePercent, granularityFor, type Recommendation, rankRecommendations } from '../../processors/reports/weekly.ts';
import { WeeklyReport } from '../../schemas/report.ts';
import { EVIL, fixtureReport } from '../helpers/report-fixture.ts';

/** The SVG of the figure `name`, and the number of bars in it. */
function chart(html: string, name: string): { svg: string; bars: number } {
  const m = new RegExp(`<figure data-chart="${name}">([\\s\\S]*?)</figure>`).exec(html);
  const svg = m?.[1] ?? '';
  return { svg, bars: (svg.match(/aria-roledescription="bar"/g) ?? []).length };
}

describe('report schema', () => {
  it('accepts the fixture and rejects a non-decimal cost', () => {
    const r = fixtureReport();
    expect([...Value.Errors(WeeklyReport, r)].map((e) => `${e.path}: ${e.message}`)).toEqual([]);
    r.totals.week.cost_usd = '1e-3';
    expect(Value.Check(WeeklyReport, r)).toBe(false);
  });
});

describe('renderMarkdown', () => {
  const text = renderMarkdown(fixtureReport());
  it('escapes ids: no raw tag, no unescaped pipe or emphasis from data', () => {
    expect(text).not.toContain('<script>');
    expect(text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;\\|\\*x\\*');
    expect(md('a|b\nc_d')).toBe('a\\|b c\\_d');
  });
  it('has the totals with the week-over-week change and the completion rate', () => {
    expect(text).toContain('| Requests | 5 | 2 | +150% |');
    expect(text).toContain('| Cached input tokens | 0 | 0 | n/a |');
    expect(text).toContain('| Cost | $2.0000 | $1.0000 | +100% |');
    expect(text).toContain('**60%** (3 of 5 calls)');
    expect(text).toContain('| other (1) |  | 1 | 110 | unpriced |');
  });
  it('lists recommendations by rank with the saving, and the adopted ones with the measured effect', () => {
    expect(text).toContain('| 1 | Cache &lt;script&gt;');
    expect(text).toContain('| $12.5000 | 1,000 | high |');
    expect(text).toContain('| r0 | $10.0000 | $8.0000 | 0.80 |');
  });
});

describe('renderHtml', () => {
  it('is self-contained: CSP meta forbidding every fetch, no script element, no external URL', async () => {
    const html = await renderHtml(fixtureReport());
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="${esc(REPORT_CSP)}">`);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/\b(src|href)\s*=\s*"(https?:)?\/\//i);
    expect(html).not.toMatch(/url\(\s*['"]?https?:/i);
  });
  it('escapes data strings in text and in chart labels', async () => {
    const html = await renderHtml(fixtureReport());
    expect(esc(EVIL)).toBe('&#60;script&#62;alert(1)&#60;/script&#62;|*x*');
    expect(html).toContain(`<h1>Weekly report: ${esc(EVIL)}, 2026-W47</h1>`);
    expect(chart(html, 'by-model').svg).toContain('&lt;script&gt;');
  });
  it('draws one bar per day with calls, per model row (and other), per quota; rules at 80% and 100%', async () => {
    const html = await renderHtml(fixtureReport());
    expect(chart(html, 'daily-cost').bars).toBe(3);
    expect(chart(html, 'daily-tokens').bars).toBe(3);
    expect(chart(html, 'by-model').bars).toBe(3);
    const quotas = chart(html, 'quotas');
    expect(quotas.bars).toBe(2);
    expect((quotas.svg.match(/<g class="mark-rule role-mark/g) ?? []).length).toBe(2);
  });
  it('says so when no quota is configured, and draws no quota chart', async () => {
    const html = await renderHtml({ ...fixtureReport(), quotas: [] });
    expect(html).toContain('data-empty="quotas"');
    expect(html).not.toContain('data-chart="quotas"');
  });
});

describe('helpers', () => {
  it('fmtUsd rounds to 4 decimals and shows tiny amounts as <$0.0001', () => {
    expect(fmtUsd('1234.56785')).toBe('$1,234.5679');
    expect(fmtUsd('0.00004')).toBe('<$0.0001');
    expect(fmtUsd('0')).toBe('$0.0000');
  });
  it('fmtCost says unpriced when no call had a price', () => {
    expect(fmtCost({ cost_usd: '0', requests: 3, unpriced_requests: 3 })).toBe('unpriced');
    expect(fmtCost({ cost_usd: '1.5', requests: 3, unpriced_requests: 1 })).toBe('$1.5000 (+1 unpriced calls)');
  });
  it('changePercent: exact, 2 decimals, null from 0', () => {
    expect(changePercent(5, 2)).toBe(150);
    expect(changePercent('2', '3')).toBe(-33.33);
    expect(changePercent('0.3', '0.1')).toBe(200); // exact decimals: not 199.99999999999997
    expect(changePercent(7, 0)).toBeNull();
  });
  it('granularityFor picks the hour table only when every boundary is a whole hour', () => {
    expect(granularityFor([0, 3_600_000])).toBe('hour');
    expect(granularityFor([0, 1_800_000])).toBe('minute');
    expect(() => granularityFor([0, 1_000])).toThrow('does not start on a whole minute');
  });
  it('rankRecommendations: USD saving, then tokens, then id', () => {
    const rec = (id: string, usd: string, tokens: number) => ({ id, estimated_monthly_saving: { usd, tokens } }) as Recommendation;
    const ranked = rankRecommendations([rec('c', '9.5', 10), rec('b', '10', 1), rec('a', '9.5', 10), rec('d', '9.5', 99)]);
    expect(ranked.map((r) => r.id)).toEqual(['b', 'd', 'a', 'c']);
  });
  it('formatFromAccept picks the supported type with the highest q', () => {
    expect(formatFromAccept(undefined)).toBe('json');
    expect(formatFromAccept('*/*')).toBe('json');
    expect(formatFromAccept('text/html,application/xhtml+xml,*/*;q=0.8')).toBe('html');
    expect(formatFromAccept('text/html;q=0.5, text/markdown')).toBe('md');
    expect(formatFromAccept('application/json;q=0.9, text/html;q=0.1')).toBe('json');
    expect(formatFromAccept('text/html;q=0')).toBe('json');
  });
});
