/**
 * `GET /v1/reports/:tenant/weekly`: a tenant's weekly report (issue 6, docs/reports.md) as JSON,
 * Markdown or a self-contained HTML page. Authenticated like every read route
 * (ingest/http/api-keys.ts `readAuth`): a read key reads its own tenant only (another tenant is
 * 403), an admin key any tenant.
 *
 * Query:
 * - `week`: ISO week `2026-W47` in the tenant's report time zone (config reports); default the
 *   last complete week.
 * - `format`: `json`, `md` (or `markdown`) or `html`; without it the `Accept` header chooses
 *   (`text/html`, `text/markdown`, `application/json`; highest q wins; default JSON).
 *
 * The stored report of the week (the scheduler's, or `quotaflow report`'s) is served when there
 * is one; else the report is generated now and not stored (`X-Quotaflow-Report: generated`, and
 * for a week not over yet the report says it is partial). HTML replies carry the page's
 * Content-Security-Policy. 400 bad week or format, or a week outside [1999-W52, the week after
 * the current one] (domain/iso-week.ts `reportWeekRange`); 401; 403; 404 `not_found` for a tenant
 * with no usage ever that the config does not name (report-service.ts `UnknownTenantError`).
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { IsoWeekError } from '../../domain/iso-week.ts';
import { type ReadApiKey, readAuth } from '../../ingest/http/api-keys.ts';
import { REPORT_CSP } from '../../processors/reports/html.ts';
import { type ReportService, UnknownTenantError } from '../../processors/reports/report-service.ts';
import { useReadErrorHandler } from '../read-errors.ts';
import { ErrorResponse, READ_ERRORS, READ_SECURITY } from '../schemas.ts';

export interface ReportsRouteOptions {
  keys: ReadonlyArray<ReadApiKey>;
  reports: Pick<ReportService, 'lastCompleteWeek' | 'validateRequest' | 'generate' | 'stored'>;
}

export const REPORT_FORMATS = ['json', 'md', 'markdown', 'html'] as const;
type Format = 'json' | 'md' | 'html';

const MEDIA: Record<Format, string> = {
  json: 'application/json; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
  html: 'text/html; charset=utf-8',
};
const BY_MEDIA: Record<string, Format> = {
  'application/json': 'json',
  'text/markdown': 'md',
  'text/x-markdown': 'md',
  'text/html': 'html',
};

/**
 * The format an `Accept` header asks for: the supported media type with the highest q (RFC 9110
 * section 12.5.1; ties go to the one listed first; `*\/*` and absent mean JSON).
 */
export function formatFromAccept(accept: string | undefined): Format {
  let best: { format: Format; q: number } | undefined;
  for (const part of (accept ?? '').split(',')) {
    const [type, ...params] = part.trim().toLowerCase().split(';');
    const format = BY_MEDIA[(type ?? '').trim()];
    if (!format) continue;
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2));
    if (Number.isFinite(q) && q > 0 && (best === undefined || q > best.q)) best = { format, q };
  }
  return best?.format ?? 'json';
}

const Params = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 128 }) });
const Query = Type.Object(
  {
    week: Type.Optional(Type.String({ description: 'ISO week, e.g. 2026-W47. Default: the last complete week.' })),
    format: Type.Optional(
      Type.Union(
        REPORT_FORMATS.map((f) => Type.Literal(f)),
        { description: 'Default: from Accept, else json.' },
      ),
    ),
  },
  { additionalProperties: false },
);

export const reportsRoute: FastifyPluginAsync<ReportsRouteOptions> = async (app, opts) => {
  useReadErrorHandler(app);
  const auth = readAuth(opts.keys);
  // 401 for a missing or unknown key before the body is parsed or anything validated.
  app.addHook('onRequest', auth.onRequest);
  app.get(
    '/v1/reports/:tenant/weekly',
    {
      schema: {
        tags: ['reports'],
        summary: 'Weekly report of a tenant (JSON, Markdown or HTML)',
        security: READ_SECURITY,
        params: Params,
        querystring: Query,
        response: { ...READ_ERRORS, 404: ErrorResponse },
      },
    },
    async (req, reply) => {
      const { tenant: requested } = req.params as { tenant: string };
      const q = req.query as { week?: string; format?: (typeof REPORT_FORMATS)[number] };
      const access = auth.tenant(req, requested, 'GET /v1/reports/<tenant>/weekly');
      if (!access.ok) return reply.code(access.statusCode).send(access.body);
      const week = q.week ?? opts.reports.lastCompleteWeek(access.tenant);
      try {
        await opts.reports.validateRequest(access.tenant, week);
      } catch (err) {
        if (err instanceof IsoWeekError) return reply.code(400).send({ error: { code: 'bad_request', message: err.message } });
        if (err instanceof UnknownTenantError) return reply.code(404).send({ error: { code: 'not_found', message: err.message } });
        throw err;
      }
      const format: Format = q.format === undefined ? formatFromAccept(req.headers.accept) : q.format === 'markdown' ? 'md' : q.format;

      const stored = await opts.reports.stored(access.tenant, week);
      const doc = stored ?? (await opts.reports.generate(access.tenant, week));
      reply
        .header('x-quotaflow-report', stored ? 'stored' : 'generated')
        .header('vary', 'Accept')
        .type(MEDIA[format]);
      if (format === 'html') reply.header('content-security-policy', REPORT_CSP).header('x-content-type-options', 'nosniff');
      return reply.send(format === 'json' ? doc.json : format === 'md' ? doc.markdown : doc.html);
    },
  );
};
