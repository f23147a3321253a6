/**
 * What a dead letter of a context record may keep of the payload (domain/dead-letter.ts keeps
 * the payload byte for byte). A tenant whose config says text must not be stored must not find
 * it in `dead_letters` either, and an oversized record must not become an oversized Kafka
 * message: in both cases the text is replaced by its hash and length.
 */
import { sha256Hex } from './context-validation.ts';

/** The mark left where a payload was withheld whole (it was not a JSON object, or still too large). */
export function withheldMark(raw: string): string {
  return `(withheld: ${Buffer.byteLength(raw, 'utf8')} bytes, sha256 ${sha256Hex(raw)})`;
}

/**
 * The `raw` of a context dead letter.
 * @param keepContent true when the tenant stores text and the record is within the size limit:
 *   the payload is kept as sent.
 * @param maxBytes when withholding, a result larger than this (UTF-8 bytes) is replaced by `withheldMark`.
 * @returns the payload as sent; or, with its `content` string replaced by
 *   `{ "withheld": true, "sha256": ..., "length": <UTF-8 bytes> }`; or `withheldMark(raw)` when
 *   the payload is not a JSON object (its text cannot be told apart from the rest).
 */
export function contextDeadLetterRaw(raw: string, keepContent: boolean, maxBytes = Number.POSITIVE_INFINITY): string {
  if (keepContent) return raw;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return withheldMark(raw);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return withheldMark(raw);
  const v = value as Record<string, unknown>;
  const text = v.content;
  // A content that is not a string (parts, blocks) may hold text anywhere: withheld whole.
  if (text !== undefined && typeof text !== 'string') return withheldMark(raw);
  const out =
    typeof text === 'string'
      ? JSON.stringify({ ...v, content: { withheld: true, sha256: sha256Hex(text), length: Buffer.byteLength(text, 'utf8') } })
      : raw;
  return Buffer.byteLength(out, 'utf8') > maxBytes ? withheldMark(raw) : out;
}
