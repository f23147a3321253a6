/**
 * docker-compose.yml cannot run on this machine (no Docker engine): keep it honest by parsing it
 * and checking services, images, ports, health checks, and that every env name the quotaflow
 * services use is one the config actually reads. The monitoring part (deploy/): the Grafana
 * dashboard parses, its Prometheus queries name only metrics observability/metrics.ts defines,
 * and compose mounts the Prometheus config and the Grafana provisioning files.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Histogram, Summary } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createMetrics } from '../../observability/metrics.ts';
import { ENV_OVERRIDES } from '../../schemas/config.ts';

interface Service {
  image?: string;
  volumes?: string[];
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
/** Env read outside the config schema: only by Node itself (the ingest role's heap cap, docs/operations.md). */
const OTHER_ENV = new Set<string>(['NODE_OPTIONS']);

describe('docker-compose.yml', () => {
  it('has Kafka (official apache/kafka, KRaft), ClickHouse (official image) and the quotaflow roles', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'clickhouse', 'grafana', 'ingest', 'kafka', 'migrate', 'processor', 'prometheus']);
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

interface Target {
  datasource?: { type: string; uid: string };
  expr?: string;
  rawSql?: string;
}
interface Panel {
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Target[];
  fieldConfig?: { defaults: { thresholds?: { steps: Array<{ value: number | null }> }; custom?: { thresholdsStyle?: { mode: string } } } };
}
const dashboard = JSON.parse(readFileSync('deploy/grafana/dashboards/quotaflow.json', 'utf8')) as { uid: string; panels: Panel[] };
const queries = dashboard.panels.flatMap((p) =>
  (p.targets ?? []).map((t) => ({ panel: p.title, ...t, datasource: t.datasource ?? p.datasource })),
);

/** Every series name a scrape can show: each family, plus _bucket/_sum/_count of histograms and summaries. */
function exposedNames(): Set<string> {
  const names = new Set<string>();
  for (const m of createMetrics().registry.getMetricsAsArray()) {
    const { name } = m as unknown as { name: string };
    names.add(name);
    if (m instanceof Histogram) for (const s of ['_bucket', '_sum', '_count']) names.add(`${name}${s}`);
    if (m instanceof Summary) for (const s of ['_sum', '_count']) names.add(`${name}${s}`);
  }
  return names;
}

describe('monitoring: Prometheus and the Grafana dashboard', () => {
  it('every Prometheus query of the dashboard names only metrics that observability/metrics.ts defines', () => {
    const names = exposedNames();
    const prom = queries.filter((q) => q.datasource?.type === 'prometheus');
    expect(prom.length).toBeGreaterThanOrEqual(15);
    for (const q of prom) {
      const used = q.expr?.match(/\bquotaflow_[a-z0-9_]+/g) ?? [];
      expect(used.length, `${q.panel}: ${q.expr}`).toBeGreaterThan(0);
      for (const name of used) expect(names.has(name), `${q.panel}: ${name}`).toBe(true);
    }
  });

  it('has the panels issue 7 asks for: ingest rate, lag, freshness, quota utilisation with the 80% line, spend by model, anomalies', () => {
    const exprOf = (metric: string) => queries.filter((q) => q.expr?.includes(metric)).map((q) => q.panel);
    expect(exprOf('quotaflow_ingest_events_total')).toContain('Ingest rate (events/s)');
    expect(exprOf('quotaflow_consumer_lag_messages')).toHaveLength(1);
    expect(exprOf('quotaflow_event_freshness_seconds_bucket').length).toBeGreaterThan(0);
    expect(exprOf('quotaflow_anomalies_total')).toHaveLength(1);
    const quota = dashboard.panels.find((p) => p.targets?.some((t) => t.expr?.includes('quotaflow_quota_utilisation_ratio')));
    expect(quota?.fieldConfig?.defaults.thresholds?.steps.map((s) => s.value)).toEqual([null, 0.8]);
    expect(quota?.fieldConfig?.defaults.custom?.thresholdsStyle?.mode).toBe('line');
    const spend = queries.filter((q) => q.datasource?.type === 'grafana-clickhouse-datasource');
    expect(spend).toHaveLength(1);
    expect(spend[0]?.rawSql).toMatch(/FROM usage_hour\b/);
    expect(spend[0]?.rawSql).toMatch(/sum\(cost_usd\)/);
    expect(spend[0]?.rawSql).toMatch(/\$__timeFilter\(window_start\)/);
  });

  it('provisions the data sources the dashboard uses, and the dashboards folder compose mounts', () => {
    const ds = parse(readFileSync('deploy/grafana/provisioning/datasources/quotaflow.yml', 'utf8')) as {
      datasources: Array<{ uid: string; type: string; url?: string; jsonData?: Record<string, unknown> }>;
    };
    const provisioned = new Set(ds.datasources.map((d) => `${d.type}/${d.uid}`));
    for (const q of queries) expect(provisioned.has(`${q.datasource?.type}/${q.datasource?.uid}`), q.panel).toBe(true);
    const ch = ds.datasources.find((d) => d.type === 'grafana-clickhouse-datasource');
    expect(ch?.jsonData).toMatchObject({ host: 'clickhouse', defaultDatabase: services.clickhouse?.environment?.CLICKHOUSE_DB });
    expect(ds.datasources.find((d) => d.type === 'prometheus')?.url).toBe('http://prometheus:9090');

    const providers = parse(readFileSync('deploy/grafana/provisioning/dashboards/quotaflow.yml', 'utf8')) as {
      providers: Array<{ options: { path: string } }>;
    };
    const grafana = services.grafana;
    expect(grafana?.volumes).toContain(`./deploy/grafana/dashboards:${providers.providers[0]?.options.path}:ro`);
    expect(grafana?.volumes).toContain('./deploy/grafana/provisioning:/etc/grafana/provisioning:ro');
    expect(String(grafana?.environment?.GF_INSTALL_PLUGINS).split(',')).toContain('grafana-clickhouse-datasource');
  });

  it('mounts only files that exist, and Prometheus scrapes every role on the port it listens on', () => {
    for (const name of ['prometheus', 'grafana']) {
      for (const v of services[name]?.volumes ?? []) {
        const host = v.split(':')[0] as string;
        if (host.startsWith('./')) expect(existsSync(host), `${name}: ${host}`).toBe(true);
      }
    }
    expect(services.prometheus?.volumes).toContain('./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
    const prom = parse(readFileSync('deploy/prometheus/prometheus.yml', 'utf8')) as {
      scrape_configs: Array<{ job_name: string; metrics_path: string; dns_sd_configs: Array<{ names: string[]; port: number }> }>;
    };
    const port = Number(services.ingest?.environment?.HTTP_PORT);
    for (const role of ['ingest', 'processor', 'api']) {
      const job = prom.scrape_configs.find((j) => j.job_name === role);
      expect(job?.metrics_path, role).toBe('/metrics');
      expect(job?.dns_sd_configs[0]).toEqual({ names: [role], type: 'A', port });
      expect(services[role]?.environment?.HTTP_PORT, role).toBe(String(port));
    }
  });
});
