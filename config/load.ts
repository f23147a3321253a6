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
import { type Config, ConfigSchema, ENV_OVERRIDES } from '../schemas/config.ts';

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
    obj[section] ??= {};
    const sec = obj[section] as Record<string, unknown>;
    sec[key] = /^-?\d+$/.test(v) && key !== 'password' && key !== 'path' ? Number(v) : v;
  }
  const withDefaults = Value.Default(ConfigSchema, obj);
  for (const e of Value.Errors(ConfigSchema, withDefaults)) {
    problems.push(`${e.path.replace(/^\//, '').replaceAll('/', '.') || '(root)'}: ${e.message}`);
  }
  if (problems.length > 0) throw new ConfigError(source, problems);
  const config = withDefaults as Config;
  if (config.clickhouse.mode === 'server' && !/^https?:\/\//.test(config.clickhouse.url)) {
    problems.push(`clickhouse.url: must be an http(s) URL in server mode, got ${config.clickhouse.url}`);
  }
  let prices: PriceTable | undefined;
  try {
    const base = config.use_default_prices ? (readStructured(DEFAULT_PRICES_FILE) as PriceEntry[]) : [];
    prices = new PriceTable([...base, ...config.prices]);
  } catch (err) {
    if (err instanceof PriceTableError) problems.push(...err.problems);
    else problems.push(`prices: ${(err as Error).message}`);
  }
  if (problems.length > 0 || !prices) throw new ConfigError(source, problems);
  return { config: deepFreeze(config), prices };
}
