/**
 * Response shapes shared by the read routes, as TypeBox schemas: fastify serialises the replies
 * with them and `@fastify/swagger` publishes them at `/docs`. A serialiser drops properties a
 * schema does not list, so each shape lists every field its type has.
 */
import { Type } from '@sinclair/typebox';
import { ErrorResponse } from '../ingest/http/schemas.ts';

export { ErrorResponse };

/** The error replies of an authenticated read route (each `{ error: { code, message } }`). */
export const READ_ERRORS = {
  400: ErrorResponse,
  401: ErrorResponse,
  403: ErrorResponse,
} as const;

/** The API-key schemes of the OpenAPI document: every `/v1` read route takes either. */
export const READ_SECURITY: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { apiKeyHeader: [] }];

const Amount = (description: string) =>
  Type.Union([Type.Number(), Type.String()], {
    description: `${description}: a number for tokens and requests, a decimal string (USD) for usd.`,
  });

/** domain/quota.ts `QuotaStatus`. */
export const QuotaStatusSchema = Type.Object(
  {
    id: Type.String(),
    metric: Type.Union([Type.Literal('tokens'), Type.Literal('requests'), Type.Literal('usd')]),
    used: Amount('Usage in the current window'),
    limit: Amount('Hard limit per window'),
    remaining: Amount('max(0, limit - used)'),
    percent: Type.Number({ description: 'used / limit x 100, truncated to 2 decimals; may exceed 100.' }),
    state: Type.Union([Type.Literal('ok'), Type.Literal('soft'), Type.Literal('exhausted')]),
    window_start: Type.String({ description: 'RFC 3339 UTC, inclusive.' }),
    window_end: Type.String({ description: 'RFC 3339 UTC, exclusive; for a rolling window, now.' }),
    burn_rate_per_hour: Amount('Recent consumption (last 15 minutes) per hour; USD to 12 decimals'),
    projected_exhaustion_at: Type.Union([Type.String(), Type.Null()], { description: 'RFC 3339 UTC, or null.' }),
    retry_after_s: Type.Union([Type.Integer(), Type.Null()], { description: 'Seconds until usage is allowed again, when exhausted.' }),
  },
  { additionalProperties: false },
);

/** `GET /v1/quotas` and `GET /v1/quotas/:tenant`. */
export const QuotasResponse = Type.Object(
  { tenant: Type.String(), quotas: Type.Array(QuotaStatusSchema) },
  { additionalProperties: false },
);

/** domain/team-allocation.ts `MemberSplit`. */
export const MemberSplitSchema = Type.Object(
  {
    user_id: Type.String(),
    weight: Type.Number(),
    priority: Type.Boolean(),
    demand: Amount('Projected use to the window end (used + recent burn x time left)'),
    share: Amount('Allotted in all, reserved included'),
    reserved: Amount('Part of share from the priority reserve'),
    used: Amount('Usage in the current window'),
    remaining_share: Amount('max(0, share - used)'),
  },
  { additionalProperties: false },
);

/** One team quota with its split (domain/team-allocation.ts `TeamSplit` plus the quota status). */
export const TeamAllocationSchema = Type.Object(
  {
    quota: QuotaStatusSchema,
    total: Amount('The limit in whole units (USD rounded down to the micro-dollar)'),
    priority_reserve: Type.Number({ description: 'Fraction of the total held for priority members.' }),
    unallocated: Amount('What no member demands'),
    members: Type.Array(MemberSplitSchema),
  },
  { additionalProperties: false },
);

/** `GET /v1/allocations/:team`. */
export const AllocationsResponse = Type.Object(
  { tenant: Type.String(), team: Type.String(), allocations: Type.Array(TeamAllocationSchema) },
  { additionalProperties: false },
);
