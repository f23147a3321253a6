/**
 * Produce several message batches (one per producer) and wait until the transport acknowledged
 * all of them, or give up after a timeout. The ingest routes answer 202 only after this resolved.
 */
import type { OutgoingMessage, Producer } from '../transport/transport.ts';
import { ProduceTimeoutError } from './errors.ts';

/**
 * @param sends producer and its messages; empty batches are not sent.
 * @param timeoutMs how long to wait for every acknowledgement, ms.
 * @throws ProduceTimeoutError when not acknowledged in time; the producer's error when a send
 *   failed. Either way some messages may already be stored (at-least-once).
 */
export async function produceWithin(
  sends: ReadonlyArray<readonly [Producer, readonly OutgoingMessage[]]>,
  timeoutMs: number,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProduceTimeoutError(timeoutMs)), timeoutMs);
  });
  try {
    // NOTE: a send still pending after the timeout keeps running; Promise.all/race hold its
    // rejection, so it cannot become an unhandled rejection.
    const all = Promise.all(
      sends.map(([producer, messages]) => (messages.length === 0 ? undefined : Promise.resolve().then(() => producer.send(messages)))),
    );
    await Promise.race([all, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
