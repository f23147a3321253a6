/**
 * File replay: stream an importer's records into the transport, keyed by tenant, with the
 * origin (`file:line`) in a header so a dead letter points back at the row.
 */
import type { ImportedRecord } from './importers/importer.ts';
import type { OutgoingMessage, Producer } from './transport/transport.ts';

/** Messages per `send()`: amortises the transport call without holding much in memory. */
export const REPLAY_CHUNK = 1_000;
/** Header that carries an event's origin (file:line); the processor records it as `source`. */
export const SOURCE_HEADER = 'qf-source';

/**
 * Send every record to the producer, in order. Waits on the producer's back-pressure.
 * @returns the number of records sent.
 */
export async function replayRecords(
  records: AsyncIterable<ImportedRecord>,
  producer: Producer,
  onProgress?: (sent: number) => void,
): Promise<number> {
  let chunk: OutgoingMessage[] = [];
  let sent = 0;
  const flush = async () => {
    if (chunk.length === 0) return;
    await producer.send(chunk);
    sent += chunk.length;
    chunk = [];
    onProgress?.(sent);
  };
  for await (const r of records) {
    const tenant = typeof r.value.tenant === 'string' ? r.value.tenant : '';
    chunk.push({ key: tenant, value: JSON.stringify(r.value), headers: { [SOURCE_HEADER]: r.source } });
    if (chunk.length >= REPLAY_CHUNK) await flush();
  }
  await flush();
  return sent;
}
