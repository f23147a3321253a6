/**
 * `GET /v1/allocations/:team`: how each quota scoped to a team is split among the team's members
 * (SPEC.md section 3, issue 4): the quota status plus, per member, its weight, priority, demand,
 * share (of which reserved), used and remaining share. The split is domain/team-allocation.ts
 * `splitTeamQuota` (priority reserve, then weighted max-min fairness with unused shares re-lent;
 * demand = used + recent burn x time left in the window); usage is measured per member from
 * `usage_minute` (storage/quota-measure.ts measureTeamQuota).
 *
 * Team ids are unique per tenant. Authenticated by an API key (ingest/http/api-keys.ts): a read
 * key reads the teams of its own tenant (a team that exists only in another tenant is 403
 * `forbidden`); an admin key reads any team, and names the tenant with `?tenant=` when the team id
 * exists in more than one tenant (else 400 `tenant_required`). `?tenant=` follows the same rule as
 * `/v1/quotas/:tenant`.
 *
 * 200: `{ tenant, team, allocations: [{ quota: QuotaStatus, total, priority_reserve, unallocated,
 * members: [{ user_id, weight, priority, demand, share, reserved, used, remaining_share }] }] }`,
 * quotas in config order, members in team order; amounts are numbers for tokens and requests and
 * exact decimal strings (USD) for usd. 404 `not_found` no such team; 401; 403; 400.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { findTeam, splitTeamQuota, type TeamMembership } from '../../domain/team-allocation.ts';
import { type ReadAccess, type ReadApiKey, readAuth } from '../../ingest/http/api-keys.ts';
import type { QuotaSpec } from '../../schemas/quota.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import { measureTeamQuota } from '../../storage/quota-measure.ts';
import { useReadErrorHandler } from '../read-errors.ts';
import { AllocationsResponse, ErrorResponse, READ_ERRORS, READ_SECURITY } from '../schemas.ts';

export interface AllocationsRouteOptions {
  clickhouse: ClickHouseClient;
  /** Read-API keys (ingest keys read their own tenant). */
  keys: ReadonlyArray<ReadApiKey>;
  quotas: ReadonlyArray<QuotaSpec>;
  /** Config `teams`. */
  teams: ReadonlyArray<TeamMembership>;
  /** Current time, epoch ms. Default Date.now. */
  now?: () => number;
}

const Params = Type.Object({ team: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false });
const Query = Type.Object(
  { tenant: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: "The team's tenant (admin keys)." })) },
  { additionalProperties: false },
);

const refuse = (statusCode: 400 | 403 | 404, code: string, message: string) => ({ statusCode, body: { error: { code, message } } });

export const allocationsRoute: FastifyPluginAsync<AllocationsRouteOptions> = async (app, opts) => {
  useReadErrorHandler(app);
  const auth = readAuth(opts.keys);
  // 401 for a missing or unknown key before the body is parsed or anything validated.
  app.addHook('onRequest', auth.onRequest);
  const now = opts.now ?? Date.now;

  /** The team a request reads, or the refusal. */
  const resolve = (
    req: Parameters<typeof auth.caller>[0],
    teamId: string,
    tenant: string | undefined,
  ): { team: TeamMembership } | Exclude<ReadAccess, { ok: true }> | ReturnType<typeof refuse> => {
    const id = teamId.normalize('NFC');
    const notFound = refuse(404, 'not_found', `no team ${JSON.stringify(id)}`);
    if (tenant !== undefined) {
      const access = auth.tenant(req, tenant, '');
      if (!access.ok) return access;
      const team = findTeam(opts.teams, access.tenant, id);
      return team ? { team } : notFound;
    }
    const caller = auth.caller(req);
    const named = opts.teams.filter((t) => t.id.normalize('NFC') === id);
    if (caller.role === 'read') {
      const own = named.find((t) => t.tenant.normalize('NFC') === caller.tenant);
      if (own) return { team: own };
      return named.length > 0 ? refuse(403, 'forbidden', `team ${JSON.stringify(id)} is not a team of this key's tenant`) : notFound;
    }
    if (named.length === 1) return { team: named[0]! };
    return named.length === 0
      ? notFound
      : refuse(400, 'tenant_required', `team ${JSON.stringify(id)} exists in several tenants: add ?tenant=<tenant>`);
  };

  app.get(
    '/v1/allocations/:team',
    {
      schema: {
        tags: ['quotas'],
        summary: "Split of a team's quotas among its members",
        security: READ_SECURITY,
        params: Params,
        querystring: Query,
        response: { 200: AllocationsResponse, ...READ_ERRORS, 404: ErrorResponse },
      },
    },
    async (req, reply) => {
      const r = resolve(req, (req.params as { team: string }).team, (req.query as { tenant?: string }).tenant);
      if (!('team' in r)) return reply.code(r.statusCode).send(r.body);
      const { team } = r;
      const nowMs = now();
      const quotas = opts.quotas.filter((q) => q.scope.team !== undefined && findTeam([team], q.scope.tenant, q.scope.team));
      const allocations = await Promise.all(
        quotas.map(async (spec) => {
          const m = await measureTeamQuota(opts.clickhouse, spec, team, nowMs);
          const split = splitTeamQuota({ spec, team, window: m.window, nowMs, burnWindowMs: m.burnWindowMs, usage: m.usage });
          return { quota: m.status, ...split };
        }),
      );
      return { tenant: team.tenant.normalize('NFC'), team: team.id.normalize('NFC'), allocations };
    },
  );
};
