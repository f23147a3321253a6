/**
 * The usage event the throughput benchmarks send (bench:kafka, bench:kafka-clients, bench:roles,
 * bench:processor): number `i` of a run, 200 users, 50 tasks, 2 models, token counts and latency
 * varying with `i`. The same shape everywhere, so their per-event figures compare.
 */
export function benchEvent(i: number, eventId: string, tenant: string, timestamp: number): Record<string, unknown> {
  return {
    event_id: eventId,
    timestamp,
    tenant,
    user_id: `u${i % 200}`,
    task_id: `t${i % 50}`,
    provider: 'openai',
    model: i % 3 ? 'gpt-4o' : 'gpt-4o-mini',
    input_tokens: 500 + (i % 1000),
    output_tokens: 20 + (i % 300),
    latency_ms: 300 + (i % 900),
  };
}
