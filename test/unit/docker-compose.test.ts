/**
 * docker-compose.yml cannot run on this machine (no Docker engine): keep it honest by parsing it
 * and checking services, images, ports, health checks, and that every env name the quotaflow
 * services use is one the config actually reads.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ENV_OVERRIDES } from '../../schemas/config.ts';

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string | number>;
  ports?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
}
const compose = parse(readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as { services: Record<string, Service> };
const services = compose.services;
const ROLE_SERVICES = ['ingest', 'processor', 'api', 'migrate'];
/** Env read outside the config schema: none. */
const OTHER_ENV = new Set<string>();

describe('docker-compose.yml', () => {
  it('has Kafka (official apache/kafka, KRaft), ClickHouse (official image) and the quotaflow roles', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'clickhouse', 'ingest', 'kafka', 'migrate', 'processor']);
    expect(services.kafka?.image).toMatch(/^apache\/kafka:4\./);
    expect(services.kafka?.environment?.KAFKA_PROCESS_ROLES).toBe('broker,controller');
    expect(services.clickhouse?.image).toMatch(/^clickhouse\/clickhouse-server:/);
  });

  it('runs each role with its own command, and infrastructure with health checks', () => {
    for (const role of ROLE_SERVICES) expect(services[role]?.command, role).toEqual([role]);
    for (const s of ['kafka', 'clickhouse', 'ingest', 'api']) expect(services[s]?.healthcheck?.test.length, s).toBeGreaterThan(1);
    expect(services.processor?.depends_on?.migrate?.condition).toBe('service_completed_successfully');
  });

  it('uses only env names that the config reads, and points the roles at the compose services', () => {
    const known = new Set([...Object.keys(ENV_OVERRIDES), ...OTHER_ENV]);
    for (const role of ROLE_SERVICES) {
      const env = services[role]?.environment ?? {};
      for (const name of Object.keys(env)) expect(known.has(name), `${role}: ${name}`).toBe(true);
      expect(env.KAFKA_BROKERS).toBe('kafka:9092');
      expect(env.CLICKHOUSE_URL).toBe('http://clickhouse:8123');
      expect(env.CLICKHOUSE_MODE).toBe('server');
      expect(env.QUOTAFLOW_TRANSPORT).toBe('kafka');
    }
  });

  it('publishes the HTTP port the roles listen on', () => {
    const port = String(services.ingest?.environment?.HTTP_PORT);
    expect(services.ingest?.ports).toContain(`${port}:${port}`);
    expect(services.api?.ports?.[0]).toMatch(new RegExp(`:${port}$`));
    expect(services.kafka?.environment?.KAFKA_ADVERTISED_LISTENERS).toBe('PLAINTEXT://kafka:9092');
  });
});
