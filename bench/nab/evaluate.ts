/**
 * Runs the detector core over NAB series and scores the result with NAB's rules
 * (processors/anomaly/nab-scorer.ts), the way NAB's optimise + score + normalise steps do:
 * one threshold per profile for the whole corpus, the one with the highest raw score.
 */
import { createDetector, type DetectorOptions } from '../../processors/anomaly/detector.ts';
import {
  baselineScores,
  type CostMatrix,
  type NabProfileName,
  normalisedScore,
  optimiseThreshold,
  scoreSeries,
} from '../../processors/anomaly/nab-scorer.ts';
import type { NabSeries } from './corpus.ts';

/** Scores every row of every series with a fresh detector per series. */
export function detectCorpus(corpus: readonly NabSeries[], options: Partial<DetectorOptions> = {}): Float64Array[] {
  return corpus.map((s) => {
    const d = createDetector(options);
    const out = new Float64Array(s.values.length);
    for (let i = 0; i < out.length; i++) out[i] = d.update(s.timestampsMs[i]!, s.values[i]!).score;
    return out;
  });
}

/** NAB result of one detector under one profile. */
export interface ProfileResult {
  profile: NabProfileName;
  /** The corpus-wide threshold with the best raw score. */
  threshold: number;
  raw: number;
  normalised: number;
  /** Windows with at least one detection, out of all windows. */
  windowsDetected: number;
  windows: number;
  /** Detections outside windows (non-probation rows). */
  falsePositiveRows: number;
}

/**
 * Optimises the threshold and normalises, per profile. With `fixedThreshold`, scores at that
 * threshold instead of optimising (e.g. the detector's own alertScore).
 */
export function evaluateCorpus(
  corpus: readonly NabSeries[],
  scores: readonly Float64Array[],
  profiles: Record<NabProfileName, CostMatrix>,
  fixedThreshold?: number,
): ProfileResult[] {
  const scored = corpus.map((s, k) => ({ anomalyScores: scores[k]!, windows: s.windows }));
  const sizes = corpus.map((s) => ({ rowCount: s.values.length, windows: s.windows }));
  return (Object.keys(profiles) as NabProfileName[]).map((profile) => {
    const cost = profiles[profile];
    const threshold = fixedThreshold ?? optimiseThreshold(scored, cost).threshold;
    let raw = 0;
    let windowsDetected = 0;
    let windows = 0;
    let falsePositiveRows = 0;
    for (const s of scored) {
      const r = scoreSeries(s, cost, threshold);
      raw += r.score;
      falsePositiveRows += r.fp;
      windows += s.windows.length;
      windowsDetected += s.windows.filter((w) => {
        for (let i = w.start; i <= w.end; i++) if (s.anomalyScores[i]! >= threshold) return true;
        return false;
      }).length;
    }
    return {
      profile,
      threshold,
      raw,
      normalised: normalisedScore(raw, baselineScores(sizes, cost)),
      windowsDetected,
      windows,
      falsePositiveRows,
    };
  });
}
