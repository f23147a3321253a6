/**
 * Streaming anomaly detector core for one time series (one tenant/model/metric, e.g. spend per
 * minute). Pure: no I/O, no clock, no look-ahead. `update(timestampMs, value)` scores a point from
 * the history before it, then learns it. Lengths are in points (calls to update), not time, except
 * the seasonal profiles, which use the timestamp's UTC hour.
 *
 * Method (chosen and tuned by measurement on the Numenta Anomaly Benchmark; figures and the
 * rejected variants are in docs/anomaly-detection.md):
 * 1. Expected value: three robust baselines; the one with the smallest median absolute error over
 *    the last `errorPoints` points is used (a seasonal one must beat the level one by the factor
 *    `seasonalMargin`):
 *    - level: the median of the last `baselinePoints` values;
 *    - hour-of-day: the median of the last `slotValues` values seen in this UTC hour of the day,
 *      once the series spans `dailyMinDays` days;
 *    - hour-of-week: the same per UTC hour of the week, once the series spans `weeklyMinDays` days.
 * 2. z = (residual - median residual) / scale, where residual = value - expected and
 *    scale = max(1.4826 x MAD, 5% of the 5-95% spread) of the last `baselinePoints` residuals.
 *    Three features of it, all >= 0:
 *    - change: |step - median step| / step scale, step = value - previous value (spikes, jumps);
 *    - sustained: |mean of the last `shortPoints` residuals - median residual| / scale (shifts);
 *    - spread: mean of min(|z|, `spreadCap`) over the last `shortPoints` points (bursts of
 *      volatility, oscillation, a series that stopped behaving).
 * 3. Calibration, per feature: ratio r = feature / its `calibrationQuantile` quantile over the
 *    previous `calibrationPoints` points, score r / (1 + r); so 0.5 means "as large as the
 *    0.999-quantile of this series' own recent history". This makes one threshold fit series of
 *    any unit and noise level. The point's raw score is the largest feature score.
 * 4. One alert per event: a raw score that does not exceed every raw score of the previous
 *    `cooldownPoints` points is multiplied by `cooldownFactor`. `label` = score >= `alertScore`.
 * 5. Level shifts: after `shiftPoints` consecutive points with |z| > `shiftZ` on the same side, the
 *    level baseline restarts from those points, so the new level becomes normal at once.
 * 6. Learning: score 0 and label false until `learningPoints` points have been seen (and until a
 *    feature has `learningPoints` values of history to be calibrated against).
 *
 * State is plain JSON-safe data: `toState()` / `restoreDetector(state)` continue exactly where the
 * detector stopped.
 */
import { RollingWindow, type RollingWindowState } from './rolling-window.ts';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;
/** 1 / Phi^-1(0.75): turns a MAD into a normal standard deviation. */
const MAD_TO_SIGMA = 1.4826;

/** Tuning of {@link createDetector}. Every field has a default in {@link DEFAULT_DETECTOR_OPTIONS}. */
export interface DetectorOptions {
  /** Points of history for the level median and the residual and step statistics. */
  baselinePoints: number;
  /** Points before any score is given. */
  learningPoints: number;
  /** Values kept per hour-of-day and per hour-of-week slot. */
  slotValues: number;
  /** Span of timestamps (days) before the hour-of-day profile may be used; Infinity disables it. */
  dailyMinDays: number;
  /** Span (days) before the hour-of-week profile may be used; Infinity disables it. */
  weeklyMinDays: number;
  /** Points of absolute error compared when choosing the baseline. */
  errorPoints: number;
  /** A seasonal baseline is chosen only when its error is below this fraction of the level baseline's, in (0, 1]. */
  seasonalMargin: number;
  /** Points averaged by the sustained and spread features. */
  shortPoints: number;
  /** Cap on |z| per point in the spread feature (one huge point must not dominate the mean). */
  spreadCap: number;
  /** Points of past feature values each feature is calibrated against. */
  calibrationPoints: number;
  /** Quantile of those past values used as the reference, in (0, 1] (1 = their maximum). */
  calibrationQuantile: number;
  /** score >= alertScore sets the label, in [0, 1]. */
  alertScore: number;
  /** Points a new raw score is compared with; 0 disables the damping. */
  cooldownPoints: number;
  /** Factor applied to a raw score that is not a new maximum over the cooldown, in [0, 1]. */
  cooldownFactor: number;
  /** Consecutive same-side points beyond shiftZ that make a level shift. */
  shiftPoints: number;
  /** |z| beyond which a point counts towards a level shift. */
  shiftZ: number;
}

/**
 * Defaults: the one parameter set measured on all 58 NAB series (docs/anomaly-detection.md).
 * NAB's series are mostly 5-minute points, so e.g. baselinePoints 1000 is about 3.5 days there
 * and about 17 hours over minute aggregates.
 */
export const DEFAULT_DETECTOR_OPTIONS: Readonly<DetectorOptions> = Object.freeze({
  baselinePoints: 1000,
  learningPoints: 30,
  slotValues: 84,
  dailyMinDays: 3,
  weeklyMinDays: 21,
  errorPoints: 2000,
  seasonalMargin: 0.8,
  shortPoints: 12,
  spreadCap: 6,
  calibrationPoints: 6000,
  calibrationQuantile: 0.999,
  alertScore: 0.518,
  cooldownPoints: 100,
  cooldownFactor: 0.5,
  shiftPoints: 12,
  shiftZ: 4,
});

/** Baselines the expected value can come from. */
export type BaselineKind = 'level' | 'hour_of_day' | 'hour_of_week';
const BASELINES: readonly BaselineKind[] = ['level', 'hour_of_day', 'hour_of_week'];

/** Features a score can come from. */
export type FeatureKind = 'change' | 'sustained' | 'spread';
const FEATURES: readonly FeatureKind[] = ['change', 'sustained', 'spread'];

/** Result of one {@link Detector.update}. */
export interface DetectorResult {
  /** Anomaly score in [0, 1). 0.5 = as unusual as this series' recent 0.999-quantile; 0 while learning. */
  score: number;
  /** score >= alertScore. */
  label: boolean;
  /** Expected value from the chosen baseline, in the value's unit (NaN while learning). */
  expected: number;
  /** Which baseline gave `expected`. */
  baseline: BaselineKind;
  /** Signed robust z of the point: positive when the value is above expected (0 while learning). */
  z: number;
  /** Which feature gave the score (null while learning or when every feature is still calibrating). */
  feature: FeatureKind | null;
  /** True until learningPoints points have been seen. */
  learning: boolean;
  /** True when this point completed a level shift and the level baseline restarted from it. */
  rebaselined: boolean;
}

export interface Detector {
  /**
   * Scores the point from the history so far, then learns it. Points are taken in call order; the
   * timestamp (epoch ms, UTC) only picks the seasonal slot, so a point out of time order is still scored.
   * @throws RangeError when the timestamp or the value is not a finite number.
   */
  update(timestampMs: number, value: number): DetectorResult;
  /** Plain-data, JSON-safe state. */
  toState(): DetectorState;
}

/** Serialisable state of a detector (see {@link restoreDetector}). */
export interface DetectorState {
  version: 1;
  options: DetectorOptions;
  seen: number;
  /** Timestamp of the first point (epoch ms), null before any. */
  firstMs: number | null;
  prevValue: number | null;
  values: RollingWindowState;
  steps: RollingWindowState;
  /** Per baseline kind (level, hour_of_day, hour_of_week). */
  residuals: RollingWindowState[];
  errors: RollingWindowState[];
  recentResiduals: number[][];
  recentAbsZ: number[];
  daily: [number, RollingWindowState][];
  weekly: [number, RollingWindowState][];
  /** Per feature (change, sustained, spread). */
  calibration: RollingWindowState[];
  recentRaw: RollingWindowState;
  shiftSide: number;
  shiftValues: number[];
}

function checkOptions(o: DetectorOptions): void {
  const positiveInts = [
    'baselinePoints',
    'learningPoints',
    'slotValues',
    'errorPoints',
    'shortPoints',
    'calibrationPoints',
    'shiftPoints',
  ] as const;
  for (const k of positiveInts)
    if (!Number.isInteger(o[k]) || o[k] <= 0) throw new RangeError(`${k} must be a positive integer, got ${o[k]}`);
  if (!Number.isInteger(o.cooldownPoints) || o.cooldownPoints < 0) {
    throw new RangeError(`cooldownPoints must be a non-negative integer, got ${o.cooldownPoints}`);
  }
  for (const k of ['alertScore', 'cooldownFactor'] as const)
    if (!(o[k] >= 0 && o[k] <= 1)) throw new RangeError(`${k} must be in [0, 1], got ${o[k]}`);
  for (const k of ['seasonalMargin', 'calibrationQuantile'] as const)
    if (!(o[k] > 0 && o[k] <= 1)) throw new RangeError(`${k} must be in (0, 1], got ${o[k]}`);
  for (const k of ['dailyMinDays', 'weeklyMinDays', 'shiftZ', 'spreadCap'] as const)
    if (!(o[k] > 0)) throw new RangeError(`${k} must be > 0, got ${o[k]}`);
}

/** 1.4826 x MAD of a non-empty window, floored by 5% of its 5-95% spread and by `floor`. */
function robustScale(w: RollingWindow, floor: number): number {
  const spread = w.quantile(0.95) - w.quantile(0.05);
  return Math.max(MAD_TO_SIGMA * w.mad(), 0.05 * spread, floor);
}

/** Mean of `current` and the last (len - 1) entries of `history`. */
function meanWithHistory(history: readonly number[], current: number, len: number): number {
  let sum = current;
  const take = Math.min(history.length, len - 1);
  for (let i = history.length - take; i < history.length; i++) sum += history[i]!;
  return sum / (take + 1);
}

function pushBounded(arr: number[], v: number, max: number): void {
  arr.push(v);
  if (arr.length > max) arr.shift();
}

const hourOfDay = (t: number) => Math.floor((((t % DAY_MS) + DAY_MS) % DAY_MS) / HOUR_MS);
const hourOfWeek = (t: number) => Math.floor((((t % WEEK_MS) + WEEK_MS) % WEEK_MS) / HOUR_MS);

/**
 * A detector for one series. Options not given take {@link DEFAULT_DETECTOR_OPTIONS}.
 * @throws RangeError naming the option when an option is out of range.
 */
export function createDetector(options: Partial<DetectorOptions> = {}): Detector {
  const o: DetectorOptions = { ...DEFAULT_DETECTOR_OPTIONS, ...options };
  checkOptions(o);
  return build(o, undefined);
}

/**
 * Rebuilds a detector from {@link Detector.toState} output (also after a JSON round trip).
 * @throws RangeError when the state is not a version-1 detector state or its options are out of range.
 */
export function restoreDetector(state: DetectorState): Detector {
  if (state?.version !== 1) throw new RangeError(`detector state version must be 1, got ${state?.version}`);
  checkOptions(state.options);
  return build({ ...state.options }, state);
}

function build(o: DetectorOptions, s: DetectorState | undefined): Detector {
  const win = (st: RollingWindowState | undefined, capacity: number) => (st ? RollingWindow.fromState(st) : new RollingWindow(capacity));
  const slots = (entries: [number, RollingWindowState][] | undefined) =>
    new Map<number, RollingWindow>((entries ?? []).map(([k, st]) => [k, RollingWindow.fromState(st)]));
  const recentLen = o.shortPoints;

  let seen = s?.seen ?? 0;
  let firstMs = s?.firstMs ?? null;
  let prevValue = s?.prevValue ?? null;
  let values = win(s?.values, o.baselinePoints);
  const steps = win(s?.steps, o.baselinePoints);
  const residuals = BASELINES.map((_, k) => win(s?.residuals[k], o.baselinePoints));
  const errors = BASELINES.map((_, k) => win(s?.errors[k], o.errorPoints));
  const recentResiduals = BASELINES.map((_, k) => [...(s?.recentResiduals[k] ?? [])]);
  const recentAbsZ = [...(s?.recentAbsZ ?? [])];
  const daily = slots(s?.daily);
  const weekly = slots(s?.weekly);
  const calibration = FEATURES.map((_, k) => win(s?.calibration[k], o.calibrationPoints));
  const recentRaw = win(s?.recentRaw, Math.max(1, o.cooldownPoints));
  let shiftSide = s?.shiftSide ?? 0;
  let shiftValues = [...(s?.shiftValues ?? [])];

  function predictions(t: number): number[] {
    const spanDays = firstMs === null ? 0 : (t - firstMs) / DAY_MS;
    const day = daily.get(hourOfDay(t));
    const week = weekly.get(hourOfWeek(t));
    return [
      values.size > 0 ? values.median() : Number.NaN,
      day && spanDays >= o.dailyMinDays && day.size >= 3 ? day.median() : Number.NaN,
      week && spanDays >= o.weeklyMinDays && week.size >= 3 ? week.median() : Number.NaN,
    ];
  }

  function chooseBaseline(pred: number[]): number {
    let best = 0;
    let bestErr = errors[0]!.size > 0 ? errors[0]!.median() : Number.POSITIVE_INFINITY;
    for (const k of [1, 2]) {
      const e = errors[k]!;
      // A seasonal baseline needs a track record (200 errors, or errorPoints if fewer) before it can win.
      if (Number.isNaN(pred[k]!) || e.size < Math.min(o.errorPoints, 200)) continue;
      const m = e.median();
      if (m < o.seasonalMargin * bestErr) {
        best = k;
        bestErr = m;
      }
    }
    return best;
  }

  function learn(t: number, x: number, resid: number[], step: number): void {
    if (firstMs === null) firstMs = t;
    resid.forEach((r, k) => {
      if (Number.isNaN(r)) return;
      errors[k]!.push(Math.abs(r));
      residuals[k]!.push(r);
      pushBounded(recentResiduals[k]!, r, recentLen);
    });
    values.push(x);
    if (prevValue !== null) steps.push(step);
    for (const [map, key] of [
      [daily, hourOfDay(t)],
      [weekly, hourOfWeek(t)],
    ] as const) {
      let w = map.get(key);
      if (!w) {
        w = new RollingWindow(o.slotValues);
        map.set(key, w);
      }
      w.push(x);
    }
    prevValue = x;
    seen++;
  }

  /** Tracks same-side runs of |z| > shiftZ; returns true (and restarts the level baseline) when a run completes. */
  function levelShift(z: number, x: number): boolean {
    const side = Math.abs(z) > o.shiftZ ? Math.sign(z) : 0;
    if (side === 0 || side !== shiftSide) shiftValues = [];
    shiftSide = side;
    if (side === 0) return false;
    shiftValues.push(x);
    if (shiftValues.length < o.shiftPoints) return false;
    // Only the level restarts; the residual and error history keep the series' noise scale.
    values = new RollingWindow(o.baselinePoints);
    for (const v of shiftValues) values.push(v);
    shiftSide = 0;
    shiftValues = [];
    return true;
  }

  function update(t: number, x: number): DetectorResult {
    if (!Number.isFinite(t)) throw new RangeError(`timestampMs must be a finite number, got ${t}`);
    if (!Number.isFinite(x)) throw new RangeError(`value must be a finite number, got ${x}`);
    const pred = predictions(t);
    const b = chooseBaseline(pred);
    const step = prevValue === null ? 0 : x - prevValue;
    const resid = pred.map((p) => x - p);
    const learning = seen < o.learningPoints;
    const result: DetectorResult = {
      score: 0,
      label: false,
      expected: Number.NaN,
      baseline: BASELINES[b]!,
      z: 0,
      feature: null,
      learning,
      rebaselined: false,
    };
    if (learning) {
      learn(t, x, resid, step);
      return result;
    }

    const expected = pred[b]!;
    // Residual statistics of the chosen baseline (of the level one while a seasonal one is young).
    const rw = residuals[b]!.size >= o.learningPoints ? residuals[b]! : residuals[0]!;
    const floor = 1e-9 * Math.max(1, Math.abs(expected));
    const scale = robustScale(rw, floor);
    const center = rw.median();
    const r = resid[b]!;
    const z = (r - center) / scale;
    const capped = Math.min(Math.abs(z), o.spreadCap);
    const features = [
      Math.abs(step - steps.median()) / robustScale(steps, floor),
      Math.abs(meanWithHistory(recentResiduals[b]!, r, o.shortPoints) - center) / scale,
      meanWithHistory(recentAbsZ, capped, o.shortPoints),
    ];
    pushBounded(recentAbsZ, capped, recentLen);

    let raw = 0;
    let which: FeatureKind | null = null;
    features.forEach((f, k) => {
      const c = calibration[k]!;
      if (c.size >= o.learningPoints) {
        const ratio = f / Math.max(c.quantile(o.calibrationQuantile), 1e-12);
        const sc = ratio / (1 + ratio);
        if (sc > raw) {
          raw = sc;
          which = FEATURES[k]!;
        }
      }
      c.push(f);
    });

    let score = raw;
    if (o.cooldownPoints > 0) {
      if (recentRaw.size > 0 && raw <= recentRaw.quantile(1)) score *= o.cooldownFactor;
      recentRaw.push(raw);
    }
    result.score = score;
    result.label = score >= o.alertScore;
    result.expected = expected;
    result.z = z;
    result.feature = which;
    learn(t, x, resid, step);
    result.rebaselined = levelShift(z, x);
    return result;
  }

  function toState(): DetectorState {
    return {
      version: 1,
      options: { ...o },
      seen,
      firstMs,
      prevValue,
      values: values.toState(),
      steps: steps.toState(),
      residuals: residuals.map((w) => w.toState()),
      errors: errors.map((w) => w.toState()),
      recentResiduals: recentResiduals.map((r) => [...r]),
      recentAbsZ: [...recentAbsZ],
      daily: [...daily].map(([k, w]) => [k, w.toState()]),
      weekly: [...weekly].map(([k, w]) => [k, w.toState()]),
      calibration: calibration.map((w) => w.toState()),
      recentRaw: recentRaw.toState(),
      shiftSide,
      shiftValues: [...shiftValues],
    };
  }

  return { update, toState };
}
