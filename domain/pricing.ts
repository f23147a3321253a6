/**
 * Pricing of usage events from a versioned price table (SPEC.md section 3).
 *
 * Cost = (input - cached) x P_in + cached x P_cached + (output - reasoning) x P_out
 *        + reasoning x P_reasoning, all prices in USD per 1M tokens, in exact decimal
 * arithmetic (decimal.js), so a cost is exact to 1e-12 USD and sums never drift.
 * An event is priced at the price in force at its event time; an unknown model is
 * reported as unpriced (null), never as $0.
 *
 * Long-context tier: an entry may carry `long_context`. A call whose input_tokens is strictly
 * greater than its `above_input_tokens` is priced WHOLE (input, cached, output, reasoning) at the
 * tier's prices, as Google bills Gemini "prompts longer than 128k tokens" and Anthropic bills
 * Claude Sonnet 4 calls "over 200K input tokens" (their pricing pages). A call exactly at the
 * boundary pays the base price.
 *
 * Unit: prices are written in USD per 1M tokens (`unit: per_1m`, the default), or per 1K tokens
 * (`unit: per_1k`), which are multiplied by 1,000 (exactly) at load and then checked like per-1M ones.
 */
import { Decimal as DecimalJs } from 'decimal.js';

// 40 significant digits: 1e7 tokens x 1e3 USD/1M with 6 decimals needs 17; never rounds.
const Decimal = DecimalJs.clone({ precision: 40 });
type Decimal = InstanceType<typeof Decimal>;

/** A price, as written in config: a number or a plain decimal string ("0.15"). */
export type PriceValue = number | string;

/**
 * The long-context tier of a price entry: prices (in the entry's `unit`) for calls whose
 * input_tokens is strictly greater than `above_input_tokens`.
 */
export interface LongContextPrice {
  /** Tier boundary in input tokens, a positive whole number. input_tokens == boundary pays the base price. */
  above_input_tokens: number;
  input_per_1m: PriceValue;
  /** Defaults to the tier's input price (not the base cached price). */
  cached_input_per_1m?: PriceValue;
  output_per_1m: PriceValue;
  /** Defaults to the tier's output price. */
  reasoning_per_1m?: PriceValue;
}

/**
 * One row of the price table as written in config. Prices are USD per 1M tokens, or per 1K
 * tokens when `unit` is `per_1k` (the field names stay `*_per_1m`).
 */
export interface PriceEntry {
  provider: string;
  model: string;
  /** First instant this price applies, RFC 3339 date or date-time (UTC if no zone). */
  effective_from: string;
  /** `per_1m` (default): USD per 1M tokens; `per_1k`: USD per 1K tokens. Anything else is rejected. */
  unit?: string;
  input_per_1m: PriceValue;
  /** Defaults to the input price (no cache discount). */
  cached_input_per_1m?: PriceValue;
  output_per_1m: PriceValue;
  /** Defaults to the output price (reasoning tokens are billed as output). */
  reasoning_per_1m?: PriceValue;
  /** Prices for calls with more input tokens than the tier boundary (whole call at these prices). */
  long_context?: LongContextPrice;
}

/** Base list prices of an entry, USD per 1M tokens as exact decimal strings (see `PriceTable.listPrice`). */
export interface ListPrice {
  input_per_1m: string;
  cached_input_per_1m: string;
  output_per_1m: string;
  reasoning_per_1m: string;
}

/** One set of rates (base or long-context tier), USD per 1M tokens. */
interface Rates {
  input: Decimal;
  cached: Decimal;
  output: Decimal;
  reasoning: Decimal;
  /** The same prices in micro-USD per 1M tokens: exact integers, since prices have <= 6 decimals. */
  micro: { input: number; cached: number; output: number; reasoning: number };
}

interface ResolvedPrice {
  fromMs: number;
  base: Rates;
  /** Rates for calls with input_tokens > `aboveInputTokens`. */
  longContext?: { aboveInputTokens: number; rates: Rates };
}

/** `<alias>-YYYY-MM-DD` or `<alias>-YYYYMMDD`: a provider's dated model snapshot (group 1 = the alias). */
export const DATED_SNAPSHOT = /^(.+)-(?:\d{4}-\d{2}-\d{2}|\d{8})$/;

/** 1 USD in pico-USD (1e-12 USD), the unit of the integer fast path. */
const PICO_PER_USD = 1_000_000_000_000;

/** An exact non-negative integer count of pico-USD as a plain decimal string in USD, no trailing zeros. */
function picoToUsd(pico: number): string {
  const whole = Math.floor(pico / PICO_PER_USD);
  const frac = String(pico - whole * PICO_PER_USD)
    .padStart(12, '0')
    .replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : String(whole);
}

/** Prices may carry at most 6 decimals (USD per 1M tokens) so every cost is exact in Decimal(38, 12). */
export const MAX_PRICE_DECIMALS = 6;
/** A price above this (USD per 1M tokens) is taken as a unit error (per-1K price, cents, per 1B tokens). */
export const MAX_PRICE_PER_1M = 1_000;
/**
 * A price other than 0 below this (USD per 1M tokens) is taken as a per-token price written where
 * a per-1M (or per-1K) one belongs: 3 USD per 1M is 0.000003 per token, which would under-price by
 * 1e6. The bound is 5x below the cheapest price of config/prices.default.yaml (0.025, a cached
 * input price); 0 stays allowed (a free or self-hosted model).
 */
export const MIN_PRICE_PER_1M = 0.005;

const ONE_MILLION = new Decimal(1_000_000);

/** How a written price becomes USD per 1M tokens, by the entry's `unit`. */
interface PriceUnit {
  /** Multiplier to USD per 1M tokens: 10^shift. */
  factor: Decimal;
  /** Decimal places the conversion moves: a written price may have MAX_PRICE_DECIMALS + shift. */
  shift: number;
  /** "1M" or "1K", for messages. */
  per: string;
}
const PER_1M: PriceUnit = { factor: new Decimal(1), shift: 0, per: '1M' };
// A Map, not an object literal: a unit such as "toString" must not find an inherited property.
const UNITS = new Map<string, PriceUnit>([
  ['per_1m', PER_1M],
  ['per_1k', { factor: new Decimal(1_000), shift: 3, per: '1K' }],
]);

export class PriceTableError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid price table:\n  ${problems.join('\n  ')}`);
    this.name = 'PriceTableError';
  }
}

export interface PricedCost {
  /** Exact decimal string in USD, or null when the model has no price at that time. */
  cost_usd: string | null;
}

export interface PriceableUsage {
  provider: string;
  model: string;
  timestamp_ms: number;
  input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
}

// RFC 3339 full-date, optionally with a time (zone optional: UTC if none).
const EFFECTIVE_FROM = /^(\d{4})-(\d{2})-(\d{2})(?:T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})?)?$/;

function parseEffectiveFrom(text: string): number {
  // TRICKY: Date.parse alone takes "March 1, 2024" or "2024" and rolls 2024-02-30 over into March.
  const m = EFFECTIVE_FROM.exec(text);
  if (!m) return Number.NaN;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (month < 1 || month > 12 || new Date(Date.UTC(year, month - 1, day)).getUTCDate() !== day) return Number.NaN;
  const withTime = /^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text;
  const ms = Date.parse(/[zZ]|[+-]\d{2}:\d{2}$/.test(withTime) ? withTime : `${withTime}Z`);
  return ms;
}

/**
 * One written price (in `unit`) as USD per 1M tokens, or undefined when absent. A bad price is
 * reported as `<field>: reason` in `problems` (the value returned then does not matter).
 */
function readPrice(field: string, v: PriceValue | undefined, unit: PriceUnit, problems: string[]): Decimal | undefined {
  if (v === undefined) return undefined;
  let written: Decimal;
  try {
    written = new Decimal(String(v));
  } catch {
    problems.push(`${field}: not a number: ${v}`);
    return new Decimal(0);
  }
  if (!written.isFinite() || written.isNeg()) {
    problems.push(`${field}: must be a finite number >= 0, got ${v}`);
    return written;
  }
  // Decimals are counted on the written value: the product below is rounded to 40 digits, which
  // is exact for any price that passes (<= 9 decimals, <= 1000) but could hide an excess decimal.
  const tooPrecise = written.decimalPlaces() > MAX_PRICE_DECIMALS + unit.shift;
  const d = written.mul(unit.factor);
  // Checked before the decimals: a per-token price often has more than 6 decimals too, and the
  // hint says what to write instead.
  if (!d.isZero() && d.lt(MIN_PRICE_PER_1M)) {
    const per1m = written.mul(ONE_MILLION).toFixed();
    const as = unit === PER_1M ? `${v} USD per 1M tokens` : `${v} USD per ${unit.per} tokens = ${d.toFixed()} USD per 1M tokens`;
    problems.push(
      `${field}: ${as} is implausibly low (under ${MIN_PRICE_PER_1M} per 1M; 0 is allowed for a free model): a per-token price? ` +
        `${v} USD per token is ${per1m} USD per 1M tokens${unit === PER_1M ? '' : ', written without unit: per_1k'}`,
    );
  } else if (unit === PER_1M) {
    if (tooPrecise) problems.push(`${field}: more than ${MAX_PRICE_DECIMALS} decimals (${v})`);
    else if (d.gt(MAX_PRICE_PER_1M))
      problems.push(
        `${field}: ${v} USD per 1M tokens is absurd (over ${MAX_PRICE_PER_1M}): a unit error? ` +
          'Prices are USD per 1M tokens, or per 1K tokens with unit: per_1k',
      );
  } else if (tooPrecise) {
    problems.push(
      `${field}: more than ${MAX_PRICE_DECIMALS} decimals once converted to USD per 1M (${v} per ${unit.per} = ${d.toFixed()} per 1M)`,
    );
  } else if (d.gt(MAX_PRICE_PER_1M)) {
    problems.push(
      `${field}: ${v} USD per ${unit.per} tokens = ${d.toFixed()} USD per 1M tokens is absurd (over ${MAX_PRICE_PER_1M} per 1M): ` +
        `a unit error? unit: per_1k takes USD per 1K tokens; drop it for per-1M prices`,
    );
  }
  return d;
}

/**
 * The four rates of a base entry or of its tier, USD per 1M tokens. `prefix` is the field path
 * (`prices[3] (google/gemini-1.5-pro).` or `....long_context.`). Missing cached and reasoning
 * prices default to this same set's input and output prices.
 */
function readRates(
  prefix: string,
  p: Pick<LongContextPrice, 'input_per_1m' | 'cached_input_per_1m' | 'output_per_1m' | 'reasoning_per_1m'>,
  unit: PriceUnit,
  problems: string[],
): Rates {
  const required = (field: string, v: PriceValue | undefined): Decimal => {
    const d = readPrice(prefix + field, v, unit, problems);
    if (d === undefined) problems.push(`${prefix}${field}: missing`);
    return d ?? new Decimal(0);
  };
  const input = required('input_per_1m', p.input_per_1m);
  const output = required('output_per_1m', p.output_per_1m);
  const cached = readPrice(`${prefix}cached_input_per_1m`, p.cached_input_per_1m, unit, problems) ?? input;
  const reasoning = readPrice(`${prefix}reasoning_per_1m`, p.reasoning_per_1m, unit, problems) ?? output;
  const micro = (d: Decimal) => d.mul(1_000_000).floor().toNumber();
  return {
    input,
    cached,
    output,
    reasoning,
    micro: { input: micro(input), cached: micro(cached), output: micro(output), reasoning: micro(reasoning) },
  };
}

/** How `PriceTable` names its entries and what it does with bad ones. */
export interface PriceTableOptions {
  /**
   * The name of entry `index` in problems (default `prices[index]`): config/load.ts names the
   * default table's entries and the user's apart, each by its own index.
   */
  label?: (index: number) => string;
  /**
   * Leave bad entries out (and list their problems in `problems`, their indexes in `skipped`)
   * instead of throwing: config/load.ts runs the routing checks on the entries that are valid.
   */
  skipInvalid?: boolean;
}

/**
 * An immutable price table, looked up by (provider, model, event time).
 * @throws PriceTableError listing every bad entry (negative, too precise, absurdly high or low,
 *   bad date, bad unit, bad long-context boundary, two entries for the same model and date), each
 *   as `prices[i] (provider/model).field: reason`; unless `skipInvalid`.
 */
export class PriceTable {
  private readonly byModel = new Map<string, ResolvedPrice[]>();
  /** The problems of the entries left out (empty unless built with `skipInvalid`). */
  readonly problems: readonly string[];
  /** Indexes of the entries left out (empty unless built with `skipInvalid`). */
  readonly skipped: ReadonlySet<number>;

  constructor(entries: readonly PriceEntry[], options: PriceTableOptions = {}) {
    const label = options.label ?? ((i: number) => `prices[${i}]`);
    const problems: string[] = [];
    const skipped = new Set<number>();
    /** provider/model key -> effective_from (epoch ms) -> the label of the first entry with it. */
    const dates = new Map<string, Map<number, string>>();
    entries.forEach((e, i) => {
      const before = problems.length;
      const where = `${label(i)} (${e.provider}/${e.model})`;
      const fromMs = parseEffectiveFrom(e.effective_from);
      if (Number.isNaN(fromMs)) problems.push(`${where}.effective_from: not an RFC 3339 date or date-time: ${e.effective_from}`);
      let unit = UNITS.get(e.unit ?? 'per_1m');
      if (!unit) {
        problems.push(`${where}.unit: must be per_1m (USD per 1M tokens) or per_1k (USD per 1K tokens), got ${JSON.stringify(e.unit)}`);
        unit = PER_1M; // still check the prices for what does not depend on the unit
      }
      const price: ResolvedPrice = { fromMs, base: readRates(`${where}.`, e, unit, problems) };
      const tier = e.long_context;
      if (tier !== undefined) {
        const above = tier.above_input_tokens;
        if (!Number.isSafeInteger(above) || above <= 0)
          problems.push(`${where}.long_context.above_input_tokens: must be a whole number of tokens > 0, got ${above}`);
        price.longContext = { aboveInputTokens: above, rates: readRates(`${where}.long_context.`, tier, unit, problems) };
      }
      const key = PriceTable.key(e.provider, e.model);
      // Dates of bad entries count too: the clash is a problem of its own, whichever is fixed first.
      const seen = dates.get(key) ?? new Map<number, string>();
      const first = seen.get(fromMs);
      if (first !== undefined) problems.push(`${where}: two prices with effective_from ${e.effective_from} (${first} has the same)`);
      else if (!Number.isNaN(fromMs)) seen.set(fromMs, label(i));
      dates.set(key, seen);
      if (problems.length > before) {
        skipped.add(i);
        return;
      }
      this.byModel.set(key, [...(this.byModel.get(key) ?? []), price]);
    });
    if (problems.length > 0 && !options.skipInvalid) throw new PriceTableError(problems);
    this.problems = problems;
    this.skipped = skipped;
    for (const list of this.byModel.values()) list.sort((a, b) => b.fromMs - a.fromMs); // newest first
  }

  private static key(provider: string, model: string): string {
    return `${provider.toLowerCase()}\u0000${model}`;
  }

  /**
   * The price in force for (provider, model) at `timestampMs`, or undefined. A dated snapshot
   * name that is not in the table (`gpt-4o-2024-08-06`, as providers report the served model)
   * falls back to its undated alias (`gpt-4o`); an entry for the dated name always wins.
   */
  private lookup(provider: string, model: string, timestampMs: number): ResolvedPrice | undefined {
    const exact = this.byModel.get(PriceTable.key(provider, model));
    if (exact) return exact.find((p) => p.fromMs <= timestampMs);
    const alias = DATED_SNAPSHOT.exec(model)?.[1];
    return alias ? this.byModel.get(PriceTable.key(provider, alias))?.find((p) => p.fromMs <= timestampMs) : undefined;
  }

  /**
   * The (provider, model) pairs with a price in force at `atMs` (epoch ms, UTC), provider in lower
   * case, sorted by provider then model: the alternatives a recommendation may price a call on.
   */
  models(atMs: number): Array<{ provider: string; model: string }> {
    const out: Array<{ provider: string; model: string }> = [];
    for (const [key, list] of this.byModel) {
      if (!list.some((p) => p.fromMs <= atMs)) continue;
      const [provider, model] = key.split('\u0000') as [string, string];
      out.push({ provider, model });
    }
    return out.sort((a, b) => (a.provider === b.provider ? (a.model < b.model ? -1 : 1) : a.provider < b.provider ? -1 : 1));
  }

  /** Whether a price exists for (provider, model) at that time. */
  has(provider: string, model: string, timestampMs: number): boolean {
    return this.lookup(provider, model, timestampMs) !== undefined;
  }

  /**
   * The base list price (below any long-context tier) in force for (provider, model) at `atMs`
   * (epoch ms, UTC), in USD per 1M tokens as exact decimal strings whatever unit the entry was
   * written in, or undefined when unpriced then. Snapshot names fall back to their alias as in `cost`.
   */
  listPrice(provider: string, model: string, atMs: number): ListPrice | undefined {
    const p = this.lookup(provider, model, atMs);
    if (!p) return undefined;
    return {
      input_per_1m: p.base.input.toFixed(),
      cached_input_per_1m: p.base.cached.toFixed(),
      output_per_1m: p.base.output.toFixed(),
      reasoning_per_1m: p.base.reasoning.toFixed(),
    };
  }

  /**
   * Cost of one call in USD as an exact decimal string, or null when unpriced. A call with more
   * input tokens than the entry's long-context boundary is priced whole at the tier's rates.
   * Token counts must already satisfy the subset rules (cached <= input, reasoning <= output).
   */
  cost(u: PriceableUsage): string | null {
    const p = this.lookup(u.provider, u.model, u.timestamp_ms);
    if (!p) return null;
    const r = p.longContext && u.input_tokens > p.longContext.aboveInputTokens ? p.longContext.rates : p.base;
    // Fast path, exact: tokens x micro-USD-per-1M = pico-USD, all integers. Taken only while
    // every intermediate stays below 2^53; otherwise fall through to decimal arithmetic.
    const m = r.micro;
    const pico =
      (u.input_tokens - u.cached_input_tokens) * m.input +
      u.cached_input_tokens * m.cached +
      (u.output_tokens - u.reasoning_tokens) * m.output +
      u.reasoning_tokens * m.reasoning;
    if (Number.isSafeInteger(pico)) return picoToUsd(pico);
    return r.input
      .mul(u.input_tokens - u.cached_input_tokens)
      .add(r.cached.mul(u.cached_input_tokens))
      .add(r.output.mul(u.output_tokens - u.reasoning_tokens))
      .add(r.reasoning.mul(u.reasoning_tokens))
      .div(ONE_MILLION)
      .toFixed();
  }
}
