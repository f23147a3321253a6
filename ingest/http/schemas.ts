/**
 * Response shapes of the HTTP ingest endpoint as TypeBox schemas: fastify serialises the
 * replies with them (fast-json-stringify) and `docs/http-ingest.md` documents them.
 */
import { type Static, Type } from '@sinclair/typebox';

export const FieldErrorSchema = Type.Object(
  {
    field: Type.String({ description: 'Dotted field path (`tags.team`), a CloudEvents attribute, `(event)` or `(payload)`.' }),
    reason: Type.String(),
  },
  { additionalProperties: false },
);

export const AcceptedResult = Type.Object(
  {
    index: Type.Integer({ minimum: 0, description: '0-based position of the event in the request.' }),
    status: Type.Literal('accepted'),
    event_id: Type.String({ description: 'The event id, NFC-normalised.' }),
  },
  { additionalProperties: false },
);

export const RejectedResult = Type.Object(
  {
    index: Type.Integer({ minimum: 0, description: '0-based position of the event in the request.' }),
    status: Type.Literal('rejected'),
    event_id: Type.Optional(Type.String({ description: 'The event id as sent, when it was a string.' })),
    errors: Type.Array(FieldErrorSchema, { minItems: 1 }),
  },
  { additionalProperties: false },
);

/** 202 body: one result per event, in request order. */
export const IngestResponse = Type.Object(
  {
    accepted: Type.Integer({ minimum: 0 }),
    rejected: Type.Integer({ minimum: 0 }),
    results: Type.Array(Type.Union([AcceptedResult, RejectedResult])),
  },
  { additionalProperties: false },
);
export type IngestResponse = Static<typeof IngestResponse>;
export type EventResult = IngestResponse['results'][number];

/** Every 4xx/5xx body. */
export const ErrorResponse = Type.Object(
  {
    error: Type.Object({ code: Type.String(), message: Type.String() }, { additionalProperties: false }),
  },
  { additionalProperties: false },
);

export const HealthResponse = Type.Object({ status: Type.Literal('ok') }, { additionalProperties: false });
