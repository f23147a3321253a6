/**
 * Numenta Anomaly Benchmark (NAB) scoring rules, pure (no I/O).
 *
 * Sources read (not copied): Lavin & Ahmad, "Evaluating Real-time Anomaly Detection Algorithms –
 * the Numenta Anomaly Benchmark" (IEEE ICMLA 2015), section "Scoring"; and the NAB repository
 * (github numenta/NAB, `nab/sweeper.py`: scaledSigmoid, calcSweepScore, calcScoreByThreshold,
 * _getProbationaryLength; `nab/runner.py` normalize; `config/profiles.json`).
 *
 * The rules, as implemented here:
 * - A series has rows 0..n-1 and anomaly windows (inclusive row ranges, sorted, disjoint). NAB's
 *   labeller sized them (about 10% of the file's rows in total, split among its anomalies and
 *   centred on each); the scorer takes them as given.
 * - Probation: rows i < min(floor(0.15 n), 0.15 * 5000) are ignored entirely (no TP, no FP).
 * - A detection is a row whose anomaly score is >= the threshold.
 * - Each row has a weight. Inside a window [s, e] of width w = e - s + 1, row i sits at relative
 *   position p = -(e - i + 1) / w (so -1 at the window's first row, -1/w at its last) and weighs
 *   tpWeight * scaledSigmoid(p) / scaledSigmoid(-1): exactly tpWeight at the window start.
 *   After a window, row i sits at p = (i - e) / (w - 1) past the preceding window's end and weighs
 *   fpWeight * scaledSigmoid(p) (close to 0 just after the window, -fpWeight far from it).
 *   Before any window, a row weighs -fpWeight.
 * - A window's contribution: the largest weight among its detected rows (that is its earliest
 *   detection, since weights fall through the window; later detections add nothing), or
 *   -fnWeight if none was detected. Every detected row outside windows adds its (negative) weight.
 * - The file's raw score is the sum; a corpus's raw score is the sum over files.
 * - The threshold is one per detector and profile, for the whole corpus: the one that maximises
 *   the corpus's raw score ({@link sweepThresholds}).
 * - Normalised score = 100 * (raw - null) / (perfect - null), where null = the raw score of a
 *   detector that never fires (every window missed: -fnWeight per window) and perfect = one
 *   detection at the first row of every window (tpWeight per window).
 */

/** Weights of one NAB application profile (config/profiles.json "CostMatrix"; tnWeight is unused by NAB). */
export interface CostMatrix {
  tpWeight: number;
  fpWeight: number;
  fnWeight: number;
}

/** The three NAB profiles, as in NAB's config/profiles.json. */
export const NAB_PROFILES = {
  standard: { tpWeight: 1.0, fpWeight: 0.11, fnWeight: 1.0 },
  reward_low_FP_rate: { tpWeight: 1.0, fpWeight: 0.22, fnWeight: 1.0 },
  reward_low_FN_rate: { tpWeight: 1.0, fpWeight: 0.11, fnWeight: 2.0 },
} as const satisfies Record<string, CostMatrix>;

export type NabProfileName = keyof typeof NAB_PROFILES;

/** Fraction of each series that is probation (NAB runner default, `--probationaryPercent 0.15`). */
export const NAB_PROBATION_PERCENT = 0.15;

/** An anomaly window: inclusive row indices, start <= end. */
export interface WindowSpan {
  start: number;
  end: number;
}

/** Row counts at one threshold, over non-probation rows: tp/fn = rows in windows, fp/tn = rows outside. */
export interface Counts {
  tp: number;
  tn: number;
  fp: number;
  fn: number;
}

/** Raw NAB score of a file or corpus at one threshold, with its row counts. */
export interface ThresholdScore extends Counts {
  /** Rows with anomaly score >= threshold are detections; +Infinity means "nothing detected". */
  threshold: number;
  score: number;
}

/** One scored series: the detector's anomaly score per row, and the series' windows. */
export interface ScoredSeries {
  anomalyScores: ArrayLike<number>;
  windows: readonly WindowSpan[];
}

/** Row marker in {@link RowWeights.window}: the row is in the probationary period. */
export const PROBATION = -2;
/** Row marker in {@link RowWeights.window}: the row is outside every window. */
export const OUTSIDE = -1;

/**
 * NAB's scaled sigmoid of a relative position: 2 / (1 + e^(5x)) - 1, and exactly -1 for x >= 3.
 * Values: x = -1 -> 0.98661, -0.5 -> 0.84828, 0 -> 0, 1 -> -0.98661. The factor 5 and the cut at
 * 3 are NAB's (nab/sweeper.py scaledSigmoid).
 */
export function scaledSigmoid(relativePosition: number): number {
  if (Number.isNaN(relativePosition)) throw new RangeError('relative position must be a number, got NaN');
  if (relativePosition >= 3) return -1;
  return 2 / (1 + Math.exp(5 * relativePosition)) - 1;
}

/**
 * Number of leading rows NAB ignores: min(floor(p * n), p * 5000) for p = probationPercent
 * (nab/sweeper.py _getProbationaryLength). 4032 rows -> 604; 22695 rows -> 750.
 * @throws RangeError when rowCount is not a non-negative integer or p is outside [0, 1].
 */
export function probationaryLength(rowCount: number, probationPercent = NAB_PROBATION_PERCENT): number {
  if (!Number.isInteger(rowCount) || rowCount < 0) throw new RangeError(`rowCount must be a non-negative integer, got ${rowCount}`);
  if (!(probationPercent >= 0 && probationPercent <= 1))
    throw new RangeError(`probationPercent must be in [0, 1], got ${probationPercent}`);
  return Math.min(Math.floor(probationPercent * rowCount), probationPercent * 5000);
}

function checkWindows(rowCount: number, windows: readonly WindowSpan[]): void {
  let prevEnd = -1;
  windows.forEach((w, k) => {
    if (!Number.isInteger(w.start) || !Number.isInteger(w.end) || w.start < 0 || w.end >= rowCount || w.start > w.end) {
      throw new RangeError(`windows[${k}] must be integer rows with 0 <= start <= end < ${rowCount}, got [${w.start}, ${w.end}]`);
    }
    if (w.start <= prevEnd)
      throw new RangeError(
        `windows[${k}] starts at row ${w.start}, inside or before the previous window (sorted, disjoint windows required)`,
      );
    if (w.end - w.start + 1 < 2)
      throw new RangeError(`windows[${k}] spans one row; NAB's false-positive position divides by (width - 1), so windows need >= 2 rows`);
    prevEnd = w.end;
  });
}

/** Per-row NAB weights of one series under one profile (see the module doc). */
export interface RowWeights {
  /** The weight of a detection at each row (TP weight inside a window, FP weight outside). */
  weight: Float64Array;
  /** Per row: {@link PROBATION}, {@link OUTSIDE}, or the index of the window holding the row. */
  window: Int32Array;
  /** Windows that have at least one non-probation row: each costs -fnWeight when missed. */
  scoredWindows: number[];
}

/**
 * Weights of a detection at every row (nab/sweeper.py calcSweepScore, re-derived).
 * @throws RangeError for windows outside the rows, unsorted or overlapping, or of one row.
 */
export function rowWeights(
  rowCount: number,
  windows: readonly WindowSpan[],
  cost: CostMatrix,
  probationPercent = NAB_PROBATION_PERCENT,
): RowWeights {
  checkWindows(rowCount, windows);
  const probation = probationaryLength(rowCount, probationPercent);
  const maxTp = scaledSigmoid(-1);
  const weight = new Float64Array(rowCount);
  const window = new Int32Array(rowCount);
  const scored = new Set<number>();
  let k = 0; // next window not yet passed
  for (let i = 0; i < rowCount; i++) {
    while (k < windows.length && windows[k]!.end < i) k++;
    const cur = windows[k];
    if (cur !== undefined && cur.start <= i) {
      const width = cur.end - cur.start + 1;
      weight[i] = (scaledSigmoid(-(cur.end - i + 1) / width) * cost.tpWeight) / maxTp;
      window[i] = k;
    } else {
      const prev = windows[k - 1];
      const pos = prev === undefined ? 3 : (i - prev.end) / (prev.end - prev.start);
      weight[i] = scaledSigmoid(pos) * cost.fpWeight;
      window[i] = OUTSIDE;
    }
    if (i < probation) window[i] = PROBATION;
    else if (window[i]! >= 0) scored.add(window[i]!);
  }
  return { weight, window, scoredWindows: [...scored] };
}

/**
 * Raw NAB score and row counts of one series at one threshold (detection: score >= threshold).
 * @throws RangeError when the score array's length differs from the rows the windows assume.
 */
export function scoreSeries(
  series: ScoredSeries,
  cost: CostMatrix,
  threshold: number,
  probationPercent = NAB_PROBATION_PERCENT,
): ThresholdScore {
  const n = series.anomalyScores.length;
  const rw = rowWeights(n, series.windows, cost, probationPercent);
  const best = new Map<number, number>();
  const counts: Counts = { tp: 0, tn: 0, fp: 0, fn: 0 };
  let fpScore = 0;
  for (let i = 0; i < n; i++) {
    const w = rw.window[i]!;
    if (w === PROBATION) continue;
    const detected = series.anomalyScores[i]! >= threshold;
    if (w === OUTSIDE) {
      if (detected) {
        counts.fp++;
        fpScore += rw.weight[i]!;
      } else counts.tn++;
    } else if (detected) {
      counts.tp++;
      best.set(w, Math.max(best.get(w) ?? Number.NEGATIVE_INFINITY, rw.weight[i]!));
    } else counts.fn++;
  }
  let score = fpScore;
  for (const w of rw.scoredWindows) score += best.get(w) ?? -cost.fnWeight;
  return { threshold, score, ...counts };
}

/**
 * Raw corpus score at every candidate threshold (nab/sweeper.py calcScoreByThreshold, re-derived):
 * candidates are +Infinity (nothing detected) then every distinct anomaly score of a non-probation
 * row, descending. One threshold applies to all series, as in NAB's optimise step.
 * @returns one entry per candidate, threshold descending.
 */
export function sweepThresholds(
  corpus: readonly ScoredSeries[],
  cost: CostMatrix,
  probationPercent = NAB_PROBATION_PERCENT,
): ThresholdScore[] {
  // Flatten the scorable rows of every series; window ids become corpus-wide.
  let total = 0;
  for (const s of corpus) total += s.anomalyScores.length;
  const scores = new Float64Array(total);
  const weights = new Float64Array(total);
  const windowIds = new Int32Array(total);
  const order: number[] = [];
  let windowBase = 0;
  let offset = 0;
  let windowCount = 0;
  const counts: Counts = { tp: 0, tn: 0, fp: 0, fn: 0 };
  for (const s of corpus) {
    const n = s.anomalyScores.length;
    const rw = rowWeights(n, s.windows, cost, probationPercent);
    windowCount += rw.scoredWindows.length;
    for (let i = 0; i < n; i++) {
      const w = rw.window[i]!;
      if (w === PROBATION) continue;
      const a = s.anomalyScores[i]!;
      if (Number.isNaN(a)) throw new RangeError(`anomaly score at row ${i} is NaN`);
      scores[offset] = a;
      weights[offset] = rw.weight[i]!;
      windowIds[offset] = w === OUTSIDE ? OUTSIDE : windowBase + w;
      if (w === OUTSIDE) counts.tn++;
      else counts.fn++;
      order.push(offset);
      offset++;
    }
    windowBase += s.windows.length;
  }
  order.sort((x, y) => scores[y]! - scores[x]!);

  const best = new Float64Array(windowBase).fill(-cost.fnWeight);
  let windowSum = -cost.fnWeight * windowCount;
  let fpSum = 0;
  const out: ThresholdScore[] = [{ threshold: Number.POSITIVE_INFINITY, score: windowSum, ...counts }];
  for (let j = 0; j < order.length; ) {
    const threshold = scores[order[j]!]!;
    // Every row with this exact score becomes a detection at once.
    for (; j < order.length && scores[order[j]!] === threshold; j++) {
      const r = order[j]!;
      const w = windowIds[r]!;
      if (w === OUTSIDE) {
        fpSum += weights[r]!;
        counts.fp++;
        counts.tn--;
      } else {
        if (weights[r]! > best[w]!) {
          windowSum += weights[r]! - best[w]!;
          best[w] = weights[r]!;
        }
        counts.tp++;
        counts.fn--;
      }
    }
    out.push({ threshold, score: fpSum + windowSum, ...counts });
  }
  return out;
}

/**
 * The threshold with the highest raw corpus score (the highest threshold among ties, as NAB's
 * stable sort keeps the first).
 */
export function optimiseThreshold(
  corpus: readonly ScoredSeries[],
  cost: CostMatrix,
  probationPercent = NAB_PROBATION_PERCENT,
): ThresholdScore {
  const sweep = sweepThresholds(corpus, cost, probationPercent);
  let top = sweep[0]!;
  for (const s of sweep) if (s.score > top.score) top = s;
  return top;
}

/** Raw scores of the two reference detectors over a corpus, for normalisation. */
export interface Baselines {
  /** Never fires: every window missed. */
  null: number;
  /** Fires once at the first row of every window, nowhere else. */
  perfect: number;
}

/**
 * Null and perfect raw scores of a corpus, obtained by scoring those two detectors with
 * {@link scoreSeries} (so they follow the same rules as any detector).
 */
export function baselineScores(
  corpus: readonly { rowCount: number; windows: readonly WindowSpan[] }[],
  cost: CostMatrix,
  probationPercent = NAB_PROBATION_PERCENT,
): Baselines {
  let nul = 0;
  let perfect = 0;
  for (const s of corpus) {
    const none = new Float64Array(s.rowCount);
    nul += scoreSeries({ anomalyScores: none, windows: s.windows }, cost, 1, probationPercent).score;
    const atStarts = new Float64Array(s.rowCount);
    for (const w of s.windows) atStarts[w.start] = 1;
    perfect += scoreSeries({ anomalyScores: atStarts, windows: s.windows }, cost, 1, probationPercent).score;
  }
  return { null: nul, perfect };
}

/**
 * NAB's normalised score: 100 * (raw - null) / (perfect - null). 0 = the null detector,
 * 100 = perfect; can be negative.
 * @throws RangeError when perfect == null (a corpus without windows cannot be normalised).
 */
export function normalisedScore(raw: number, baselines: Baselines): number {
  const span = baselines.perfect - baselines.null;
  if (!(span > 0)) throw new RangeError(`perfect (${baselines.perfect}) must exceed null (${baselines.null}) to normalise`);
  return (100 * (raw - baselines.null)) / span;
}
