/** Running counters of the usage pipeline, for summaries, logs and (later) metrics. */
import type { BatchOutcome, DeadLetterReason } from './usage.processor.ts';

export interface UsageStats {
  batches: number;
  messages: number;
  accepted: number;
  duplicates: number;
  deadLetters: Record<DeadLetterReason, number>;
}

export function emptyStats(): UsageStats {
  return {
    batches: 0,
    messages: 0,
    accepted: 0,
    duplicates: 0,
    deadLetters: { invalid_json: 0, invalid_event: 0, conflicting_duplicate: 0 },
  };
}

/** Add one committed batch's outcome. */
export function addOutcome(stats: UsageStats, messages: number, outcome: BatchOutcome): void {
  stats.batches++;
  stats.messages += messages;
  stats.accepted += outcome.events.length;
  stats.duplicates += outcome.duplicates;
  for (const d of outcome.deadLetters) stats.deadLetters[d.reason]++;
}
