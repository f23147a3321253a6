/**
 * The error replies of the app, route by route, found from the OpenAPI document (so a route added
 * later is covered without editing this file): every 4xx is `{ error: { code, message } }`, also
 * fastify's own errors (a bad %-escape in the path, an over-long path parameter, a body of the
 * wrong media type); a fixed-choice parameter's 400 lists the allowed values; a time range with
 * from after to is 400 on every route that takes one. ClickHouse is a fake that answers no rows.
 */
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { compileSnapshot } from '../../domain/routing.ts';
import type { Producer } from '../../ingest/transport/transport.ts';
import type { RenderedReport } from '../../processors/reports/report-service.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';

const READ_A = 'read-key-a-0123456789ab';
const ADMIN = 'admin-key-0123456789abc';
const KEYS = [
  { key: READ_A, tenant: 'tenant-a', role: 'read' as const },
  { key: ADMIN, role: 'admin' as const },
];
const noProducer: Producer = { send: async () => {}, close: async () => {} };

interface Query {
  query: string;
  query_params: Record<string, unknown>;
}

let apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.map((a) => a.close()));
  apps = [];
});

function setup() {
  const calls: Query[] = [];
  const clickhouse = {
    query: async (q: Query) => {
      calls.push(q);
      return { json: async () => [] };
    },
  } as unknown as ClickHouseClient;
  const rendered: RenderedReport = { report: {} as RenderedReport['report'], json: '{}', markdown: '#', html: '<p></p>' };
  const reports = {
    lastCompleteWeek: () => '2026-W47',
    validateRequest: async () => {},
    generate: async () => rendered,
    stored: async () => undefined,
  };
  const app = buildApp({
    logger: false,
    bodyLimitBytes: 65_536,
    readiness: {},
    ingest: {
      usageProducer: noProducer,
      dlqProducer: noProducer,
      keys: [{ key: 'ingest-key-a-0123456789', tenant: 'tenant-a' }],
      maxEventsPerRequest: 10,
      produceTimeoutMs: 1_000,
    },
    api: {
      clickhouse,
      keys: KEYS,
      now: () => Date.UTC(2026, 10, 29, 12),
      routing: { current: () => compileSnapshot([], new Map()), remaining: () => [] },
      reports,
    },
  });
  apps.push(app);
  return { app, calls };
}

interface Parameter {
  in: 'query' | 'path';
  name: string;
  schema: { anyOf?: Array<{ const?: unknown; enum?: unknown[] }>; enum?: unknown[] };
}
interface Operation {
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: { properties?: Record<string, Parameter['schema']> } }> };
}
type Doc = { paths: Record<string, Record<string, Operation>> };

/** Every operation of the OpenAPI document as [method, path template, operation]. */
async function operations(app: FastifyInstance): Promise<Array<[string, string, Operation]>> {
  const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json<Doc>();
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([m, op]) => [m.toUpperCase(), path, op] as [string, string, Operation]),
  );
}

/** The values a fixed-choice schema allows, or undefined when it is not one. */
function choices(schema: Parameter['schema'] | undefined): string[] | undefined {
  if (schema?.enum?.every((v) => typeof v === 'string')) return schema.enum as string[];
  // TypeBox writes a literal as `const`; the OpenAPI document shows it as a one-value `enum`.
  const consts = schema?.anyOf?.map((s) => (s.enum?.length === 1 ? s.enum[0] : s.const));
  return consts && consts.length > 0 && consts.every((v) => typeof v === 'string') ? (consts as string[]) : undefined;
}

/** A URL for a path template with every path parameter set to `value`. */
const fill = (path: string, value = 'tenant-a') => path.replace(/\{\w+\}/g, value);

/** Asserts the reply is exactly `{ error: { code, message } }` with string values; returns it. */
function expectErrorShape(res: LightMyRequestResponse, what: string): { code: string; message: string } {
  const body = res.json<Record<string, unknown>>();
  expect(Object.keys(body), `${what}: ${res.body}`).toEqual(['error']);
  const error = body.error as Record<string, unknown>;
  expect(Object.keys(error).sort(), `${what}: ${res.body}`).toEqual(['code', 'message']);
  expect(typeof error.code, what).toBe('string');
  expect(typeof error.message, what).toBe('string');
  return error as { code: string; message: string };
}

describe('every 4xx reply has the { error: { code, message } } shape', () => {
  it('on every route: no key, a bad %-escape and an over-long value in a path parameter, bodies of the wrong kind', async () => {
    const { app } = setup();
    const ops = await operations(app);
    expect(ops.length).toBeGreaterThan(10);
    let checked = 0;
    for (const [method, path, op] of ops) {
      if (path.startsWith('/docs')) continue;
      const attempts: Array<[string, InjectOptions]> = [];
      if (path.startsWith('/v1/')) attempts.push(['no key', { method: method as 'GET', url: fill(path) }]);
      if (path.includes('{')) {
        // %ED%A0%80 decodes to a lone surrogate: not UTF-8 text.
        attempts.push(['a bad %-escape', { method: method as 'GET', url: fill(path, '%ED%A0%80'), headers: { 'x-api-key': ADMIN } }]);
        attempts.push([
          'a 5,000-character parameter',
          { method: method as 'GET', url: fill(path, 'u'.repeat(5_000)), headers: { 'x-api-key': ADMIN } },
        ]);
      }
      if (op.requestBody) {
        const headers = { 'x-api-key': ADMIN, 'content-type': 'application/json' };
        attempts.push(['invalid JSON', { method: method as 'POST', url: fill(path), headers, payload: '{"a":' }]);
        attempts.push([
          'text/plain',
          { method: method as 'POST', url: fill(path), headers: { ...headers, 'content-type': 'text/plain' }, payload: 'hi' },
        ]);
        attempts.push([
          'application/xml',
          { method: method as 'POST', url: fill(path), headers: { ...headers, 'content-type': 'application/xml' }, payload: '<a/>' },
        ]);
      }
      for (const [what, request] of attempts) {
        const res = await app.inject(request);
        const label = `${method} ${path}, ${what} -> ${res.statusCode}`;
        expect(res.statusCode, label).toBeGreaterThanOrEqual(400);
        expect(res.statusCode, label).toBeLessThan(500);
        expectErrorShape(res, label);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20);
  });

  it('fastify errors get a status and code that say what happened', async () => {
    const { app } = setup();
    const admin = { 'x-api-key': ADMIN };
    const badUrl = await app.inject({ method: 'GET', url: '/v1/contexts/%ED%A0%80', headers: admin });
    expect(badUrl.statusCode).toBe(400);
    expect(expectErrorShape(badUrl, 'bad url')).toEqual({
      code: 'bad_request',
      message: 'the URL path is not valid: a %-escape does not decode to UTF-8 text',
    });
    const long = await app.inject({ method: 'GET', url: `/v1/contexts/${'u'.repeat(5_000)}`, headers: admin });
    expect(long.statusCode).toBe(414);
    expect(expectErrorShape(long, 'long').code).toBe('uri_too_long');
    // Longer than the schema allows but short enough for the router: the schema names the parameter.
    const over = await app.inject({ method: 'GET', url: `/v1/contexts/${'u'.repeat(257)}`, headers: admin });
    expect(over.statusCode).toBe(400);
    expect(expectErrorShape(over, 'over').message).toBe('params/user must NOT have more than 256 characters');
    const plain = await app.inject({
      method: 'POST',
      url: '/v1/route',
      headers: { ...admin, 'content-type': 'text/plain' },
      payload: 'hi',
    });
    expect(plain.statusCode).toBe(415);
    expect(expectErrorShape(plain, 'plain')).toEqual({
      code: 'unsupported_media_type',
      message: 'the body must be JSON (Content-Type: application/json), got text/plain',
    });
    const nowhere = await app.inject({ method: 'GET', url: '/v2/nothing' });
    expect(nowhere.statusCode).toBe(404);
    expect(expectErrorShape(nowhere, '404').code).toBe('not_found');
  });
});

/** The routes authenticated by ingest keys (ingest/http/ingest-auth.ts); every other `/v1/` route is a read route. */
const INGEST_ROUTES = new Set(['POST /v1/events', 'POST /v1/contexts']);

/** A request without its headers: the key, or none, is added by the caller. */
type Bare = Omit<InjectOptions, 'headers'> & { headers?: Record<string, string> };

/**
 * Requests to an operation that each fail its validation in one way: a path parameter longer than
 * any route allows (300 characters; still short enough for the router), each query parameter with
 * a value its schema refuses (not a choice, not a number, over its maxLength), and bodies that are
 * not JSON, not valid JSON, empty, null, of the wrong type or with an unknown field.
 */
function invalidRequests(method: string, path: string, op: Operation): Array<[string, Bare]> {
  const url = fill(path);
  const out: Array<[string, Bare]> = [];
  if (path.includes('{')) out.push(['a 300-character path parameter', { method: method as 'GET', url: fill(path, 'p'.repeat(300)) }]);
  for (const p of op.parameters ?? []) {
    if (p.in !== 'query') continue;
    const schema = p.schema as Parameter['schema'] & { type?: string; maxLength?: number };
    const bad = choices(schema)
      ? 'zz-not-a-choice'
      : schema.type === 'integer' || schema.type === 'number'
        ? 'not-a-number'
        : typeof schema.maxLength === 'number'
          ? 'q'.repeat(schema.maxLength + 1)
          : undefined;
    if (bad !== undefined) out.push([`query ${p.name}=${bad.slice(0, 20)}`, { method: method as 'GET', url: `${url}?${p.name}=${bad}` }]);
  }
  if (op.requestBody) {
    const json = { 'content-type': 'application/json' };
    out.push([
      'a field of the wrong type',
      { method: method as 'POST', url, headers: json, payload: '{"explain":"x","max_fallbacks":"2"}' },
    ]);
    out.push(['an unknown field', { method: method as 'POST', url, headers: json, payload: '{"zz_unknown_field":1}' }]);
    out.push(['a null body', { method: method as 'POST', url, headers: json, payload: 'null' }]);
    out.push(['invalid JSON', { method: method as 'POST', url, headers: json, payload: '{"a":' }]);
    out.push(['an empty JSON body', { method: method as 'POST', url, headers: json, payload: '' }]);
    out.push(['text/plain', { method: method as 'POST', url, headers: { 'content-type': 'text/plain' }, payload: 'hi' }]);
  }
  return out;
}

describe('a missing or unknown key is 401 before anything else is checked', () => {
  it('on every read route: a request that fails validation in any way is 401 without a key or with a wrong one', async () => {
    const { app, calls } = setup();
    const read = (await operations(app)).filter(([method, path]) => path.startsWith('/v1/') && !INGEST_ROUTES.has(`${method} ${path}`));
    expect(read.map(([m, p]) => `${m} ${p}`).sort()).toEqual([
      'GET /v1/allocations/{team}',
      'GET /v1/anomalies',
      'GET /v1/contexts/{user}',
      'GET /v1/contexts/{user}/export',
      'GET /v1/quotas',
      'GET /v1/quotas/{tenant}',
      'GET /v1/reports/{tenant}/weekly',
      'GET /v1/usage',
      'POST /v1/route',
    ]);
    const unauthorized = {
      error: { code: 'unauthorized', message: 'missing or unknown API key: send "Authorization: Bearer <key>" or "X-API-Key: <key>"' },
    };
    const nothingToValidate: string[] = [];
    for (const [method, path, op] of read) {
      const route = `${method} ${path}`;
      // Every read route says in /docs that it takes a key.
      expect((op as Operation & { security?: unknown[] }).security, route).toEqual([{ bearerAuth: [] }, { apiKeyHeader: [] }]);
      const invalid = invalidRequests(method, path, op);
      if (invalid.length === 0) nothingToValidate.push(route);
      for (const [what, request] of invalid) {
        const label = `${route}, ${what}`;
        // With a valid key the request is refused for what it is (so it does fail validation).
        const checked = await app.inject({ ...request, headers: { ...request.headers, 'x-api-key': ADMIN } });
        expect(checked.statusCode, `${label} with a valid key: ${checked.body}`).toBeGreaterThanOrEqual(400);
        expect(checked.statusCode, `${label} with a valid key: ${checked.body}`).toBeLessThan(500);
        expect(checked.statusCode, `${label} with a valid key: ${checked.body}`).not.toBe(401);
        for (const [who, key] of [
          ['no key', {}],
          ['an unknown X-API-Key', { 'x-api-key': 'not-a-key-0123456789' }],
          ['an unknown Bearer key', { authorization: 'Bearer not-a-key-0123456789' }],
          ['an empty Bearer', { authorization: 'Bearer ' }],
        ] as const) {
          const res = await app.inject({ ...request, headers: { ...request.headers, ...key } });
          expect(res.statusCode, `${label}, ${who}: ${res.body}`).toBe(401);
          expect(res.json(), `${label}, ${who}`).toEqual(unauthorized);
        }
      }
    }
    // Only /v1/quotas takes no parameter, query or body at all.
    expect(nothingToValidate).toEqual(['GET /v1/quotas']);
    expect(calls).toHaveLength(0);
  });
});

describe('a fixed-choice parameter: the 400 lists the allowed values', () => {
  it('every fixed-choice query parameter and body field of every route', async () => {
    const { app } = setup();
    const found: string[] = [];
    for (const [method, path, op] of await operations(app)) {
      const fields: Array<[string, string[], 'query' | 'body']> = [];
      for (const p of op.parameters ?? []) {
        const allowed = p.in === 'query' ? choices(p.schema) : undefined;
        if (allowed) fields.push([p.name, allowed, 'query']);
      }
      const body = op.requestBody?.content['application/json']?.schema.properties ?? {};
      for (const [name, schema] of Object.entries(body)) {
        const allowed = choices(schema);
        if (allowed) fields.push([name, allowed, 'body']);
      }
      for (const [name, allowed, where] of fields) {
        const res = await app.inject({
          method: method as 'GET',
          url: where === 'query' ? `${fill(path)}?${name}=zz-not-a-choice` : fill(path),
          headers: { 'x-api-key': ADMIN },
          ...(where === 'body' ? { payload: { tenant: 'tenant-a', [name]: 'zz-not-a-choice' } } : {}),
        });
        const label = `${method} ${path} ${where} ${name}`;
        expect(res.statusCode, label).toBe(400);
        const { code, message } = expectErrorShape(res, label);
        expect(code, label).toBe('bad_request');
        // Each validator's own form: fastify's `querystring/name reason`, api/strict-body.ts's `body.name: reason`.
        const field = where === 'query' ? `querystring/${name}` : `body.${name}:`;
        expect(message, label).toBe(`${field} must be one of ${allowed.join(', ')}, got "zz-not-a-choice"`);
        found.push(`${path} ${name}`);
      }
    }
    // The ones the new-user report named, at least.
    for (const f of ['/v1/usage window', '/v1/reports/{tenant}/weekly format', '/v1/contexts/{user} platform', '/v1/anomalies kind']) {
      expect(found).toContain(f);
    }
    expect(found.some((f) => f.startsWith('/v1/route task_class'))).toBe(true);
    expect(found.some((f) => f.startsWith('/v1/route priority'))).toBe(true);
  });

  it('a value sent that is very long is echoed cut short', async () => {
    const { app } = setup();
    const res = await app.inject({ method: 'GET', url: `/v1/usage?window=${'w'.repeat(5_000)}`, headers: { 'x-api-key': READ_A } });
    const { message } = expectErrorShape(res, 'long window');
    expect(message).toBe(`querystring/window must be one of minute, hour, day, got "${'w'.repeat(200)}… (5000 characters)"`);
  });
});

describe('time ranges', () => {
  it('from after to is 400 on every route that takes both, before any query', async () => {
    const { app, calls } = setup();
    const ranged = (await operations(app)).filter(([, , op]) =>
      ['from', 'to'].every((n) => op.parameters?.some((p) => p.in === 'query' && p.name === n)),
    );
    expect(ranged.map(([, path]) => path).sort()).toEqual(['/v1/anomalies', '/v1/usage']);
    for (const [method, path] of ranged) {
      const res = await app.inject({
        method: method as 'GET',
        url: `${fill(path)}?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z`,
        headers: { 'x-api-key': READ_A },
      });
      expect(res.statusCode, path).toBe(400);
      expect(expectErrorShape(res, path)).toEqual({ code: 'bad_request', message: 'from must not be after to' });
    }
    expect(calls).toHaveLength(0);
  });

  it('/v1/usage echoes the time zone as sent (an alias is not replaced by its link target)', async () => {
    const { app, calls } = setup();
    for (const zone of ['Asia/Kolkata', 'Europe/Kyiv', 'US/Eastern']) {
      const res = await app.inject({ method: 'GET', url: `/v1/usage?window=day&time_zone=${zone}`, headers: { 'x-api-key': READ_A } });
      expect(res.statusCode).toBe(200);
      expect(res.json<{ time_zone: string }>().time_zone).toBe(zone);
      // ClickHouse gets a name of the same zone that it knows (the canonical one).
      const sameZone = (z: unknown) => new Intl.DateTimeFormat('en-US', { timeZone: z as string }).resolvedOptions().timeZone;
      expect(sameZone(calls.at(-1)?.query_params.time_zone)).toBe(sameZone(zone));
    }
  });
});
