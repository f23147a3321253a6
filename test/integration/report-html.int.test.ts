/**
 * The HTML weekly report in a real browser: headless Chromium (Debian's `chromium` package, driven
 * by puppeteer-core, no browser download) opens the page generated from a small data set on the
 * real engine (chDB) as a local file, and the test checks that it renders with no console error,
 * no page error and no network request, that the SVG charts have one bar per day with calls, per
 * model and per quota, and that the tables have the expected rows.
 *
 * Skips, saying why, when no Chromium binary is found (`.ci/run` installs it: apt-get install chromium).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer, { type Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/load.ts';
import { createUsageStore } from '../../processors/clickhouse-writer.ts';
import { createReportService, type RenderedReport } from '../../processors/reports/report-service.ts';
import { decodeBatch, transform } from '../../processors/usage.processor.ts';
import type { QuotaSpec } from '../../schemas/quota.ts';
import { openTestStore, type TestStore } from '../helpers/store.ts';

const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (p): p is string => typeof p === 'string' && p !== '' && existsSync(p),
);
if (!CHROMIUM) {
  console.warn('report-html.int.test.ts: skipped, no Chromium binary (install it: apt-get install -y chromium, or set CHROMIUM_PATH)');
}

const NOW = Date.UTC(2026, 10, 24);
const QUOTAS: QuotaSpec[] = [
  { id: 'daily-tokens', scope: { tenant: 'acme' }, metric: 'tokens', limit: 5000, window: { kind: 'calendar', unit: 'day' } },
  { id: 'weekly-usd', scope: { tenant: 'acme' }, metric: 'usd', limit: '10', window: { kind: 'calendar', unit: 'week' } },
  { id: 'hourly-requests', scope: { tenant: 'acme' }, metric: 'requests', limit: 3, window: { kind: 'calendar', unit: 'hour' } },
];

// Week 2026-W47 (UTC): calls on Mon, Tue, Thu and Sat (4 days), on 3 models.
const EVENTS = [
  ['2026-11-16T09:00:00Z', 'openai', 'gpt-4o', 1200, 300, 'u1', 'ok'],
  ['2026-11-16T09:10:00Z', 'openai', 'gpt-4o', 800, 200, 'u2', 'ok'],
  ['2026-11-17T14:00:00Z', 'anthropic', 'claude-sonnet-4', 3000, 500, 'u1', 'ok'],
  ['2026-11-19T08:00:00Z', 'openai', 'gpt-4o-mini', 400, 100, 'u3', 'error'],
  ['2026-11-21T20:00:00Z', 'openai', 'gpt-4o', 600, 50, '<b>u4</b>', 'ok'],
] as const;

let store: TestStore | undefined;
let browser: Browser | undefined;
let dir: string;
let report: RenderedReport;

beforeAll(async () => {
  if (!CHROMIUM) return;
  store = await openTestStore();
  const payloads = EVENTS.map(([t, provider, model, input, output, user, status], i) =>
    JSON.stringify({
      event_id: `h-${i}`,
      timestamp: t,
      tenant: 'acme',
      user_id: user,
      task_id: `task-${i % 2}`,
      provider,
      model,
      input_tokens: input,
      output_tokens: output,
      status,
      cost_usd: (input + output) / 100_000,
    }),
  );
  const decoded = decodeBatch(
    payloads.map((value, i) => ({ value, source: `html:${i}` })),
    { nowMs: NOW },
  );
  const outcome = transform(decoded, { nowMs: NOW, prices: loadConfig(undefined, {}).prices, seen: new Map() });
  await createUsageStore(store.client).write(outcome);
  const service = createReportService({
    clickhouse: store.client,
    reports: { time_zone: 'UTC', tenant_time_zones: {}, top_n: 10 },
    quotas: QUOTAS,
    prices: loadConfig(undefined, {}).prices,
    now: () => NOW,
  });
  report = await service.generate('acme', '2026-W47');
  dir = mkdtempSync(join(tmpdir(), 'qf-report-html-'));
  writeFileSync(join(dir, 'report.html'), report.html);
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
});

afterAll(async () => {
  await browser?.close();
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!CHROMIUM)('HTML weekly report in headless Chromium', () => {
  it('renders charts and tables with no console error, no page error and no network request', async () => {
    const page = await (browser as Browser).newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warn') problems.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${String(e)}`));
    page.on('requestfailed', (r) => problems.push(`requestfailed: ${r.url()}`));
    page.on('request', (r) => requests.push(r.url()));
    const url = pathToFileURL(join(dir, 'report.html')).href;
    const res = await page.goto(url, { waitUntil: 'load' });
    expect(res?.ok()).toBe(true);

    expect(await page.title()).toBe('quotaflow weekly report: acme, 2026-W47');
    // Bars per chart: 4 days with calls; 3 models; 3 quotas. Each bar has a drawn, non-empty box.
    const charts = await page.$$eval('figure[data-chart]', (figs) =>
      figs.map((f) => ({
        name: f.getAttribute('data-chart'),
        svg: f.querySelectorAll('svg').length,
        bars: [...f.querySelectorAll('path[aria-roledescription="bar"]')].map((b) => {
          const box = (b as SVGGraphicsElement).getBBox();
          return box.width > 0 && box.height > 0;
        }),
      })),
    );
    expect(charts).toEqual([
      { name: 'daily-cost', svg: 1, bars: [true, true, true, true] },
      { name: 'daily-tokens', svg: 1, bars: [true, true, true, true] },
      { name: 'by-model', svg: 1, bars: [true, true, true] },
      { name: 'quotas', svg: 1, bars: [true, true, true] },
    ]);
    const rows = await page.$$eval('table[data-table]', (tables) =>
      Object.fromEntries(tables.map((t) => [t.getAttribute('data-table'), t.querySelectorAll('tbody tr').length])),
    );
    expect(rows).toMatchObject({ totals: 6, daily: 7, 'by-model': 3, 'by-user': 4, 'by-task': 2, completion: 2, quotas: 3 });
    // The user id with markup is shown as text, not as an element.
    const users = await page.$$eval('table[data-table="by-user"] tbody td:first-child', (tds) => tds.map((td) => td.textContent));
    expect(users).toContain('<b>u4</b>');
    expect(await page.$$('table[data-table="by-user"] b')).toHaveLength(0);
    // Quota peaks in the table: daily tokens Tue 3,500 of 5,000 = 70%; weekly USD 7,150 tokens / 100,000
    // = $0.0715 of $10 = 0.715%, truncated to 0.71%; hourly requests Mon 09:00 2 of 3 = 66.66%.
    const quotaCells = await page.$$eval('table[data-table="quotas"] tbody tr', (trs) =>
      trs.map((tr) => [tr.children[0]?.textContent, tr.children[5]?.textContent]),
    );
    expect(quotaCells).toEqual([
      ['daily-tokens', '70%'],
      ['weekly-usd', '0.71%'],
      ['hourly-requests', '66.66%'],
    ]);
    expect(requests).toEqual([url]);
    expect(problems).toEqual([]);
    await page.close();
  });
});
