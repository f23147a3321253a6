/**
 * `quotaflow detect --from T1 --to T2 [--tenant T]`: run the anomaly detectors over a past time
 * range (issue 5), training on the `anomalies.warmup_hours` before it, store what they find in
 * `anomalies` (the same ids as the processor would give: re-running replaces, never duplicates)
 * and print one line per anomaly. Never sends webhooks: it is for looking back.
 */
import pino from 'pino';
import type { LoadedConfig } from '../../config/load.ts';
import { CORE_DETECTOR_NAME, coreDetectorFactory, createAnomalyDetection } from '../../processors/anomaly/detection.ts';
import type { Anomaly } from '../../processors/anomaly/episodes.ts';
import { printTable } from '../output.ts';
import { withStore } from '../pipeline.ts';

export interface DetectOptions {
  /** Epoch ms, UTC, half-open [fromMs, toMs). */
  fromMs: number;
  toMs: number;
  tenant?: string;
}

/** Longest range `detect` scores in one run: 31 days of minutes per series. */
export const MAX_DETECT_RANGE_MS = 31 * 86_400_000;

/** Score [fromMs, toMs) (the caller checks 0 < length <= MAX_DETECT_RANGE_MS); returns the anomalies stored. */
export async function runDetect(loaded: LoadedConfig, o: DetectOptions): Promise<Anomaly[]> {
  const a = loaded.config.anomalies;
  return withStore(loaded, async (client) => {
    const detection = createAnomalyDetection({
      clickhouse: client,
      detectorFactory: coreDetectorFactory(),
      detectorName: CORE_DETECTOR_NAME,
      logger: pino({ level: 'silent' }),
      ...(o.tenant === undefined ? {} : { tenant: o.tenant.normalize('NFC') }),
      warmupMs: a.warmup_hours * 3_600_000,
      resolveAfterMinutes: a.resolve_after_minutes,
      loopThreshold: a.loop_threshold,
      loopWindowMinutes: a.loop_window_minutes,
    });
    const run = await detection.scan(o.fromMs, o.toMs);
    const latest = new Map<string, Anomaly>();
    for (const c of run.changes) latest.set(c.anomaly.anomaly_id, c.anomaly);
    const found = [...latest.values()].sort((x, y) => x.window_start_ms - y.window_start_ms);
    printTable(
      `Anomalies ${new Date(o.fromMs).toISOString()} .. ${new Date(o.toMs).toISOString()} (stored in table anomalies)`,
      found.map((x) => ({
        start: new Date(x.window_start_ms).toISOString(),
        minutes: (x.window_end_ms - x.window_start_ms) / 60_000,
        tenant: x.tenant,
        kind: x.kind,
        series: `${x.dimension}:${x.series_key}`,
        score: x.score.toFixed(2),
        expected: Number(x.expected.toPrecision(4)),
        actual: Number(x.actual.toPrecision(4)),
        status: x.status,
      })),
    );
    return found;
  });
}
