/**
 * The error handler of the read routes: every error reply is `{ error: { code, message } }`, the
 * shape of ingest/http/schemas.ts `ErrorResponse` that the routes declare (a reply that did not
 * fit the declared schema would fail to serialise).
 *
 * - a schema validation error (query, params, body): 400 `bad_request`, the message naming the field;
 * - another fastify client error (4xx, e.g. a body too large): its status, code `bad_request`
 *   (413 `payload_too_large`);
 * - anything else: 500 `internal` (logged; the message does not leak the cause).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Install the handler on a route plugin's (encapsulated) instance. */
export function useReadErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (err.validation) {
      return reply.code(400).send({ error: { code: 'bad_request', message: err.message } });
    }
    const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
    if (status >= 400 && status < 500) {
      return reply.code(status).send({ error: { code: status === 413 ? 'payload_too_large' : 'bad_request', message: err.message } });
    }
    request.log.error({ err }, 'read_api_failed');
    return reply.code(500).send({ error: { code: 'internal', message: 'internal error; see the server log' } });
  });
}
