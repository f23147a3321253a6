/**
 * Teams in config (SPEC.md section 3, issue 4): who belongs to a team of a tenant, with the weights
 * and priority flags the team allocation uses (domain/allocation.ts, domain/team-allocation.ts).
 * A quota with `scope.team` is measured over the usage of the team's members (their `user_id`s).
 *
 * This file holds the config shape as TypeBox schemas plus `checkTeamSpecs`, which lists every
 * problem at once, including what JSON Schema cannot express: team ids unique per tenant, members
 * unique per team, and every team-scoped quota naming a configured team of its own tenant.
 */
import { type Static, Type } from '@sinclair/typebox';
import { schemaProblems } from './schema-problems.ts';
import { LIMITS } from './usage-event.ts';

/** One member of a team. */
export const TeamMemberSpec = Type.Object(
  {
    user_id: Type.String({ minLength: 1, maxLength: LIMITS.user_id, description: 'The user_id of the member, as in usage events.' }),
    weight: Type.Optional(
      Type.Number({ exclusiveMinimum: 0, description: 'Relative share of the team quota, a finite number > 0. Default 1.' }),
    ),
    priority: Type.Optional(
      Type.Boolean({ description: "Whether the member shares the team's priority reserve (high-priority tasks). Default false." }),
    ),
  },
  { additionalProperties: false },
);
export type TeamMemberSpec = Static<typeof TeamMemberSpec>;

/** One team of a tenant, as written in config. */
export const TeamSpec = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: LIMITS.tenant, description: 'Unique within the tenant; quotas name it in scope.team.' }),
    tenant: Type.String({ minLength: 1, maxLength: LIMITS.tenant, description: 'Tenant the team belongs to.' }),
    members: Type.Array(TeamMemberSpec, { minItems: 1, description: 'At least one member; each user_id once.' }),
    priority_reserve: Type.Optional(
      Type.Number({
        minimum: 0,
        exclusiveMaximum: 1,
        description: 'Fraction of a team quota held for the priority members, in [0, 1). Default 0.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type TeamSpec = Static<typeof TeamSpec>;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const nfc = (v: unknown): string | undefined => (typeof v === 'string' ? v.normalize('NFC') : undefined);

/**
 * Every problem with the `teams` list and with the team references of `quotas`, as
 * `teams[i] (id).field: reason` and `quotas[i] (id).scope.team: reason` lines (empty when all are
 * valid). Ids and user_ids are compared after NFC normalisation, as ingest stores them. Works on
 * raw config: entries of the wrong type are reported and skipped, never thrown on.
 */
export function checkTeamSpecs(teams: unknown, quotas: unknown = []): string[] {
  if (!Array.isArray(teams)) return ['teams: must be a list of teams'];
  const problems: string[] = [];
  /** `tenant \0 team id` -> index of its first definition. */
  const firstIndex = new Map<string, number>();
  teams.forEach((team: unknown, i) => {
    if (!isRecord(team)) {
      problems.push(`teams[${i}]: must be a mapping`);
      return;
    }
    const id = nfc(team.id);
    const where = `teams[${i}]${id ? ` (${id})` : ''}`;
    problems.push(...schemaProblems(TeamSpec, team, where));
    const tenant = nfc(team.tenant);
    if (id !== undefined && tenant !== undefined) {
      const key = `${tenant}\u0000${id}`;
      const first = firstIndex.get(key);
      if (first === undefined) firstIndex.set(key, i);
      else problems.push(`${where}.id: duplicate team in tenant ${JSON.stringify(tenant)}, already defined by teams[${first}]`);
    }
    if (Array.isArray(team.members)) {
      const seen = new Map<string, number>();
      team.members.forEach((m: unknown, j) => {
        const user = isRecord(m) ? nfc(m.user_id) : undefined;
        if (user === undefined) return; // reported by the schema check
        const first = seen.get(user);
        if (first === undefined) seen.set(user, j);
        else problems.push(`${where}.members.${j}.user_id: duplicate member ${JSON.stringify(user)}, already members.${first}`);
      });
    }
  });

  if (Array.isArray(quotas)) {
    quotas.forEach((q: unknown, i) => {
      if (!isRecord(q) || !isRecord(q.scope)) return; // reported by checkQuotaSpecs
      const team = nfc(q.scope.team);
      const tenant = nfc(q.scope.tenant);
      if (team === undefined || tenant === undefined) return;
      if (firstIndex.has(`${tenant}\u0000${team}`)) return;
      const where = `quotas[${i}]${typeof q.id === 'string' ? ` (${q.id})` : ''}.scope.team`;
      const known = [...firstIndex.keys()].filter((k) => k.startsWith(`${tenant}\u0000`)).map((k) => k.slice(tenant.length + 1));
      problems.push(
        `${where}: no team ${JSON.stringify(team)} in tenant ${JSON.stringify(tenant)} under teams` +
          (known.length > 0 ? ` (its teams: ${known.join(', ')})` : ' (the tenant has no team)'),
      );
    });
  }
  return problems;
}
