/**
 * `POST /v1/route`: pick a provider/model for a request (SPEC.md section 4) from the in-memory
 * routing snapshot of the caller's tenant (api/routing-snapshot.ts): no ClickHouse query per call.
 * Authenticated like `/v1/usage`; the tenant is the key's (a tenant key ignores body `tenant`); an
 * admin key must name it in body `tenant` (else 400 `tenant_required`).
 *
 * Body (`RouteBody`, optional: no body means no hints): user_id, task_id, task_class
 * (simple | standard | complex), priority (low | normal | high), estimated_input_tokens,
 * estimated_output_tokens, required_capabilities, required_compliance, preferred_capabilities,
 * max_fallbacks, explain (fallbacks with their score breakdowns); all optional.
 * With `user_id`, the user's own and their teams' quotas apply too.
 * 200: `{ tenant, user_id, chosen, fallbacks, excluded, retry_after_s, quotas }` (domain/routing.ts
 * RoutingDecision; `quotas` lists the quotas that apply, with what is left: api/routing-snapshot.ts
 * QuotaRemaining). `chosen` is null when every candidate is excluded, with `retry_after_s` (seconds)
 * when a quota window or the breaker is the reason. 401 missing or unknown key (checked first,
 * before the body is read); 400 bad body.
 */
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { decide, PRIORITIES, type RankedCandidate, TASK_CLASSES } from '../../domain/routing.ts';
import { type ReadApiKey, readAuth } from '../../ingest/http/api-keys.ts';
import type { RoutingMetrics } from '../../observability/metrics.ts';
import { useReadErrorHandler } from '../read-errors.ts';
import type { RoutingSnapshots } from '../routing-snapshot.ts';
import { READ_ERRORS, READ_SECURITY } from '../schemas.ts';
import { strictBodyCompiler } from '../strict-body.ts';

const Tags = Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 64 });
const Tokens = Type.Integer({ minimum: 0, maximum: 100_000_000 });

/**
 * Fallbacks in an answer unless the request asks for more: a gateway tries a few, and with 20
 * candidates the full list made the answer about 6 KB, most of the cost of a lookup (writing and
 * serialising it; `npm run bench:route`).
 */
export const DEFAULT_MAX_FALLBACKS = 5;

/** `RoutingRequest`; `tenant` comes from the API key, and only an admin key gives it in the body. */
export const RouteBody = Type.Object(
  {
    tenant: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 128,
        description: "Admin keys only (required): the tenant to route for. A tenant's key routes for its own tenant; this is ignored.",
      }),
    ),
    user_id: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'End user; their quotas and teams apply.' })),
    task_id: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'Logged only.' })),
    task_class: Type.Optional(Type.Union(TASK_CLASSES.map((c) => Type.Literal(c)))),
    priority: Type.Optional(
      Type.Union(
        PRIORITIES.map((p) => Type.Literal(p)),
        { description: 'Default normal; low is stopped by an open breaker.' },
      ),
    ),
    estimated_input_tokens: Type.Optional(Tokens),
    estimated_output_tokens: Type.Optional(Tokens),
    required_capabilities: Type.Optional(Tags),
    required_compliance: Type.Optional(Tags),
    preferred_capabilities: Type.Optional(Tags),
    explain: Type.Optional(
      Type.Boolean({
        description:
          'Also give each fallback its score breakdown (default false: only the chosen candidate has one; every fallback has its score).',
      }),
    ),
    max_fallbacks: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 1_000,
        description: `Most fallbacks in the answer, best first (default ${DEFAULT_MAX_FALLBACKS}); every exclusion is always listed.`,
      }),
    ),
  },
  { additionalProperties: false },
);
export type RouteBody = Static<typeof RouteBody>;

const Score = Type.Number({ minimum: 0, maximum: 1 });
const Ranked = Type.Object(
  {
    id: Type.String(),
    provider: Type.String(),
    model: Type.String(),
    score: Type.Number({ description: 'Weighted sum of the breakdown, 0..1; scores are rounded to 12 decimals.' }),
    breakdown: Type.Optional(
      Type.Object(
        { performance: Score, cost: Score, features: Score, stability: Score, compliance: Score },
        { additionalProperties: false, description: 'Always on `chosen`; on fallbacks only with `explain: true`.' },
      ),
    ),
    estimated_cost_usd: Type.Number({ description: 'USD for this request at list price, rounded to 12 decimals.' }),
    quota_remaining_ratio: Type.Union([Type.Number(), Type.Null()]),
    remaining_tokens: Type.Union([Type.Number(), Type.Null()]),
    below_min_remaining: Type.Boolean(),
  },
  { additionalProperties: false },
);

/**
 * The 200 answer (domain/routing.ts RoutingDecision plus tenant, user and quotas). Declared so
 * fastify serialises it with a compiled serialiser: about 3x faster than JSON.stringify on a
 * 20-candidate answer (measured with `npm run bench:route`).
 */
export const RouteResponse = Type.Object(
  {
    tenant: Type.String(),
    user_id: Type.Union([Type.String(), Type.Null()]),
    chosen: Type.Union([Ranked, Type.Null()]),
    fallbacks: Type.Array(Ranked),
    excluded: Type.Array(
      Type.Object(
        {
          id: Type.String(),
          reason: Type.Union(
            ['compliance_mismatch', 'missing_capability', 'quota_exhausted', 'breaker_open', 'error_rate_over_limit'].map((r) =>
              Type.Literal(r),
            ),
          ),
          detail: Type.String(),
        },
        { additionalProperties: false },
      ),
    ),
    retry_after_s: Type.Union([Type.Number(), Type.Null()], { description: 'Seconds, when nothing is allowed for a time-bound reason.' }),
    quotas: Type.Array(
      Type.Object(
        {
          id: Type.String(),
          metric: Type.Union([Type.Literal('tokens'), Type.Literal('requests'), Type.Literal('usd')]),
          state: Type.Union([Type.Literal('ok'), Type.Literal('soft'), Type.Literal('exhausted')]),
          remaining: Type.Union([Type.Number(), Type.String()]),
          limit: Type.Union([Type.Number(), Type.String()]),
          window_end: Type.String(),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/**
 * `x` rounded to 12 decimals: the double nearest to a multiple of 1e-12. Integer arithmetic while
 * x * 1e12 stays below 2^53 (30x faster than `toFixed`, which is the fallback above 9,000).
 */
const round12 = (x: number): number => (Math.abs(x) < 9_000 ? Math.round(x * 1e12) / 1e12 : Number(x.toFixed(12)));

/**
 * The ranked candidate as answered: the domain computes in binary floating point (microseconds
 * matter there), so the answer rounds at this edge, to 12 decimals: estimated_cost_usd to the
 * pico-USD, the precision of stored costs (0.0045000000000000005 -> 0.0045), and the scores in
 * [0, 1] likewise (0.6124999999999999 -> 0.6125). Ranking was decided on the unrounded values.
 */
function rounded(r: RankedCandidate): RankedCandidate {
  return { ...r, score: round12(r.score), breakdown: roundedBreakdown(r.breakdown), estimated_cost_usd: round12(r.estimated_cost_usd) };
}

/**
 * A fallback as answered without `explain`: no breakdown. The fallbacks' breakdowns were most of
 * an answer's numbers; without them the answer is about a fifth smaller (2,687 to 2,164 bytes in
 * bench:route; docs/benchmarks.md, "Routing", for what that saved: little).
 */
function roundedBrief(r: RankedCandidate): Omit<RankedCandidate, 'breakdown'> {
  const { breakdown: _, ...rest } = r;
  return { ...rest, score: round12(r.score), estimated_cost_usd: round12(r.estimated_cost_usd) };
}

function roundedBreakdown(b: RankedCandidate['breakdown']): RankedCandidate['breakdown'] {
  return {
    performance: round12(b.performance),
    cost: round12(b.cost),
    features: round12(b.features),
    stability: round12(b.stability),
    compliance: round12(b.compliance),
  };
}

export interface RouteRouteOptions {
  keys: ReadonlyArray<ReadApiKey>;
  routing: Pick<RoutingSnapshots, 'current' | 'remaining'>;
  /** Decisions by outcome and exclusions by reason (observability/metrics.ts). Default none. */
  metrics?: RoutingMetrics;
}

export const routeRoute: FastifyPluginAsync<RouteRouteOptions> = async (app, opts) => {
  // Error replies in the declared `{ error: { code, message } }` shape (a bad body is 400 bad_request).
  useReadErrorHandler(app);
  const auth = readAuth(opts.keys);
  // 401 for a missing or unknown key before the body is parsed or anything validated.
  app.addHook('onRequest', auth.onRequest);
  // No body at all means no hints: validate it as {}. A JSON `null` body is not "no body": refused.
  app.addHook('preValidation', (req, _reply, done) => {
    if (req.body === undefined) req.body = {};
    done();
  });
  app.post(
    '/v1/route',
    {
      schema: { tags: ['routing'], security: READ_SECURITY, body: RouteBody, response: { 200: RouteResponse, ...READ_ERRORS } },
      // Strict: no coercion, no dropped unknown fields (api/strict-body.ts).
      validatorCompiler: strictBodyCompiler,
    },
    async (req, reply) => {
      const caller = auth.caller(req);
      const body = (req.body ?? {}) as RouteBody;
      // A tenant's key routes for its tenant (body `tenant` ignored); an admin key names the tenant.
      const tenant = caller.role === 'read' ? caller.tenant : body.tenant?.normalize('NFC');
      if (tenant === undefined) {
        return reply
          .code(400)
          .send({ error: { code: 'tenant_required', message: 'an admin API key must name the tenant: body field "tenant"' } });
      }
      const user = body.user_id?.normalize('NFC');
      const decision = decide(opts.routing.current(tenant, user), { ...body, tenant });
      opts.metrics?.decision(decision);
      const { chosen, fallbacks } = decision;
      const keep = body.max_fallbacks ?? DEFAULT_MAX_FALLBACKS;
      return {
        tenant,
        user_id: user ?? null,
        ...decision,
        chosen: chosen && rounded(chosen),
        fallbacks: (fallbacks.length > keep ? fallbacks.slice(0, keep) : fallbacks).map(body.explain ? rounded : roundedBrief),
        quotas: opts.routing.remaining(tenant, user),
      };
    },
  );
};
