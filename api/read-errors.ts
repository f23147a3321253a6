/**
 * The error replies of the read routes and of the app itself: every error reply is
 * `{ error: { code, message } }`, the shape of ingest/http/schemas.ts `ErrorResponse` that the
 * routes declare (a reply that did not fit the declared schema would fail to serialise).
 *
 * - a schema validation error (query, params, body): 400 `bad_request`, the message naming the
 *   field; a fixed choice (a union of literals) lists the allowed values and the value sent;
 * - a body that is not JSON (another Content-Type, or none): 415 `unsupported_media_type`;
 * - another fastify client error: its status, code by status (`payload_too_large`, `not_found`,
 *   `uri_too_long`, else `bad_request`);
 * - fastify's own errors met before routing (`frameworkErrorReply`, the app's `frameworkErrors`
 *   option): a path whose %-escapes are not UTF-8 is 400, a path parameter longer than
 *   MAX_PATH_PARAM_CHARS 414;
 * - anything else: 500 `internal` (logged; the message does not leak the cause).
 * What the client sent is repeated at most MAX_ECHO_CHARS long (domain/echo.ts).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { echoJson } from '../domain/echo.ts';

/**
 * The longest path parameter the router takes, in characters as sent (%-escaped): the longest a
 * route schema allows (256, a context user id) x 9, the length of one UTF-16 unit written as three
 * %-escaped UTF-8 bytes. Below it the route schema names the parameter that is too long; above it
 * the reply is 414 (fastify's `maxParamLength`, default 100, would refuse valid ids).
 */
export const MAX_PATH_PARAM_CHARS = 256 * 9;

const CODE_BY_STATUS: Record<number, string> = {
  404: 'not_found',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
};

const reply4xx = (reply: FastifyReply, status: number, message: string) =>
  reply.code(status).send({ error: { code: CODE_BY_STATUS[status] ?? 'bad_request', message } });

/** One Ajv error as fastify hands it over (`err.validation`). */
interface AjvError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

const isAjvError = (e: unknown): e is AjvError =>
  typeof e === 'object' && e !== null && typeof (e as AjvError).instancePath === 'string' && typeof (e as AjvError).keyword === 'string';

/** The value at a JSON pointer (`/window`) in `data`, or undefined. */
function valueAt(data: unknown, pointer: string): unknown {
  let v = data;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[key] : undefined;
  }
  return v;
}

/**
 * The message of a validation error, `<context><path> <reason>` per problem as fastify writes it,
 * except that a fixed choice (Ajv reports each `const` branch, then `anyOf`) becomes one
 * `<context><path> must be one of a, b, got "x"`. Errors of another validator (api/strict-body.ts
 * hands over its own messages) keep their message.
 */
function validationMessage(err: FastifyError, request: FastifyRequest): string {
  const errors: unknown[] = Array.isArray(err.validation) ? err.validation : [];
  if (errors.length === 0 || !errors.every(isAjvError)) return err.message;
  const context = err.validationContext ?? 'body';
  const data = { body: request.body, querystring: request.query, params: request.params, headers: request.headers }[context];
  const byPath = new Map<string, AjvError[]>();
  for (const e of errors) byPath.set(e.instancePath, [...(byPath.get(e.instancePath) ?? []), e]);
  const parts: string[] = [];
  for (const [path, list] of byPath) {
    const allowed = list.filter((e) => e.keyword === 'const').map((e) => e.params.allowedValue);
    if (list.some((e) => e.keyword === 'anyOf') && allowed.length > 0 && allowed.every((a) => typeof a === 'string')) {
      parts.push(`${context}${path} must be one of ${allowed.join(', ')}, got ${echoJson(valueAt(data, path))}`);
    } else for (const e of list) parts.push(`${context}${path} ${e.message ?? e.keyword}`);
  }
  return parts.join(', ');
}

/** The media type of a Content-Type header (lower case, no parameters), or undefined. */
function mediaType(request: FastifyRequest): string | undefined {
  const header = request.headers['content-type'];
  return typeof header === 'string' ? (header.split(';')[0] ?? '').trim().toLowerCase() || undefined : undefined;
}

const notJson = (request: FastifyRequest) =>
  `the body must be JSON (Content-Type: application/json), got ${mediaType(request) ?? 'no Content-Type'}`;

/** The error handler of the read routes and of the app (api/app.ts): see the module comment. */
export function readErrorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return reply4xx(reply, 415, notJson(request));
  if (err.validation) {
    // A body fastify parsed as text (text/plain) fails the body schema: the media type is the problem.
    if (err.validationContext === 'body' && mediaType(request) !== 'application/json') return reply4xx(reply, 415, notJson(request));
    return reply4xx(reply, 400, validationMessage(err, request));
  }
  const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
  if (status >= 400 && status < 500) return reply4xx(reply, status, err.message);
  request.log.error({ event: 'api.read_failed', err }, 'read_api_failed');
  return reply.code(500).send({ error: { code: 'internal', message: 'internal error; see the server log' } });
}

/** Install the handler on a route plugin's (encapsulated) instance. */
export function useReadErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler(readErrorHandler);
}

/**
 * fastify's `frameworkErrors` option: the errors the router meets before any route or hook runs,
 * in the same shape. The path is not repeated (it may be long, and it is not text).
 */
export function frameworkErrorReply(err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err.code === 'FST_ERR_BAD_URL') return reply4xx(reply, 400, 'the URL path is not valid: a %-escape does not decode to UTF-8 text');
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return reply4xx(reply, 414, `a path parameter is longer than ${MAX_PATH_PARAM_CHARS} characters (as sent, %-escapes included)`);
  }
  request.log.error({ event: 'api.router_failed', err }, 'router_failed');
  return reply.code(500).send({ error: { code: 'internal', message: 'internal error; see the server log' } });
}
