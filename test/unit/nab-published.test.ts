/**
 * The NAB scorer against NAB's published results (../shared/data/nab, or $NAB_DIR).
 * Skipped, with a note, where that folder is absent.
 */
import { describe, expect, it } from 'vitest';
import {
  defaultNabDir,
  hasNabCorpus,
  loadFinalResults,
  loadNabCorpus,
  loadProfiles,
  loadPublishedAnomalyScores,
  loadPublishedFileScores,
  loadThresholds,
  PROFILE_NAMES,
} from '../../bench/nab/corpus.ts';
import { baselineScores, normalisedScore, optimiseThreshold, scoreSeries } from '../../processors/anomaly/nab-scorer.ts';

const dir = defaultNabDir();
const present = hasNabCorpus(dir);
if (!present) console.warn(`NAB corpus not found at ${dir}: published-score tests skipped (set NAB_DIR)`);

describe.skipIf(!present)('NAB scorer vs published results', () => {
  const corpus = present ? loadNabCorpus(dir) : [];
  const profiles = present ? loadProfiles(dir) : undefined;
  const final = present ? loadFinalResults(dir) : {};

  it('reads the whole corpus: 58 series, 365,558 rows, 116 windows', () => {
    expect(corpus.length).toBe(58);
    expect(corpus.reduce((n, s) => n + s.values.length, 0)).toBe(365_558);
    expect(corpus.reduce((n, s) => n + s.windows.length, 0)).toBe(116);
  });

  it('computes the baselines from the windows: null -116 / -116 / -232, perfect 116', () => {
    const rows = corpus.map((s) => ({ rowCount: s.values.length, windows: s.windows }));
    expect(baselineScores(rows, profiles!.standard)).toEqual({ null: -116, perfect: 116 });
    expect(baselineScores(rows, profiles!.reward_low_FP_rate)).toEqual({ null: -116, perfect: 116 });
    expect(baselineScores(rows, profiles!.reward_low_FN_rate).null).toBe(-232);
    // and the published null detector's per-file scores sum to the same
    for (const p of PROFILE_NAMES) {
      const sum = loadPublishedFileScores('null', p, dir).reduce((s, r) => s + r.score, 0);
      expect(sum).toBeCloseTo(baselineScores(rows, profiles![p]).null, 9);
    }
  });

  // Every published detector whose per-file CSVs cover all 58 files (random's cover 32, and
  // bayesChangePt has no final_results entry).
  const detectors = [
    'ARTime',
    'numenta',
    'contextOSE',
    'htmjava',
    'numentaTM',
    'earthgeckoSkyline',
    'knncad',
    'relativeEntropy',
    'randomCutForest',
    'twitterADVec',
    'windowedGaussian',
    'skyline',
    'expose',
    'null',
  ];
  for (const detector of detectors) {
    it.each(PROFILE_NAMES)(`${detector}: per-file raw scores normalise to final_results.json (%s)`, (profile) => {
      const files = loadPublishedFileScores(detector, profile, dir);
      expect(files.length).toBe(58);
      const raw = files.reduce((s, r) => s + r.score, 0);
      const b = baselineScores(
        corpus.map((s) => ({ rowCount: s.values.length, windows: s.windows })),
        profiles![profile],
      );
      const published = final[detector]![profile];
      expect(normalisedScore(raw, b)).toBeCloseTo(published, 2);
      expect(Math.abs(normalisedScore(raw, b) - published)).toBeLessThan(1e-6);
    });
  }

  // Two detectors whose per-row outputs are published: score every file from its anomaly scores.
  for (const detector of ['numenta', 'windowedGaussian']) {
    const outputs = present
      ? corpus.map((s) => ({ anomalyScores: loadPublishedAnomalyScores(detector, s.name, dir), windows: s.windows }))
      : [];
    const thresholds = present ? loadThresholds(dir)[detector]! : undefined;

    it.each(PROFILE_NAMES)(`${detector}: each file's score and TP/TN/FP/FN at NAB's threshold match its CSV (%s)`, (profile) => {
      const published = new Map(loadPublishedFileScores(detector, profile, dir).map((r) => [r.file, r]));
      corpus.forEach((s, k) => {
        const mine = scoreSeries(outputs[k]!, profiles![profile], thresholds![profile].threshold);
        const pub = published.get(s.name)!;
        expect(mine.score, s.name).toBeCloseTo(pub.score, 6);
        expect([mine.tp, mine.tn, mine.fp, mine.fn], s.name).toEqual([pub.tp, pub.tn, pub.fp, pub.fn]);
      });
    });

    it.each(PROFILE_NAMES)(`${detector}: the exhaustive threshold sweep does at least as well as NAB's threshold (%s)`, (profile) => {
      const best = optimiseThreshold(outputs, profiles![profile]);
      const atNab = outputs.reduce((sum, o) => sum + scoreSeries(o, profiles![profile], thresholds![profile].threshold).score, 0);
      expect(best.score).toBeGreaterThanOrEqual(atNab - 1e-9);
    });
  }
});
