/**
 * SIGTERM during sustained HTTP ingest loses nothing (issue 7, SPEC.md section 5: "graceful
 * shutdown flushes and commits"). `quotaflow all` runs as a child process; four clients POST
 * 100 requests of 500 events (50,000 events with known ids, one invalid event per request), and
 * the role gets SIGTERM once 50 requests were acknowledged, while the others are still being sent.
 * After it exits 0, the test opens its chDB folder and checks, id by id:
 * - every event acknowledged as accepted (a 202 whose result says `accepted`) is stored exactly once;
 * - no event of a request answered with an error status (503 while closing), or refused before it
 *   reached the server, is stored; the invalid events are dead letters, never usage rows;
 * - a request whose connection broke has an unknown outcome: its events may be stored, once at
 *   most. This happens when a request races the close of an idle keep-alive connection (the server
 *   closes those at once; the request was never read, and a client retries it: the ids make that
 *   safe). The test prints how many there were and how many of their events were stored.
 * Embedded (in-process transport: the queue must be drained before exit) and Kafka transport
 * (acknowledged means on the broker; a processor started afterwards consumes what is left).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { openClickHouse } from '../../storage/clickhouse.ts';
import { kafkaBrokers, unique, until } from '../helpers/kafka.ts';
import { freePort, type RoleProcess, startRoleProcess, waitHttpOk } from '../helpers/roles.ts';

const KEY = 'key-load-0123456789abcdef';
const REQUESTS = 100;
const EVENTS_PER_REQUEST = 500;
const SIGTERM_AFTER_ACKS = 50;
const WORKERS = 4;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Outcome {
  /** Accepted by a 202: must be stored exactly once. */
  acked: Set<string>;
  /** Rejected inside a 202 (invalid events): dead letters, never usage rows. */
  invalid: Set<string>;
  /** Events of requests answered with an error status or refused before reaching the server. */
  notAccepted: Set<string>;
  /** Events of requests whose connection broke after sending: stored at most once. */
  unknown: Set<string>;
  statuses: Record<string, number>;
}

/** Request `r`'s NDJSON body: event ids `r<r>-<i>`; the last one has input_tokens -1 (invalid). */
function body(r: number, baseMs: number): { ids: string[]; text: string } {
  const ids: string[] = [];
  const lines: string[] = [];
  for (let i = 0; i < EVENTS_PER_REQUEST; i++) {
    const id = `r${r}-${i}`;
    ids.push(id);
    lines.push(
      JSON.stringify({
        event_id: id,
        timestamp: baseMs + i,
        provider: 'openai',
        model: 'gpt-4o',
        input_tokens: i === EVENTS_PER_REQUEST - 1 ? -1 : 100 + (i % 7),
        output_tokens: 10,
      }),
    );
  }
  return { ids, text: `${lines.join('\n')}\n` };
}

/** The errno of a failed fetch (undici wraps it in `cause`). */
const errno = (err: unknown): string => String((err as { cause?: { code?: string } })?.cause?.code ?? (err as Error)?.name);

/**
 * Send REQUESTS requests from WORKERS loops; call `onAcks(n)` after each 202. A request is sent
 * once, never retried, so each outcome is the server's answer to exactly that request.
 */
async function drive(url: string, onAck: (acks: number) => void): Promise<Outcome> {
  const out: Outcome = { acked: new Set(), invalid: new Set(), notAccepted: new Set(), unknown: new Set(), statuses: {} };
  const count = (k: string) => {
    out.statuses[k] = (out.statuses[k] ?? 0) + 1;
  };
  const baseMs = Date.now() - 60_000;
  let next = 0;
  let acks = 0;
  const worker = async () => {
    for (let r = next++; r < REQUESTS; r = next++) {
      const { ids, text } = body(r, baseMs);
      let res: Response;
      try {
        res = await fetch(`${url}/v1/events`, {
          method: 'POST',
          headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/x-ndjson' },
          body: text,
        });
      } catch (err) {
        const code = errno(err);
        count(code);
        // Refused: the listener was closed, the request never reached the server.
        for (const id of ids) (code === 'ECONNREFUSED' ? out.notAccepted : out.unknown).add(id);
        continue;
      }
      count(String(res.status));
      if (res.status !== 202) {
        await res.arrayBuffer();
        for (const id of ids) out.notAccepted.add(id);
        continue;
      }
      const reply = (await res.json()) as { results: Array<{ index: number; status: string }> };
      for (const x of reply.results) (x.status === 'accepted' ? out.acked : out.invalid).add(ids[x.index] as string);
      onAck(++acks);
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, worker));
  return out;
}

/** Every usage_events row (id -> rows) and every dead letter's event id, read after the role exited. */
async function stored(path: string): Promise<{ rows: Map<string, number>; dead: Set<string> }> {
  const client = await openClickHouse({ mode: 'embedded', path });
  try {
    const q = async <T>(query: string) => (await client.query({ query, format: 'JSONEachRow' })).json<T>();
    const rows = await q<{ event_id: string; n: string }>('SELECT event_id, count() AS n FROM usage_events GROUP BY event_id');
    const dead = await q<{ event_id: string }>('SELECT event_id FROM dead_letters FINAL');
    return { rows: new Map(rows.map((r) => [r.event_id, Number(r.n)])), dead: new Set(dead.map((d) => d.event_id)) };
  } finally {
    await client.close();
  }
}

function checkExactlyOnce(out: Outcome, got: { rows: Map<string, number>; dead: Set<string> }): void {
  // SIGTERM landed mid-load: some requests were acknowledged, some were not.
  expect(out.acked.size).toBeGreaterThanOrEqual(SIGTERM_AFTER_ACKS * (EVENTS_PER_REQUEST - 1));
  expect(out.notAccepted.size, `outcomes ${JSON.stringify(out.statuses)}`).toBeGreaterThan(0);
  const missing = [...out.acked].filter((id) => got.rows.get(id) !== 1);
  expect(missing, 'acknowledged events not stored exactly once').toEqual([]);
  const leaked = [...got.rows.keys()].filter((id) => !out.acked.has(id) && !out.unknown.has(id));
  expect(leaked, 'stored events that were never acknowledged').toEqual([]);
  expect([...got.rows.values()].every((n) => n === 1)).toBe(true);
  for (const id of out.invalid) expect(got.dead.has(id), `dead letter ${id}`).toBe(true);
  const unknownStored = [...out.unknown].filter((id) => got.rows.has(id)).length;
  console.info(
    `outcomes ${JSON.stringify(out.statuses)}; acknowledged ${out.acked.size} events, ` +
      `unknown outcome ${out.unknown.size} (stored: ${unknownStored}), not accepted ${out.notAccepted.size}`,
  );
}

/** Run the load against `proc` and SIGTERM it after SIGTERM_AFTER_ACKS acknowledged requests. */
async function loadAndTerminate(url: string, proc: RoleProcess): Promise<{ out: Outcome; code: number | null }> {
  let exited: Promise<number | null> | undefined;
  const out = await drive(url, (acks) => {
    if (acks === SIGTERM_AFTER_ACKS) exited = proc.stop();
  });
  return { out, code: await (exited ?? proc.stop()) };
}

describe('SIGTERM under sustained ingest load', () => {
  it('quotaflow all (embedded): every acknowledged event stored exactly once, nothing else', async () => {
    const data = mkdtempSync(join(tmpdir(), 'qf-load-'));
    dirs.push(data);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const proc = startRoleProcess('all', { CLICKHOUSE_PATH: data, HTTP_PORT: String(port), INGEST_API_KEYS: `${KEY}=tenant-load` });
    await waitHttpOk(`${url}/readyz`);
    const { out, code } = await loadAndTerminate(url, proc);
    expect(code, proc.logs().slice(-2_000)).toBe(0);
    checkExactlyOnce(out, await stored(data));
  }, 300_000);

  const brokers = kafkaBrokers();
  it.skipIf(brokers.length === 0)(
    'quotaflow all on Kafka: the same, once a processor consumed what the broker kept',
    async () => {
      const data = mkdtempSync(join(tmpdir(), 'qf-load-kafka-'));
      dirs.push(data);
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const topics = { usage: unique('qf.load.usage'), dlq: unique('qf.load.dlq'), group: unique('qf.load.proc') };
      const env = {
        QUOTAFLOW_TRANSPORT: 'kafka',
        KAFKA_BROKERS: brokers.join(','),
        KAFKA_USAGE_TOPIC: topics.usage,
        KAFKA_DLQ_TOPIC: topics.dlq,
        KAFKA_CONSUMER_GROUP: topics.group,
        CLICKHOUSE_PATH: data,
        INGEST_API_KEYS: `${KEY}=tenant-load`,
      };
      const proc = startRoleProcess('all', { ...env, HTTP_PORT: String(port) });
      await waitHttpOk(`${url}/readyz`);
      const { out, code } = await loadAndTerminate(url, proc);
      expect(code, proc.logs().slice(-2_000)).toBe(0);

      // Acknowledged means on the broker: a processor on the same group and folder consumes the rest.
      const processorPort = await freePort();
      const processor = startRoleProcess('processor', { ...env, HTTP_PORT: String(processorPort) });
      // Ready first: a SIGTERM before the process installed its handlers would kill it outright.
      await waitHttpOk(`http://127.0.0.1:${processorPort}/readyz`);
      const admin = new kafkajs.Kafka({ brokers, clientId: 'qf-test-admin', logLevel: kafkajs.logLevel.NOTHING }).admin();
      await admin.connect();
      try {
        const caughtUp = async (group: string, topic: string) => {
          const [high, committed] = await Promise.all([
            admin.fetchTopicOffsets(topic),
            admin.fetchOffsets({ groupId: group, topics: [topic] }),
          ]);
          const done = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, p.offset]));
          return high.every((p) => p.high === '0' || done.get(p.partition) === p.high);
        };
        await until(
          async () => (await caughtUp(topics.group, topics.usage)) && (await caughtUp(`${topics.group}.dlq`, topics.dlq)),
          'the processor to consume what the broker kept',
          240_000,
        );
      } finally {
        await admin.disconnect();
      }
      expect(await processor.stop(), processor.logs().slice(-2_000)).toBe(0);
      checkExactlyOnce(out, await stored(data));
    },
    600_000,
  );
});
