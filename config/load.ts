/**
 * Load, validate and freeze the configuration: file (JSON or YAML) -> defaults -> env
 * overrides -> schema check -> cross-field checks. Every problem is reported at once.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import { DATED_SNAPSHOT, type PriceEntry, PriceTable } from '../domain/pricing.ts';
import { compileSnapshot, DEFAULT_ROUTING_WEIGHTS, RoutingConfigError } from '../domain/routing.ts';
import { checkAlertsConfig } from '../schemas/alerts.ts';
import {
  type Config,
  ConfigSchema,
  ENV_OVERRIDES,
  PriceEntrySchema,
  RoutingCandidateSchema,
  RoutingWeightsSchema,
} from '../schemas/config.ts';
import { checkQuotaSpecs } from '../schemas/quota.ts';
import { checkReportsConfig } from '../schemas/reports-config.ts';
import { describeSchemaError } from '../schemas/schema-problems.ts';
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
  'max_in_flight_bytes',
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
      .map((pair, n) => {
        const i = pair.lastIndexOf('=');
        if (i > 0) return { key: pair.slice(0, i), tenant: pair.slice(i + 1) };
        problems.push(`${name}: entry ${n + 1} must be key=tenant, pairs separated by commas`);
        return undefined; // reported once, here
      })
      .filter((k) => k !== undefined);
  }
  if (key === 'api_keys') return parseApiKeysEnv(name, v, problems);
  if (/^-?\d+$/.test(v) && (NUMERIC_KEYS.has(key) || key.startsWith('batch_') || key.endsWith('_ms') || key === 'transport_capacity'))
    return Number(v);
  return v;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * What only the routing compiler catches (duplicate candidate ids, all-zero weights), as
 * `routing.<where>: reason` lines. Runs on every candidate, also those the schema rejected: each
 * field the schema rejected is replaced by a harmless stand-in (an id no other can equal, no tags,
 * a zero price), so a schema problem is never reported twice and the rest is still checked.
 */
function routingProblems(routing: unknown): string[] {
  if (!isRecord(routing)) return [];
  const props = RoutingCandidateSchema.properties;
  const ok = <K extends keyof typeof props>(k: K, v: unknown) => Value.Check(props[k], v);
  const candidates = (Array.isArray(routing.candidates) ? routing.candidates : []).map((raw: unknown, i) => {
    const c = isRecord(raw) ? raw : {};
    return {
      // A stand-in id no two candidates share, so it adds no duplicate.
      id: ok('id', c.id) ? (c.id as string) : `\u0000candidate ${i}`,
      provider: ok('provider', c.provider) ? (c.provider as string) : '',
      model: ok('model', c.model) ? (c.model as string) : '',
      capabilities: ok('capabilities', c.capabilities) && c.capabilities !== undefined ? (c.capabilities as string[]) : [],
      compliance: ok('compliance', c.compliance) && c.compliance !== undefined ? (c.compliance as string[]) : [],
      // A candidate without a price was reported by fillCandidatePrices, or its model is priced.
      price: ok('price', c.price) && c.price !== undefined ? (c.price as { input_per_1m: number; output_per_1m: number }) : ZERO_PRICE,
      ...(ok('min_remaining_tokens', c.min_remaining_tokens) && c.min_remaining_tokens !== undefined
        ? { min_remaining_tokens: c.min_remaining_tokens as number }
        : {}),
    };
  });
  // Weights the schema rejected (reported there) are judged as the defaults.
  const weights = Value.Check(RoutingWeightsSchema, routing.weights) ? routing.weights : DEFAULT_ROUTING_WEIGHTS;
  try {
    compileSnapshot(candidates, new Map(), weights);
    return [];
  } catch (err) {
    if (err instanceof RoutingConfigError) return err.problems.map((p) => `routing.${p}`);
    throw err;
  }
}

const ZERO_PRICE = Object.freeze({ input_per_1m: 0, output_per_1m: 0 });

/**
 * Give each routing candidate that has no `price` the base list price (USD per 1M input and
 * output tokens, below any long-context tier) of the price-table entry in force at `nowMs` for its
 * provider/model. Mutates the (not yet frozen) candidates. `prices` holds the valid entries only;
 * a model named by a rejected entry (`rejected`, already reported) is not reported again.
 * @returns one `routing.candidates[i] (id).price: ...` problem per candidate whose model is unpriced.
 */
function fillCandidatePrices(routing: unknown, prices: PriceTable, rejected: readonly unknown[], nowMs: number): string[] {
  const candidates: unknown = isRecord(routing) ? routing.candidates : undefined;
  if (!Array.isArray(candidates)) return [];
  const props = RoutingCandidateSchema.properties;
  const problems: string[] = [];
  candidates.forEach((c: unknown, i) => {
    if (!isRecord(c) || c.price !== undefined) return;
    const { provider, model } = c;
    if (!Value.Check(props.provider, provider) || !Value.Check(props.model, model)) return; // reported by the schema check
    const list = prices.listPrice(provider, model, nowMs);
    if (list) c.price = { input_per_1m: Number(list.input_per_1m), output_per_1m: Number(list.output_per_1m) };
    else if (!rejected.some((e) => namesModel(e, provider, model))) {
      const id = typeof c.id === 'string' ? ` (${c.id})` : '';
      problems.push(`routing.candidates[${i}]${id}.price: no price given and ${provider}/${model} is not in the price table`);
    }
  });
  return problems;
}

/** Whether a (possibly malformed) price entry is for this provider/model, or for its undated alias (as PriceTable looks up). */
function namesModel(entry: unknown, provider: string, model: string): boolean {
  if (!isRecord(entry) || typeof entry.provider !== 'string' || entry.provider.toLowerCase() !== provider.toLowerCase()) return false;
  return entry.model === model || entry.model === DATED_SNAPSHOT.exec(model)?.[1];
}

/**
 * The price table of the default entries (unless `use_default_prices` is false) and the user's
 * entries, built from the entries that are valid: user entries the schema rejected are left out
 * (the schema check reports them), and so are those the table rejects (their problems are
 * returned). Each entry is named by its own index: `config/prices.default.yaml[i]` or `prices[i]`.
 * @returns the table, its problems, and the user entries left out (for fillCandidatePrices).
 */
function buildPriceTable(config: Config): { prices: PriceTable; problems: string[]; rejected: unknown[] } {
  const user: unknown[] = Array.isArray(config.prices) ? config.prices : [];
  const base = config.use_default_prices === false ? [] : (readStructured(DEFAULT_PRICES_FILE) as PriceEntry[]);
  const valid = user.flatMap((e, i) => (Value.Check(PriceEntrySchema, e) ? [{ e, i }] : []));
  const label = (n: number) => (n < base.length ? `config/prices.default.yaml[${n}]` : `prices[${valid[n - base.length]?.i}]`);
  const prices = new PriceTable([...base, ...valid.map((v) => v.e)], { label, skipInvalid: true });
  const rejected = user.filter((_e, i) => {
    const n = valid.findIndex((v) => v.i === i);
    return n < 0 || prices.skipped.has(base.length + n);
  });
  return { prices, problems: [...prices.problems], rejected };
}

/**
 * A problem line (`path: reason`) as shown: `ENV_NAME (path): reason` when an environment variable
 * set that path or the value it lies in (`CLICKHOUSE_MODE (clickhouse.mode)`, `INGEST_API_KEYS
 * (ingest_keys.0.key)`), else unchanged. Applied to every problem, whichever check found it.
 */
function attributeToEnv(problem: string, fromEnv: ReadonlyMap<string, string>): string {
  const colon = problem.indexOf(': ');
  const path = colon < 0 ? problem : problem.slice(0, colon);
  for (const [p, name] of fromEnv) {
    if (path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`)) return `${name} (${path})${problem.slice(path.length)}`;
  }
  return problem;
}

/**
 * @param file path of a JSON/YAML config file, or undefined for defaults only.
 * @param env environment (overrides listed in ENV_OVERRIDES).
 * @throws ConfigError listing every problem (unreadable file, bad keys, bad types, bad prices).
 */
export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const source = file ?? 'no config file: defaults and environment';
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
  /** Config path (`clickhouse.mode`) -> the environment variable that set it. */
  const fromEnv = new Map<string, string>();
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
    fromEnv.set(section ? `${section}.${key}` : key, name);
  }
  const withDefaults = Value.Default(ConfigSchema, obj);
  for (const e of Value.Errors(ConfigSchema, withDefaults)) {
    // Quotas are checked by checkQuotaSpecs below: TypeBox reports a bad union (limit, window)
    // once per branch, with messages that do not say what was expected.
    if (e.path === '/quotas' || e.path.startsWith('/quotas/')) continue;
    if (e.path === '/teams' || e.path.startsWith('/teams/')) continue; // checkTeamSpecs, with team ids in the paths
    if (e.path.startsWith('/api_keys/') && e.path.endsWith('/role')) continue; // apiKeyProblems: a clearer message
    problems.push(`${e.path.replace(/^\//, '').replaceAll('/', '.') || '(root)'}: ${describeSchemaError(e)}`);
  }
  // No early throw: the checks below run even when the schema check failed, also in the same
  // section, so every problem is listed at once. Each reads only values whose type it has checked
  // itself, entry by entry: one bad entry does not hide a problem of the others.
  const config = withDefaults as Config;
  const ch = config.clickhouse as Partial<Config['clickhouse']> | undefined;
  if (ch?.mode === 'server' && typeof ch.url === 'string' && !/^https?:\/\//.test(ch.url)) {
    problems.push(`clickhouse.url: must be an http(s) URL in server mode, got ${ch.url}`);
  }
  if (Array.isArray(config.ingest_keys)) {
    const keys = new Set<string>();
    for (const k of config.ingest_keys as unknown[]) {
      if (!isRecord(k) || typeof k.key !== 'string') continue; // reported by the schema check
      if (keys.has(k.key)) problems.push(`ingest_keys: the same key is listed twice (tenant ${k.tenant})`);
      keys.add(k.key);
    }
  }
  problems.push(...apiKeyProblems(config.ingest_keys, config.api_keys));
  problems.push(...checkQuotaSpecs(config.quotas));
  problems.push(...checkAlertsConfig(config.alerts));
  problems.push(...checkReportsConfig(config.reports));
  problems.push(...checkTeamSpecs(config.teams, config.quotas));
  const fail = (list: string[]) =>
    new ConfigError(
      source,
      list.map((p) => attributeToEnv(p, fromEnv)),
    );
  let table: ReturnType<typeof buildPriceTable>;
  try {
    table = buildPriceTable(config);
  } catch (err) {
    throw fail([...problems, `${DEFAULT_PRICES_FILE}: cannot read: ${(err as Error).message}`]);
  }
  const { prices } = table;
  problems.push(...table.problems);
  // Candidate prices come from the table, so the table is built before the routing check.
  problems.push(...fillCandidatePrices(config.routing, prices, table.rejected, Date.now()));
  problems.push(...routingProblems(config.routing));
  if (problems.length > 0) throw fail(problems);
  // Without problems, fillCandidatePrices has given every candidate a price.
  return { config: deepFreeze(config) as ResolvedConfig, prices };
}
