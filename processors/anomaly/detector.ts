/**
 * Streaming anomaly detector core for one time series (one tenant/model/metric), pure: no I/O, no
 * clock, no look-ahead. `update(timestampMs, value)` scores a point from the history before it,
 * then learns it.
 *
 * Method (tuned on the Numenta Anomaly Benchmark, see docs/anomaly-detection.md):
 * 1. Expected value, from three robust baselines, whichever has had the smallest median absolute
 *    error over the last `errorPoints` points (a seasonal one must beat the level one by
 *    `seasonalMargin`):
 *    - level: the median of the last `baselinePoints` values;
 *    - hour-of-day: the median of the last `slotValues` values seen in this UTC hour of the day
 *      (used once the series spans `dailyMinDays` days);
 *    - hour-of-week: the same per UTC hour of the week (once the series spans `weeklyMinDays` days).
 * 2. Three deviations, each scaled robustly (1.4826 x MAD of the recent residuals, floored):
 *    - point: |residual - median residual| / scale;
 *    - change: |step - median step| / step scale, step = value - previous value;
 *    - sustained: the mean of the last `shortPoints` residuals, against the same scale.
 * 3. Calibration: each deviation is divided by the largest value it took over the previous
 *    `calibrationPoints` points (r > 1: the largest deviation in that span); its score is
 *    r / (1 + r) (so 0.5 = as large as that maximum). The point's raw score is the largest of the three.
 * 4. Alerts: `label` is score >= `alertScore`. After an alert the next `cooldownPoints` scores are
 *    multiplied by `cooldownFactor` (one alert per event, not one per point).
 * 5. Level shifts: when `shiftPoints` consecutive points deviate by more than `shiftZ` on the same
 *    side, the level baseline restarts from those points (the new level becomes normal).
 * 6. Learning: no score (0, label false) until `learningPoints` points have been seen.
 *
 * State is plain data: `toState()` / `restoreDetector(state)` round-trip through JSON.
 */
import { RollingWindow, type RollingWindowState } from './rolling-window.ts';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;
/** 1 / Phi^-1(0.75): turns a MAD into a normal standard deviation. */
const MAD_TO_SIGMA = 1.4826;

/** Tuning of {@link createDetector}; every field has a default (see {@link DEFAULT_DETECTOR_OPTIONS}). */
export interface DetectorOptions {
  /** Points of history for the level median, the residual and step statistics. */
  baselinePoints: number;
  /** Points before any score is given. */
  learningPoints: number;
  /** Values kept per hour-of-day / hour-of-week slot. */
  slotValues: number;
  /** Span (days of timestamps) before the hour-of-day profile may be used; Infinity disables it. */
  dailyMinDays: number;
  /** Span (days) before the hour-of-week profile may be used; Infinity disables it. */
  weeklyMinDays: number;
  /** Points of absolute error compared when choosing the baseline. */
  errorPoints: number;
  /** A seasonal baseline is chosen only when its error is below this fraction of the level baseline's. */
  seasonalMargin: number;
  /** Points averaged by the sustained-deviation feature. */
  shortPoints: number;
  /** Points of past deviations each feature is calibrated against. */
  calibrationPoints: number;
  /** Quantile of those past deviations used as the reference (1 = their maximum). */
  calibrationQuantile: number;
  /** score >= alertScore sets the label. */
  alertScore: number;
  /** Points after an alert whose scores are damped. */
  cooldownPoints: number;
  /** Damping factor of scores during the cooldown, in [0, 1]. */
  cooldownFactor: number;
  cooldownMode: 'alert' | 'novel';
  spreadCap: number;
  longPoints: number;
  /** Consecutive same-side deviations (in point z) beyond shiftZ that count as a level shift. */
  shiftPoints: number;
  shiftZ: number;
}

export const DEFAULT_DETECTOR_OPTIONS: Readonly<DetectorOptions> = Object.freeze({
  baselinePoints: 1000,
  learningPoints: 30,
  slotValues: 84,
  dailyMinDays: 3,
  weeklyMinDays: 21,
  errorPoints: 2000,
  seasonalMargin: 0.8,
  shortPoints: 12,
  calibrationPoints: 3000,
  calibrationQuantile: 1,
  alertScore: 0.53,
  cooldownPoints: 0,
  cooldownFactor: 1,
  cooldownMode: 'alert',
  spreadCap: 0,
  longPoints: 0,
  shiftPoints: 1_000_000,
  shiftZ: 1_000_000,
});

/** Baselines the expected value can come from. */
export type BaselineKind = 'level' | 'hour_of_day' | 'hour_of_week';
const KINDS: readonly BaselineKind[] = ['level', 'hour_of_day', 'hour_of_week'];

/** Result of one {@link Detector.update}. */
export interface DetectorResult {
  /** Anomaly score in [0, 1]; 0.5 means "as unusual as the most unusual point of the calibration span". */
  score: number;
  /** score >= alertScore. */
  label: boolean;
  /** Expected value from the chosen baseline (NaN while learning). */
  expected: number;
  /** Which baseline gave `expected`. */
  baseline: BaselineKind;
  /** Point deviation in robust standard deviations, signed (value above expected: positive). */
  z: number;
  /** Which feature gave the score. */
  feature: 'point' | 'change' | 'sustained' | 'none';
  /** True while fewer than learningPoints points have been seen. */
  learning: boolean;
  /** True when this point completed a level shift and the level baseline restarted. */
  rebaselined: boolean;
}

export interface Detector {
  /**
   * Scores the point from the history so far, then learns it. Points are taken in call order; the
   * timestamp (epoch ms, UTC) only picks the seasonal slot, so a point out of time order is still scored.
   * @throws RangeError when the timestamp or value is not finite.
   */
  update(timestampMs: number, value: number): DetectorResult;
  /** Plain-data state, JSON-safe. */
  toState(): DetectorState;
}

/** Serialisable state of a detector (see {@link restoreDetector}). */
export interface DetectorState {
  version: 1;
  options: DetectorOptions;
  seen: number;
  firstMs: number;
  lastMs: number;
  prevValue: number;
  values: RollingWindowState;
  steps: RollingWindowState;
  residuals: RollingWindowState[];
  errors: RollingWindowState[];
  recentResiduals: number[][];
  daily: [number, RollingWindowState][];
  weekly: [number, RollingWindowState][];
  calibration: RollingWindowState[];
  sinceAlert: number;
  shiftRun: number;
  shiftSide: number;
  shiftValues: number[];
}

function checkOptions(o: DetectorOptions): void {
  const posInt = [
    'baselinePoints',
    'learningPoints',
    'slotValues',
    'errorPoints',
    'shortPoints',
    'calibrationPoints',
    'shiftPoints',
  ] as const;
  for (const k of posInt) if (!Number.isInteger(o[k]) || o[k] <= 0) throw new RangeError(`${k} must be a positive integer, got ${o[k]}`);
  if (!Number.isInteger(o.cooldownPoints) || o.cooldownPoints < 0) throw new RangeError(`cooldownPoints must be a non-negative integer, got ${o.cooldownPoints}`);
  for (const k of ['alertScore', 'cooldownFactor', 'seasonalMargin', 'calibrationQuantile'] as const) {
    if (!(o[k] >= 0 && o[k] <= 1)) throw new RangeError(`${k} must be in [0, 1], got ${o[k]}`);
  }
  for (const k of ['dailyMinDays', 'weeklyMinDays', 'shiftZ'] as const) if (!(o[k] > 0)) throw new RangeError(`${k} must be > 0, got ${o[k]}`);
}

/** Robust scale of a window: 1.4826 x MAD, floored by a fraction of the 5-95% spread and by `floor`. */
function robustScale(w: RollingWindow, floor: number): number {
  const spread = w.quantile(0.95) - w.quantile(0.05);
  return Math.max(MAD_TO_SIGMA * w.mad(), 0.05 * spread, floor);
}

/**
 * A detector for one series.
 * @throws RangeError naming the option when an option is out of range.
 */
export function createDetector(options: Partial<DetectorOptions> = {}): Detector {
  const o: DetectorOptions = { ...DEFAULT_DETECTOR_OPTIONS, ...options };
  checkOptions(o);
  return build(o, undefined);
}

/**
 * Rebuilds a detector from {@link Detector.toState} output; it continues exactly where the original stopped.
 * @throws RangeError when the state is not a version-1 detector state.
 */
export function restoreDetector(state: DetectorState): Detector {
  if (state?.version !== 1) throw new RangeError(`detector state version must be 1, got ${state?.version}`);
  checkOptions(state.options);
  return build(state.options, state);
}

function build(o: DetectorOptions, s: DetectorState | undefined): Detector {
  const win = (st: RollingWindowState | undefined, cap: number) => (st ? RollingWindow.fromState(st) : new RollingWindow(cap));
  let seen = s?.seen ?? 0;
  let firstMs = s?.firstMs ?? Number.NaN;
  let lastMs = s?.lastMs ?? Number.NEGATIVE_INFINITY;
  let prevValue = s?.prevValue ?? Number.NaN;
  let values = win(s?.values, o.baselinePoints);
  const steps = win(s?.steps, o.baselinePoints);
  const residuals = KINDS.map((_, k) => win(s?.residuals[k], o.baselinePoints));
  const errors = KINDS.map((_, k) => win(s?.errors[k], o.errorPoints));
  const recentResiduals = KINDS.map((_, k) => [...(s?.recentResiduals[k] ?? [])]);
  const daily = new Map<number, RollingWindow>((s?.daily ?? []).map(([k, st]) => [k, RollingWindow.fromState(st)]));
  const weekly = new Map<number, RollingWindow>((s?.weekly ?? []).map(([k, st]) => [k, RollingWindow.fromState(st)]));
  const calibration = [0, 1, 2, 3, 4, 5].map((k) => win(s?.calibration[k], o.calibrationPoints));
  const absZ: number[] = [];
  const recentRaw = new RollingWindow(Math.max(1, o.cooldownPoints));
  let sinceAlert = s?.sinceAlert ?? Number.POSITIVE_INFINITY;
  let shiftRun = s?.shiftRun ?? 0;
  let shiftSide = s?.shiftSide ?? 0;
  let shiftValues = [...(s?.shiftValues ?? [])];

  const slot = (map: Map<number, RollingWindow>, key: number): RollingWindow => {
    let w = map.get(key);
    if (!w) {
      w = new RollingWindow(o.slotValues);
      map.set(key, w);
    }
    return w;
  };

  function predictions(t: number): number[] {
    const span = Number.isNaN(firstMs) ? 0 : (t - firstMs) / DAY_MS;
    const day = daily.get(Math.floor((((t % DAY_MS) + DAY_MS) % DAY_MS) / HOUR_MS));
    const week = weekly.get(Math.floor((((t % WEEK_MS) + WEEK_MS) % WEEK_MS) / HOUR_MS));
    return [
      values.size > 0 ? values.median() : Number.NaN,
      day && span >= o.dailyMinDays && day.size >= 3 ? day.median() : Number.NaN,
      week && span >= o.weeklyMinDays && week.size >= 3 ? week.median() : Number.NaN,
    ];
  }

  function chooseBaseline(pred: number[]): number {
    let best = 0;
    let bestErr = errors[0]!.size > 0 ? errors[0]!.median() : Number.POSITIVE_INFINITY;
    for (const k of [1, 2]) {
      const e = errors[k]!;
      if (Number.isNaN(pred[k]!) || e.size < Math.min(o.errorPoints, 200)) continue;
      const m = e.median();
      if (m < o.seasonalMargin * bestErr) {
        best = k;
        bestErr = m;
      }
    }
    return best;
  }

  function update(t: number, x: number): DetectorResult {
    if (!Number.isFinite(t)) throw new RangeError(`timestampMs must be a finite number, got ${t}`);
    if (!Number.isFinite(x)) throw new RangeError(`value must be a finite number, got ${x}`);
    const pred = predictions(t);
    const b = chooseBaseline(pred);
    const step = Number.isNaN(prevValue) ? 0 : x - prevValue;
    const learning = seen < o.learningPoints || Number.isNaN(pred[b]!);
    const result: DetectorResult = {
      score: 0,
      label: false,
      expected: Number.NaN,
      baseline: KINDS[b]!,
      z: 0,
      feature: 'none',
      learning,
      rebaselined: false,
    };
    const resid = residuals.map((_, k) => x - pred[k]!);
    let zPoint = 0;
    if (!learning) {
      const expected = pred[b]!;
      const rw = residuals[b]!.size >= o.learningPoints ? residuals[b]! : residuals[0]!;
      const floor = 1e-9 * Math.max(1, Math.abs(expected));
      const scale = robustScale(rw.size > 0 ? rw : values, floor);
      const center = rw.size > 0 ? rw.median() : 0;
      const r = resid[b]!;
      zPoint = (r - center) / scale;
      const recent = recentResiduals[b]!;
      const meanLast = (arr: number[], cur: number, len: number) => {
        let sum = cur;
        const take = Math.min(arr.length, len - 1);
        for (let i = arr.length - take; i < arr.length; i++) sum += arr[i]!;
        return sum / (take + 1);
      };
      const zChange = steps.size > 0 ? Math.abs(step - steps.median()) / robustScale(steps, floor) : 0;
      const capped = Math.min(Math.abs(zPoint), o.spreadCap);
      const feats = [
        Math.abs(zPoint),
        zChange,
        Math.abs(meanLast(recent, r, o.shortPoints) - center) / scale,
        meanLast(absZ, capped, o.shortPoints),
        o.longPoints > 0 ? Math.abs(meanLast(recent, r, o.longPoints) - center) / scale : 0,
        o.longPoints > 0 ? meanLast(absZ, capped, o.longPoints) : 0,
      ];
      absZ.push(capped);
      if (absZ.length > Math.max(o.shortPoints, o.longPoints)) absZ.shift();
      let raw = 0;
      let which = -1;
      feats.forEach((f, k) => {
        if (((o as unknown as { mask?: number }).mask ?? 255) & (1 << k) ? false : true) return;
        const c = calibration[k]!;
        if (c.size < o.learningPoints) return;
        const ratio = f / Math.max(c.quantile(o.calibrationQuantile), 1e-12);
        const sc = ratio / (1 + ratio);
        if (sc > raw) {
          raw = sc;
          which = k;
        }
      });
      feats.forEach((f, k) => {
        calibration[k]!.push(f);
      });
      let score = raw;
      if (o.cooldownMode === 'alert' && sinceAlert < o.cooldownPoints) score *= o.cooldownFactor;
      if (o.cooldownMode === 'novel' && o.cooldownPoints > 0) {
        if (recentRaw.size > 0 && raw <= recentRaw.quantile(1)) score *= o.cooldownFactor;
        recentRaw.push(raw);
      }
      result.score = score;
      result.label = score >= o.alertScore;
      result.expected = expected;
      result.z = zPoint;
      result.feature = which === 0 ? 'point' : which === 1 ? 'change' : which === 2 ? 'sustained' : 'none';
      if (result.label) sinceAlert = 0;
    }
    sinceAlert++;

    // Level shift: a run of same-side large deviations restarts the level baseline from the run.
    const side = Math.sign(zPoint);
    if (!learning && Math.abs(zPoint) > o.shiftZ && side === shiftSide) shiftRun++;
    else if (!learning && Math.abs(zPoint) > o.shiftZ) {
      shiftRun = 1;
      shiftSide = side;
      shiftValues = [];
    } else {
      shiftRun = 0;
      shiftSide = 0;
      shiftValues = [];
    }
    if (shiftRun > 0) shiftValues.push(x);

    // Learn the point.
    if (Number.isNaN(firstMs)) firstMs = t;
    lastMs = t;
    resid.forEach((r, k) => {
      if (Number.isNaN(r)) return;
      errors[k]!.push(Math.abs(r));
      residuals[k]!.push(r);
      const rr = recentResiduals[k]!;
      rr.push(r);
      if (rr.length > Math.max(o.shortPoints, o.longPoints)) rr.shift();
    });
    values.push(x);
    if (!Number.isNaN(prevValue)) steps.push(step);
    slot(daily, Math.floor((((t % DAY_MS) + DAY_MS) % DAY_MS) / HOUR_MS)).push(x);
    slot(weekly, Math.floor((((t % WEEK_MS) + WEEK_MS) % WEEK_MS) / HOUR_MS)).push(x);
    prevValue = x;
    seen++;

    if (shiftRun >= o.shiftPoints) {
      values = new RollingWindow(o.baselinePoints);
      for (const v of shiftValues) values.push(v);
      residuals[0] = new RollingWindow(o.baselinePoints);
      errors[0] = new RollingWindow(o.errorPoints);
      recentResiduals[0] = [];
      shiftRun = 0;
      shiftSide = 0;
      shiftValues = [];
      result.rebaselined = true;
    }
    return result;
  }

  function toState(): DetectorState {
    return {
      version: 1,
      options: { ...o },
      seen,
      firstMs,
      lastMs,
      prevValue,
      values: values.toState(),
      steps: steps.toState(),
      residuals: residuals.map((w) => w.toState()),
      errors: errors.map((w) => w.toState()),
      recentResiduals: recentResiduals.map((r) => [...r]),
      daily: [...daily].map(([k, w]) => [k, w.toState()]),
      weekly: [...weekly].map(([k, w]) => [k, w.toState()]),
      calibration: calibration.map((w) => w.toState()),
      sinceAlert,
      shiftRun,
      shiftSide,
      shiftValues: [...shiftValues],
    };
  }

  return { update, toState };
}
