/**
 * The context sync wired as the roles wire it (api/app.ts with cli/context-roles.ts options), over
 * a given transport and ClickHouse: POST /v1/contexts -> topic -> context pipeline -> `contexts`,
 * and the read routes; the dead-letter topic is copied into `dead_letters`. For integration tests.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildApp } from '../../api/app.ts';
import { contextIngestOptions } from '../../cli/context-roles.ts';
import { type LoadedConfig, loadConfig } from '../../config/load.ts';
import type { Consumer, Transport } from '../../ingest/transport/transport.ts';
import { createUsageStore } from '../../processors/clickhouse-writer.ts';
import { type ContextStats, startContextPipeline } from '../../processors/context-runner.ts';
import { createContextStore } from '../../processors/context-store.ts';
import { deadLetterSinkHandler } from '../../processors/dead-letter-sink.ts';
import { contentPolicy } from '../../schemas/contexts-config.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import type { ChangesPage } from './contexts.ts';
import { until } from './kafka.ts';

export const KEYS = {
  acme: 'acme-key-0123456789abcdef',
  globex: 'globex-key-0123456789abcdef',
  private: 'private-key-0123456789abcdef',
  admin: 'admin-key-0123456789abcdef',
} as const;

/** The config of the tests: three tenants (private keeps no text), one admin key, short batch waits. */
export function contextTestConfig(extra = ''): LoadedConfig {
  const dir = mkdtempSync(join(tmpdir(), 'qf-ctx-config-'));
  try {
    const path = join(dir, 'quotaflow.yaml');
    writeFileSync(
      path,
      `ingest_keys:
  - { key: ${KEYS.acme}, tenant: acme }
  - { key: ${KEYS.globex}, tenant: globex }
  - { key: ${KEYS.private}, tenant: private }
api_keys:
  - { key: ${KEYS.admin}, role: admin }
pipeline: { batch_max_wait_ms: 10, batch_max_messages: 50 }
contexts:
  store_content: { default: true, tenants: { private: false } }
${extra}`,
    );
    return loadConfig(path, {});
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface ContextHarness {
  app: FastifyInstance;
  /** POST records as `key`'s tenant; resolves with the 202 body (throws on another status). */
  post(records: unknown[], key?: string): Promise<{ accepted: number; rejected: number; results: unknown[] }>;
  /** One page of GET /v1/contexts/:user. */
  changes(
    user: string,
    cursor?: string,
    o?: { limit?: number; key?: string; query?: string },
  ): Promise<ChangesPage & Record<string, unknown>>;
  /** GET /v1/contexts/:user/export. */
  exportOf(
    user: string,
    o?: { key?: string; query?: string },
  ): Promise<Record<string, unknown> & { records: Array<Record<string, unknown>> }>;
  /** Wait until the context pipeline handled every record accepted so far (and the DLQ sink every dead letter). */
  settle(): Promise<void>;
  /** Stop the context pipeline and start a new one in consumer group `groupId` (Kafka: a replay from offset 0; settle() then waits for all of it). */
  restartPipeline(groupId: string): Promise<void>;
  /** Counters of the running context pipeline. */
  stats(): Readonly<ContextStats>;
  close(): Promise<void>;
}

export async function startContextHarness(p: {
  loaded: LoadedConfig;
  transport: Transport;
  client: ClickHouseClient;
  groupId?: string;
}): Promise<ContextHarness> {
  const { loaded, transport, client } = p;
  const { config } = loaded;
  const logger = pino({ level: 'silent' });
  const app = buildApp({
    logger,
    bodyLimitBytes: config.http.body_limit_bytes,
    readiness: {},
    contexts: contextIngestOptions(loaded, transport),
    api: { clickhouse: client, keys: [...config.ingest_keys, ...config.api_keys] },
  });
  await app.ready();

  const start = (groupId: string) =>
    startContextPipeline({
      transport,
      store: createContextStore(client),
      storeContent: contentPolicy(config.contexts.store_content),
      topic: config.contexts.topic,
      groupId,
      batchMaxMessages: config.pipeline.batch_max_messages,
      batchMaxWaitMs: config.pipeline.batch_max_wait_ms,
    });
  let pipeline = start(p.groupId ?? 'ctx-test');
  let acceptedSent = 0;
  let rejectedSent = 0;
  let deadLettersHandled = 0;
  const sink = deadLetterSinkHandler(createUsageStore(client));
  const dlq: Consumer = transport.consumer({
    topic: config.kafka.dlq_topic,
    groupId: 'ctx-test-dlq',
    maxBatchMessages: 100,
    maxBatchWaitMs: 10,
  });
  const dlqDone = dlq.run(async (b) => {
    await sink(b);
    deadLettersHandled += b.messages.length;
  });

  const get = async (url: string, key: string) => {
    const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${key}` } });
    if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode} ${res.body}`);
    return res.json();
  };
  return {
    app,
    async post(records, key = KEYS.acme) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/contexts',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        payload: JSON.stringify(records),
      });
      if (res.statusCode !== 202) throw new Error(`POST /v1/contexts: ${res.statusCode} ${res.body}`);
      const body = res.json();
      acceptedSent += body.accepted;
      rejectedSent += body.rejected;
      return body;
    },
    changes(user, cursor, o = {}) {
      const q = new URLSearchParams();
      if (cursor !== undefined) q.set('since', cursor);
      if (o.limit !== undefined) q.set('limit', String(o.limit));
      const extra = o.query ? `&${o.query}` : '';
      return get(`/v1/contexts/${encodeURIComponent(user)}?${q}${extra}`, o.key ?? KEYS.acme);
    },
    exportOf(user, o = {}) {
      return get(`/v1/contexts/${encodeURIComponent(user)}/export${o.query ? `?${o.query}` : ''}`, o.key ?? KEYS.acme);
    },
    async settle() {
      // A pipeline (a replay's too: it reads the topic from the start) handles every record accepted so far.
      await until(() => pipeline.stats.messages >= acceptedSent, 'the context pipeline to handle every accepted record');
      await until(() => deadLettersHandled >= rejectedSent, 'the dead-letter sink to store every rejected record');
    },
    async restartPipeline(groupId) {
      await pipeline.stop();
      await pipeline.done;
      pipeline = start(groupId);
    },
    stats: () => pipeline.stats,
    async close() {
      await app.close();
      await pipeline.stop();
      await dlq.stop();
      await Promise.allSettled([pipeline.done, dlqDone]);
    },
  };
}
