/**
 * Load, validate and freeze the configuration: file (JSON or YAML) -> defaults -> env
 * overrides -> schema check -> cross-field checks. Every problem is reported at once.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import { type PriceEntry, PriceTable, PriceTableError } from '../domain/pricing.ts';
import { compileSnapshot, DEFAULT_ROUTING_WEIGHTS, RoutingConfigError } from '../domain/routing.ts';
import { type Config, ConfigSchema, ENV_OVERRIDES, RoutingWeightsSchema } from '../schemas/config.ts';
import { checkQuotaSpecs } from '../schemas/quota.ts';

export const DEFAULT_PRICES_FILE = join(dirname(fileURLToPath(import.meta.url)), 'prices.default.yaml');

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid configuration (${source}):\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: Readonly<Config>;
  prices: PriceTable;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

function readStructured(path: string): unknown {
  const text = readFileSync(path, 'utf8');
  return /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text);
}

const NUMERIC_KEYS = new Set([
  'port',
  'partitions',
  'produce_timeout_ms',
  'session_timeout_ms',
  'body_limit_bytes',
  'max_events_per_request',
]);

function coerceEnv(name: string, key: string, v: string, problems: string[]): unknown {
  if (key === 'brokers')
    return v
      .split(',')
      .map((b) => b.trim())
      .filter(Boolean);
  if (key === 'ingest_keys') {
    return v
      .split(',')
      .map((pair) => pair.trim())
      .filter(Boolean)
      .map((pair) => {
        const i = pair.lastIndexOf('=');
        if (i <= 0) problems.push(`${name}: expected key=tenant pairs separated by commas`);
        return { key: pair.slice(0, Math.max(0, i)), tenant: pair.slice(i + 1) };
      });
  }
  if (/^-?\d+$/.test(v) && (NUMERIC_KEYS.has(key) || key.startsWith('batch_') || key.endsWith('_ms') || key === 'transport_capacity'))
    return Number(v);
  return v;
}

/**
 * What only the routing compiler catches (duplicate candidate ids, all-zero weights), as
 * `routing.<where>: reason` lines. Runs on the parts whose types the schema pass accepted, so a
 * schema problem is never reported twice.
 */
function routingProblems(routing: unknown): string[] {
  const r = routing as Partial<Config['routing']> | undefined;
  if (typeof r !== 'object' || r === null) return [];
  const candidatesOk = Value.Check(ConfigSchema.properties.routing.properties.candidates, r.candidates);
  const weightsOk = r.weights === undefined || Value.Check(RoutingWeightsSchema, r.weights);
  try {
    compileSnapshot(
      candidatesOk ? (r.candidates ?? []) : [],
      new Map(),
      weightsOk ? (r.weights ?? DEFAULT_ROUTING_WEIGHTS) : DEFAULT_ROUTING_WEIGHTS,
    );
    return [];
  } catch (err) {
    if (err instanceof RoutingConfigError) return err.problems.map((p) => `routing.${p}`);
    throw err;
  }
}

/**
 * @param file path of a JSON/YAML config file, or undefined for defaults only.
 * @param env environment (overrides listed in ENV_OVERRIDES).
 * @throws ConfigError listing every problem (unreadable file, bad keys, bad types, bad prices).
 */
export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const source = file ?? '(defaults)';
  let raw: unknown = {};
  if (file) {
    try {
      raw = readStructured(file) ?? {};
    } catch (err) {
      throw new ConfigError(source, [`cannot read: ${(err as Error).message}`]);
    }
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(source, ['top level must be a mapping']);
  const problems: string[] = [];
  const obj = structuredClone(raw) as Record<string, Record<string, unknown>>;
  for (const [name, [section, key]] of Object.entries(ENV_OVERRIDES)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    let target: Record<string, unknown> = obj;
    if (section) {
      obj[section] ??= {};
      const sec: unknown = obj[section];
      // Not a mapping: the schema check below reports the section itself.
      if (typeof sec !== 'object' || sec === null || Array.isArray(sec)) continue;
      target = sec as Record<string, unknown>;
    }
    target[key] = coerceEnv(name, key, v, problems);
  }
  const withDefaults = Value.Default(ConfigSchema, obj);
  for (const e of Value.Errors(ConfigSchema, withDefaults)) {
    // Quotas are checked by checkQuotaSpecs below: TypeBox reports a bad union (limit, window)
    // once per branch, with messages that do not say what was expected.
    if (e.path === '/quotas' || e.path.startsWith('/quotas/')) continue;
    problems.push(`${e.path.replace(/^\//, '').replaceAll('/', '.') || '(root)'}: ${e.message}`);
  }
  // No early throw: the checks below run even when the schema check failed elsewhere, so every
  // problem is listed at once. Each reads only values whose type it has checked itself.
  const config = withDefaults as Config;
  const ch = config.clickhouse as Partial<Config['clickhouse']> | undefined;
  if (ch?.mode === 'server' && typeof ch.url === 'string' && !/^https?:\/\//.test(ch.url)) {
    problems.push(`clickhouse.url: must be an http(s) URL in server mode, got ${ch.url}`);
  }
  if (Value.Check(ConfigSchema.properties.ingest_keys, config.ingest_keys)) {
    const keys = new Set<string>();
    for (const k of config.ingest_keys) {
      if (keys.has(k.key)) problems.push(`ingest_keys: the same key is listed twice (tenant ${k.tenant})`);
      keys.add(k.key);
    }
  }
  problems.push(...checkQuotaSpecs(config.quotas));
  problems.push(...routingProblems(config.routing));
  let prices: PriceTable | undefined;
  if (Value.Check(ConfigSchema.properties.prices, config.prices) && typeof config.use_default_prices === 'boolean') {
    try {
      const base = config.use_default_prices ? (readStructured(DEFAULT_PRICES_FILE) as PriceEntry[]) : [];
      prices = new PriceTable([...base, ...config.prices]);
    } catch (err) {
      if (err instanceof PriceTableError) problems.push(...err.problems);
      else problems.push(`prices: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0 || !prices) throw new ConfigError(source, problems);
  return { config: deepFreeze(config), prices };
}
