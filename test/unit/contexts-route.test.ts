import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../api/app.ts';
import { sha256Hex } from '../../domain/context-validation.ts';
import type { DeadLetterRow } from '../../domain/dead-letter.ts';
import { contextsRoute } from '../../ingest/http/contexts.route.ts';
import { SOURCE_HEADER } from '../../ingest/replay.ts';
import type { OutgoingMessage, Producer } from '../../ingest/transport/transport.ts';

/** Injected "now": 2025-06-15T12:00:00.000Z. */
const NOW_MS = Date.UTC(2025, 5, 15, 12, 0, 0);
const ACME_KEY = 'acme-key-0123456789abcdef';
const PRIVATE_KEY = 'private-key-0123456789abcdef';
const KEYS = [
  { key: ACME_KEY, tenant: 'acme' },
  { key: PRIVATE_KEY, tenant: 'private' },
];
/** Text that must never reach a log line or an error body. */
const SECRET = 'the launch code is 0000';

const REC = Object.freeze({
  user_id: 'u1',
  conversation_id: 'c1',
  message_id: '000001',
  platform: 'openai',
  role: 'user',
  content: SECRET,
  created_at: '2025-06-15T11:00:00Z',
  updated_at: '2025-06-15T11:00:00Z',
});
const rec = (patch: Record<string, unknown> = {}) => ({ ...REC, ...patch });

class RecordingProducer implements Producer {
  readonly messages: OutgoingMessage[] = [];
  async send(messages: readonly OutgoingMessage[]): Promise<void> {
    this.messages.push(...messages);
  }
  async close(): Promise<void> {}
}

let apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.map((a) => a.close()));
  apps = [];
});

function setup(patch: { maxRecords?: number; maxRecordBytes?: number; contextProducer?: Producer; bodyLimitBytes?: number } = {}) {
  const contexts = new RecordingProducer();
  const dlq = new RecordingProducer();
  const logs: string[] = [];
  const logger = pino(
    { level: 'trace' },
    new Writable({
      write(chunk, _enc, cb) {
        logs.push(String(chunk));
        cb();
      },
    }),
  );
  const app = buildApp({ logger, bodyLimitBytes: patch.bodyLimitBytes ?? 256 * 1024, readiness: {} });
  void app.register(contextsRoute, {
    contextProducer: patch.contextProducer ?? contexts,
    dlqProducer: dlq,
    keys: KEYS,
    maxRecordsPerRequest: patch.maxRecords ?? 5,
    maxRecordBytes: patch.maxRecordBytes ?? 4_096,
    storeContent: (tenant) => tenant !== 'private',
    produceTimeoutMs: 1_000,
    now: () => NOW_MS,
  });
  apps.push(app);
  const post = (body: unknown, headers: Record<string, string> = {}, key: string | null = ACME_KEY) =>
    app.inject({
      method: 'POST',
      url: '/v1/contexts',
      headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
      payload: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const deadLetters = () => dlq.messages.map((m) => JSON.parse(m.value) as DeadLetterRow);
  return { app, contexts, dlq, post, deadLetters, logs };
}

describe('POST /v1/contexts', () => {
  it('accepts records, fills the tenant from the key, keys messages by (tenant, user_id)', async () => {
    const { post, contexts } = setup();
    const res = await post([rec(), rec({ message_id: '000002', role: 'assistant', content: 'ok' })]);
    expect(res.statusCode).toBe(202);
    const requestId = res.headers['x-request-id'];
    expect(res.json()).toEqual({
      accepted: 2,
      rejected: 0,
      results: [
        { index: 0, status: 'accepted', conversation_id: 'c1', message_id: '000001' },
        { index: 1, status: 'accepted', conversation_id: 'c1', message_id: '000002' },
      ],
    });
    expect(contexts.messages[0]).toEqual({
      key: '["acme","u1"]',
      value: JSON.stringify({ tenant: 'acme', ...rec(), created_at: '2025-06-15T11:00:00.000Z', updated_at: '2025-06-15T11:00:00.000Z' }),
      headers: { [SOURCE_HEADER]: `http:${requestId}:0` },
    });
  });

  it('reads NDJSON and { "records": [...] } too', async () => {
    const { post, contexts } = setup();
    const nd = await post(`${JSON.stringify(rec())}\n\n${JSON.stringify(rec({ message_id: '2' }))}\n`, {
      'content-type': 'application/x-ndjson',
    });
    expect(nd.json()).toMatchObject({ accepted: 2, rejected: 0 });
    const wrapped = await post({ user_id: 'u1', records: [rec({ message_id: '3' })] });
    expect(wrapped.json()).toMatchObject({ accepted: 1, rejected: 0 });
    expect(contexts.messages.map((m) => JSON.parse(m.value).message_id)).toEqual(['000001', '2', '3']);
  });

  it('rejects each bad record with every reason, and keeps it as a dead letter; the good ones go through', async () => {
    const { post, contexts, deadLetters } = setup();
    const res = await post([rec(), rec({ tenant: 'globex' }), rec({ role: 'robot', updated_at: '2025-06-15T10:00:00Z' })]);
    expect(res.statusCode).toBe(202);
    expect(res.json().results.slice(1)).toEqual([
      {
        index: 1,
        status: 'rejected',
        message_id: '000001',
        errors: [{ field: 'tenant', reason: 'this API key may only write records of tenant "acme"' }],
      },
      {
        index: 2,
        status: 'rejected',
        message_id: '000001',
        errors: [
          { field: 'role', reason: 'must be one of system, user, assistant, tool' },
          { field: 'updated_at', reason: 'before created_at' },
        ],
      },
    ]);
    expect(contexts.messages).toHaveLength(1);
    expect(deadLetters().map((d) => [d.tenant, d.reason, d.event_id])).toEqual([
      ['acme', 'invalid_event', '000001'],
      ['acme', 'invalid_event', '000001'],
    ]);
    // acme stores text: its dead letters keep the record as sent.
    expect(deadLetters()[1]?.raw).toBe(JSON.stringify(rec({ role: 'robot', updated_at: '2025-06-15T10:00:00Z' })));
  });

  it('a tenant that keeps no text: the topic gets hash and length, a dead letter withholds the text', async () => {
    const { post, contexts, deadLetters } = setup();
    const res = await post([rec(), rec({ role: 'robot' })], {}, PRIVATE_KEY);
    expect(res.json()).toMatchObject({ accepted: 1, rejected: 1 });
    const produced = JSON.parse(contexts.messages[0]?.value ?? '{}');
    expect(produced).not.toHaveProperty('content');
    expect([produced.tenant, produced.content_sha256, produced.content_length]).toEqual(['private', sha256Hex(SECRET), 23]);
    expect(JSON.parse(deadLetters()[0]?.raw ?? '{}').content).toEqual({ withheld: true, sha256: sha256Hex(SECRET), length: 23 });
    expect(JSON.stringify([contexts.messages, deadLetters()])).not.toContain('launch code');
  });

  it('413 too_many_records over the batch limit, nothing produced', async () => {
    const { post, contexts, dlq } = setup({ maxRecords: 2 });
    for (const body of [[rec(), rec(), rec()], { records: [rec(), rec(), rec()] }]) {
      const res = await post(body);
      expect(res.statusCode).toBe(413);
      expect(res.json()).toEqual({
        error: {
          code: 'too_many_records',
          message: 'the request holds 3 records; at most 2 are accepted per request (contexts.max_records_per_request): split the batch',
        },
      });
    }
    expect([contexts.messages.length, dlq.messages.length]).toEqual([0, 0]);
  });

  it('a record over max_record_bytes is rejected alone; its dead letter keeps no text', async () => {
    const { post, contexts, deadLetters } = setup({ maxRecordBytes: 1_024 });
    const big = rec({ message_id: 'big', content: `${SECRET} ${'x'.repeat(2_000)}` });
    const res = await post([big, rec()]);
    const bytes = Buffer.byteLength(JSON.stringify(big));
    expect(res.json().results[0]).toEqual({
      index: 0,
      status: 'rejected',
      message_id: 'big',
      errors: [
        { field: '(record)', reason: `the record is ${bytes} bytes of JSON; at most 1024 are accepted (contexts.max_record_bytes)` },
      ],
    });
    expect(contexts.messages).toHaveLength(1);
    expect(deadLetters()[0]?.raw).not.toContain('launch code');
  });

  it('413 payload_too_large over the body limit; 400 for a broken body without quoting it; 415; 401', async () => {
    const small = setup({ bodyLimitBytes: 1_024 });
    const tooLarge = await small.post([rec({ content: 'x'.repeat(2_000) })]);
    expect([tooLarge.statusCode, tooLarge.json().error.code]).toEqual([413, 'payload_too_large']);

    const { post, deadLetters } = setup();
    const broken = await post(`[${JSON.stringify(rec())}, {"content": "${SECRET}"`);
    expect(broken.statusCode).toBe(400);
    expect(broken.json()).toEqual({ error: { code: 'invalid_body', message: 'the body is not valid JSON' } });
    expect(deadLetters()).toHaveLength(1);

    const line = await post(`{"content": "${SECRET}\n${JSON.stringify(rec())}\n`, { 'content-type': 'application/x-ndjson' });
    expect(line.json().results[0]).toEqual({ index: 0, status: 'rejected', errors: [{ field: '(payload)', reason: 'not valid JSON' }] });

    const text = await post('hello', { 'content-type': 'text/plain' });
    expect([text.statusCode, text.json().error.code]).toEqual([415, 'unsupported_media_type']);
    expect(text.json().error.message).toBe('unsupported Content-Type "text/plain": send application/json or application/x-ndjson');
    expect((await post([rec()], {}, null)).statusCode).toBe(401);
    expect((await post([rec()], {}, 'wrong-key-0123456789abcdef')).statusCode).toBe(401);
  });

  it('503 with Retry-After when the transport fails', async () => {
    const failing: Producer = {
      send: async () => {
        throw new Error('broker down');
      },
      close: async () => {},
    };
    const { post } = setup({ contextProducer: failing });
    const res = await post([rec()]);
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.json().error.code).toBe('unavailable');
  });

  it('never writes the text into a log line, whatever happens', async () => {
    const ok = setup();
    await ok.post([rec(), rec({ role: 'robot' })]);
    await ok.post(`[{"content": "${SECRET}"`);
    await ok.post([rec(), rec(), rec(), rec(), rec(), rec()]);
    const failing = setup({
      contextProducer: {
        send: async () => {
          throw new Error('broker down');
        },
        close: async () => {},
      },
    });
    await failing.post([rec()]);
    const logs = [...ok.logs, ...failing.logs].join('');
    expect(logs).toContain('contexts_http_batch'); // the logs were captured
    expect(logs).toContain('contexts_http_failed');
    expect(logs).not.toContain('launch code');
    expect(logs).not.toContain(ACME_KEY);
  });
});
