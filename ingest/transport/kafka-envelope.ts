/**
 * Kafka record envelopes: the Kafka transport packs the messages of one `send()` that share a key
 * into a few Kafka records, and its consumer unpacks them again, so the rest of the code still
 * sees one message per event (`Producer.send` / `ConsumedBatch` in transport.ts are unchanged).
 *
 * Why: the Kafka client's work is per record (kafkajs 2.2 spends about 12 µs of CPU to encode and
 * 5 µs to decode one record on the 2-core bench machine: bench/kafka-clients.bench.ts), more than
 * the whole processor transform of an event. One record per 1,000 events makes it negligible.
 * Kafka guarantees are per record, so they carry over: an envelope is written, acknowledged,
 * fetched and committed as a whole; its messages share the key (tenant), hence the partition
 * and the order.
 *
 * Wire formats (the record header `qf-batch` names the version):
 * - version 2, used when no value of the run contains a newline (every usage event the ingest
 *   API writes: it is one line of JSON): a first line with the messages' headers, then the
 *   values, one per line, in send order. The first line is empty when no message has headers,
 *   else a JSON array with one object of strings per message. The values are not escaped, so
 *   they come back byte for byte, the record is no larger than its events, and only the small
 *   headers cost JSON work.
 * - version 1, for any other run: a JSON array with one entry per message, in send order:
 *   `[value]` or `[value, headers]` (`value` the message text, `headers` an object of strings).
 * A record without that header is one plain message, as an external producer writes it; a
 * record whose envelope cannot be read is delivered as one plain message (its value as is), so
 * the processor dead-letters it instead of dropping it. Consumers read both versions.
 */
import type { OutgoingMessage } from './transport.ts';

/** Record header that marks an envelope; its value is the format version. */
export const ENVELOPE_HEADER = 'qf-batch';
/** A JSON array of `[value]` / `[value, headers]` entries (any messages). */
export const ENVELOPE_VERSION_JSON = '1';
/** A headers line, then the values one per line (messages whose values have no newline). */
export const ENVELOPE_VERSION_LINES = '2';

export interface EnvelopeLimits {
  /** Most messages in one envelope: bounds how far a consumer batch can exceed its size. */
  maxMessages: number;
  /**
   * Most UTF-16 code units of message text (values and headers) in one envelope. With JSON
   * escaping an envelope's UTF-8 size stays within a small multiple of it; `packMessages`
   * splits any envelope that still ends up over `maxBytes`.
   */
  maxChars: number;
  /** Largest envelope value, UTF-8 bytes (must stay under the broker's message.max.bytes). */
  maxBytes: number;
}

/**
 * Defaults: 1,000 messages (about 290 KB of 250-byte events) or 256 Ki characters per envelope,
 * at most 512 KiB. The broker refuses a record batch over `message.max.bytes` (default
 * 1,048,588 bytes): https://kafka.apache.org/documentation/#brokerconfigs_message.max.bytes
 */
export const DEFAULT_ENVELOPE_LIMITS: EnvelopeLimits = { maxMessages: 1_000, maxChars: 256 * 1024, maxBytes: 512 * 1024 };

/** One Kafka record to produce (an envelope or a plain message). */
export interface RecordOut {
  key: string;
  value: string;
  headers?: Record<string, string>;
}

function headerChars(headers: Record<string, string> | undefined): number {
  if (!headers) return 0;
  let n = 0;
  for (const k in headers) n += k.length + (headers[k]?.length ?? 0) + 6;
  return n;
}

/** Whether a run can travel as version 2: no newline in any value. */
function fitsLines(run: readonly OutgoingMessage[]): boolean {
  for (const m of run) if (m.value.includes('\n')) return false;
  return true;
}

function hasHeaders(m: OutgoingMessage): boolean {
  if (m.headers) for (const _ in m.headers) return true;
  return false;
}

/** Version 2 value: the headers line (empty, or a JSON array of one object per message), then the values. */
function linesValue(run: readonly OutgoingMessage[]): string {
  let value = run.some(hasHeaders) ? JSON.stringify(run.map((m) => m.headers ?? {})) : '';
  for (const m of run) value += `\n${m.value}`;
  return value;
}

function envelope(key: string, run: readonly OutgoingMessage[], maxBytes: number): RecordOut[] {
  const lines = fitsLines(run);
  const value = lines
    ? linesValue(run)
    : JSON.stringify(run.map((m) => (m.headers && Object.keys(m.headers).length > 0 ? [m.value, m.headers] : [m.value])));
  if (run.length > 1 && Buffer.byteLength(value) > maxBytes) {
    // Rare (multi-byte text, or text that JSON escaping inflates): halve until each part fits.
    const half = Math.ceil(run.length / 2);
    return [...envelope(key, run.slice(0, half), maxBytes), ...envelope(key, run.slice(half), maxBytes)];
  }
  return [{ key, value, headers: { [ENVELOPE_HEADER]: lines ? ENVELOPE_VERSION_LINES : ENVELOPE_VERSION_JSON } }];
}

/**
 * Pack messages into Kafka records: per key, consecutive runs within `limits` become one
 * envelope each. A message alone in its run is sent as a plain record (unless it carries the
 * envelope header itself, which a plain record must not). Messages of one key keep their order;
 * keys appear in the order of their first message (different keys have no order in Kafka anyway).
 */
export function packMessages(messages: readonly OutgoingMessage[], limits: EnvelopeLimits = DEFAULT_ENVELOPE_LIMITS): RecordOut[] {
  const byKey = new Map<string, OutgoingMessage[]>();
  for (const m of messages) {
    const run = byKey.get(m.key);
    if (run) run.push(m);
    else byKey.set(m.key, [m]);
  }
  const records: RecordOut[] = [];
  const flush = (key: string, run: OutgoingMessage[]) => {
    const only = run[0];
    if (run.length === 1 && only && !(only.headers && ENVELOPE_HEADER in only.headers)) records.push(only);
    else if (run.length > 0) records.push(...envelope(key, run, limits.maxBytes));
  };
  for (const [key, all] of byKey) {
    let run: OutgoingMessage[] = [];
    let chars = 0;
    for (const m of all) {
      const size = m.value.length + headerChars(m.headers) + 8;
      if (run.length > 0 && (run.length >= limits.maxMessages || chars + size > limits.maxChars)) {
        flush(key, run);
        run = [];
        chars = 0;
      }
      run.push(m);
      chars += size;
    }
    flush(key, run);
  }
  return records;
}

/** One message read back from a record. */
export interface UnpackedMessage {
  value: string;
  headers: Record<string, string>;
}

function isStringRecord(v: unknown): v is Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  for (const k in v) if (typeof (v as Record<string, unknown>)[k] !== 'string') return false;
  return true;
}

/** Version 2 (see the module comment); an unreadable one is one plain message. */
function unpackLines(value: string, headers: Record<string, string>): UnpackedMessage[] {
  const first = value.indexOf('\n');
  if (first < 0) return [{ value, headers }];
  const values = value.slice(first + 1).split('\n');
  let perMessage: unknown[] | null = null;
  if (first > 0) {
    try {
      perMessage = JSON.parse(value.slice(0, first));
    } catch {
      return [{ value, headers }];
    }
    if (!Array.isArray(perMessage) || perMessage.length !== values.length || !perMessage.every(isStringRecord)) return [{ value, headers }];
  }
  const out: UnpackedMessage[] = new Array(values.length);
  for (let i = 0; i < values.length; i++) {
    out[i] = { value: values[i] as string, headers: perMessage ? (perMessage[i] as Record<string, string>) : {} };
  }
  return out;
}

/**
 * The messages of one consumed record: the envelope's entries, or the record itself when it is
 * not an envelope (no `qf-batch` header of a known version) or its envelope cannot be read.
 * Never throws.
 */
export function unpackRecord(value: string, headers: Record<string, string>): UnpackedMessage[] {
  const version = headers[ENVELOPE_HEADER];
  if (version === ENVELOPE_VERSION_LINES) return unpackLines(value, headers);
  if (version !== ENVELOPE_VERSION_JSON) return [{ value, headers }];
  let entries: unknown;
  try {
    entries = JSON.parse(value);
  } catch {
    return [{ value, headers }];
  }
  if (!Array.isArray(entries) || entries.length === 0) return [{ value, headers }];
  const out: UnpackedMessage[] = new Array(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as unknown;
    if (!Array.isArray(e) || typeof e[0] !== 'string' || (e.length > 1 && !isStringRecord(e[1])) || e.length > 2)
      return [{ value, headers }];
    out[i] = { value: e[0], headers: (e[1] as Record<string, string> | undefined) ?? {} };
  }
  return out;
}
