/**
 * Quotas in config (SPEC.md section 3, issue 4): a limit in tokens, requests or USD, for a tenant,
 * a team, a user or a provider account, over a calendar window in an IANA time zone or a rolling
 * window of the last N minutes, with a soft threshold (default 80%) below the hard limit.
 *
 * This file holds the config shape as TypeBox schemas plus `checkQuotaSpecs`, which lists every
 * problem at once, including the rules JSON Schema cannot express (unique ids, a real IANA zone,
 * whole-number limits for tokens and requests). Window and status arithmetic live in `domain/quota.ts`.
 */
import { type Static, Type } from '@sinclair/typebox';
import { Decimal } from 'decimal.js';
import { IANAZone } from 'luxon';
import { schemaProblems } from './schema-problems.ts';
import { LIMITS } from './usage-event.ts';

export const QUOTA_METRICS = ['tokens', 'requests', 'usd'] as const;
export type QuotaMetric = (typeof QUOTA_METRICS)[number];
export const CALENDAR_UNITS = ['minute', 'hour', 'day', 'week', 'month'] as const;
export type CalendarUnit = (typeof CALENDAR_UNITS)[number];

export const DEFAULT_TIME_ZONE = 'UTC';
export const DEFAULT_SOFT_THRESHOLD = 0.8;
/** Longest rolling window: 31 days, in minutes. */
export const MAX_ROLLING_MINUTES = 44_640;
/** A USD limit may have at most 12 decimals: costs are exact to 1e-12 USD (domain/pricing.ts). */
export const MAX_USD_LIMIT_DECIMALS = 12;
export const MAX_QUOTA_ID_LENGTH = 128;

const Id = (maxLength: number, description: string) => Type.String({ minLength: 1, maxLength, description });

/** Who the quota applies to. Every given field must match; an absent field matches any value. */
export const QuotaScope = Type.Object(
  {
    tenant: Id(LIMITS.tenant, 'Tenant that owns the quota (always required: quotas never span tenants).'),
    team: Type.Optional(Id(LIMITS.tenant, 'Team within the tenant; membership comes from the team allocation config.')),
    user_id: Type.Optional(Id(LIMITS.user_id, 'One end user or developer.')),
    provider: Type.Optional(Id(LIMITS.provider, 'One provider account: openai, anthropic, ... (compared lower-cased).')),
  },
  { additionalProperties: false },
);
export type QuotaScope = Static<typeof QuotaScope>;

/** A calendar window: the current minute, hour, day, ISO week (Monday) or month, in a time zone. */
export const CalendarWindowSpec = Type.Object(
  {
    kind: Type.Literal('calendar'),
    unit: Type.Union(CALENDAR_UNITS.map((u) => Type.Literal(u))),
    time_zone: Type.Optional(
      Type.String({
        minLength: 1,
        default: DEFAULT_TIME_ZONE,
        description: 'IANA time zone (Europe/Berlin): a daily budget resets at local midnight, DST included.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type CalendarWindowSpec = Static<typeof CalendarWindowSpec>;

/** A rolling window: the last `minutes` minutes before now. */
export const RollingWindowSpec = Type.Object(
  {
    kind: Type.Literal('rolling'),
    minutes: Type.Integer({ minimum: 1, maximum: MAX_ROLLING_MINUTES, description: 'Window length, minutes (1 to 31 days).' }),
  },
  { additionalProperties: false },
);
export type RollingWindowSpec = Static<typeof RollingWindowSpec>;

export const QuotaWindowSpec = Type.Union([CalendarWindowSpec, RollingWindowSpec]);
export type QuotaWindowSpec = Static<typeof QuotaWindowSpec>;

/** One quota as written in config. */
export const QuotaSpec = Type.Object(
  {
    id: Type.String({
      minLength: 1,
      maxLength: MAX_QUOTA_ID_LENGTH,
      pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
      description: 'Unique id (letters, digits, . _ -), used in API paths, alerts and metrics.',
    }),
    scope: QuotaScope,
    metric: Type.Union(
      QUOTA_METRICS.map((m) => Type.Literal(m)),
      { description: 'tokens (input + output), requests (calls), or usd (cost).' },
    ),
    limit: Type.Union([Type.Number({ exclusiveMinimum: 0 }), Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?$' })], {
      description: 'Hard limit per window, > 0: a whole number for tokens and requests, a decimal (string for exactness) for usd.',
    }),
    window: QuotaWindowSpec,
    soft_threshold: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        exclusiveMaximum: 1,
        default: DEFAULT_SOFT_THRESHOLD,
        description: 'Share of the limit at which the quota turns soft (alerts, breaker on daily budgets).',
      }),
    ),
  },
  { additionalProperties: false },
);
export type QuotaSpec = Static<typeof QuotaSpec>;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Every problem with a list of quota specs, as `quotas[i] (id).field: reason` lines (empty when all
 * are valid). Checks the schema (window errors are reported against the window's own kind, not as
 * an opaque union error), then what JSON Schema cannot say: ids unique, the time zone a real IANA
 * zone (luxon `IANAZone.isValidZone`), limits > 0, whole and safe integers for tokens and requests,
 * at most 12 decimals for usd. Works on raw config, with or without TypeBox defaults applied.
 */
export function checkQuotaSpecs(specs: unknown, path = 'quotas'): string[] {
  if (!Array.isArray(specs)) return [`${path}: must be a list of quotas`];
  const problems: string[] = [];
  const firstIndexOfId = new Map<string, number>();
  specs.forEach((spec: unknown, i) => {
    if (!isRecord(spec)) {
      problems.push(`${path}[${i}]: must be a mapping`);
      return;
    }
    const id = typeof spec.id === 'string' ? spec.id : undefined;
    const where = `${path}[${i}]${id ? ` (${id})` : ''}`;
    // `limit` and `window` are unions: checked below with messages that say what was expected.
    problems.push(...schemaProblems(QuotaSpec, spec, where, ['/limit', '/window']));

    if (id !== undefined) {
      const first = firstIndexOfId.get(id);
      if (first === undefined) firstIndexOfId.set(id, i);
      else problems.push(`${where}.id: duplicate id, already used by ${path}[${first}]`);
    }

    const w = spec.window;
    if (!isRecord(w)) problems.push(`${where}.window: must be a mapping with kind calendar or rolling`);
    else if (w.kind === 'calendar') {
      problems.push(...schemaProblems(CalendarWindowSpec, w, `${where}.window`));
      if (typeof w.time_zone === 'string' && !IANAZone.isValidZone(w.time_zone)) {
        problems.push(`${where}.window.time_zone: not an IANA time zone: ${JSON.stringify(w.time_zone)} (e.g. Europe/Berlin, UTC)`);
      }
    } else if (w.kind === 'rolling') problems.push(...schemaProblems(RollingWindowSpec, w, `${where}.window`));
    else problems.push(`${where}.window.kind: must be calendar or rolling, got ${JSON.stringify(w.kind)}`);

    problems.push(...limitProblems(spec.limit, spec.metric, `${where}.limit`));
  });
  return problems;
}

function limitProblems(limit: unknown, metric: unknown, where: string): string[] {
  let d: Decimal;
  if (typeof limit === 'number' && Number.isFinite(limit)) d = new Decimal(limit);
  else if (typeof limit === 'string' && /^[0-9]+(\.[0-9]+)?$/.test(limit)) d = new Decimal(limit);
  else return [`${where}: must be a number > 0 or a decimal string, got ${JSON.stringify(limit)}`];
  if (d.lte(0)) return [`${where}: must be > 0, got ${limit}`];
  if (metric === 'tokens' || metric === 'requests') {
    if (!d.isInteger()) return [`${where}: ${metric} limit must be a whole number, got ${limit}`];
    if (d.gt(Number.MAX_SAFE_INTEGER)) return [`${where}: ${metric} limit is beyond ${Number.MAX_SAFE_INTEGER}, got ${limit}`];
  } else if (metric === 'usd' && d.decimalPlaces() > MAX_USD_LIMIT_DECIMALS) {
    return [`${where}: more than ${MAX_USD_LIMIT_DECIMALS} decimals (${limit})`];
  }
  return [];
}
