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
import { checkAlertsConfig } from '../schemas/alerts.ts';
import { type Config, ConfigSchema, ENV_OVERRIDES, RoutingCandidateSchema, RoutingWeightsSchema } from '../schemas/config.ts';
import { checkQuotaSpecs } from '../schemas/quota.ts';
import { checkReportsConfig } from '../schemas/reports-config.ts';
import { checkTeamSpecs } from '../schemas/team.ts';

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

type CandidateConfig = Config['routing']['candidates'][number];

/** The config as loaded: as the schema types it, except that every routing candidate has its `price`. */
export type ResolvedConfig = Omit<Config, 'routing'> & {
  routing: Omit<Config['routing'], 'candidates'> & {
    candidates: (CandidateConfig & { price: NonNullable<CandidateConfig['price']> })[];
  };
};

export interface LoadedConfig {
  config: Readonly<ResolvedConfig>;
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

/**
 * `API_KEYS="key=read:tenant,key2=admin"`: comma-separated pairs; a key is everything before the
 * last `=`, a role spec `admin` or `read:<tenant>` (the tenant is everything after the first `:`).
 */
function parseApiKeysEnv(name: string, v: string, problems: string[]): Array<{ key: string; role: string; tenant?: string }> {
  return v
    .split(',')
    .map((pair) => pair.trim())
    .filter(Boolean)
    .map((pair, n) => {
      const i = pair.lastIndexOf('=');
      const key = pair.slice(0, Math.max(0, i));
      const spec = i <= 0 ? '' : pair.slice(i + 1);
      if (spec === 'admin') return { key, role: 'admin' };
      const colon = spec.indexOf(':');
      if (spec.slice(0, colon) === 'read' && colon < spec.length - 1) return { key, role: 'read', tenant: spec.slice(colon + 1) };
      problems.push(`${name}: entry ${n + 1} must be key=admin or key=read:<tenant>, pairs separated by commas`);
      return undefined; // reported once, here
    })
    .filter((k) => k !== undefined);
}

/**
 * What the schema cannot say about `api_keys`, as `api_keys.<i>.field: reason` lines: the role is
 * read or admin, a read key names its tenant and an admin key none, and no key is listed twice
 * across `api_keys` and `ingest_keys` (a key has one meaning). Never repeats a key's text.
 */
function apiKeyProblems(ingestKeys: unknown, apiKeys: unknown): string[] {
  if (!Array.isArray(apiKeys)) return [];
  const problems: string[] = [];
  const seen = new Map<string, string>();
  if (Array.isArray(ingestKeys)) {
    ingestKeys.forEach((k: { key?: unknown }, i) => {
      if (typeof k?.key === 'string' && !seen.has(k.key)) seen.set(k.key, `ingest_keys.${i}`);
    });
  }
  apiKeys.forEach((k: { key?: unknown; role?: unknown; tenant?: unknown } | null, i) => {
    if (typeof k !== 'object' || k === null) return; // reported by the schema check
    const where = `api_keys.${i}`;
    if (k.role === 'read' && k.tenant === undefined) problems.push(`${where}.tenant: a read key needs the tenant it may read`);
    else if (k.role === 'admin' && k.tenant !== undefined) problems.push(`${where}.tenant: an admin key reads every tenant; remove tenant`);
    else if (k.role !== 'read' && k.role !== 'admin') problems.push(`${where}.role: must be read or admin, got ${JSON.stringify(k.role)}`);
    if (typeof k.key !== 'string') return;
    const first = seen.get(k.key);
    if (first !== undefined) problems.push(`${where}.key: the same key is already listed as ${first}`);
    else seen.set(k.key, where);
  });
  return problems;
}

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
  if (key === 'api_keys') return parseApiKeysEnv(name, v, problems);
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
  // A candidate still without a price was reported by fillCandidatePrices (or the price table
  // itself is invalid and reported): a placeholder price lets the rest of it be checked.
  const candidates = candidatesOk
    ? (r.candidates ?? []).map((c) => ({ ...c, price: c.price ?? { input_per_1m: 0, output_per_1m: 0 } }))
    : [];
  try {
    compileSnapshot(candidates, new Map(), weightsOk ? (r.weights ?? DEFAULT_ROUTING_WEIGHTS) : DEFAULT_ROUTING_WEIGHTS);
    return [];
  } catch (err) {
    if (err instanceof RoutingConfigError) return err.problems.map((p) => `routing.${p}`);
    throw err;
  }
}

/**
 * Give each routing candidate that has no `price` the base list price (USD per 1M input and
 * output tokens, below any long-context tier) of the price-table entry in force at `nowMs` for its
 * provider/model. Mutates the (not yet frozen) candidates. Candidates the schema rejected are left
 * alone (already reported), and so is every candidate when the price table is invalid (its own
 * problems are reported instead).
 * @returns one `routing.candidates[i] (id).price: ...` problem per candidate whose model is unpriced.
 */
function fillCandidatePrices(routing: unknown, prices: PriceTable | undefined, nowMs: number): string[] {
  const candidates: unknown = (routing as Partial<Config['routing']> | null | undefined)?.candidates;
  if (!prices || !Array.isArray(candidates)) return [];
  const problems: string[] = [];
  candidates.forEach((c: unknown, i) => {
    if (!Value.Check(RoutingCandidateSchema, c) || c.price !== undefined) return;
    const list = prices.listPrice(c.provider, c.model, nowMs);
    if (list) c.price = { input_per_1m: Number(list.input_per_1m), output_per_1m: Number(list.output_per_1m) };
    else problems.push(`routing.candidates[${i}] (${c.id}).price: no price given and ${c.provider}/${c.model} is not in the price table`);
  });
  return problems;
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
    if (e.path === '/teams' || e.path.startsWith('/teams/')) continue; // checkTeamSpecs, with team ids in the paths
    if (e.path.startsWith('/api_keys/') && e.path.endsWith('/role')) continue; // apiKeyProblems: a clearer message
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
  problems.push(...apiKeyProblems(config.ingest_keys, config.api_keys));
  problems.push(...checkQuotaSpecs(config.quotas));
  problems.push(...checkAlertsConfig(config.alerts));
  problems.push(...checkReportsConfig(config.reports));
  problems.push(...checkTeamSpecs(config.teams, config.quotas));
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
  // Candidate prices come from the table, so the table is built before the routing check.
  problems.push(...fillCandidatePrices(config.routing, prices, Date.now()));
  problems.push(...routingProblems(config.routing));
  if (problems.length > 0 || !prices) throw new ConfigError(source, problems);
  // Without problems, fillCandidatePrices has given every candidate a price.
  return { config: deepFreeze(config) as ResolvedConfig, prices };
}
