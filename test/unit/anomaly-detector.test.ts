import { describe, expect, it } from 'vitest';
import { createDetector, DEFAULT_DETECTOR_OPTIONS, type DetectorResult, restoreDetector } from '../../processors/anomaly/detector.ts';

const T0 = Date.UTC(2025, 0, 6); // a Monday, 00:00 UTC
const STEP_MS = 5 * 60_000;

/** Deterministic N(0, 1) noise (LCG + Box-Muller), so the tests are repeatable. */
function noise(seed: number): () => number {
  let s = seed;
  const u = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  return () => Math.sqrt(-2 * Math.log(Math.max(u(), 1e-12))) * Math.cos(2 * Math.PI * u());
}

function run(values: number[], options = {}): DetectorResult[] {
  const d = createDetector(options);
  return values.map((v, i) => d.update(T0 + i * STEP_MS, v));
}

const labelled = (rs: DetectorResult[]) => rs.flatMap((r, i) => (r.label ? [i] : []));

describe('createDetector', () => {
  it('learns for learningPoints points: score 0, no label, no expected value', () => {
    const rs = run(Array.from({ length: 40 }, (_, i) => 10 + (i % 3)));
    expect(rs.slice(0, 30).every((r) => r.learning && r.score === 0 && !r.label && Number.isNaN(r.expected))).toBe(true);
    expect(rs[30]!.learning).toBe(false);
    // after 30 values of 10, 11, 12, ... the level median is 11
    expect(rs[30]!.expected).toBe(11);
  });

  it('gives a constant series score 0 everywhere', () => {
    const rs = run(Array.from({ length: 3000 }, () => 42));
    expect(Math.max(...rs.map((r) => r.score))).toBe(0);
    expect(rs[2999]!.expected).toBe(42);
  });

  it('rarely alerts on stationary noise: at most 0.2% of points (it calibrates to its own 0.999-quantile)', () => {
    const g = noise(42);
    const rs = run(Array.from({ length: 6000 }, () => 50 + 5 * g()));
    expect(labelled(rs).length).toBeLessThanOrEqual(12);
  });

  it('labels a spike at the spike, from the change feature, and not the points before it', () => {
    const g = noise(1);
    const values = Array.from({ length: 2000 }, () => 100 + g());
    values[1500] = 125; // 25 sigma
    const rs = run(values);
    const r = rs[1500]!;
    expect(r.label).toBe(true);
    expect(r.score).toBeGreaterThanOrEqual(DEFAULT_DETECTOR_OPTIONS.alertScore);
    expect(r.feature).toBe('change');
    expect(r.z).toBeGreaterThan(20);
    expect(r.expected).toBeCloseTo(100, 0);
    expect(labelled(rs).filter((i) => i >= 1400 && i < 1500)).toEqual([]);
  });

  it('labels the first point of a level shift, then re-baselines after shiftPoints points and stops alerting', () => {
    const g = noise(3);
    const values = Array.from({ length: 3000 }, (_, i) => (i < 1500 ? 50 : 80) + g());
    const rs = run(values);
    expect(rs[1500]!.label).toBe(true);
    expect(rs[1500]!.z).toBeGreaterThan(20);
    // 12 consecutive points above shiftZ (4) on the same side: the 12th point (1511) restarts the baseline
    expect(rs.findIndex((r) => r.rebaselined)).toBe(1500 + DEFAULT_DETECTOR_OPTIONS.shiftPoints - 1);
    expect(rs[1520]!.expected).toBeCloseTo(80, 0);
    expect(labelled(rs).filter((i) => i > 1600)).toEqual([]);
  });

  it('uses the time-of-day profile on a daily pattern and catches a value that is normal overall but not for its time', () => {
    const g = noise(5);
    const perDay = 288; // 5-minute points
    const daily = (i: number) => 100 + 40 * Math.sin((2 * Math.PI * (i % perDay)) / perDay);
    const values = Array.from({ length: perDay * 10 }, (_, i) => daily(i) + g());
    // From 15:00 on day 10, where the pattern falls towards its low of 60 at 18:00, the series instead
    // drifts slowly (no jump) to the daily mean of 100 and stays there for 4 hours.
    const at = perDay * 9 + 180;
    for (let k = 0; k < 48; k++) values[at + k] = daily(at) + (100 - daily(at)) * Math.min(1, k / 24) + g();
    const rs = run(values);
    expect(rs[at - 1]!.baseline).toBe('time_of_day');
    const hits = labelled(rs).filter((i) => i >= at && i < at + 48);
    expect(hits.length).toBeGreaterThan(0);
    expect(rs[hits[0]!]!.z).toBeGreaterThan(5);
    expect(['sustained', 'spread']).toContain(rs[hits[0]!]!.feature);
    // Without the profiles the previous value is the best baseline, and a slow drift is how this
    // series always moves: nothing but possibly a change is found.
    const flat = run(values, { dailyMinDays: Number.POSITIVE_INFINITY, weeklyMinDays: Number.POSITIVE_INFINITY });
    expect(flat[at]!.baseline).toBe('previous');
    const flatHits = labelled(flat).filter((i) => i >= at && i < at + 48);
    expect(flatHits.filter((i) => flat[i]!.feature !== 'change')).toEqual([]);
    expect(
      Math.max(
        ...flat
          .slice(at, at + 48)
          .filter((r) => r.feature !== 'change')
          .map((r) => r.score),
      ),
    ).toBeLessThan(0.3);
  });

  it('follows a random walk with the previous-value baseline once it has a track record', () => {
    const g = noise(4);
    let x = 100;
    const values = Array.from({ length: 1500 }, () => {
      x += g();
      return x;
    });
    const rs = run(values);
    // learning (30 points), then 200 errors of track record: the first point that may choose it is 201
    expect(rs.findIndex((r) => r.baseline === 'previous')).toBe(201);
    expect(rs[1400]!.baseline).toBe('previous');
    expect(rs[1400]!.expected).toBe(values[1399]);
  });

  it('scores a value beyond the range seen so far (by more than rangeTolerance of it) at rangeScore', () => {
    let s = 3;
    const uniform = () => {
      s = (Math.imul(s, 1_103_515_245) + 12_345) & 0x7fffffff;
      return s / 2147483648;
    };
    const values = Array.from({ length: 2000 }, () => 10 * uniform());
    const before = values.slice(0, 1500);
    const max = Math.max(...before);
    const min = Math.min(...before);
    values[1500] = max + 0.05 * (max - min); // 5% beyond the range: no other feature finds it unusual
    const r = run(values)[1500]!;
    expect(r.feature).toBe('range');
    expect(r.score).toBe(DEFAULT_DETECTOR_OPTIONS.rangeScore);
    expect(r.label).toBe(true);
    const off = run(values, { rangeTolerance: Number.POSITIVE_INFINITY })[1500]!;
    expect(off.feature).not.toBe('range');
    expect(off.label).toBe(false);
  });

  it('damps scores for refractoryPoints points after a label: a second spike 10 points later is not labelled', () => {
    const g = noise(1);
    const values = Array.from({ length: 2000 }, () => 100 + g());
    values[1500] = 125;
    values[1510] = 175;
    const rs = run(values);
    const free = run(values, { refractoryPoints: 0 });
    expect(rs[1500]!.label).toBe(true);
    expect(free[1510]!.label).toBe(true);
    expect(rs[1510]!.label).toBe(false);
    // the refractory factor (0.5) on the 20 points after the label at 1500 is the only difference there
    expect(rs[1500]).toEqual(free[1500]);
    for (let i = 1501; i <= 1500 + DEFAULT_DETECTOR_OPTIONS.refractoryPoints; i++) {
      expect(rs[i]!.score).toBe(free[i]!.score * DEFAULT_DETECTOR_OPTIONS.refractoryFactor);
    }
    expect(rs[1521]).toEqual(free[1521]);
  });

  it('finds a shape it has not seen with the novelty feature when no value, step or level is unusual', () => {
    const g = noise(6);
    // A 47-point sine (no daily profile fits it) that goes flat at its mid-line for one period,
    // entering and leaving at zero crossings: no jump, no value outside the range, no level change.
    const values = Array.from(
      { length: 2000 },
      (_, i) => (i >= 1598 && i < 1645 ? 50 : 50 + 10 * Math.sin((2 * Math.PI * i) / 47)) + 0.3 * g(),
    );
    const hits = labelled(run(values)).filter((i) => i > 1000);
    expect(hits.length).toBeGreaterThan(0);
    expect(hits[0]).toBeGreaterThanOrEqual(1598);
    expect(hits[0]).toBeLessThan(1645);
    expect(run(values)[hits[0]!]!.feature).toBe('novelty');
    expect(labelled(run(values, { noveltyPoints: 0 })).filter((i) => i > 1000)).toEqual([]);
  });

  it('uses no future points: changing later values does not change earlier results', () => {
    const g = noise(9);
    const values = Array.from({ length: 1500 }, () => 10 + g());
    const other = values.map((v, i) => (i >= 1000 ? v * 3 + 50 : v));
    const a = run(values);
    const b = run(other);
    expect(b.slice(0, 1000)).toEqual(a.slice(0, 1000));
    expect(b[1000]).not.toEqual(a[1000]);
  });

  it('continues identically from a JSON round trip of its state', () => {
    const g = noise(11);
    const values = Array.from({ length: 2500 }, (_, i) => 20 + 5 * Math.sin(i / 40) + g() + (i === 2200 ? 15 : 0));
    const whole = run(values);
    const first = createDetector();
    values.slice(0, 1800).forEach((v, i) => {
      first.update(T0 + i * STEP_MS, v);
    });
    const restored = restoreDetector(JSON.parse(JSON.stringify(first.toState())));
    const rest = values.slice(1800).map((v, i) => restored.update(T0 + (1800 + i) * STEP_MS, v));
    expect(rest).toEqual(whole.slice(1800));
    expect(rest[400]!.label).toBe(true); // the bump at 2200 is still caught
  });

  it('rejects bad options and points with the reason', () => {
    expect(() => createDetector({ baselinePoints: 0 })).toThrow(/baselinePoints must be a positive integer/);
    expect(() => createDetector({ alertScore: 1.5 })).toThrow(/alertScore must be in \[0, 1\]/);
    expect(() => createDetector({ calibrationQuantile: 0 })).toThrow(/calibrationQuantile/);
    expect(() => createDetector({ cooldownPoints: -1 })).toThrow(/cooldownPoints/);
    const d = createDetector();
    expect(() => d.update(Number.NaN, 1)).toThrow(/timestampMs/);
    expect(() => d.update(T0, Number.POSITIVE_INFINITY)).toThrow(/value/);
    expect(() => restoreDetector({ version: 1 } as never)).toThrow(/version must be 2/);
    expect(() => restoreDetector({ version: 2 } as never)).toThrow(/no options/);
    expect(() => createDetector({ noveltyPoints: 1 })).toThrow(/noveltyPoints must be 0 \(off\) or an integer >= 2/);
    expect(() => createDetector({ slotMinutes: 0 })).toThrow(/slotMinutes/);
    expect(() => createDetector({ rangeTolerance: -1 })).toThrow(/rangeTolerance/);
    expect(() => createDetector({ refractoryFactor: 2 })).toThrow(/refractoryFactor must be in \[0, 1\]/);
  });
});
