import { describe, expect, it } from 'vitest';
import { anomalyId, EpisodeTracker, type Finding } from '../../processors/anomaly/episodes.ts';
import { LoopDetector, type MinutePoint, SeriesMonitor, type StreamDetector } from '../../processors/anomaly/usage-detectors.ts';

const M = 60_000;
const T0 = Date.UTC(2026, 10, 2, 9, 0);

/**
 * A transparent stand-in for the detector core, so these tests pin the LLM rules, not the
 * statistics: expected = the previous value; anomalous when the value is more than 3x it (or > 0
 * after 0). Score 0.9 when anomalous, else 0.1.
 */
function stepDetector(): StreamDetector {
  let prev: number | undefined;
  return {
    update(_t, v) {
      const expected = prev ?? v;
      prev = v;
      const anomalous = v > 3 * expected || (expected === 0 && v > 0);
      return { score: anomalous ? 0.9 : 0.1, anomalous, expected };
    },
  };
}

const point = (i: number, p: Partial<MinutePoint>): MinutePoint => ({
  minuteMs: T0 + i * M,
  requests: 10,
  tokens: 10_000,
  costUsd: 0.01,
  failed: 0,
  rateLimited: 0,
  ...p,
});
const REF = { tenant: 't1', dimension: 'user', series_key: 'alice', user_id: 'alice' };

describe('SeriesMonitor', () => {
  it('reports a token spike above the baseline, not a drop', () => {
    const m = new SeriesMonitor(REF, stepDetector, { detector: 'step', kinds: ['token_spike'] });
    expect(m.update(point(0, {})).findings).toEqual([]);
    const spike = m.update(point(1, { tokens: 50_000 })).findings;
    expect(spike).toEqual([
      {
        ...REF,
        kind: 'token_spike',
        detector: 'step',
        minuteMs: T0 + M,
        score: 0.9,
        expected: 10_000,
        actual: 50_000,
        metric: 'tokens_per_min',
      },
    ]);
    m.update(point(2, { tokens: 10_000 }));
    // A fall is not a spike even if the detector calls it anomalous.
    const drop = m.update(point(3, { tokens: 0 }));
    expect(drop.findings).toEqual([]);
    expect(drop.quiet).toEqual(['token_spike']);
  });

  it('keeps sparse series quiet: a spike needs 10,000 tokens and twice the baseline', () => {
    const m = new SeriesMonitor(REF, stepDetector, { detector: 'step', kinds: ['token_spike'] });
    m.update(point(0, { requests: 0, tokens: 0 }));
    // 0 -> 1,500 tokens: anomalous for the core, but a single ordinary call.
    expect(m.update(point(1, { requests: 1, tokens: 1_500 })).findings).toEqual([]);
    m.update(point(2, { tokens: 9_000 }));
    // 9,000 -> 30,000 is 3.3x but the core's stand-in needs > 3x: anomalous; 30,000 >= 2 x 9,000 and >= 10,000: a spike.
    expect(m.update(point(3, { tokens: 30_000 })).findings.map((f) => f.kind)).toEqual(['token_spike']);
    const loose = new SeriesMonitor(REF, stepDetector, { detector: 'step', kinds: ['token_spike'], minSpikeRatio: 4 });
    loose.update(point(0, { tokens: 9_000 }));
    expect(loose.update(point(1, { tokens: 30_000 })).findings).toEqual([]); // 3.3x < 4x
  });

  it('calls a minute five times the baseline a spike even when the core does not label it', () => {
    const never: StreamDetector = { update: () => ({ score: 0.1, anomalous: false, expected: 10_000 }) };
    const m = new SeriesMonitor(REF, () => never, { detector: 'never', kinds: ['token_spike'] });
    expect(m.update(point(0, { tokens: 49_999 })).findings).toEqual([]); // 4.99x
    expect(m.update(point(1, { tokens: 50_000 })).findings.map((f) => [f.kind, f.expected, f.actual])).toEqual([
      ['token_spike', 10_000, 50_000],
    ]);
    const off = new SeriesMonitor(REF, () => never, { detector: 'never', kinds: ['token_spike'], hardRatio: Number.POSITIVE_INFINITY });
    expect(off.update(point(0, { tokens: 500_000 })).findings).toEqual([]);
  });

  it('calls a burst only when requests surge while tokens per request fall below half their median', () => {
    const m = new SeriesMonitor(REF, stepDetector, { detector: 'step', kinds: ['short_request_burst'] });
    for (let i = 0; i < 5; i++) m.update(point(i, {})); // 1,000 tokens per request
    // 10 -> 50 requests, 10,000 -> 15,000 tokens: 300 per request < 500 (half the median 1,000).
    const burst = m.update(point(5, { requests: 50, tokens: 15_000 })).findings;
    expect(burst).toHaveLength(1);
    expect(burst[0]).toMatchObject({ kind: 'short_request_burst', actual: 50, expected: 10, metric: 'requests_per_min' });
    expect(burst[0]!.details).toEqual({ tokens_per_request: 300, median_tokens_per_request: 1_000 });
  });

  it('does not call a surge of normal-sized requests a burst', () => {
    const m = new SeriesMonitor(REF, stepDetector, { detector: 'step', kinds: ['short_request_burst'] });
    for (let i = 0; i < 5; i++) m.update(point(i, {}));
    // 50 requests of 600 tokens each: 600 >= 500, a surge of real work (a token spike, not a burst).
    expect(m.update(point(5, { requests: 50, tokens: 30_000 })).findings).toEqual([]);
  });

  it('needs at least minFailures failed calls and a 10% share for an error spike', () => {
    const mk = () => new SeriesMonitor(REF, stepDetector, { detector: 'step', kinds: ['error_spike', 'rate_limit_spike'] });
    const m1 = mk();
    m1.update(point(0, { requests: 100 }));
    // 0 -> 4 failures: anomalous for the core, but under 5 calls.
    expect(m1.update(point(1, { requests: 100, failed: 4 })).findings).toEqual([]);
    const m2 = mk();
    m2.update(point(0, { requests: 100 }));
    // 8 of 100 failed: 8% < 10%.
    expect(m2.update(point(1, { requests: 100, failed: 8 })).findings).toEqual([]);
    const m3 = mk();
    m3.update(point(0, { requests: 100 }));
    const f = m3.update(point(1, { requests: 100, failed: 12, rateLimited: 30 })).findings;
    expect(f.map((x) => [x.kind, x.actual, x.details])).toEqual([
      ['error_spike', 12, { share: 0.12 }],
      ['rate_limit_spike', 30, { share: 0.3 }],
    ]);
  });

  it('refuses minutes that go backwards', () => {
    const m = new SeriesMonitor(REF, stepDetector, { detector: 'step' });
    m.update(point(1, {}));
    expect(() => m.update(point(1, {}))).toThrow(RangeError);
  });
});

describe('LoopDetector', () => {
  const base = { tenant: 't1', user_id: 'bob', task_id: 'agent-7', prompt_hash: 'abc' };

  it('fires when one prompt reaches the threshold within the window, scored 0.5 at it and 1 at twice it', () => {
    const d = new LoopDetector({ detector: 'loop', threshold: 20, windowMinutes: 10, minuteThreshold: 50 });
    expect(d.update({ ...base, minuteMs: T0, calls: 12 })).toBeUndefined();
    const f = d.update({ ...base, minuteMs: T0 + 3 * M, calls: 8 }); // 20 in 4 minutes
    expect(f).toMatchObject({
      kind: 'runaway_loop',
      dimension: 'task',
      series_key: 'bob/agent-7',
      user_id: 'bob',
      score: 0.5,
      expected: 20,
      actual: 20,
    });
    expect(d.update({ ...base, minuteMs: T0 + 4 * M, calls: 20 })?.score).toBe(1); // 40
  });

  it('fires in the first minute when one prompt comes minuteThreshold times in it', () => {
    const d = new LoopDetector({ detector: 'loop' }); // defaults: 20 in 10 minutes, or 5 in one minute
    expect(d.update({ ...base, minuteMs: T0, calls: 4 })).toBeUndefined();
    const f = d.update({ ...base, minuteMs: T0 + M, calls: 6 }); // 10 in the window < 20, but 6 >= 5 in this minute
    expect(f).toMatchObject({ kind: 'runaway_loop', expected: 5, actual: 6, score: 0.6 }); // 0.5 + 0.5 x (6/5 - 1)
  });

  it('forgets calls older than the window', () => {
    const d = new LoopDetector({ detector: 'loop', threshold: 20, windowMinutes: 10, minuteThreshold: 50 });
    d.update({ ...base, minuteMs: T0, calls: 15 });
    // 10 minutes later the first 15 left the window: 15 alone is under 20.
    expect(d.update({ ...base, minuteMs: T0 + 10 * M, calls: 15 })).toBeUndefined();
  });

  it('keeps users, tasks and prompts apart, and ignores calls without a prompt hash', () => {
    const d = new LoopDetector({ detector: 'loop', threshold: 20, minuteThreshold: 50 });
    d.update({ ...base, minuteMs: T0, calls: 10 });
    expect(d.update({ ...base, user_id: 'carol', minuteMs: T0, calls: 10 })).toBeUndefined();
    expect(d.update({ ...base, prompt_hash: 'def', minuteMs: T0, calls: 10 })).toBeUndefined();
    expect(d.update({ ...base, prompt_hash: '', minuteMs: T0, calls: 100 })).toBeUndefined();
  });
});

describe('EpisodeTracker', () => {
  const f = (i: number, score = 0.8): Finding => ({
    ...REF,
    kind: 'token_spike',
    detector: 'step',
    minuteMs: T0 + i * M,
    score,
    expected: 100,
    actual: 100 + score * 1000,
    metric: 'tokens_per_min',
  });

  it('opens once, keeps the peak, tolerates short gaps and resolves after N quiet minutes', () => {
    let clock = T0 + 10 * M;
    const t = new EpisodeTracker({ resolveAfterMinutes: 3, now: () => clock });
    const opened = t.anomalous(f(0, 0.6));
    expect(opened.change).toBe('opened');
    expect(opened.anomaly.anomaly_id).toBe(anomalyId(REF, 'token_spike', T0));
    expect(t.anomalous(f(1, 0.9)).change).toBe('updated');
    expect(t.quiet(REF, 'token_spike', T0 + 2 * M)).toBeUndefined();
    expect(t.quiet(REF, 'token_spike', T0 + 3 * M)).toBeUndefined();
    expect(t.anomalous(f(4, 0.7)).change).toBe('updated'); // gap of 2 < 3: same episode
    expect(t.quiet(REF, 'token_spike', T0 + 5 * M)).toBeUndefined();
    expect(t.quiet(REF, 'token_spike', T0 + 6 * M)).toBeUndefined();
    clock += M;
    const resolved = t.quiet(REF, 'token_spike', T0 + 7 * M);
    expect(resolved?.change).toBe('resolved');
    expect(resolved?.anomaly).toMatchObject({
      anomaly_id: opened.anomaly.anomaly_id,
      status: 'resolved',
      window_start_ms: T0,
      window_end_ms: T0 + 5 * M, // end of the last anomalous minute (minute 4)
      score: 0.9, // the peak, with its values
      actual: 1_000,
    });
    expect(resolved!.anomaly.updated_at_ms).toBeGreaterThan(opened.anomaly.updated_at_ms);
    expect(t.openCount).toBe(0);
    // The next anomalous minute opens a new episode with a new id.
    const again = t.anomalous(f(20));
    expect(again.change).toBe('opened');
    expect(again.anomaly.anomaly_id).not.toBe(opened.anomaly.anomaly_id);
  });

  it('takes over a stored open episode: later findings extend it, and it resolves when stale', () => {
    const t = new EpisodeTracker({ resolveAfterMinutes: 5, now: () => T0 + 30 * M });
    const stored = { ...t.anomalous(f(0)).anomaly };
    const fresh = new EpisodeTracker({ resolveAfterMinutes: 5, now: () => T0 + 31 * M }); // a restarted process
    fresh.restore(stored);
    const again = fresh.anomalous(f(2));
    expect(again.change).toBe('updated');
    expect(again.anomaly.anomaly_id).toBe(stored.anomaly_id);
    expect(fresh.resolveStale(T0 + 7 * M)).toEqual([]); // last anomalous minute ended at 3 min: 4 min ago
    const [ended] = fresh.resolveStale(T0 + 8 * M);
    expect(ended).toMatchObject({ change: 'resolved', anomaly: { anomaly_id: stored.anomaly_id, status: 'resolved' } });
    expect(fresh.openCount).toBe(0);
  });

  it('keeps kinds and series apart', () => {
    const t = new EpisodeTracker();
    expect(t.anomalous(f(0)).change).toBe('opened');
    expect(t.anomalous({ ...f(0), kind: 'spend_spike' }).change).toBe('opened');
    expect(t.anomalous({ ...f(0), series_key: 'bob', user_id: 'bob' }).change).toBe('opened');
    expect(t.openCount).toBe(3);
  });
});
