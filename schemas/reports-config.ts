/**
 * Config section `reports` (issue 6, SPEC.md section 7): when the weekly reports are generated
 * and in which time zone each tenant's week runs (processors/reports/scheduler.ts).
 *
 * ```yaml
 * reports:
 *   schedule: '0 6 * * 1'          # node-cron expression, read in each tenant's zone: Monday 06:00 local
 *   time_zone: UTC                 # zone of tenants not in tenant_time_zones
 *   tenant_time_zones: { acme: Europe/Berlin }
 *   tenants: [acme, globex]        # optional: only these; default every tenant with usage in the week
 *   top_n: 10                      # rows per breakdown before "other"
 * ```
 *
 * The schedule fires once per distinct zone, at the schedule's time in that zone, and reports each
 * tenant of the zone for its last complete ISO week (Monday 00:00 to Monday 00:00 local).
 */
import { type Static, Type } from '@sinclair/typebox';
import { IANAZone } from 'luxon';
import { validateDetailed } from 'node-cron';
import { LIMITS } from './usage-event.ts';

export const DEFAULT_REPORT_SCHEDULE = '0 6 * * 1';
export const DEFAULT_REPORT_TOP_N = 10;

export const ReportsConfigSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true, description: 'Run the weekly report schedule in the processor (and all) role.' }),
    schedule: Type.String({
      minLength: 1,
      default: DEFAULT_REPORT_SCHEDULE,
      description: 'node-cron expression (5 fields, or 6 with seconds first), read in each tenant time zone.',
    }),
    time_zone: Type.String({ minLength: 1, default: 'UTC', description: 'IANA time zone of the tenants not in tenant_time_zones.' }),
    tenant_time_zones: Type.Record(Type.String({ minLength: 1, maxLength: LIMITS.tenant }), Type.String({ minLength: 1 }), {
      default: {},
      description: 'IANA time zone per tenant: its report week runs Monday 00:00 to Monday 00:00 there.',
    }),
    tenants: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: LIMITS.tenant }), {
        description: 'Tenants reported on schedule; default: every tenant with usage in its week.',
      }),
    ),
    top_n: Type.Integer({
      minimum: 1,
      maximum: 100,
      default: DEFAULT_REPORT_TOP_N,
      description: 'Rows per breakdown (model, user, task) before the rest is summed as "other".',
    }),
  },
  { additionalProperties: false, default: {} },
);
export type ReportsConfig = Static<typeof ReportsConfigSchema>;

/**
 * What the schema cannot say about `reports`, as `reports.<key>: reason` lines: the schedule is a
 * valid node-cron expression, every zone is an IANA zone (luxon `IANAZone.isValidZone`), and no
 * tenant is listed twice. Reads only values whose type it checks itself.
 */
export function checkReportsConfig(reports: unknown): string[] {
  if (typeof reports !== 'object' || reports === null) return [];
  const r = reports as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof r.schedule === 'string') {
    const v = validateDetailed(r.schedule);
    if (!v.valid) {
      const why = v.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
      problems.push(`reports.schedule: not a cron expression (${why || 'unreadable'}), got ${JSON.stringify(r.schedule)}`);
    }
  }
  const zone = (where: string, z: unknown) => {
    if (typeof z === 'string' && !IANAZone.isValidZone(z)) {
      problems.push(`${where}: not an IANA time zone: ${JSON.stringify(z)} (e.g. Europe/Berlin, UTC)`);
    }
  };
  zone('reports.time_zone', r.time_zone);
  if (typeof r.tenant_time_zones === 'object' && r.tenant_time_zones !== null) {
    for (const [tenant, z] of Object.entries(r.tenant_time_zones)) zone(`reports.tenant_time_zones.${tenant}`, z);
  }
  if (Array.isArray(r.tenants)) {
    const seen = new Set<string>();
    for (const t of r.tenants) {
      if (typeof t !== 'string') continue;
      const key = t.normalize('NFC');
      if (seen.has(key)) problems.push(`reports.tenants: ${JSON.stringify(t)} is listed twice`);
      seen.add(key);
    }
  }
  return problems;
}

/** The IANA zone of `tenant`'s report week: its `tenant_time_zones` entry, else `time_zone`. */
export function reportTimeZone(reports: Pick<ReportsConfig, 'time_zone' | 'tenant_time_zones'>, tenant: string): string {
  const t = tenant.normalize('NFC');
  for (const [k, z] of Object.entries(reports.tenant_time_zones)) if (k.normalize('NFC') === t) return z;
  return reports.time_zone;
}
