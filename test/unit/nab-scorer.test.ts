import { describe, expect, it } from 'vitest';
import {
  baselineScores,
  NAB_PROFILES,
  normalisedScore,
  OUTSIDE,
  optimiseThreshold,
  PROBATION,
  probationaryLength,
  rowWeights,
  scaledSigmoid,
  scoreSeries,
  sweepThresholds,
  type WindowSpan,
} from '../../processors/anomaly/nab-scorer.ts';

const std = NAB_PROFILES.standard;

// Hand values, from S(x) = 2 / (1 + e^(5x)) - 1 (computed with a calculator to 16 digits):
const S_MINUS_1 = 0.9866142981514305; // S(-1) = 2*sigmoid(5) - 1
const S_MINUS_HALF = 0.8482836399575131; // S(-0.5)
const S_PLUS_1 = -0.9866142981514303; // S(1)

describe('scaledSigmoid', () => {
  it.each<[number, number]>([
    [-1, S_MINUS_1],
    [-0.5, S_MINUS_HALF],
    [0, 0],
    [1, S_PLUS_1],
    [2.999, -0.9999993851288645],
    [3, -1], // NAB cuts at 3: exactly -1 from there on
    [10, -1],
  ])('S(%d) = %d', (x, expected) => {
    expect(scaledSigmoid(x)).toBeCloseTo(expected, 14);
  });

  it('rejects NaN', () => {
    expect(() => scaledSigmoid(Number.NaN)).toThrow(/NaN/);
  });
});

describe('probationaryLength', () => {
  it.each<[number, number]>([
    [20, 3], // floor(0.15 * 20)
    [4032, 604], // floor(604.8)
    [5000, 750],
    [22695, 750], // capped at 0.15 * 5000
    [0, 0],
  ])('%d rows -> %d', (n, expected) => {
    expect(probationaryLength(n)).toBe(expected);
  });

  it('rejects a fractional row count', () => {
    expect(() => probationaryLength(10.5)).toThrow(/rowCount/);
  });
});

// A 20-row series: probation = rows 0..2, one window on rows 10..13 (width 4).
const W: WindowSpan[] = [{ start: 10, end: 13 }];
const series = (detectedRows: number[], n = 20) => {
  const a = new Float64Array(n);
  for (const r of detectedRows) a[r] = 1;
  return { anomalyScores: a, windows: W };
};

describe('rowWeights on 20 rows, window [10, 13]', () => {
  const rw = rowWeights(20, W, std);
  it('marks probation, outside and window rows', () => {
    expect(Array.from(rw.window.slice(0, 4))).toEqual([PROBATION, PROBATION, PROBATION, OUTSIDE]);
    expect(Array.from(rw.window.slice(10, 15))).toEqual([0, 0, 0, 0, OUTSIDE]);
    expect(rw.scoredWindows).toEqual([0]);
  });
  it('weighs window rows by their relative position -(13 - i + 1) / 4, scaled so the first row weighs tpWeight', () => {
    // i=10: p=-1 -> 1; i=11: p=-0.75; i=12: p=-0.5 -> S(-0.5)/S(-1); i=13: p=-0.25
    expect(rw.weight[10]).toBeCloseTo(1, 14);
    expect(rw.weight[11]).toBeCloseTo(0.9669890878000605, 14);
    expect(rw.weight[12]).toBeCloseTo(S_MINUS_HALF / S_MINUS_1, 14);
    expect(rw.weight[12]).toBeCloseTo(0.8597925669097837, 14);
    expect(rw.weight[13]).toBeCloseTo(0.5621241486044827, 14);
  });
  it('weighs rows after the window by (i - 13) / (4 - 1), and rows before any window -fpWeight', () => {
    expect(rw.weight[5]).toBe(-0.11);
    expect(rw.weight[16]).toBeCloseTo(0.11 * S_PLUS_1, 14); // p = 3/3 = 1
    expect(rw.weight[18]).toBeCloseTo(-0.10994713142317984, 14); // p = 5/3
  });
});

describe('scoreSeries (standard profile, threshold 0.5)', () => {
  // [case, detected rows, expected raw score, tp, fp]
  it.each<[string, number[], number, number, number]>([
    ['nothing detected: the window is missed', [], -1, 0, 0],
    ['detection at the window start', [10], 1, 1, 0],
    ['halfway in: S(-0.5)/S(-1)', [12], 0.8597925669097837, 1, 0],
    ['earliest detection counts, later ones in the same window add nothing', [12, 13], 0.8597925669097837, 2, 0],
    ['order does not matter: the earliest row wins', [13, 10], 1, 2, 0],
    ['FP before any window costs -fpWeight, and the window is missed', [5], -1.11, 0, 1],
    ['FP in probation is ignored', [1], -1, 0, 0],
    ['FP one window-width after the window: 0.11 * S(1)', [12, 16], 0.8597925669097837 - 0.10852757279665734, 1, 1],
    ['two FPs after the window add up', [16, 18], -1 - 0.10852757279665734 - 0.10994713142317984, 0, 2],
  ])('%s', (_label, rows, expected, tp, fp) => {
    const r = scoreSeries(series(rows), std, 0.5);
    expect(r.score).toBeCloseTo(expected, 12);
    expect(r.tp).toBe(tp);
    expect(r.fp).toBe(fp);
    // 17 scored rows: 4 in the window, 13 outside
    expect(r.tp + r.fn).toBe(4);
    expect(r.fp + r.tn).toBe(13);
  });

  it('uses the profile weights: low-FN doubles the miss, low-FP doubles the FP', () => {
    expect(scoreSeries(series([16]), NAB_PROFILES.reward_low_FN_rate, 0.5).score).toBeCloseTo(-2 - 0.10852757279665734, 12);
    expect(scoreSeries(series([16]), NAB_PROFILES.reward_low_FP_rate, 0.5).score).toBeCloseTo(-1 - 0.21705514559331468, 12);
  });

  it('detects at score >= threshold', () => {
    const a = new Float64Array(20);
    a[10] = 0.5;
    expect(scoreSeries({ anomalyScores: a, windows: W }, std, 0.5).score).toBeCloseTo(1, 12);
    expect(scoreSeries({ anomalyScores: a, windows: W }, std, 0.50001).score).toBe(-1);
  });

  it('rejects bad windows with the reason', () => {
    const a = new Float64Array(20);
    expect(() => scoreSeries({ anomalyScores: a, windows: [{ start: 5, end: 25 }] }, std, 0.5)).toThrow(/windows\[0\]/);
    expect(() =>
      scoreSeries(
        {
          anomalyScores: a,
          windows: [
            { start: 5, end: 8 },
            { start: 7, end: 9 },
          ],
        },
        std,
        0.5,
      ),
    ).toThrow(/windows\[1\].*previous window/);
    expect(() => scoreSeries({ anomalyScores: a, windows: [{ start: 5, end: 5 }] }, std, 0.5)).toThrow(/one row/);
  });
});

describe('sweepThresholds / optimiseThreshold', () => {
  // Series A: window [10, 13]; scores 0.9 at row 16 (FP), 0.7 at row 12 (TP halfway), 0.3 at row 5 (FP before window).
  const a = new Float64Array(20);
  a[16] = 0.9;
  a[12] = 0.7;
  a[5] = 0.3;
  // Series B: same shape, window [10, 13]; 0.7 at row 10 (TP at start).
  const b = new Float64Array(20);
  b[10] = 0.7;
  const corpus = [
    { anomalyScores: a, windows: W },
    { anomalyScores: b, windows: W },
  ];
  const fp16 = -0.10852757279665734;
  const tpHalf = 0.8597925669097837;

  it('scores every distinct threshold, descending, over the whole corpus', () => {
    const sweep = sweepThresholds(corpus, std);
    expect(sweep.map((s) => s.threshold)).toEqual([Number.POSITIVE_INFINITY, 0.9, 0.7, 0.3, 0]);
    const expected = [
      -2, // both windows missed
      -2 + fp16, // + FP at A:16
      fp16 + tpHalf + 1, // both windows found at 0.7
      fp16 + tpHalf + 1 - 0.11, // + FP at A:5
      // threshold 0: every scored row fires. A: 13 outside rows (3,4,5..9 before: 7 rows at -0.11; 14..19 after),
      // B likewise; windows found at their start.
      0, // filled below
    ];
    const afterWindow = [14, 15, 16, 17, 18, 19].reduce((s, i) => s + 0.11 * scaledSigmoid((i - 13) / 3), 0);
    expected[4] = 2 * (1 - 7 * 0.11 + afterWindow);
    sweep.forEach((s, k) => {
      expect(s.score).toBeCloseTo(expected[k]!, 12);
    });
    expect(sweep[2]).toMatchObject({ tp: 2, fp: 1, fn: 6, tn: 25 });
  });

  it('optimiseThreshold picks the best score', () => {
    const best = optimiseThreshold(corpus, std);
    expect(best.threshold).toBe(0.7);
    expect(best.score).toBeCloseTo(fp16 + tpHalf + 1, 12);
  });

  it('optimiseThreshold keeps the highest threshold among equal scores', () => {
    // With fpWeight 0, false positives cost nothing: thresholds 0.9, 0.6 and 0 all score 1.
    const c = new Float64Array(20);
    c[10] = 0.9;
    c[16] = 0.6;
    const free = { tpWeight: 1, fpWeight: 0, fnWeight: 1 };
    const sweep = sweepThresholds([{ anomalyScores: c, windows: W }], free);
    expect(sweep.map((s) => [s.threshold, s.score])).toEqual([
      [Number.POSITIVE_INFINITY, -1],
      [0.9, 1],
      [0.6, 1],
      [0, 1],
    ]);
    expect(optimiseThreshold([{ anomalyScores: c, windows: W }], free).threshold).toBe(0.9);
  });

  it('agrees with scoreSeries at each threshold', () => {
    for (const s of sweepThresholds(corpus, std)) {
      const direct = corpus.reduce((sum, c) => sum + scoreSeries(c, std, s.threshold).score, 0);
      expect(s.score).toBeCloseTo(direct, 12);
    }
  });
});

describe('baselines and normalisation', () => {
  const corpus = [
    { rowCount: 20, windows: W },
    {
      rowCount: 40,
      windows: [
        { start: 10, end: 14 },
        { start: 30, end: 35 },
      ],
    },
  ];
  it('null = -fnWeight per window, perfect = tpWeight per window', () => {
    expect(baselineScores(corpus, std)).toEqual({ null: -3, perfect: 3 });
    const fn = baselineScores(corpus, NAB_PROFILES.reward_low_FN_rate);
    expect(fn.null).toBe(-6);
    expect(fn.perfect).toBeCloseTo(3, 12);
  });
  it('normalises to 0 for null and 100 for perfect', () => {
    const b = { null: -6, perfect: 3 };
    expect(normalisedScore(-6, b)).toBe(0);
    expect(normalisedScore(3, b)).toBe(100);
    expect(normalisedScore(0, b)).toBeCloseTo(66.66666666666667, 12);
    expect(() => normalisedScore(0, { null: 0, perfect: 0 })).toThrow(/perfect/);
  });
});
