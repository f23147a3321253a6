/**
 * Streaming anomaly detector core for one time series (one tenant/model/metric, e.g. spend per
 * minute). Pure: no I/O, no clock, no look-ahead. `update(timestampMs, value)` scores a point from
 * the history before it, then learns it. Lengths are in points (calls to update), not time, except
 * the seasonal profiles, which use the timestamp's UTC time of day and of week.
 *
 * Method (chosen and tuned by measurement on the Numenta Anomaly Benchmark; figures, the split
 * check against overfitting and the rejected variants are in docs/anomaly-detection.md):
 * 1. Expected value: four baselines; the one with the smallest median absolute error over the
 *    last `errorPoints` points is used (any other must beat the level one, and the best so far,
 *    by the factor `seasonalMargin`, after a track record of 200 errors):
 *    - level: the median of the last `baselinePoints` values;
 *    - time of day: the median of the last `slotValues` values seen in this `slotMinutes` slot of
 *      the UTC day, once the series spans `dailyMinDays` days;
 *    - time of week: the same per slot of the UTC week, once the series spans `weeklyMinDays` days;
 *    - previous: the previous value (wins on random-walk-like series: temperatures, speeds).
 * 2. z = (residual - median residual) / scale, where residual = value - expected and
 *    scale = max(1.4826 x MAD, 5% of the 5-95% spread) of the last `baselinePoints` residuals.
 *    Features, all >= 0:
 *    - change: |step - median step| / step scale, step = value - previous value (spikes, jumps);
 *      under a seasonal baseline, the step of the residual instead, so the daily rise and fall
 *      that the profile expects is no change;
 *    - sustained: |mean of the last `shortPoints` residuals - median residual| / scale (shifts);
 *    - spread: mean of min(|z|, `spreadCap`) over the last `shortPoints` points (bursts of
 *      volatility, oscillation, a series that stopped behaving);
 *    - novelty: distance from the last `noveltyPoints` values to the nearest earlier stretch of the
 *      series within `noveltyHistory` points (subsequence-novelty.ts): a shape never seen before;
 *      scored once the detector has run for 12 x noveltyPoints points after learning.
 * 3. Calibration, per feature: ratio r = feature / its `calibrationQuantile` quantile over the
 *    previous `calibrationPoints` points, score r / (1 + r); so 0.5 means "as large as the
 *    0.999-quantile of this series' own recent history". This makes one threshold fit series of
 *    any unit and noise level. The point's raw score is the largest feature score.
 * 4. Range: a value beyond everything seen so far by more than `rangeTolerance` x the range
 *    (max - min) scores at least `rangeScore` (feature `range`). The idea is NAB's HTM detector's
 *    "spatial anomaly" check (Numenta's nab/detectors/numenta, spatial tolerance 5%).
 * 5. One alert per event: a raw score that does not exceed every raw score of the previous
 *    `cooldownPoints` points is multiplied by `cooldownFactor`; and for `refractoryPoints` points
 *    after a label, scores are multiplied by `refractoryFactor`. `label` = score >= `alertScore`.
 * 6. Level shifts: after `shiftPoints` consecutive points with |z| > `shiftZ` on the same side, the
 *    level baseline restarts from those points, so the new level becomes normal at once.
 * 7. Learning: score 0 and label false until `learningPoints` points have been seen (and until a
 *    feature has `learningPoints` values of history to be calibrated against).
 *
 * State is plain JSON-safe data: `toState()` / `restoreDetector(state)` continue exactly where the
 * detector stopped.
 */
import { RollingWindow, type RollingWindowState } from './rolling-window.ts';
import { SubsequenceNovelty, type SubsequenceNoveltyState } from './subsequence-novelty.ts';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;
/** 1 / Phi^-1(0.75): turns a MAD into a normal standard deviation. */
const MAD_TO_SIGMA = 1.4826;
/** Errors a baseline other than the level one needs before it can be chosen (or errorPoints if fewer). */
const TRACK_RECORD = 200;
/**
 * The novelty feature scores once the series has run for this many subsequence lengths: its first
 * distances (before the series has repeated itself) are all large and would set its calibration.
 */
const NOVELTY_WARMUP_LENGTHS = 12;

/** Tuning of {@link createDetector}. Every field has a default in {@link DEFAULT_DETECTOR_OPTIONS}. */
export interface DetectorOptions {
  /** Points of history for the level median and the residual and step statistics. */
  baselinePoints: number;
  /** Points before any score is given. */
  learningPoints: number;
  /** Width (minutes) of the time-of-day and time-of-week slots, > 0. */
  slotMinutes: number;
  /** Values kept per time-of-day and per time-of-week slot. */
  slotValues: number;
  /** Span of timestamps (days) before the time-of-day profile may be used; Infinity disables it. */
  dailyMinDays: number;
  /** Span (days) before the time-of-week profile may be used; Infinity disables it. */
  weeklyMinDays: number;
  /** Points of absolute error compared when choosing the baseline. */
  errorPoints: number;
  /** Another baseline is chosen only when its error is below this fraction of the best one's, in (0, 1]. */
  seasonalMargin: number;
  /** Points averaged by the sustained and spread features. */
  shortPoints: number;
  /** Cap on |z| per point in the spread feature (one huge point must not dominate the mean). */
  spreadCap: number;
  /** Subsequence length (points) of the novelty feature; 0 disables it, else >= 2. */
  noveltyPoints: number;
  /** How far back (points) the novelty feature looks for a match, > noveltyPoints. */
  noveltyHistory: number;
  /** Points of past feature values each feature is calibrated against. */
  calibrationPoints: number;
  /** Quantile of those past values used as the reference, in (0, 1] (1 = their maximum). */
  calibrationQuantile: number;
  /** A value beyond [min, max] of all earlier values by more than this fraction of max - min is a range anomaly; Infinity disables it. */
  rangeTolerance: number;
  /** Score of a range anomaly, in [0, 1]. */
  rangeScore: number;
  /** score >= alertScore sets the label, in [0, 1]. */
  alertScore: number;
  /** Points a new raw score is compared with; 0 disables the damping. */
  cooldownPoints: number;
  /** Factor applied to a raw score that is not a new maximum over the cooldown, in [0, 1]. */
  cooldownFactor: number;
  /** Points after a label during which scores are damped; 0 disables it. */
  refractoryPoints: number;
  /** Factor applied to scores during the refractory points, in [0, 1]. */
  refractoryFactor: number;
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
  slotMinutes: 15,
  slotValues: 84,
  dailyMinDays: 3,
  weeklyMinDays: 21,
  errorPoints: 2000,
  seasonalMargin: 0.8,
  shortPoints: 12,
  spreadCap: 6,
  noveltyPoints: 16,
  noveltyHistory: 1000,
  calibrationPoints: 6000,
  calibrationQuantile: 0.999,
  rangeTolerance: 0.03,
  rangeScore: 0.6,
  alertScore: 0.52,
  cooldownPoints: 100,
  cooldownFactor: 0.7,
  refractoryPoints: 20,
  refractoryFactor: 0.5,
  shiftPoints: 12,
  shiftZ: 4,
});

/** Baselines the expected value can come from. */
export type BaselineKind = 'level' | 'time_of_day' | 'time_of_week' | 'previous';
const BASELINES: readonly BaselineKind[] = ['level', 'time_of_day', 'time_of_week', 'previous'];
const TIME_OF_DAY = 1;
const TIME_OF_WEEK = 2;
/** The previous-value baseline's residuals are the steps: it keeps no residual window of its own. */
const PREVIOUS = 3;

/** Features a score can come from. */
export type FeatureKind = 'change' | 'sustained' | 'spread' | 'novelty' | 'range';

/** Calibrated features, in the order of {@link DetectorState.calibration}. */
const CALIBRATED = ['change', 'change_time_of_day', 'change_time_of_week', 'sustained', 'spread', 'novelty'] as const;
type Calibrated = (typeof CALIBRATED)[number];

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
  /**
   * Plain-data state. JSON-safe, except that options set to Infinity (to disable a part) become
   * null in JSON, which {@link restoreDetector} refuses.
   */
  toState(): DetectorState;
}

/** Serialisable state of a detector (see {@link restoreDetector}). */
export interface DetectorState {
  version: 2;
  options: DetectorOptions;
  seen: number;
  /** Timestamp of the first point (epoch ms), null before any. */
  firstMs: number | null;
  prevValue: number | null;
  /** Smallest and largest value seen, null before any. */
  rangeMin: number | null;
  rangeMax: number | null;
  values: RollingWindowState;
  steps: RollingWindowState;
  /** Residuals per baseline kind level, time_of_day, time_of_week (the previous-value baseline's are `steps`). */
  residuals: RollingWindowState[];
  /** Per baseline kind (level, time_of_day, time_of_week, previous). */
  errors: RollingWindowState[];
  recentResiduals: number[][];
  recentAbsZ: number[][];
  /** Steps of the time-of-day and time-of-week residuals. */
  seasonalSteps: RollingWindowState[];
  daily: [number, RollingWindowState][];
  weekly: [number, RollingWindowState][];
  /** Per calibrated feature (change, change_time_of_day, change_time_of_week, sustained, spread, novelty). */
  calibration: RollingWindowState[];
  /** Centre and scale the novelty feature's values are normalised by (fixed when learning ends), null before. */
  noveltyCenter: number | null;
  noveltyScale: number | null;
  novelty: SubsequenceNoveltyState | null;
  recentRaw: RollingWindowState;
  /** `seen` at the last label, null before any. */
  lastAlert: number | null;
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
  for (const k of ['cooldownPoints', 'refractoryPoints'] as const)
    if (!Number.isInteger(o[k]) || o[k] < 0) throw new RangeError(`${k} must be a non-negative integer, got ${o[k]}`);
  if (!Number.isInteger(o.noveltyPoints) || o.noveltyPoints < 0 || o.noveltyPoints === 1) {
    throw new RangeError(`noveltyPoints must be 0 (off) or an integer >= 2, got ${o.noveltyPoints}`);
  }
  if (o.noveltyPoints > 0 && (!Number.isInteger(o.noveltyHistory) || o.noveltyHistory <= o.noveltyPoints)) {
    throw new RangeError(`noveltyHistory must be an integer > noveltyPoints (${o.noveltyPoints}), got ${o.noveltyHistory}`);
  }
  for (const k of ['alertScore', 'cooldownFactor', 'refractoryFactor', 'rangeScore'] as const)
    if (!(o[k] >= 0 && o[k] <= 1)) throw new RangeError(`${k} must be in [0, 1], got ${o[k]}`);
  for (const k of ['seasonalMargin', 'calibrationQuantile'] as const)
    if (!(o[k] > 0 && o[k] <= 1)) throw new RangeError(`${k} must be in (0, 1], got ${o[k]}`);
  for (const k of ['dailyMinDays', 'weeklyMinDays', 'shiftZ', 'spreadCap'] as const)
    if (!(o[k] > 0)) throw new RangeError(`${k} must be > 0, got ${o[k]}`);
  if (!(o.slotMinutes > 0 && Number.isFinite(o.slotMinutes)))
    throw new RangeError(`slotMinutes must be a finite number > 0, got ${o.slotMinutes}`);
  // typeof: JSON turns Infinity into null, and null >= 0 holds in JS.
  if (typeof o.rangeTolerance !== 'number' || !(o.rangeTolerance >= 0)) {
    throw new RangeError(`rangeTolerance must be a number >= 0 (Infinity disables), got ${o.rangeTolerance}`);
  }
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
 * @throws RangeError when the state is not a version-2 detector state or its options are out of range.
 */
export function restoreDetector(state: DetectorState): Detector {
  if (state?.version !== 2) throw new RangeError(`detector state version must be 2, got ${state?.version}`);
  if (typeof state.options !== 'object' || state.options === null) throw new RangeError('detector state has no options object');
  checkOptions(state.options);
  return build({ ...state.options }, state);
}

function build(o: DetectorOptions, s: DetectorState | undefined): Detector {
  const win = (st: RollingWindowState | undefined, capacity: number) => (st ? RollingWindow.fromState(st) : new RollingWindow(capacity));
  const slots = (entries: [number, RollingWindowState][] | undefined) =>
    new Map<number, RollingWindow>((entries ?? []).map(([k, st]) => [k, RollingWindow.fromState(st)]));
  const recentLen = o.shortPoints;
  const slotMs = o.slotMinutes * MINUTE_MS;
  const slotOfDay = (t: number) => Math.floor((((t % DAY_MS) + DAY_MS) % DAY_MS) / slotMs);
  const slotOfWeek = (t: number) => Math.floor((((t % WEEK_MS) + WEEK_MS) % WEEK_MS) / slotMs);

  let seen = s?.seen ?? 0;
  let firstMs = s?.firstMs ?? null;
  let prevValue = s?.prevValue ?? null;
  let rangeMin = s?.rangeMin ?? null;
  let rangeMax = s?.rangeMax ?? null;
  let values = win(s?.values, o.baselinePoints);
  const steps = win(s?.steps, o.baselinePoints);
  const residuals = [0, 1, 2].map((k) => win(s?.residuals[k], o.baselinePoints));
  const residualWindow = (k: number) => (k === PREVIOUS ? steps : residuals[k]!);
  const errors = BASELINES.map((_, k) => win(s?.errors[k], o.errorPoints));
  const recentResiduals = BASELINES.map((_, k) => [...(s?.recentResiduals[k] ?? [])]);
  const recentAbsZ = BASELINES.map((_, k) => [...(s?.recentAbsZ[k] ?? [])]);
  const seasonalSteps = [0, 1].map((k) => win(s?.seasonalSteps[k], o.baselinePoints));
  const daily = slots(s?.daily);
  const weekly = slots(s?.weekly);
  const calibration = new Map<Calibrated, RollingWindow>(CALIBRATED.map((name, k) => [name, win(s?.calibration[k], o.calibrationPoints)]));
  let noveltyCenter = s?.noveltyCenter ?? null;
  let noveltyScale = s?.noveltyScale ?? null;
  const novelty =
    o.noveltyPoints > 0
      ? s?.novelty
        ? SubsequenceNovelty.fromState(s.novelty)
        : new SubsequenceNovelty(o.noveltyPoints, o.noveltyHistory)
      : null;
  const recentRaw = win(s?.recentRaw, Math.max(1, o.cooldownPoints));
  let lastAlert = s?.lastAlert ?? null;
  let shiftSide = s?.shiftSide ?? 0;
  let shiftValues = [...(s?.shiftValues ?? [])];

  function predictions(t: number): number[] {
    const spanDays = firstMs === null ? 0 : (t - firstMs) / DAY_MS;
    const day = daily.get(slotOfDay(t));
    const week = weekly.get(slotOfWeek(t));
    return [
      values.size > 0 ? values.median() : Number.NaN,
      day && spanDays >= o.dailyMinDays && day.size >= 3 ? day.median() : Number.NaN,
      week && spanDays >= o.weeklyMinDays && week.size >= 3 ? week.median() : Number.NaN,
      prevValue ?? Number.NaN,
    ];
  }

  function chooseBaseline(pred: number[]): number {
    let best = 0;
    let bestErr = errors[0]!.size > 0 ? errors[0]!.median() : Number.POSITIVE_INFINITY;
    for (let k = 1; k < BASELINES.length; k++) {
      const e = errors[k]!;
      if (Number.isNaN(pred[k]!) || e.size < Math.min(o.errorPoints, TRACK_RECORD)) continue;
      const m = e.median();
      if (m < o.seasonalMargin * bestErr) {
        best = k;
        bestErr = m;
      }
    }
    return best;
  }

  /** Calibrated score of a feature value (-1 while its history is shorter than learningPoints), then records the value. */
  function calibrate(name: Calibrated, f: number): number {
    const c = calibration.get(name)!;
    let score = -1;
    if (c.size >= o.learningPoints) {
      const ratio = f / Math.max(c.quantile(o.calibrationQuantile), 1e-12);
      score = ratio / (1 + ratio);
    }
    c.push(f);
    return score;
  }

  /** |x - median| / robust scale of a window, 0 while it holds fewer than learningPoints values. */
  function robustDeviation(w: RollingWindow, x: number, scale: number): number {
    return w.size >= o.learningPoints ? Math.abs(x - w.median()) / scale : 0;
  }

  function learn(t: number, x: number, resid: number[], step: number): void {
    if (firstMs === null) firstMs = t;
    resid.forEach((r, k) => {
      if (Number.isNaN(r)) return;
      errors[k]!.push(Math.abs(r));
      if (k !== PREVIOUS) residuals[k]!.push(r);
      pushBounded(recentResiduals[k]!, r, recentLen);
    });
    values.push(x);
    if (prevValue !== null) steps.push(step);
    for (const [map, key] of [
      [daily, slotOfDay(t)],
      [weekly, slotOfWeek(t)],
    ] as const) {
      let w = map.get(key);
      if (!w) {
        w = new RollingWindow(o.slotValues);
        map.set(key, w);
      }
      w.push(x);
    }
    rangeMin = rangeMin === null ? x : Math.min(rangeMin, x);
    rangeMax = rangeMax === null ? x : Math.max(rangeMax, x);
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

    let raw = 0;
    const consider = (score: number, feature: FeatureKind) => {
      if (score > raw) {
        raw = score;
        result.feature = feature;
      }
    };
    const floor = 1e-9 * Math.max(1, Math.abs(pred[0]!));
    const stepScale = steps.size > 0 ? robustScale(steps, floor) : floor;

    // change: the step, or under a seasonal baseline the step of its residual.
    const change = calibrate('change', robustDeviation(steps, step, stepScale));
    for (const k of [TIME_OF_DAY, TIME_OF_WEEK]) {
      const recent = recentResiduals[k]!;
      if (Number.isNaN(resid[k]!) || recent.length === 0) continue;
      const residStep = resid[k]! - recent[recent.length - 1]!;
      const w = seasonalSteps[k - 1]!;
      const deviation = w.size >= o.learningPoints ? robustDeviation(w, residStep, robustScale(w, floor)) : 0;
      const score = calibrate(k === TIME_OF_DAY ? 'change_time_of_day' : 'change_time_of_week', deviation);
      if (k === b) consider(score, 'change');
      w.push(residStep);
    }
    if (b !== TIME_OF_DAY && b !== TIME_OF_WEEK) consider(change, 'change');

    // sustained and spread: over the residuals of each baseline, scored for the chosen one.
    for (let k = 0; k < BASELINES.length; k++) {
      if (Number.isNaN(resid[k]!)) continue;
      // Residual statistics of the baseline (of the level one while this one is young).
      const own = residualWindow(k);
      const rw = own.size >= o.learningPoints ? own : residuals[0]!;
      const scale = rw === steps ? stepScale : robustScale(rw, floor);
      const center = rw.median();
      const z = (resid[k]! - center) / scale;
      const capped = Math.min(Math.abs(z), o.spreadCap);
      const spread = meanWithHistory(recentAbsZ[k]!, capped, o.shortPoints);
      pushBounded(recentAbsZ[k]!, capped, recentLen);
      if (k !== b) continue;
      result.z = z;
      result.expected = pred[k]!;
      consider(
        calibrate('sustained', Math.abs(meanWithHistory(recentResiduals[k]!, resid[k]!, o.shortPoints) - center) / scale),
        'sustained',
      );
      consider(calibrate('spread', spread), 'spread');
    }

    if (novelty) {
      if (noveltyCenter === null || noveltyScale === null) {
        noveltyCenter = values.median();
        noveltyScale = robustScale(values, floor);
      }
      const d = novelty.push((x - noveltyCenter) / noveltyScale);
      if (novelty.size >= NOVELTY_WARMUP_LENGTHS * o.noveltyPoints) consider(calibrate('novelty', d), 'novelty');
    }

    if (rangeMin !== null && rangeMax !== null && rangeMax > rangeMin) {
      const margin = o.rangeTolerance * (rangeMax - rangeMin);
      if (x > rangeMax + margin || x < rangeMin - margin) consider(o.rangeScore, 'range');
    }

    let score = raw;
    if (o.cooldownPoints > 0) {
      if (recentRaw.size > 0 && raw <= recentRaw.quantile(1)) score *= o.cooldownFactor;
      recentRaw.push(raw);
    }
    if (o.refractoryPoints > 0 && lastAlert !== null && seen - lastAlert <= o.refractoryPoints) score *= o.refractoryFactor;
    else if (score >= o.alertScore) lastAlert = seen;
    result.score = score;
    result.label = score >= o.alertScore;
    const z = result.z;
    learn(t, x, resid, step);
    result.rebaselined = levelShift(z, x);
    return result;
  }

  function toState(): DetectorState {
    return {
      version: 2,
      options: { ...o },
      seen,
      firstMs,
      prevValue,
      rangeMin,
      rangeMax,
      values: values.toState(),
      steps: steps.toState(),
      residuals: residuals.map((w) => w.toState()),
      errors: errors.map((w) => w.toState()),
      recentResiduals: recentResiduals.map((r) => [...r]),
      recentAbsZ: recentAbsZ.map((r) => [...r]),
      seasonalSteps: seasonalSteps.map((w) => w.toState()),
      daily: [...daily].map(([k, w]) => [k, w.toState()]),
      weekly: [...weekly].map(([k, w]) => [k, w.toState()]),
      calibration: CALIBRATED.map((name) => calibration.get(name)!.toState()),
      noveltyCenter,
      noveltyScale,
      novelty: novelty ? novelty.toState() : null,
      recentRaw: recentRaw.toState(),
      lastAlert,
      shiftSide,
      shiftValues: [...shiftValues],
    };
  }

  return { update, toState };
}
