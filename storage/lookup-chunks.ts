/**
 * Chunks of a lookup's keys, so that the text of the parameters bound to one query stays small.
 *
 * The processors look keys up with `col IN {param:Array(String)}` queries (the usage id index,
 * the contexts' versions). Measured on chDB 26.7 with 3,000,000 stored ids (`npm run
 * bench:processor -- prefill=3000000` and docs/benchmarks.md): a lookup whose bound id array held
 * about 0.9 MiB of text answered in 0.1 s, one with a little over 1 MiB ran for more than a minute,
 * whether that was 24,000 UUIDs or 10,000 ids of 100 characters. Cutting by key count alone
 * (20,000 per query before) crossed that line with ids over about 50 characters (event ids may
 * have 128). On a server the parameters travel in the URL, which has its own size limit.
 */

/** Most keys in one lookup query. */
export const LOOKUP_MAX_KEYS = 20_000;

/**
 * Most text bound to one lookup query, in UTF-8 bytes plus 4 per value (quotes, separator and room
 * for an escape): 768 KiB, three quarters of the size at which the lookups above broke down.
 */
export const LOOKUP_MAX_TEXT = 768 * 1024;

/** The bound text one value adds to a lookup query (see LOOKUP_MAX_TEXT). */
export function boundText(value: string): number {
  return Buffer.byteLength(value) + 4;
}

/**
 * `items` in order, cut into chunks of at most LOOKUP_MAX_KEYS items and LOOKUP_MAX_TEXT of bound
 * text, where `textOf(item)` is the text one item binds (the sum of `boundText` of its values).
 * An item larger than the budget on its own goes alone.
 */
export function lookupChunks<T>(items: readonly T[], textOf: (item: T) => number, maxText = LOOKUP_MAX_TEXT): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let text = 0;
  for (const item of items) {
    const size = textOf(item);
    if (current.length > 0 && (current.length >= LOOKUP_MAX_KEYS || text + size > maxText)) {
      chunks.push(current);
      current = [];
      text = 0;
    }
    current.push(item);
    text += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
