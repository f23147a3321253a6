/**
 * The read side of the context sync (docs/contexts.md): a user's merged, de-duplicated history.
 * Authenticated by an API key (ingest/http/api-keys.ts): a read or ingest key reads its own
 * tenant only (`?tenant=` may name it; another tenant is 403 `forbidden`), an admin key must name
 * the tenant with `?tenant=`. User ids with `/` travel URL-encoded (`%2F`).
 *
 * `GET /v1/contexts/:user?since=CURSOR&limit=N&platform=FORMAT`: the changes of the user's
 * history after the cursor (none = from the start): the current winner of every message whose
 * winning version was stored after the cursor, tombstones included (`deleted: true`), each once.
 * At most `limit` (default 1,000, at most 10,000) per page; `has_more` says another page follows;
 * `next_cursor` continues after this page (the same cursor when the page is empty: poll with it).
 * Pages follow the change sequence (domain/context-cursor.ts: stable under ties and late writes);
 * within a page records are in (updated_at, conversation_id, message_id) order, each with its
 * change number `seq`.
 * What a late write does: one with an older updated_at than the stored version of its message
 * loses and is never returned; one that wins (its message had only older versions) gets the next
 * change number, so every reader sees it on its next page, wherever its cursor was.
 *
 * `GET /v1/contexts/:user/export?platform=FORMAT&conversation_id=ID`: the user's whole current
 * history (tombstones left out), in conversation order, with the cursor of the latest change so
 * a client can export once and then follow the changes.
 *
 * `platform=openai|openai-responses|anthropic` adds `conversations`: the live records of the
 * answer rendered per conversation in that format (in (created_at, message_id) order), and
 * `notes` for what could not be rendered (a text held only as a hash, a tool result without its call).
 *
 * 400 `bad_request` (a bad parameter or cursor, naming it) or `tenant_required`; 401; 403.
 */
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import { decodeCursor, encodeCursor } from '../../domain/context-cursor.ts';
import { toWireRecord } from '../../domain/context-validation.ts';
import { CONTEXT_FORMATS, type ContextFormat, renderConversations } from '../../ingest/context/index.ts';
import { type ReadApiKey, readAuth } from '../../ingest/http/api-keys.ts';
import { type ContextRecord, ContextRecordV1 } from '../../schemas/context-record.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import {
  type ContextReadRow,
  contextChangesQuery,
  contextExportQuery,
  contextLastSeqQuery,
  fromReadRow,
} from '../../storage/queries/contexts.ts';
import { useReadErrorHandler } from '../read-errors.ts';
import { READ_ERRORS, READ_SECURITY } from '../schemas.ts';

export interface ContextsReadRouteOptions {
  clickhouse: ClickHouseClient;
  /** Read-API keys (ingest keys read their own tenant). */
  keys: ReadonlyArray<ReadApiKey>;
}

export const DEFAULT_CONTEXT_PAGE = 1_000;
export const MAX_CONTEXT_PAGE = 10_000;

const Platform = Type.Optional(
  Type.Union(
    CONTEXT_FORMATS.map((f) => Type.Literal(f)),
    { description: 'Also render the records in this platform format (`conversations`).' },
  ),
);
const Tenant = Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Required with an admin key.' }));
const UserParams = Type.Object({ user: Type.String({ minLength: 1, maxLength: 256 }) }, { additionalProperties: false });

export const ContextChangesQuery = Type.Object(
  {
    since: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'A next_cursor from an earlier answer.' })),
    limit: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_CONTEXT_PAGE, description: `Most records per page. Default ${DEFAULT_CONTEXT_PAGE}.` }),
    ),
    platform: Platform,
    tenant: Tenant,
  },
  { additionalProperties: false },
);
export const ContextExportQuery = Type.Object(
  {
    conversation_id: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'Only this conversation.' })),
    platform: Platform,
    tenant: Tenant,
  },
  { additionalProperties: false },
);

const RecordOut = Type.Object(
  { ...ContextRecordV1.properties, seq: Type.Integer({ minimum: 1, description: 'Change number of this version in the history.' }) },
  { additionalProperties: false },
);
const NoteOut = Type.Object(
  { conversation_id: Type.String(), message_id: Type.String(), reason: Type.String() },
  { additionalProperties: false },
);
const rendering = {
  conversations: Type.Optional(
    Type.Array(Type.Unknown(), { description: 'With platform=: { conversation_id, ...payload } per conversation.' }),
  ),
  notes: Type.Optional(Type.Array(NoteOut)),
};
export const ContextChangesResponse = Type.Object(
  {
    tenant: Type.String(),
    user_id: Type.String(),
    records: Type.Array(RecordOut),
    next_cursor: Type.String(),
    has_more: Type.Boolean(),
    ...rendering,
  },
  { additionalProperties: false },
);
export const ContextExportResponse = Type.Object(
  { tenant: Type.String(), user_id: Type.String(), records: Type.Array(RecordOut), next_cursor: Type.String(), ...rendering },
  { additionalProperties: false },
);

const badRequest = (message: string) => ({ error: { code: 'bad_request', message } });

/** `(updated_at, conversation_id, message_id)` order. */
function byUpdate(a: ContextRecord, b: ContextRecord): number {
  if (a.updated_at_ms !== b.updated_at_ms) return a.updated_at_ms - b.updated_at_ms;
  const ka = `${a.conversation_id}\u0000${a.message_id}`;
  const kb = `${b.conversation_id}\u0000${b.message_id}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function rendered(platform: ContextFormat | undefined, records: readonly ContextRecord[]) {
  if (platform === undefined) return {};
  const r = renderConversations(platform, records);
  return { conversations: r.conversations, notes: r.notes };
}

export const contextsReadRoute: FastifyPluginAsync<ContextsReadRouteOptions> = async (app, opts) => {
  useReadErrorHandler(app);
  const auth = readAuth(opts.keys);
  // 401 for a missing or unknown key before the body is parsed or anything validated.
  app.addHook('onRequest', auth.onRequest);
  const common = { tags: ['contexts'], security: READ_SECURITY, params: UserParams };
  const read = async (built: { query: string; query_params: Record<string, unknown> }) => {
    const rs = await opts.clickhouse.query({ query: built.query, query_params: built.query_params, format: 'JSONEachRow' });
    return rs.json<ContextReadRow>();
  };

  app.get(
    '/v1/contexts/:user',
    {
      schema: {
        ...common,
        summary: "Changes of a user's conversation history since a cursor (incremental sync)",
        querystring: ContextChangesQuery,
        response: { 200: ContextChangesResponse, ...READ_ERRORS },
      },
    },
    async (req, reply) => {
      const q = req.query as Static<typeof ContextChangesQuery>;
      const access = auth.tenant(req, q.tenant, 'add ?tenant=<tenant>');
      if (!access.ok) return reply.code(access.statusCode).send(access.body);
      const userId = (req.params as Static<typeof UserParams>).user.normalize('NFC');
      let afterSeq = 0;
      if (q.since !== undefined) {
        const c = decodeCursor(q.since, access.tenant, userId);
        if (!c.ok) return reply.code(400).send(badRequest(`since: ${c.reason}`));
        afterSeq = c.seq;
      }
      const limit = q.limit ?? DEFAULT_CONTEXT_PAGE;
      const rows = await read(contextChangesQuery({ tenant: access.tenant, userId, afterSeq, limit: limit + 1 }));
      const page = rows.slice(0, limit).map((r) => fromReadRow(access.tenant, userId, r));
      const lastSeq = page.length === 0 ? afterSeq : (page[page.length - 1] as (typeof page)[number]).seq;
      const seqOf = new Map(page.map((p) => [p.record, p.seq]));
      const records = page.map((p) => p.record).sort(byUpdate);
      return {
        tenant: access.tenant,
        user_id: userId,
        records: records.map((r) => ({ ...toWireRecord(r), seq: seqOf.get(r) as number })),
        next_cursor: encodeCursor(lastSeq, access.tenant, userId),
        has_more: rows.length > limit,
        ...rendered(q.platform, records),
      };
    },
  );

  app.get(
    '/v1/contexts/:user/export',
    {
      schema: {
        ...common,
        summary: "A user's whole current conversation history",
        querystring: ContextExportQuery,
        response: { 200: ContextExportResponse, ...READ_ERRORS },
      },
    },
    async (req, reply) => {
      const q = req.query as Static<typeof ContextExportQuery>;
      const access = auth.tenant(req, q.tenant, 'add ?tenant=<tenant>');
      if (!access.ok) return reply.code(access.statusCode).send(access.body);
      const userId = (req.params as Static<typeof UserParams>).user.normalize('NFC');
      const conversationId = q.conversation_id?.normalize('NFC');
      // One conversation: the cursor is the user's latest change, read BEFORE the export, so a
      // change made meanwhile may come again on the next page but is never skipped.
      const before =
        conversationId === undefined
          ? undefined
          : Number(
              (
                await (
                  await opts.clickhouse.query({
                    ...contextLastSeqQuery([{ tenant: access.tenant, user_id: userId }]),
                    format: 'JSONEachRow',
                  })
                ).json<{ seq: number | string }>()
              )[0]?.seq ?? 0,
            );
      const rows = await read(
        contextExportQuery({ tenant: access.tenant, userId, ...(conversationId === undefined ? {} : { conversationId }) }),
      );
      const all = rows.map((r) => fromReadRow(access.tenant, userId, r));
      // The whole history: the latest change number among its winners, tombstones counted (a
      // reader following on from here must not be sent them again).
      const lastSeq = before ?? all.reduce((m, p) => Math.max(m, p.seq), 0);
      const live = all.filter((p) => !p.record.deleted);
      return {
        tenant: access.tenant,
        user_id: userId,
        records: live.map((p) => ({ ...toWireRecord(p.record), seq: p.seq })),
        next_cursor: encodeCursor(lastSeq, access.tenant, userId),
        ...rendered(
          q.platform,
          live.map((p) => p.record),
        ),
      };
    },
  );
};
