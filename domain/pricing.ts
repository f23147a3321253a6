/**
 * Pricing of usage events from a versioned price table (SPEC.md section 3).
 *
 * Cost = (input - cached) x P_in + cached x P_cached + (output - reasoning) x P_out
 *        + reasoning x P_reasoning, all prices in USD per 1M tokens, in exact decimal
 * arithmetic (decimal.js), so a cost is exact to 1e-12 USD and sums never drift.
 * An event is priced at the price in force at its event time; an unknown model is
 * reported as unpriced (null), never as $0.
 */
import { Decimal as DecimalJs } from 'decimal.js';

// 40 significant digits: 1e7 tokens x 1e3 USD/1M with 6 decimals needs 17; never rounds.
const Decimal = DecimalJs.clone({ precision: 40 });
type Decimal = InstanceType<typeof Decimal>;

/** One row of the price table as written in config. Prices are USD per 1M tokens. */
export interface PriceEntry {
  provider: string;
  model: string;
  /** First instant this price applies, RFC 3339 date or date-time (UTC if no zone). */
  effective_from: string;
  input_per_1m: number | string;
  /** Defaults to the input price (no cache discount). */
  cached_input_per_1m?: number | string;
  output_per_1m: number | string;
  /** Defaults to the output price (reasoning tokens are billed as output). */
  reasoning_per_1m?: number | string;
}

interface ResolvedPrice {
  fromMs: number;
  input: Decimal;
  cached: Decimal;
  output: Decimal;
  reasoning: Decimal;
  /** The same prices in micro-USD per 1M tokens: exact integers, since prices have <= 6 decimals. */
  micro: { input: number; cached: number; output: number; reasoning: number };
}

/** `<alias>-YYYY-MM-DD` or `<alias>-YYYYMMDD`: a provider's dated model snapshot. */
const DATED_SNAPSHOT = /^(.+)-(?:\d{4}-\d{2}-\d{2}|\d{8})$/;

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
/** A price above this (USD per 1M tokens) is taken as a unit error (per-token or per-1K price). */
export const MAX_PRICE_PER_1M = 1_000;

const ONE_MILLION = new Decimal(1_000_000);

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
 * An immutable price table, looked up by (provider, model, event time).
 * @throws PriceTableError listing every bad entry (negative, too precise, absurd, bad date,
 *   two entries for the same model and date).
 */
export class PriceTable {
  private readonly byModel = new Map<string, ResolvedPrice[]>();

  constructor(entries: readonly PriceEntry[]) {
    const problems: string[] = [];
    entries.forEach((e, i) => {
      const where = `prices[${i}] (${e.provider}/${e.model})`;
      const fromMs = parseEffectiveFrom(e.effective_from);
      if (Number.isNaN(fromMs)) problems.push(`${where}.effective_from: not an RFC 3339 date or date-time: ${e.effective_from}`);
      const dec = (field: string, v: number | string | undefined, fallback?: Decimal): Decimal => {
        if (v === undefined) return fallback ?? new Decimal(0);
        let d: Decimal;
        try {
          d = new Decimal(String(v));
        } catch {
          problems.push(`${where}.${field}: not a number: ${v}`);
          return new Decimal(0);
        }
        if (!d.isFinite() || d.isNeg()) problems.push(`${where}.${field}: must be a finite number >= 0, got ${v}`);
        else if (d.decimalPlaces() > MAX_PRICE_DECIMALS)
          problems.push(`${where}.${field}: more than ${MAX_PRICE_DECIMALS} decimals (${v})`);
        else if (d.gt(MAX_PRICE_PER_1M)) problems.push(`${where}.${field}: ${v} USD per 1M tokens is absurd (per-token price given?)`);
        return d;
      };
      const input = dec('input_per_1m', e.input_per_1m);
      const output = dec('output_per_1m', e.output_per_1m);
      const cached = dec('cached_input_per_1m', e.cached_input_per_1m, input);
      const reasoning = dec('reasoning_per_1m', e.reasoning_per_1m, output);
      const micro = (d: Decimal) => d.mul(1_000_000).floor().toNumber();
      const price: ResolvedPrice = {
        fromMs,
        input,
        output,
        cached,
        reasoning,
        micro: { input: micro(input), cached: micro(cached), output: micro(output), reasoning: micro(reasoning) },
      };
      const key = PriceTable.key(e.provider, e.model);
      const list = this.byModel.get(key) ?? [];
      if (list.some((p) => p.fromMs === fromMs)) problems.push(`${where}: two prices with effective_from ${e.effective_from}`);
      list.push(price);
      this.byModel.set(key, list);
    });
    if (problems.length > 0) throw new PriceTableError(problems);
    for (const list of this.byModel.values()) list.sort((a, b) => b.fromMs - a.fromMs); // newest first
  }

  private static key(provider: string, model: string): string {
    return `${provider.toLowerCase()}\u0000${model}`;
  }

  /** The price in force for (provider, model) at `timestampMs`, or undefined. */
  /**
   * The price in force for (provider, model) at `timestampMs`. A dated snapshot name that is not
   * in the table (`gpt-4o-2024-08-06`, as providers report the served model) falls back to its
   * undated alias (`gpt-4o`); an entry for the dated name always wins.
   */
  private lookup(provider: string, model: string, timestampMs: number): ResolvedPrice | undefined {
    const exact = this.byModel.get(PriceTable.key(provider, model));
    if (exact) return exact.find((p) => p.fromMs <= timestampMs);
    const alias = DATED_SNAPSHOT.exec(model)?.[1];
    return alias ? this.byModel.get(PriceTable.key(provider, alias))?.find((p) => p.fromMs <= timestampMs) : undefined;
  }

  /** Whether a price exists for (provider, model) at that time. */
  has(provider: string, model: string, timestampMs: number): boolean {
    return this.lookup(provider, model, timestampMs) !== undefined;
  }

  /**
   * Cost of one call in USD as an exact decimal string, or null when unpriced.
   * Token counts must already satisfy the subset rules (cached <= input, reasoning <= output).
   */
  cost(u: PriceableUsage): string | null {
    const p = this.lookup(u.provider, u.model, u.timestamp_ms);
    if (!p) return null;
    // Fast path, exact: tokens x micro-USD-per-1M = pico-USD, all integers. Taken only while
    // every intermediate stays below 2^53; otherwise fall through to decimal arithmetic.
    const m = p.micro;
    const pico =
      (u.input_tokens - u.cached_input_tokens) * m.input +
      u.cached_input_tokens * m.cached +
      (u.output_tokens - u.reasoning_tokens) * m.output +
      u.reasoning_tokens * m.reasoning;
    if (Number.isSafeInteger(pico)) return picoToUsd(pico);
    return p.input
      .mul(u.input_tokens - u.cached_input_tokens)
      .add(p.cached.mul(u.cached_input_tokens))
      .add(p.output.mul(u.output_tokens - u.reasoning_tokens))
      .add(p.reasoning.mul(u.reasoning_tokens))
      .div(ONE_MILLION)
      .toFixed();
  }
}
