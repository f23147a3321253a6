import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import type { DeadLetterRow } from '../../domain/dead-letter.ts';
import { unwrapCloudEvent } from '../../ingest/http/cloudevents.ts';
import { decodeBody, insertTenant } from '../../ingest/http/decode-body.ts';
import { SOURCE_HEADER } from '../../ingest/replay.ts';
import type { OutgoingMessage, Producer } from '../../ingest/transport/transport.ts';

/** Injected "now": 2025-06-15T12:00:00.000Z. */
const NOW_MS = Date.UTC(2025, 5, 15, 12, 0, 0);
const ACME_KEY = 'acme-key-0123456789abcdef';
const GLOBEX_KEY = 'globex-key-0123456789abcdef';
const KEYS = [
  { key: ACME_KEY, tenant: 'acme' },
  { key: GLOBEX_KEY, tenant: 'globex' },
];
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

/** A valid event without a tenant (the key's tenant is filled in). */
const EVENT = Object.freeze({
  event_id: 'evt-1',
  timestamp: '2025-06-15T11:59:00Z',
  provider: 'openai',
  model: 'gpt-4o',
  input_tokens: 1_000,
  output_tokens: 200,
});
const ev = (patch: Record<string, unknown> = {}): Record<string, unknown> => ({ ...EVENT, ...patch });

/** A fake producer that records every send, as the transport would hold it. */
class RecordingProducer implements Producer {
  readonly sends: OutgoingMessage[][] = [];
  get messages(): OutgoingMessage[] {
    return this.sends.flat();
  }
  async send(messages: readonly OutgoingMessage[]): Promise<void> {
    this.sends.push(messages.map((m) => ({ ...m, headers: m.headers && { ...m.headers } })));
  }
  async close(): Promise<void> {}
}

const failingProducer = (): Producer => ({
  send: async () => {
    throw new Error('broker down');
  },
  close: async () => {},
});

/** Never acknowledges: the route must give up after produceTimeoutMs. */
const hangingProducer = (): Producer => ({ send: () => new Promise<void>(() => {}), close: async () => {} });

let apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.map((a) => a.close()));
  apps = [];
});

interface SetupPatch {
  http?: { bodyLimitBytes: number; maxEventsPerRequest: number };
  kafka?: { produceTimeoutMs: number };
  keys?: ReadonlyArray<{ key: string; tenant: string }>;
  usageProducer?: Producer;
  dlqProducer?: Producer;
  logger?: Parameters<typeof buildApp>[0]['logger'];
}

function setup(patch: SetupPatch = {}) {
  const usage = new RecordingProducer();
  const dlq = new RecordingProducer();
  const http = patch.http ?? { bodyLimitBytes: 64 * 1024, maxEventsPerRequest: 5 };
  const app = buildApp({
    logger: patch.logger ?? false,
    bodyLimitBytes: http.bodyLimitBytes,
    readiness: {},
    ingest: {
      usageProducer: patch.usageProducer ?? usage,
      dlqProducer: patch.dlqProducer ?? dlq,
      keys: patch.keys ?? KEYS,
      maxEventsPerRequest: http.maxEventsPerRequest,
      produceTimeoutMs: patch.kafka?.produceTimeoutMs ?? 1_000,
      now: () => NOW_MS,
    },
  });
  apps.push(app);
  const post = (
    payload: string,
    contentType = 'application/json',
    headers: Record<string, string> = { authorization: `Bearer ${ACME_KEY}` },
  ) => app.inject({ method: 'POST', url: '/v1/events', headers: { 'content-type': contentType, ...headers }, payload });
  return { app, usage, dlq, post };
}

const deadLetters = (p: RecordingProducer): DeadLetterRow[] => p.messages.map((m) => JSON.parse(m.value) as DeadLetterRow);

function expectError(res: LightMyRequestResponse, status: number, code: string): string {
  expect(res.statusCode).toBe(status);
  const body = res.json() as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  return body.error.message;
}

describe('POST /v1/events: application/json', () => {
  it('accepts one event: key = tenant, value = the text as sent with the tenant filled in, qf-source header', async () => {
    const { usage, dlq, post } = setup();
    // Unusual spacing on purpose: every byte after the inserted tenant is kept.
    const body =
      '{ "event_id": "evt-1",  "timestamp": "2025-06-15T11:59:00Z", "provider": "openai", "model": "gpt-4o", "input_tokens": 1000, "output_tokens": 200 }';
    const res = await post(body);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ accepted: 1, rejected: 0, results: [{ index: 0, status: 'accepted', event_id: 'evt-1' }] });
    expect(usage.sends).toHaveLength(1);
    const [m] = usage.messages;
    const requestId = res.headers['x-request-id'];
    expect(requestId).toMatch(new RegExp(`^${UUID}$`));
    expect(m).toEqual({ key: 'acme', value: `{"tenant":"acme",${body.slice(1)}`, headers: { [SOURCE_HEADER]: `http:${requestId}:0` } });
    expect(JSON.parse(m!.value)).toEqual({ ...EVENT, tenant: 'acme' });
    expect(dlq.sends).toHaveLength(0);
  });

  it('keeps an event that names its own tenant byte for byte', async () => {
    const { usage, post } = setup();
    const body = JSON.stringify(ev({ tenant: 'acme', tags: { team: 'search' } }));
    expect((await post(`${body}\n`)).statusCode).toBe(202);
    expect(usage.messages.map((m) => [m.key, m.value])).toEqual([['acme', body]]);
  });

  it('accepts an array: one result per event, in order, with indices; invalid ones go to the DLQ', async () => {
    const { usage, dlq, post } = setup();
    const events = [
      ev({ event_id: 'a' }),
      ev({ event_id: 'b', input_tokens: -1, cached_input_tokens: 5 }),
      ev({ event_id: 'c', tenant: 'acme' }),
      'not an event',
      ev({ event_id: 'e', timestamp: '2025-06-15T13:00:00Z' }), // 1 h after the injected now
    ];
    const res = await post(JSON.stringify(events), 'application/json; charset=utf-8');
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body.accepted).toBe(2);
    expect(body.rejected).toBe(3);
    expect(body.results.map((r: { index: number; status: string; event_id?: string }) => [r.index, r.status, r.event_id])).toEqual([
      [0, 'accepted', 'a'],
      [1, 'rejected', 'b'],
      [2, 'accepted', 'c'],
      [3, 'rejected', undefined],
      [4, 'rejected', 'e'],
    ]);
    expect(body.results[1].errors).toContainEqual({ field: 'input_tokens', reason: expect.any(String) });
    expect(body.results[3].errors).toEqual([{ field: '(event)', reason: 'must be a JSON object' }]);
    expect(body.results[4].errors).toEqual([{ field: 'timestamp', reason: expect.stringContaining('in the future') }]);

    const requestId = res.headers['x-request-id'];
    expect(usage.messages.map((m) => [m.key, JSON.parse(m.value).event_id, m.headers?.[SOURCE_HEADER]])).toEqual([
      ['acme', 'a', `http:${requestId}:0`],
      ['acme', 'c', `http:${requestId}:2`],
    ]);
    // Array elements are kept as JSON.stringify(element); a missing tenant is inserted first.
    expect(usage.messages[0]!.value).toBe(`{"tenant":"acme",${JSON.stringify(events[0]).slice(1)}`);
    expect(usage.messages[1]!.value).toBe(JSON.stringify(events[2]));

    const rows = deadLetters(dlq);
    expect(dlq.messages.every((m) => m.key === 'acme')).toBe(true);
    expect(rows.map((r) => [r.reason, r.event_id, r.source, r.raw, r.tenant, r.received_at])).toEqual([
      ['invalid_event', 'b', `http:${requestId}:1`, JSON.stringify(events[1]), 'acme', NOW_MS],
      ['invalid_event', '', `http:${requestId}:3`, '"not an event"', 'acme', NOW_MS],
      ['invalid_event', 'e', `http:${requestId}:4`, JSON.stringify(events[4]), 'acme', NOW_MS],
    ]);
    expect(JSON.parse(rows[0]!.errors)).toEqual(body.results[1].errors);
  });

  it('answers 202 with an empty result for an empty array, producing nothing', async () => {
    const { usage, dlq, post } = setup();
    const res = await post('[]');
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ accepted: 0, rejected: 0, results: [] });
    expect(usage.sends.length + dlq.sends.length).toBe(0);
  });
});

describe('POST /v1/events: application/x-ndjson', () => {
  it('reads one event per line, skips blank lines, rejects a broken line alone', async () => {
    const { usage, dlq, post } = setup();
    const lines = [JSON.stringify(ev({ event_id: 'n1' })), '{"event_id": "n2", broken', JSON.stringify(ev({ event_id: 'n3' }))];
    const res = await post(`${lines[0]}\r\n\n   \n${lines[1]}\n${lines[2]}\n`, 'application/x-ndjson');
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body).toMatchObject({ accepted: 2, rejected: 1 });
    expect(body.results).toEqual([
      { index: 0, status: 'accepted', event_id: 'n1' },
      { index: 1, status: 'rejected', errors: [{ field: '(payload)', reason: expect.stringMatching(/^not valid JSON: /) }] },
      { index: 2, status: 'accepted', event_id: 'n3' },
    ]);
    expect(usage.messages.map((m) => m.value)).toEqual([
      `{"tenant":"acme",${lines[0]!.slice(1)}`,
      `{"tenant":"acme",${lines[2]!.slice(1)}`,
    ]);
    const [row] = deadLetters(dlq);
    expect(row).toMatchObject({ reason: 'invalid_json', raw: lines[1], tenant: 'acme', source: `http:${res.headers['x-request-id']}:1` });
  });
});

describe('POST /v1/events: CloudEvents', () => {
  const ce = (patch: Record<string, unknown> = {}, data: Record<string, unknown> = {}) => ({
    specversion: '1.0',
    type: 'quotaflow.usage.v1',
    source: 'https://app.example/checkout',
    id: 'ce-1',
    time: '2025-06-15T11:58:00Z',
    datacontenttype: 'application/json',
    data: { provider: 'anthropic', model: 'claude-sonnet-4', input_tokens: 10, output_tokens: 5, ...data },
    ...patch,
  });

  it('structured: event_id defaults to the CE id and timestamp to the CE time', async () => {
    const { usage, post } = setup();
    const res = await post(JSON.stringify(ce()), 'application/cloudevents+json');
    expect(res.statusCode).toBe(202);
    expect(res.json().results).toEqual([{ index: 0, status: 'accepted', event_id: 'ce-1' }]);
    const [m] = usage.messages;
    expect(m!.key).toBe('acme');
    expect(JSON.parse(m!.value)).toEqual({
      tenant: 'acme',
      provider: 'anthropic',
      model: 'claude-sonnet-4',
      input_tokens: 10,
      output_tokens: 5,
      event_id: 'ce-1',
      timestamp: '2025-06-15T11:58:00Z',
    });
  });

  it('batch: per-event envelope errors (specversion, type), data fields win over the envelope', async () => {
    const { usage, dlq, post } = setup();
    const batch = [
      ce({ id: 'ce-a' }, { event_id: 'own-id', timestamp: '2025-06-15T11:00:00Z' }),
      ce({ id: 'ce-b', specversion: '0.3' }),
      ce({ id: 'ce-c', type: 'com.example.other' }),
      ce({ id: 'ce-d', data: undefined, data_base64: 'e30=' }),
    ];
    const res = await post(JSON.stringify(batch), 'application/cloudevents-batch+json');
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body).toMatchObject({ accepted: 1, rejected: 3 });
    expect(body.results[0]).toEqual({ index: 0, status: 'accepted', event_id: 'own-id' });
    expect(body.results[1]).toMatchObject({ index: 1, status: 'rejected', event_id: 'ce-b', errors: [{ field: 'specversion' }] });
    expect(body.results[2]).toMatchObject({ index: 2, status: 'rejected', event_id: 'ce-c', errors: [{ field: 'type' }] });
    expect(body.results[3]).toMatchObject({ index: 3, status: 'rejected', event_id: 'ce-d', errors: [{ field: 'data' }] });
    expect(JSON.parse(usage.messages[0]!.value)).toMatchObject({ event_id: 'own-id', timestamp: '2025-06-15T11:00:00Z', tenant: 'acme' });
    // The dead letter keeps the whole CloudEvent, not just its data.
    const rows = deadLetters(dlq);
    expect(rows.map((r) => [r.reason, r.event_id, JSON.parse(r.raw).id])).toEqual([
      ['invalid_event', 'ce-b', 'ce-b'],
      ['invalid_event', 'ce-c', 'ce-c'],
      ['invalid_event', 'ce-d', 'ce-d'],
    ]);
  });

  it.each<[string, unknown, string]>([
    ['a number', 12, 'must be an RFC 3339 date-time string with a zone'],
    ['null', null, 'must be an RFC 3339 date-time string with a zone'],
    ['prose', 'yesterday', 'must be an RFC 3339 date-time string with a zone'],
    ['an impossible date', '2025-02-30T00:00:00Z', 'must be an RFC 3339 date-time string with a zone'],
  ])('a bad time (%s) is reported once, on time: not again as the timestamp it would have filled', async (_label, time, reason) => {
    const { post } = setup();
    const res = await post(JSON.stringify(ce({ time })), 'application/cloudevents+json');
    expect(res.statusCode).toBe(202);
    expect(res.json().results).toEqual([{ index: 0, status: 'rejected', event_id: 'ce-1', errors: [{ field: 'time', reason }] }]);
  });

  it('batch: a body that is not an array is a 400, kept in the DLQ', async () => {
    const { dlq, post } = setup();
    const text = JSON.stringify(ce());
    const msg = expectError(await post(text, 'application/cloudevents-batch+json'), 400, 'invalid_body');
    expect(msg).toMatch(/JSON array of CloudEvents/);
    expect(deadLetters(dlq).map((r) => r.raw)).toEqual([text]);
  });
});

describe('POST /v1/events: authentication and tenants', () => {
  it('401 without a key and with an unknown key; nothing produced', async () => {
    const { usage, dlq, post } = setup();
    const body = JSON.stringify(ev());
    expectError(await post(body, 'application/json', {}), 401, 'unauthorized');
    expectError(await post(body, 'application/json', { authorization: 'Bearer wrong-key-0123456789abcdef' }), 401, 'unauthorized');
    expectError(await post(body, 'application/json', { authorization: `Basic ${ACME_KEY}` }), 401, 'unauthorized');
    expectError(await post(body, 'application/json', { 'x-api-key': `${ACME_KEY}x` }), 401, 'unauthorized');
    expectError(await post(body, 'application/json', { 'x-api-key': ACME_KEY.slice(0, -1) }), 401, 'unauthorized');
    expect(usage.sends.length + dlq.sends.length).toBe(0);
  });

  it('401 comes before the body is read (no 413/415 for anonymous callers)', async () => {
    const { post } = setup({ http: { bodyLimitBytes: 1_024, maxEventsPerRequest: 5 } });
    expectError(await post('x'.repeat(4_096), 'application/json', {}), 401, 'unauthorized');
    expectError(await post('x', 'text/plain', {}), 401, 'unauthorized');
  });

  it('accepts X-API-Key and a lower-case bearer scheme; each key writes its own tenant', async () => {
    const { usage, post } = setup();
    expect((await post(JSON.stringify(ev({ event_id: 'x1' })), 'application/json', { 'x-api-key': GLOBEX_KEY })).statusCode).toBe(202);
    expect(
      (await post(JSON.stringify(ev({ event_id: 'x2' })), 'application/json', { authorization: `bearer ${ACME_KEY}` })).statusCode,
    ).toBe(202);
    expect(usage.messages.map((m) => [m.key, JSON.parse(m.value).tenant, JSON.parse(m.value).event_id])).toEqual([
      ['globex', 'globex', 'x1'],
      ['acme', 'acme', 'x2'],
    ]);
  });

  it("rejects another tenant's event and keeps it in the DLQ under the key's tenant", async () => {
    const { usage, dlq, post } = setup();
    const other = JSON.stringify(ev({ event_id: 'spoof', tenant: 'globex' }));
    const res = await post(`[${other},${JSON.stringify(ev({ event_id: 'mine' }))}]`);
    expect(res.statusCode).toBe(202);
    expect(res.json().results).toEqual([
      {
        index: 0,
        status: 'rejected',
        event_id: 'spoof',
        errors: [{ field: 'tenant', reason: 'this API key may only write events of tenant "acme"' }],
      },
      { index: 1, status: 'accepted', event_id: 'mine' },
    ]);
    expect(usage.messages.map((m) => m.key)).toEqual(['acme']);
    expect(dlq.messages).toHaveLength(1);
    expect(dlq.messages[0]!.key).toBe('acme');
    expect(deadLetters(dlq)[0]).toMatchObject({ reason: 'invalid_event', tenant: 'acme', event_id: 'spoof', raw: other });
  });

  it('treats an NFD spelling of its own tenant as its own', async () => {
    const { usage, post } = setup({ keys: [{ key: ACME_KEY, tenant: 'caf\u00e9' }] });
    const res = await post(JSON.stringify(ev({ tenant: 'cafe\u0301' })));
    expect(res.json().accepted).toBe(1);
    expect(usage.messages[0]!.key).toBe('caf\u00e9');
  });

  it('no API key appears in any produced message, header or response body', async () => {
    const { usage, dlq, post } = setup();
    const responses = [
      await post(JSON.stringify([ev(), ev({ tenant: 'globex' }), ev({ input_tokens: -1 })])),
      await post('{broken'),
      await post(JSON.stringify(ev()), 'application/json', { 'x-api-key': GLOBEX_KEY }),
      await post(JSON.stringify(ev()), 'application/json', { authorization: 'Bearer nope-nope-nope-nope' }),
      await post('x', 'text/plain'),
    ];
    const everything = JSON.stringify([usage.sends, dlq.sends, responses.map((r) => [r.headers, r.body])]);
    expect(usage.messages.length).toBeGreaterThan(0);
    expect(dlq.messages.length).toBeGreaterThan(0);
    for (const secret of [ACME_KEY, GLOBEX_KEY, 'nope-nope-nope-nope']) expect(everything).not.toContain(secret);
  });
});

describe('POST /v1/events: limits and bad bodies', () => {
  it('413 with more events than maxEventsPerRequest, naming the limit; nothing produced', async () => {
    const { usage, dlq, post } = setup();
    const six = Array.from({ length: 6 }, (_, i) => ev({ event_id: `e${i}` }));
    expect(expectError(await post(JSON.stringify(six)), 413, 'too_many_events')).toMatch(/at most 5/);
    const ndjson = six.map((e) => JSON.stringify(e)).join('\n');
    expect(expectError(await post(ndjson, 'application/x-ndjson'), 413, 'too_many_events')).toMatch(/6 events.*at most 5/);
    expect(usage.sends.length + dlq.sends.length).toBe(0);
    // Exactly at the limit is fine.
    expect((await post(JSON.stringify(six.slice(0, 5)))).json().accepted).toBe(5);
  });

  it('413 when the body exceeds the body limit', async () => {
    const { usage, dlq, post } = setup({ http: { bodyLimitBytes: 1_024, maxEventsPerRequest: 100 } });
    const big = JSON.stringify(Array.from({ length: 20 }, (_, i) => ev({ event_id: `big-${i}` })));
    expect(big.length).toBeGreaterThan(1_024);
    expect(expectError(await post(big), 413, 'payload_too_large')).toMatch(/1024 bytes/);
    expect(usage.sends.length + dlq.sends.length).toBe(0);
  });

  it('415 for an unsupported or missing content type', async () => {
    const { app, usage, dlq, post } = setup();
    expect(expectError(await post(JSON.stringify(ev()), 'text/plain'), 415, 'unsupported_media_type')).toMatch(/application\/x-ndjson/);
    expectError(await post(JSON.stringify(ev()), 'application/xml'), 415, 'unsupported_media_type');
    const noBody = await app.inject({ method: 'POST', url: '/v1/events', headers: { authorization: `Bearer ${ACME_KEY}` } });
    expectError(noBody, 415, 'unsupported_media_type');
    expectError(
      await post(JSON.stringify(ev()), 'application/json', { authorization: `Bearer ${ACME_KEY}`, 'content-encoding': 'gzip' }),
      415,
      'unsupported_media_type',
    );
    expect(usage.sends.length + dlq.sends.length).toBe(0);
  });

  it('400 for a body that is not JSON at all; the raw body still goes to the DLQ', async () => {
    const { usage, dlq, post } = setup();
    const text = '[{"event_id": "x", ';
    const res = await post(text);
    expect(expectError(res, 400, 'invalid_body')).toMatch(/not valid JSON/);
    expect(usage.sends).toHaveLength(0);
    expect(dlq.messages).toHaveLength(1);
    expect(dlq.messages[0]!.key).toBe('acme');
    expect(deadLetters(dlq)[0]).toMatchObject({
      reason: 'invalid_json',
      raw: text,
      tenant: 'acme',
      event_id: '',
      source: `http:${res.headers['x-request-id']}:body`,
    });
    expectError(await post('{"specversion": ', 'application/cloudevents+json'), 400, 'invalid_body');
    expect(dlq.messages).toHaveLength(2);
  });

  it('400 (not 500) for an array nested too deeply to re-serialise; the body goes to the DLQ', async () => {
    const { usage, dlq, post } = setup({ http: { bodyLimitBytes: 1_000_000, maxEventsPerRequest: 5 } });
    const text = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    const res = await post(text);
    expect(expectError(res, 400, 'invalid_body')).toMatch(/nested too deeply/);
    expect(usage.sends).toHaveLength(0);
    expect(deadLetters(dlq)).toEqual([expect.objectContaining({ reason: 'invalid_json', raw: text })]);
  });

  it('400 for an empty JSON body, with nothing to keep', async () => {
    const { dlq, post } = setup();
    expect(expectError(await post(''), 400, 'invalid_body')).toMatch(/empty/);
    expect(dlq.sends).toHaveLength(0);
  });
});

describe('POST /v1/events: what a rejection repeats of the input is bounded', () => {
  /** Every string in a JSON value. */
  const strings = (v: unknown): string[] =>
    typeof v === 'string' ? [v] : typeof v === 'object' && v !== null ? Object.values(v).flatMap(strings) : [];

  it('a 100,000-character event_id and 1,005-character field names come back cut to 200 characters; the DLQ keeps all', async () => {
    const { dlq, post } = setup({ http: { bodyLimitBytes: 1_048_576, maxEventsPerRequest: 5 } });
    const longKey = 'k'.repeat(1_005);
    const event = ev({ event_id: 'e'.repeat(100_000), tags: { [longKey]: 'v'.repeat(300) }, [longKey]: 1 });
    const res = await post(JSON.stringify(event));
    expect(res.statusCode).toBe(202);
    const body = res.json();
    const cut = (c: string, n: number) => `${c.repeat(200)}… (${n} characters)`;
    expect(body.results[0].event_id).toBe(cut('e', 100_000));
    const fields = (body.results[0].errors as Array<{ field: string }>).map((e) => e.field);
    expect(fields).toContain(`tags.${cut('k', 1_005)}`);
    expect(fields).toContain(cut('k', 1_005));
    // Nothing in the reply is longer than a cut echo plus its reason.
    for (const text of strings(body)) expect(text.length, text.slice(0, 80)).toBeLessThanOrEqual(300);
    expect(res.body.length).toBeLessThan(3_000);
    expect(deadLetters(dlq)[0]!.raw).toBe(JSON.stringify(event));
  });
});

describe('POST /v1/events: transport failures', () => {
  it('503 + Retry-After when the usage producer fails', async () => {
    const { post } = setup({ usageProducer: failingProducer() });
    const res = await post(JSON.stringify(ev()));
    expectError(res, 503, 'unavailable');
    expect(res.headers['retry-after']).toBe('5');
  });

  it('503 + Retry-After when the DLQ producer fails, also for an unreadable body (never a 400 that lost it)', async () => {
    const { usage, post } = setup({ dlqProducer: failingProducer() });
    const mixed = await post(JSON.stringify([ev(), ev({ input_tokens: -1 })]));
    expectError(mixed, 503, 'unavailable');
    expect(mixed.headers['retry-after']).toBe('5');
    expect(usage.messages).toHaveLength(1); // sent, but not answered 202: a retry duplicates it, harmlessly
    const broken = await post('{nope');
    expectError(broken, 503, 'unavailable');
  });

  it('503 + Retry-After when a produce does not settle within produceTimeoutMs', async () => {
    const { post } = setup({ usageProducer: hangingProducer(), kafka: { produceTimeoutMs: 50 } });
    const started = Date.now();
    const res = await post(JSON.stringify(ev()));
    expect(expectError(res, 503, 'unavailable')).toMatch(/within 50 ms/);
    expect(res.headers['retry-after']).toBe('5');
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  });

  it('only valid events wait on the usage producer: an all-rejected request needs only the DLQ', async () => {
    const { dlq, post } = setup({ usageProducer: failingProducer() });
    const res = await post(JSON.stringify(ev({ input_tokens: -1 })));
    expect(res.statusCode).toBe(202);
    expect(dlq.messages).toHaveLength(1);
  });
});

describe('ingest app', () => {
  it('GET /healthz answers 200 {status: ok}; unknown routes a coded 404', async () => {
    const { app } = setup();
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
    const missing = await app.inject({ method: 'GET', url: '/v2/events?x=1' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ error: { code: 'not_found', message: 'no route GET /v2/events' } });
  });

  it('never logs API keys, even with a serializer that would log headers', async () => {
    const lines: string[] = [];
    const logger = {
      level: 'trace',
      stream: { write: (line: string) => void lines.push(line) },
      serializers: { req: (req: { method: string; headers: unknown }) => ({ method: req.method, headers: req.headers }) },
    };
    const { post } = setup({ logger, dlqProducer: failingProducer() });
    await post('{broken', 'application/json', { authorization: `Bearer ${ACME_KEY}`, 'x-api-key': GLOBEX_KEY });
    await post('{}', 'application/json', { 'x-api-key': 'nope-nope-nope-nope' });
    expect(lines.join('')).toContain('ingest_http_failed'); // the failed request was logged...
    for (const secret of [ACME_KEY, GLOBEX_KEY, 'nope-nope-nope-nope']) expect(lines.join('')).not.toContain(secret);
  });

  it('logs each answer with a stable event key: batch, refused, failed', async () => {
    const lines: string[] = [];
    const logger = { level: 'info', stream: { write: (line: string) => void lines.push(line) } };
    const { post } = setup({ logger, usageProducer: failingProducer() });
    const ok = setup({ logger });
    expect((await ok.post(JSON.stringify(EVENT))).statusCode).toBe(202);
    expect((await post(JSON.stringify(EVENT), 'application/json', { 'x-api-key': 'nope-nope-nope-nope' })).statusCode).toBe(401);
    expect((await post(JSON.stringify(EVENT))).statusCode).toBe(503);
    const events = lines.map((l) => JSON.parse(l) as { event?: string; msg: string; level: number });
    expect(events.map((e) => [e.event, e.msg])).toEqual([
      ['ingest.http_batch', 'ingest_http_batch'],
      ['ingest.http_refused', 'ingest_http_refused'],
      ['ingest.http_failed', 'ingest_http_failed'],
    ]);
  });

  it('does not listen', async () => {
    const { app } = setup();
    await app.ready();
    expect(app.server.listening).toBe(false);
  });
});

describe('body decoding helpers', () => {
  it('insertTenant adds the tenant as the first member and leaves the rest as is', () => {
    expect(insertTenant(' {"a":1}', { a: 1 }, 'acme')).toBe(' {"tenant":"acme","a":1}');
    expect(insertTenant('{ }', {}, 't"x')).toBe('{"tenant":"t\\"x" }');
    expect(JSON.parse(insertTenant('{\n  "a": [1, {"b": 2}]\n}', { a: [1, { b: 2 }] }, 'é'))).toEqual({ tenant: 'é', a: [1, { b: 2 }] });
  });

  it('decodeBody counts NDJSON events without blank lines and checks the limit first', () => {
    expect(decodeBody('ndjson', '\n{}\n\n{}\n', 2)).toMatchObject({ kind: 'items', items: [{ kind: 'event' }, { kind: 'event' }] });
    expect(decodeBody('ndjson', '{}\n{}\n{}', 2)).toEqual({ kind: 'too_many', count: 3 });
    expect(decodeBody('json', '[1,2,3]', 2)).toEqual({ kind: 'too_many', count: 3 });
    expect(decodeBody('json', 'nope', 2)).toMatchObject({ kind: 'invalid_body', reason: 'invalid_json' });
  });

  it('unwrapCloudEvent names the CloudEvents attribute at fault', () => {
    expect(unwrapCloudEvent([])).toEqual({ ok: false, errors: [{ field: '(event)', reason: 'must be a CloudEvent (a JSON object)' }] });
    const r = unwrapCloudEvent({ specversion: '1.0', type: 'quotaflow.usage.v1', data: { event_id: 'x' }, datacontenttype: 'text/plain' });
    expect(r.ok && r.errors.map((e) => e.field)).toEqual(['id', 'source', 'datacontenttype']);
  });
});
