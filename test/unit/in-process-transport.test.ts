import { afterEach, describe, expect, it, vi } from 'vitest';
import { createInProcessTransport, partitionOf } from '../../ingest/transport/in-process.transport.ts';
import { type ConsumedBatch, type OutgoingMessage, TransportClosedError } from '../../ingest/transport/transport.ts';

const TOPIC = 'quotaflow.usage.v1';

function messages(key: string, count: number, from = 0): OutgoingMessage[] {
  return Array.from({ length: count }, (_, i) => ({ key, value: `${key}:${from + i}` }));
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Poll (every ms, up to 2 s) until `cond` holds; never a long fixed sleep. */
async function until(cond: () => boolean, what = 'condition'): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(1);
  }
}

/** A promise with its resolver, to hold a handler open. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Watch a promise: `state()` says whether it is still pending, resolved or rejected. */
function watch(p: Promise<unknown>): () => 'pending' | 'resolved' | 'rejected' {
  let s: 'pending' | 'resolved' | 'rejected' = 'pending';
  p.then(
    () => {
      s = 'resolved';
    },
    () => {
      s = 'rejected';
    },
  );
  return () => s;
}

const consumerOpts = (patch: { maxBatchMessages?: number; maxBatchWaitMs?: number } = {}) => ({
  topic: TOPIC,
  groupId: 'processors',
  maxBatchMessages: 100,
  maxBatchWaitMs: 5,
  ...patch,
});

afterEach(() => {
  vi.useRealTimers();
});

describe('partitionOf', () => {
  it('maps a key to the same partition every time, within range', () => {
    for (const n of [1, 2, 3, 8]) {
      for (let i = 0; i < 200; i++) {
        const key = `tenant-${i}`;
        const p = partitionOf(key, n);
        expect(p).toBe(partitionOf(key, n));
        expect(Number.isInteger(p) && p >= 0 && p < n).toBe(true);
      }
    }
    expect(partitionOf('anything', 1)).toBe(0);
  });

  it('spreads keys over all partitions', () => {
    const used = new Set(Array.from({ length: 100 }, (_, i) => partitionOf(`t${i}`, 4)));
    expect(used).toEqual(new Set([0, 1, 2, 3]));
  });

  it('hashes non-ASCII keys by their code units (NFC and NFD tenants may differ)', () => {
    expect(partitionOf('😀', 1_000_003)).toBe(partitionOf('😀', 1_000_003));
    expect(partitionOf('caf\u00e9', 1_000_003)).not.toBe(partitionOf('cafe\u0301', 1_000_003));
  });
});

describe('in-process transport: delivery', () => {
  it('delivers every message once, in order per partition with increasing offsets, on its key partition', async () => {
    const t = createInProcessTransport({ capacity: 1_000, partitions: 3 });
    const producer = t.producer(TOPIC);
    const consumer = t.consumer(consumerOpts({ maxBatchMessages: 7 }));
    const batches: ConsumedBatch[] = [];
    const running = consumer.run(async (b) => {
      batches.push(b);
    });
    const keys = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'tenant/ü', '😀'];
    for (let i = 0; i < 20; i++) await producer.send(keys.flatMap((k) => messages(k, 3, i * 3)));
    await producer.close();
    await running;

    const all = batches.flatMap((b) => b.messages);
    expect(all).toHaveLength(keys.length * 60);
    for (const b of batches) {
      expect(b.topic).toBe(TOPIC);
      expect(b.messages.length).toBeGreaterThan(0);
      expect(b.messages.length).toBeLessThanOrEqual(7);
      for (const m of b.messages) {
        expect(m.partition).toBe(b.partition);
        expect(m.topic).toBe(TOPIC);
        expect(m.partition).toBe(partitionOf(m.key, 3));
      }
    }
    // Offsets per partition: 0, 1, 2, ... with no gap or repeat.
    for (let p = 0; p < 3; p++) {
      const offsets = all.filter((m) => m.partition === p).map((m) => Number(m.offset));
      expect(offsets).toEqual(offsets.map((_, i) => i));
    }
    // Each key's messages arrive in the order sent.
    for (const k of keys) {
      expect(all.filter((m) => m.key === k).map((m) => m.value)).toEqual(messages(k, 60).map((m) => m.value));
    }
  });

  it('keeps values and headers byte for byte; offsets are decimal strings', async () => {
    const t = createInProcessTransport({ capacity: 10, partitions: 1 });
    const producer = t.producer(TOPIC);
    const sent = [{ key: 'k', value: ' {"a":"ü😀"}\r\n', headers: { origin: 'file.jsonl:1' } }];
    await producer.send(sent);
    await producer.close();
    const got: ConsumedBatch[] = [];
    await t.consumer(consumerOpts()).run(async (b) => {
      got.push(b);
    });
    expect(got).toEqual([{ topic: TOPIC, partition: 0, messages: [{ ...sent[0], topic: TOPIC, partition: 0, offset: '0' }] }]);
  });

  it('flushes a batch as soon as it reaches maxBatchMessages', async () => {
    const t = createInProcessTransport({ capacity: 100, partitions: 1 });
    const producer = t.producer(TOPIC);
    const sizes: number[] = [];
    // A wait far longer than the test: only the size can trigger the first two flushes.
    const running = t.consumer(consumerOpts({ maxBatchMessages: 4, maxBatchWaitMs: 60_000 })).run(async (b) => {
      sizes.push(b.messages.length);
    });
    await producer.send(messages('k', 10));
    await until(() => sizes.length === 2, 'two full batches');
    await sleep(20);
    expect(sizes).toEqual([4, 4]); // the last 2 wait for more, or for the wait, or for the end
    await producer.close();
    await running;
    expect(sizes).toEqual([4, 4, 2]);
  });

  it('flushes a partial batch after maxBatchWaitMs (fake timers)', async () => {
    vi.useFakeTimers();
    const t = createInProcessTransport({ capacity: 100, partitions: 1 });
    const producer = t.producer(TOPIC);
    const sizes: number[] = [];
    const consumer = t.consumer(consumerOpts({ maxBatchMessages: 100, maxBatchWaitMs: 1_000 }));
    const running = consumer.run(async (b) => {
      sizes.push(b.messages.length);
    });
    await vi.advanceTimersByTimeAsync(5_000); // idle: nothing to flush
    expect(sizes).toEqual([]);
    await producer.send(messages('k', 3));
    await vi.advanceTimersByTimeAsync(999);
    expect(sizes).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(sizes).toEqual([3]);
    // A new message starts a new wait from its own arrival.
    await vi.advanceTimersByTimeAsync(300);
    await producer.send(messages('k', 1, 3));
    await vi.advanceTimersByTimeAsync(999);
    expect(sizes).toEqual([3]);
    await vi.advanceTimersByTimeAsync(1);
    expect(sizes).toEqual([3, 1]);
    await consumer.stop();
    await running;
  });

  it('leftovers of a full batch flush maxBatchWaitMs after their own arrival, not a period after the handler', async () => {
    vi.useFakeTimers();
    const t = createInProcessTransport({ capacity: 100, partitions: 1 });
    const producer = t.producer(TOPIC);
    const delivered: Array<[number, number]> = []; // [fake time, batch size]
    const consumer = t.consumer(consumerOpts({ maxBatchMessages: 2, maxBatchWaitMs: 1_000 }));
    const running = consumer.run(async (b) => {
      delivered.push([Date.now(), b.messages.length]);
      await sleep(900); // a slow handler
    });
    const start = Date.now();
    await producer.send(messages('k', 2));
    await vi.advanceTimersByTimeAsync(100);
    await producer.send(messages('k', 1, 2)); // arrives at +100 ms while the handler runs
    await vi.advanceTimersByTimeAsync(2_000);
    expect(delivered.map(([at, n]) => [at - start, n])).toEqual([
      [0, 2],
      [1_100, 1], // due at +1,100 (its arrival + 1,000), not at +1,900
    ]);
    await consumer.stop();
    await running;
  });

  it('a producer for a new topic after transport.close() is refused', async () => {
    const t = createInProcessTransport({ capacity: 10 });
    await t.close();
    expect(() => t.producer('never-created')).toThrow(TransportClosedError);
  });

  it('producer.close() ends the topic: run() drains what is left without waiting, then resolves', async () => {
    const t = createInProcessTransport({ capacity: 100, partitions: 2 });
    const producer = t.producer(TOPIC);
    await producer.send([...messages('a', 5), ...messages('b', 5)]);
    await producer.close();
    const got: string[] = [];
    const started = Date.now();
    await t.consumer(consumerOpts({ maxBatchMessages: 1_000, maxBatchWaitMs: 60_000 })).run(async (b) => {
      got.push(...b.messages.map((m) => m.value));
    });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(got.sort()).toEqual([...messages('a', 5), ...messages('b', 5)].map((m) => m.value).sort());
  });
});

describe('in-process transport: back-pressure', () => {
  it('a send() beyond the room stays pending until the consumer commits', async () => {
    const t = createInProcessTransport({ capacity: 3, partitions: 1 });
    const producer = t.producer(TOPIC);
    await producer.send(messages('k', 3)); // fills the topic exactly
    const send = producer.send(messages('k', 2, 3));
    const state = watch(send);
    await sleep(30);
    expect(state()).toBe('pending');

    const got: string[] = [];
    const consumer = t.consumer(consumerOpts({ maxBatchMessages: 10, maxBatchWaitMs: 1 }));
    const running = consumer.run(async (b) => {
      got.push(...b.messages.map((m) => `${m.offset}=${m.value}`));
    });
    await send;
    await producer.close();
    await running;
    expect(got).toEqual(['0=k:0', '1=k:1', '2=k:2', '3=k:3', '4=k:4']);
  });

  it('messages handed out but not committed still take room', async () => {
    const t = createInProcessTransport({ capacity: 2, partitions: 1 });
    const producer = t.producer(TOPIC);
    const hold = gate();
    let handed = 0;
    const consumer = t.consumer(consumerOpts({ maxBatchMessages: 2, maxBatchWaitMs: 1 }));
    const running = consumer.run(async (b) => {
      handed += b.messages.length;
      await hold.promise;
    });
    await producer.send(messages('k', 2));
    await until(() => handed === 2, 'the first batch in the handler');
    const state = watch(producer.send(messages('k', 1, 2)));
    await sleep(30);
    expect(state()).toBe('pending');
    hold.open(); // commit -> room
    await until(() => state() === 'resolved', 'the blocked send');
    await producer.close();
    await running;
    expect(handed).toBe(3);
  });

  it('capacity is split over the partitions', async () => {
    const t = createInProcessTransport({ capacity: 4, partitions: 2 });
    const producer = t.producer(TOPIC);
    const keyOn = (p: number) => Array.from({ length: 100 }, (_, i) => `k${i}`).find((k) => partitionOf(k, 2) === p) as string;
    await producer.send(messages(keyOn(0), 2)); // partition 0 full (2 of 2)
    await producer.send(messages(keyOn(1), 2)); // partition 1 full, independently
    const state = watch(producer.send(messages(keyOn(1), 1, 2)));
    await sleep(20);
    expect(state()).toBe('pending');
    await t.close();
    await until(() => state() !== 'pending', 'release on close');
    expect(state()).toBe('rejected');
  });

  it('a producer blocked on a full topic is released with TransportClosedError when the transport closes', async () => {
    const t = createInProcessTransport({ capacity: 2, partitions: 1 });
    const producer = t.producer(TOPIC);
    const send = producer.send(messages('k', 5));
    const state = watch(send);
    await sleep(20);
    expect(state()).toBe('pending');
    await t.close();
    await expect(send).rejects.toBeInstanceOf(TransportClosedError);
    // What fitted before the close is still drained by a consumer.
    const got: string[] = [];
    await t.consumer(consumerOpts()).run(async (b) => {
      got.push(...b.messages.map((m) => m.value));
    });
    expect(got).toEqual(['k:0', 'k:1']);
  });
});

describe('in-process transport: failures and shutdown', () => {
  it('a handler that throws makes run() reject; the failed batch is not committed and is delivered again', async () => {
    const t = createInProcessTransport({ capacity: 100, partitions: 1 });
    const producer = t.producer(TOPIC);
    await producer.send(messages('k', 5));
    const boom = new Error('ClickHouse is down');
    let calls = 0;
    const first = t.consumer(consumerOpts({ maxBatchMessages: 2, maxBatchWaitMs: 1 }));
    const failed = first.run(async (b) => {
      calls++;
      if (calls === 2) {
        expect(b.messages.map((m) => m.offset)).toEqual(['2', '3']);
        throw boom;
      }
    });
    await expect(failed).rejects.toBe(boom);
    expect(calls).toBe(2);

    // A new consumer of the same group resumes after the last committed batch (offsets 0-1).
    const again: string[] = [];
    await producer.close();
    await t.consumer(consumerOpts({ maxBatchMessages: 2, maxBatchWaitMs: 1 })).run(async (b) => {
      again.push(...b.messages.map((m) => `${m.offset}=${m.value}`));
    });
    expect(again).toEqual(['2=k:2', '3=k:3', '4=k:4']);
  });

  it('a throwing handler on one partition stops the others too', async () => {
    const t = createInProcessTransport({ capacity: 100, partitions: 2 });
    const producer = t.producer(TOPIC);
    const keyOn = (p: number) => Array.from({ length: 100 }, (_, i) => `k${i}`).find((k) => partitionOf(k, 2) === p) as string;
    const consumer = t.consumer(consumerOpts({ maxBatchMessages: 1, maxBatchWaitMs: 1 }));
    const running = consumer.run(async (b) => {
      if (b.partition === 0) throw new Error('bad batch');
    });
    await producer.send(messages(keyOn(0), 1));
    await expect(running).rejects.toThrow('bad batch');
  });

  it('stop() resolves on an idle consumer, and run() resolves with it', async () => {
    const t = createInProcessTransport({ capacity: 10, partitions: 2 });
    const consumer = t.consumer(consumerOpts({ maxBatchWaitMs: 60_000 }));
    const running = consumer.run(async () => {});
    await sleep(5);
    await consumer.stop();
    await expect(running).resolves.toBeUndefined();
    await consumer.stop(); // idempotent
  });

  it('stop() before run() resolves', async () => {
    const t = createInProcessTransport({ capacity: 10 });
    await expect(t.consumer(consumerOpts()).stop()).resolves.toBeUndefined();
  });

  it('stop() lets the batch in flight finish, then drains what is left before resolving (the log is not durable)', async () => {
    const t = createInProcessTransport({ capacity: 10, partitions: 1 });
    const producer = t.producer(TOPIC);
    await producer.send(messages('k', 2));
    const hold = gate();
    const handled: string[] = [];
    const consumer = t.consumer(consumerOpts({ maxBatchMessages: 1, maxBatchWaitMs: 60_000 }));
    const running = consumer.run(async (b) => {
      handled.push(...b.messages.map((m) => m.value));
      await hold.promise;
    });
    await until(() => handled.length === 1, 'the handler');
    const stopState = watch(consumer.stop());
    await sleep(20);
    expect(stopState()).toBe('pending');
    hold.open();
    await until(() => stopState() === 'resolved', 'stop');
    await running;
    // The second message was handed out at once (not after the 60 s batch wait) before stop resolved.
    expect(handled).toEqual(['k:0', 'k:1']);

    const rest: string[] = [];
    await producer.close();
    await t.consumer(consumerOpts()).run(async (b) => {
      rest.push(...b.messages.map((m) => m.value));
    });
    expect(rest).toEqual([]);
  });

  it('send after producer.close() throws TransportClosedError', async () => {
    const t = createInProcessTransport({ capacity: 10 });
    const producer = t.producer(TOPIC);
    await producer.close();
    await expect(producer.send(messages('k', 1))).rejects.toBeInstanceOf(TransportClosedError);
    // The topic is ended for every producer, not just the closed one.
    await expect(t.producer(TOPIC).send(messages('k', 1))).rejects.toBeInstanceOf(TransportClosedError);
  });

  it('send after transport.close() throws TransportClosedError', async () => {
    const t = createInProcessTransport({ capacity: 10 });
    const producer = t.producer(TOPIC);
    await producer.send(messages('k', 1));
    await t.close();
    await expect(producer.send(messages('k', 1))).rejects.toBeInstanceOf(TransportClosedError);
  });

  it('an empty send resolves at once', async () => {
    const t = createInProcessTransport({ capacity: 1, partitions: 1 });
    await t.producer(TOPIC).send(messages('k', 1));
    await expect(t.producer(TOPIC).send([])).resolves.toBeUndefined();
  });
});
