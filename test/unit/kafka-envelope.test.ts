import { describe, expect, it } from 'vitest';
import { ENVELOPE_HEADER, type EnvelopeLimits, packMessages, unpackRecord } from '../../ingest/transport/kafka-envelope.ts';
import type { OutgoingMessage } from '../../ingest/transport/transport.ts';

const limits = (over: Partial<EnvelopeLimits> = {}): EnvelopeLimits => ({
  maxMessages: 1_000,
  maxChars: 1_000_000,
  maxBytes: 1_000_000,
  ...over,
});
/** What a consumer reads back from a list of produced records, in record order. */
const roundTrip = (records: ReturnType<typeof packMessages>) => records.flatMap((r) => unpackRecord(r.value, r.headers ?? {}));

describe('packMessages / unpackRecord', () => {
  it('packs the messages of one key into one envelope and reads them back in order with their headers', () => {
    const messages: OutgoingMessage[] = [
      { key: 't1', value: '{"a":1}', headers: { 'qf-source': 'http:r:0' } },
      { key: 't1', value: '{"a":2}' },
      { key: 't1', value: 'line\nwith "quotes" and é 😀', headers: { n: '3' } },
    ];
    const records = packMessages(messages, limits());
    expect(records).toHaveLength(1);
    expect(records[0]?.key).toBe('t1');
    expect(records[0]?.headers).toEqual({ [ENVELOPE_HEADER]: '1' });
    expect(roundTrip(records)).toEqual([
      { value: '{"a":1}', headers: { 'qf-source': 'http:r:0' } },
      { value: '{"a":2}', headers: {} },
      { value: 'line\nwith "quotes" and é 😀', headers: { n: '3' } },
    ]);
  });

  it('keeps each key in its own records, in order per key; a lone message goes as a plain record', () => {
    const messages: OutgoingMessage[] = ['a1', 'b1', 'a2', 'c1', 'a3', 'b2'].map((v) => ({ key: v[0] as string, value: v }));
    const records = packMessages(messages, limits());
    expect(records.map((r) => r.key)).toEqual(['a', 'b', 'c']);
    expect(records[2]).toEqual({ key: 'c', value: 'c1' }); // plain: no envelope header
    expect(roundTrip(records).map((m) => m.value)).toEqual(['a1', 'a2', 'a3', 'b1', 'b2', 'c1']);
  });

  it('splits a key into envelopes of at most maxMessages and maxChars', () => {
    const messages = Array.from({ length: 7 }, (_, i) => ({ key: 'k', value: `v${i}` }));
    // 7 messages, 3 per envelope: 3 + 3 + 1 (the last one alone is a plain record).
    const byCount = packMessages(messages, limits({ maxMessages: 3 }));
    expect(byCount.map((r) => unpackRecord(r.value, r.headers ?? {}).length)).toEqual([3, 3, 1]);
    expect(byCount[2]).toEqual({ key: 'k', value: 'v6' });
    // Each message counts its length + 8: 10 per message, so a 25-character budget holds 2.
    const byChars = packMessages(messages, limits({ maxChars: 25 }));
    expect(byChars.map((r) => unpackRecord(r.value, r.headers ?? {}).length)).toEqual([2, 2, 2, 1]);
    expect(roundTrip(byChars).map((m) => m.value)).toEqual(messages.map((m) => m.value));
  });

  it('halves an envelope whose UTF-8 size is over maxBytes', () => {
    // 4 values of 100 "é" (2 bytes each in UTF-8): one envelope would be about 810 bytes.
    const messages = Array.from({ length: 4 }, (_, i) => ({ key: 'k', value: `${i}${'é'.repeat(100)}` }));
    const records = packMessages(messages, limits({ maxBytes: 450 }));
    expect(records).toHaveLength(2);
    for (const r of records) expect(Buffer.byteLength(r.value)).toBeLessThanOrEqual(450);
    expect(roundTrip(records).map((m) => m.value)).toEqual(messages.map((m) => m.value));
  });

  it('never sends a message carrying the envelope header as a plain record', () => {
    const records = packMessages([{ key: 'k', value: 'x', headers: { [ENVELOPE_HEADER]: '1' } }], limits());
    expect(records[0]?.headers).toEqual({ [ENVELOPE_HEADER]: '2' });
    expect(roundTrip(records)).toEqual([{ value: 'x', headers: { [ENVELOPE_HEADER]: '1' } }]);
  });

  it('reads a record without the header, or with an unreadable envelope, as one plain message', () => {
    expect(unpackRecord('{"event_id":"e1"}', { 'qf-source': 's' })).toEqual([
      { value: '{"event_id":"e1"}', headers: { 'qf-source': 's' } },
    ]);
    const v1 = { [ENVELOPE_HEADER]: '1' };
    for (const bad of ['not json', '[]', '{"a":1}', '[["ok"],[1]]', '[["v",{"n":1}]]', '[["v",{},"extra"]]']) {
      expect(unpackRecord(bad, v1)).toEqual([{ value: bad, headers: v1 }]);
    }
    // Version 2: no headers line; a headers line that is not JSON, not an array of the right
    // length, or with a header value that is not a string.
    const v2 = { [ENVELOPE_HEADER]: '2' };
    for (const bad of ['no newline', 'nope\na\nb', '[{}]\na\nb', '[{},{"n":1}]\na\nb', '{}\na']) {
      expect(unpackRecord(bad, v2)).toEqual([{ value: bad, headers: v2 }]);
    }
    // An unknown format version is not read as one of ours.
    expect(unpackRecord('[["a"],["b"]]', { [ENVELOPE_HEADER]: '3' })).toHaveLength(1);
    expect(unpackRecord('\na\nb', { [ENVELOPE_HEADER]: '3' })).toHaveLength(1);
  });

  it('joins one-line messages with newlines (version 2): byte for byte, unescaped, after an empty headers line', () => {
    const values = ['{"a":"x \\" y"}', '', 'é 😀 \t tab', '', '{"b":2}'];
    const records = packMessages(
      values.map((value) => ({ key: 'k', value })),
      limits(),
    );
    expect(records).toEqual([{ key: 'k', value: `\n${values.join('\n')}`, headers: { [ENVELOPE_HEADER]: '2' } }]);
    expect(roundTrip(records)).toEqual(values.map((value) => ({ value, headers: {} })));
  });

  it('version 2 carries per-message headers in its first line', () => {
    const messages: OutgoingMessage[] = [
      { key: 'k', value: '{"a":1}', headers: { 'qf-source': 'http:r:0' } },
      { key: 'k', value: '{"a":2}' },
      { key: 'k', value: '{"a":3}', headers: { 'qf-source': 'http:r:2', x: 'é\n"' } },
    ];
    const records = packMessages(messages, limits());
    expect(records[0]?.headers).toEqual({ [ENVELOPE_HEADER]: '2' });
    expect(records[0]?.value.split('\n').slice(1)).toEqual(['{"a":1}', '{"a":2}', '{"a":3}']);
    expect(roundTrip(records)).toEqual(messages.map((m) => ({ value: m.value, headers: m.headers ?? {} })));
  });

  it('falls back to the JSON envelope (version 1) when a value has a newline', () => {
    const records = packMessages(
      [
        { key: 'k', value: 'a', headers: { h: '1' } },
        { key: 'k', value: 'b\nc' },
        { key: 'k', value: 'd' },
      ],
      limits(),
    );
    expect(records[0]?.headers).toEqual({ [ENVELOPE_HEADER]: '1' });
    expect(roundTrip(records)).toEqual([
      { value: 'a', headers: { h: '1' } },
      { value: 'b\nc', headers: {} },
      { value: 'd', headers: {} },
    ]);
  });
});
