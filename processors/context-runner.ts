/**
 * The context processor runner: consume a batch of the context topic -> decode -> look up the
 * stored versions and change numbers -> transform (last-write-wins) -> write -> commit. Same code
 * for the in-process transport and for Kafka.
 *
 * Guarantees:
 * - a batch's offsets are committed only after ClickHouse acknowledged its rows (the transport
 *   commits when the handler resolves); a failed write throws and the batch comes again, which
 *   writes nothing twice (context-store.ts);
 * - the topic is keyed by (tenant, user_id), so all changes of one user are on one partition and
 *   handled one batch at a time, in order: a user's change numbers are given by one handler at a
 *   time and become visible in order (what the sync cursors rely on).
 */
import type { BatchHandler, ConsumedBatch, Transport } from '../ingest/transport/transport.ts';
import { contextKeysToLookUp, decodeContextBatch, transformContexts } from './context.processor.ts';
import type { ContextStore } from './context-store.ts';
import { toRawMessages } from './runner.ts';

/** Counters of the context pipeline since start. */
export interface ContextStats {
  batches: number;
  messages: number;
  /** Winning versions written. */
  written: number;
  duplicates: number;
  superseded: number;
  dead_letters: number;
}

export const emptyContextStats = (): ContextStats => ({
  batches: 0,
  messages: 0,
  written: 0,
  duplicates: 0,
  superseded: 0,
  dead_letters: 0,
});

export interface ContextHandlerDeps {
  store: ContextStore;
  /** Config `contexts.store_content` as a lookup (schemas/contexts-config.ts `contentPolicy`). */
  storeContent: (tenant: string) => boolean;
  /** Epoch ms; injected for tests. */
  now?: () => number;
  maxFutureSkewMs?: number;
  stats: ContextStats;
  onBatch?: (stats: Readonly<ContextStats>) => void;
}

/** The context stream's batch handler. Resolves only after ClickHouse acknowledged the batch. */
export function createContextHandler(deps: ContextHandlerDeps): BatchHandler {
  const now = deps.now ?? Date.now;
  return async (batch: ConsumedBatch): Promise<void> => {
    if (batch.messages.length === 0) return;
    const nowMs = now();
    const decoded = decodeContextBatch(toRawMessages(batch), {
      nowMs,
      maxFutureSkewMs: deps.maxFutureSkewMs,
      storeContent: deps.storeContent,
    });
    const lookup = await deps.store.lookup(contextKeysToLookUp(decoded));
    const outcome = transformContexts(decoded, lookup, { nowMs, storeContent: deps.storeContent });
    await deps.store.write(outcome);
    const s = deps.stats;
    s.batches++;
    s.messages += batch.messages.length;
    s.written += outcome.rows.length;
    s.duplicates += outcome.duplicates;
    s.superseded += outcome.superseded;
    s.dead_letters += outcome.deadLetters.length;
    deps.onBatch?.(s);
  };
}

export interface ContextPipelineDeps extends Omit<ContextHandlerDeps, 'stats'> {
  transport: Transport;
  /** Config `contexts.topic`. */
  topic: string;
  /** Consumer group of the context pipeline (the roles use `<kafka.consumer_group>.contexts`). */
  groupId: string;
  batchMaxMessages: number;
  batchMaxWaitMs: number;
}

export interface RunningContextPipeline {
  /** Resolves when the consumer stopped (in process: its topic ended); rejects on an infrastructure error. */
  done: Promise<void>;
  /** Stop fetching, finish and commit the batch in flight. Idempotent. */
  stop(): Promise<void>;
  readonly stats: Readonly<ContextStats>;
}

/** Start consuming the context topic into `contexts`. */
export function startContextPipeline(deps: ContextPipelineDeps): RunningContextPipeline {
  const stats = emptyContextStats();
  const consumer = deps.transport.consumer({
    topic: deps.topic,
    groupId: deps.groupId,
    maxBatchMessages: deps.batchMaxMessages,
    maxBatchWaitMs: deps.batchMaxWaitMs,
  });
  const done = consumer.run(createContextHandler({ ...deps, stats }));
  let stopping: Promise<void> | null = null;
  return {
    done,
    stop() {
      stopping ??= consumer.stop();
      return stopping;
    },
    stats,
  };
}
