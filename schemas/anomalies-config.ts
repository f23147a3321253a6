/**
 * Config section `anomalies` (issue 5): continuous anomaly detection in the processor role
 * (processors/anomaly/). Notifications go to the quota alerts' webhook (config `alerts`).
 */
import { type Static, Type } from '@sinclair/typebox';

export const AnomaliesConfigSchema = Type.Object(
  {
    /** Run detection in the processor role. */
    enabled: Type.Boolean({ default: true }),
    /** How often closed minutes are scored, ms. */
    interval_ms: Type.Integer({ minimum: 5_000, maximum: 3_600_000, default: 60_000 }),
    /** A minute is scored this long after it ended, so batches in flight have landed, ms. */
    grace_ms: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 120_000 }),
    /** History the detectors train on at start, hours. */
    warmup_hours: Type.Integer({ minimum: 0, maximum: 24 * 14, default: 24 }),
    /** Quiet minutes in a row that resolve an open anomaly. */
    resolve_after_minutes: Type.Integer({ minimum: 1, maximum: 1_440, default: 5 }),
    /** Calls of the same prompt by one (user, task) within the loop window that make a runaway loop. */
    loop_threshold: Type.Integer({ minimum: 2, maximum: 1_000_000, default: 20 }),
    /** Loop window, minutes. */
    loop_window_minutes: Type.Integer({ minimum: 1, maximum: 1_440, default: 10 }),
  },
  { additionalProperties: false, default: {} },
);
export type AnomaliesConfig = Static<typeof AnomaliesConfigSchema>;
