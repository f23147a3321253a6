import { describe, expect, it } from 'vitest';
import {
  type CandidateLive,
  compileSnapshot,
  DEFAULT_ROUTING_WEIGHTS,
  decide,
  type RoutingCandidate,
  RoutingConfigError,
  type RoutingRequest,
  type RoutingWeights,
} from '../../domain/routing.ts';

/** A candidate with no tags and a $1 / $2 per 1M price; tests set what they need. */
function candidate(id: string, patch: Partial<RoutingCandidate> = {}): RoutingCandidate {
  return {
    id,
    provider: 'openai',
    model: id,
    capabilities: [],
    compliance: [],
    price: { input_per_1m: 1, output_per_1m: 2 },
    ...patch,
  };
}

/** Healthy live state: 1000 requests, no errors, 500 ms p95, no quota. */
function live(patch: Partial<CandidateLive> = {}): CandidateLive {
  return {
    p95_latency_ms: 500,
    error_rate: 0,
    requests: 1000,
    quota_remaining_ratio: null,
    quota_exhausted: false,
    breaker_open: false,
    retry_after_s: null,
    ...patch,
  };
}

const REQ: RoutingRequest = { tenant: 't1', estimated_input_tokens: 1000, estimated_output_tokens: 1000 };

function problemsOf(f: () => unknown): string[] {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RoutingConfigError);
    return (e as RoutingConfigError).problems;
  }
  throw new Error('expected a RoutingConfigError');
}

describe('routing weights', () => {
  it('defaults to the brief: performance 30%, cost 25%, features 20%, stability 15%, compliance 10%', () => {
    expect(DEFAULT_ROUTING_WEIGHTS).toEqual({ performance: 0.3, cost: 0.25, features: 0.2, stability: 0.15, compliance: 0.1 });
  });

  it('divides weights by their sum', () => {
    const s = compileSnapshot([], new Map(), { performance: 3, cost: 1, features: 0, stability: 0, compliance: 0 });
    expect(s.weights).toEqual({ performance: 0.75, cost: 0.25, features: 0, stability: 0, compliance: 0 });
  });
});

describe('hard filters', () => {
  it.each([
    {
      reason: 'quota_exhausted',
      c: candidate('x'),
      l: live({ quota_exhausted: true, retry_after_s: 60 }),
      req: REQ,
      detail: 'quota exhausted; retry after 60 s',
    },
    { reason: 'quota_exhausted', c: candidate('x'), l: live({ quota_remaining_ratio: 0 }), req: REQ, detail: 'quota exhausted' },
    {
      reason: 'breaker_open',
      c: candidate('x'),
      l: live({ breaker_open: true, retry_after_s: 30 }),
      req: { ...REQ, priority: 'low' as const },
      detail: 'circuit breaker open for low-priority traffic (daily budget past its soft threshold); retry after 30 s',
    },
    {
      reason: 'compliance_mismatch',
      c: candidate('x', { compliance: ['soc2'] }),
      l: live(),
      req: { ...REQ, required_compliance: ['gdpr', 'soc2', 'eu_residency'] },
      detail: 'lacks compliance: gdpr, eu_residency',
    },
    {
      reason: 'missing_capability',
      c: candidate('x', { capabilities: ['tools'] }),
      l: live(),
      req: { ...REQ, required_capabilities: ['vision', 'tools'] },
      detail: 'lacks capabilities: vision',
    },
    {
      reason: 'error_rate_over_limit',
      c: candidate('x'),
      l: live({ error_rate: 0.25, requests: 400 }),
      req: REQ,
      detail: 'error rate 0.25 over limit 0.2 (400 requests)',
    },
  ])('excludes for $reason ($detail)', ({ reason, c, l, req, detail }) => {
    const healthy = candidate('ok', { capabilities: ['vision', 'tools'], compliance: ['gdpr', 'soc2', 'eu_residency'] });
    const s = compileSnapshot([c, healthy], new Map([[c.id, l]]));
    const d = decide(s, req);
    expect(d.excluded).toEqual([{ id: 'x', reason, detail }]);
    expect(d.chosen?.id).toBe('ok');
    expect(d.fallbacks).toEqual([]);
    expect(d.retry_after_s).toBeNull();
  });

  it('applies the error-rate limit from options, at the limit itself allowed', () => {
    const live_ = new Map([['x', live({ error_rate: 0.2 })]]);
    expect(decide(compileSnapshot([candidate('x')], live_), REQ).chosen?.id).toBe('x');
    const strict = compileSnapshot([candidate('x')], live_, DEFAULT_ROUTING_WEIGHTS, { maxErrorRate: 0.1 });
    expect(decide(strict, REQ).excluded.map((e) => e.reason)).toEqual(['error_rate_over_limit']);
  });

  it('does not judge the error rate on fewer than minRequests requests, and scores that stability as unknown (0.5)', () => {
    const s = compileSnapshot([candidate('x')], new Map([['x', live({ error_rate: 1, requests: 3 })]]));
    const d = decide(s, REQ);
    expect(d.excluded).toEqual([]);
    expect(d.chosen?.breakdown.stability).toBe(0.5);
  });

  it('reports a request filter before a live one, and only time-bound exclusions feed retry_after', () => {
    const s = compileSnapshot(
      [candidate('a', { compliance: [] }), candidate('b', { compliance: ['gdpr'] })],
      new Map([
        ['a', live({ quota_exhausted: true, retry_after_s: 5 })],
        ['b', live({ quota_exhausted: true, retry_after_s: 90 })],
      ]),
    );
    const d = decide(s, { ...REQ, required_compliance: ['gdpr'] });
    expect(d.excluded.map((e) => [e.id, e.reason])).toEqual([
      ['a', 'compliance_mismatch'],
      ['b', 'quota_exhausted'],
    ]);
    expect(d.retry_after_s).toBe(90); // a's 5 s wait would not make it eligible
  });

  it('excludes every candidate for a required tag nobody has', () => {
    const s = compileSnapshot([candidate('a', { capabilities: ['tools'] })], new Map());
    const d = decide(s, { ...REQ, required_capabilities: ['tools', 'telepathy'] });
    expect(d.excluded).toEqual([{ id: 'a', reason: 'missing_capability', detail: 'lacks capabilities: telepathy' }]);
  });

  it('handles more than 32 distinct tags (multi-word masks)', () => {
    const tags = Array.from({ length: 70 }, (_, i) => `t${i}`);
    const s = compileSnapshot(
      [candidate('all', { capabilities: tags }), candidate('some', { capabilities: tags.slice(0, 40) })],
      new Map(),
    );
    const d = decide(s, { ...REQ, required_capabilities: ['t1', 't65'] });
    expect(d.chosen?.id).toBe('all');
    expect(d.excluded).toEqual([{ id: 'some', reason: 'missing_capability', detail: 'lacks capabilities: t65' }]);
  });
});

describe('nothing allowed', () => {
  it('answers chosen null and the smallest retry_after among quota- and breaker-excluded candidates', () => {
    const s = compileSnapshot(
      [candidate('a'), candidate('b'), candidate('c'), candidate('d'), candidate('e')],
      new Map([
        ['a', live({ quota_exhausted: true, retry_after_s: 3600 })],
        ['b', live({ quota_exhausted: true, retry_after_s: 120 })],
        ['c', live({ quota_exhausted: true, retry_after_s: null })],
        ['d', live({ breaker_open: true, retry_after_s: 600 })],
        ['e', live({ error_rate: 0.9, retry_after_s: 1 })], // not time-bound: ignored
      ]),
    );
    const d = decide(s, { ...REQ, priority: 'low' });
    expect(d.chosen).toBeNull();
    expect(d.fallbacks).toEqual([]);
    expect(d.excluded.map((e) => e.reason)).toEqual([
      'quota_exhausted',
      'quota_exhausted',
      'quota_exhausted',
      'breaker_open',
      'error_rate_over_limit',
    ]);
    expect(d.retry_after_s).toBe(120);
  });

  it('answers retry_after null when no exclusion is time-bound, or when there are no candidates', () => {
    const s = compileSnapshot([candidate('a')], new Map());
    const d = decide(s, { ...REQ, required_compliance: ['hipaa'] });
    expect(d).toEqual({
      chosen: null,
      fallbacks: [],
      excluded: [{ id: 'a', reason: 'compliance_mismatch', detail: 'lacks compliance: hipaa' }],
      retry_after_s: null,
    });
    expect(decide(compileSnapshot([], new Map()), REQ)).toEqual({ chosen: null, fallbacks: [], excluded: [], retry_after_s: null });
  });
});

describe('weighted score', () => {
  // Same tags, both healthy. Request: 1000 input + 1000 output tokens.
  // cheap: p95 2000 ms, $1 + $2 per 1M -> $0.003.  fast: p95 500 ms, $4 + $8 per 1M -> $0.012.
  // performance: cheap 500/2000 = 0.25, fast 1.   cost: cheap 1, fast 0.003/0.012 = 0.25.
  // features, stability, compliance: 1 for both.
  const cheap = candidate('cheap', { price: { input_per_1m: 1, output_per_1m: 2 } });
  const fast = candidate('fast', { price: { input_per_1m: 4, output_per_1m: 8 } });
  const state = new Map([
    ['cheap', live({ p95_latency_ms: 2000 })],
    ['fast', live({ p95_latency_ms: 500 })],
  ]);

  it('with the default weights, fast-but-expensive wins: 0.8125 vs 0.775', () => {
    // fast: 0.30*1 + 0.25*0.25 + 0.20 + 0.15 + 0.10 = 0.8125; cheap: 0.30*0.25 + 0.25*1 + 0.45 = 0.775
    const d = decide(compileSnapshot([cheap, fast], state), REQ);
    expect(d.chosen?.id).toBe('fast');
    expect(d.chosen?.score).toBeCloseTo(0.8125, 12);
    expect(d.chosen?.breakdown).toEqual({ performance: 1, cost: 0.25, features: 1, stability: 1, compliance: 1 });
    expect(d.chosen?.estimated_cost_usd).toBeCloseTo(0.012, 15);
    expect(d.fallbacks.map((f) => f.id)).toEqual(['cheap']);
    expect(d.fallbacks[0]?.score).toBeCloseTo(0.775, 12);
    expect(d.fallbacks[0]?.breakdown).toEqual({ performance: 0.25, cost: 1, features: 1, stability: 1, compliance: 1 });
  });

  it('with cost weighted 50%, cheap-but-slow wins: 0.85 vs 0.625', () => {
    // cheap: 0.2*0.25 + 0.5*1 + 0.3 = 0.85; fast: 0.2*1 + 0.5*0.25 + 0.3 = 0.625
    const w: RoutingWeights = { performance: 0.2, cost: 0.5, features: 0.1, stability: 0.1, compliance: 0.1 };
    const d = decide(compileSnapshot([cheap, fast], state, w), REQ);
    expect(d.chosen?.id).toBe('cheap');
    expect(d.chosen?.score).toBeCloseTo(0.85, 12);
    expect(d.fallbacks[0]?.score).toBeCloseTo(0.625, 12);
  });

  it.each([
    ['performance', 'fast'],
    ['cost', 'cheap'],
  ] as const)('with only %s weighted, %s wins', (criterion, winner) => {
    const w: RoutingWeights = { performance: 0, cost: 0, features: 0, stability: 0, compliance: 0, [criterion]: 1 };
    expect(decide(compileSnapshot([cheap, fast], state, w), REQ).chosen?.id).toBe(winner);
  });

  it('estimates the cost from the request tokens: input-heavy and output-heavy requests pick differently', () => {
    const cheapIn = candidate('cheap-in', { price: { input_per_1m: 1, output_per_1m: 20 } });
    const cheapOut = candidate('cheap-out', { price: { input_per_1m: 10, output_per_1m: 2 } });
    const s = compileSnapshot([cheapIn, cheapOut], new Map());
    const inputHeavy = decide(s, { tenant: 't', estimated_input_tokens: 100_000, estimated_output_tokens: 100 });
    const outputHeavy = decide(s, { tenant: 't', estimated_input_tokens: 100, estimated_output_tokens: 100_000 });
    expect(inputHeavy.chosen?.id).toBe('cheap-in');
    expect(outputHeavy.chosen?.id).toBe('cheap-out');
    // No estimate: defaults 3000 in / 1000 out -> cheap-in $0.023, cheap-out $0.032.
    const d = decide(s, { tenant: 't' });
    expect(d.chosen?.id).toBe('cheap-in');
    expect(d.chosen?.estimated_cost_usd).toBeCloseTo(0.023, 15);
    expect(d.fallbacks[0]?.breakdown.cost).toBeCloseTo(0.023 / 0.032, 12);
  });

  it('normalises relative criteria over the candidates left in play', () => {
    // The fastest candidate is filtered out, so the fastest remaining one scores performance 1.
    const s = compileSnapshot(
      [candidate('fastest'), candidate('mid'), candidate('slow')],
      new Map([
        ['fastest', live({ p95_latency_ms: 100, quota_exhausted: true })],
        ['mid', live({ p95_latency_ms: 400 })],
        ['slow', live({ p95_latency_ms: 800 })],
      ]),
    );
    const d = decide(s, REQ);
    expect(d.chosen?.id).toBe('mid');
    expect(d.chosen?.breakdown.performance).toBe(1);
    expect(d.fallbacks[0]?.breakdown.performance).toBe(0.5);
  });

  it('scores unknown latency and a missing live entry as neutral', () => {
    const s = compileSnapshot([candidate('new'), candidate('known')], new Map([['known', live({ p95_latency_ms: 700 })]]));
    const d = decide(s, REQ);
    const byId = Object.fromEntries([d.chosen!, ...d.fallbacks].map((r) => [r.id, r]));
    expect(byId.known?.breakdown.performance).toBe(1);
    expect(byId.new?.breakdown).toMatchObject({ performance: 0.5, stability: 0.5 });
    expect(byId.new?.quota_remaining_ratio).toBeNull();
  });

  it('lowers stability with the error rate and with little quota left', () => {
    const s = compileSnapshot(
      [candidate('a'), candidate('b'), candidate('c')],
      new Map([
        ['a', live({ error_rate: 0.05 })], // 1 - 0.05/0.2 = 0.75
        ['b', live({ quota_remaining_ratio: 0.1 })], // 0.1 / 0.2 = 0.5
        ['c', live({ error_rate: 0.1, quota_remaining_ratio: 0.6 })], // 0.5 x 1
      ]),
    );
    const d = decide(s, REQ);
    const stability = Object.fromEntries([d.chosen!, ...d.fallbacks].map((r) => [r.id, r.breakdown.stability]));
    expect(stability.a).toBeCloseTo(0.75, 12);
    expect(stability.b).toBeCloseTo(0.5, 12);
    expect(stability.c).toBeCloseTo(0.5, 12);
    expect(d.chosen?.id).toBe('a');
    expect([d.chosen!, ...d.fallbacks].find((r) => r.id === 'b')?.quota_remaining_ratio).toBe(0.1);
  });

  it('scores features by preferred capabilities when given, else by breadth; compliance by breadth', () => {
    const s = compileSnapshot(
      [
        candidate('wide', { capabilities: ['a', 'b', 'c', 'd'], compliance: ['gdpr'] }),
        candidate('narrow', { capabilities: ['vision'], compliance: ['gdpr', 'soc2'] }),
      ],
      new Map(),
    );
    const breadth = decide(s, REQ);
    const f = Object.fromEntries([breadth.chosen!, ...breadth.fallbacks].map((r) => [r.id, r.breakdown]));
    expect(f.wide).toMatchObject({ features: 1, compliance: 0.5 });
    expect(f.narrow).toMatchObject({ features: 0.25, compliance: 1 });

    // 'unheard-of' is held by nobody and left out of the share.
    const pref = decide(s, { ...REQ, preferred_capabilities: ['vision', 'a', 'unheard-of'] });
    const p = Object.fromEntries([pref.chosen!, ...pref.fallbacks].map((r) => [r.id, r.breakdown.features]));
    expect(p).toEqual({ wide: 0.5, narrow: 0.5 });
  });

  it('keeps every score in [0, 1] and equal to the weighted sum of its breakdown', () => {
    const cs = Array.from({ length: 12 }, (_, i) =>
      candidate(`c${i}`, {
        capabilities: ['tools', 'vision', 'json'].slice(0, i % 4),
        compliance: ['gdpr', 'soc2'].slice(0, i % 3),
        price: { input_per_1m: 0.5 + i, output_per_1m: 2 + 3 * (i % 5) },
      }),
    );
    const state = new Map(
      cs.map((c, i) => [
        c.id,
        live({ p95_latency_ms: 200 + 97 * i, error_rate: (i % 4) * 0.04, quota_remaining_ratio: i % 2 ? 0.05 * i : null }),
      ]),
    );
    const s = compileSnapshot(cs, state);
    const d = decide(s, REQ);
    const w = s.weights;
    for (const r of [d.chosen!, ...d.fallbacks]) {
      for (const v of Object.values(r.breakdown)) {
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(1);
      }
      const b = r.breakdown;
      expect(r.score).toBeCloseTo(
        w.performance * b.performance + w.cost * b.cost + w.features * b.features + w.stability * b.stability + w.compliance * b.compliance,
        12,
      );
    }
    const scores = [d.chosen!, ...d.fallbacks].map((r) => r.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
  });
});

describe('priority and the breaker', () => {
  // SPEC section 4: the soft threshold of a daily budget opens the breaker for low-priority traffic only.
  const s = compileSnapshot(
    [candidate('primary', { price: { input_per_1m: 1, output_per_1m: 1 } }), candidate('secondary')],
    new Map([
      ['primary', live({ breaker_open: true, retry_after_s: 900 })],
      ['secondary', live({ breaker_open: true, error_rate: 0.5, retry_after_s: 900 })],
    ]),
  );

  it.each(['normal', 'high', undefined] as const)('lets %s priority through an open breaker', (priority) => {
    const d = decide(s, { ...REQ, ...(priority ? { priority } : {}) });
    expect(d.chosen?.id).toBe('primary');
    expect(d.excluded).toEqual([
      { id: 'secondary', reason: 'error_rate_over_limit', detail: 'error rate 0.5 over limit 0.2 (1000 requests)' },
    ]);
    expect(d.retry_after_s).toBeNull();
  });

  it('stops low priority, reports the breaker before the error rate, and retries at the window end', () => {
    const d = decide(s, { ...REQ, priority: 'low' });
    expect(d.chosen).toBeNull();
    expect(d.excluded.map((e) => [e.id, e.reason])).toEqual([
      ['primary', 'breaker_open'],
      ['secondary', 'breaker_open'],
    ]);
    expect(d.retry_after_s).toBe(900);
  });
});

describe("the brief's TOKEN_THRESHOLD switch (min_remaining_tokens)", () => {
  // primary: fast and cheap, so it wins on score; secondary: slower and dearer.
  const primary = candidate('primary', { min_remaining_tokens: 8000 });
  const secondary = candidate('secondary', { price: { input_per_1m: 2, output_per_1m: 4 } });
  const at = (remaining: number, secondaryLive: Partial<CandidateLive> = {}) =>
    compileSnapshot(
      [primary, secondary],
      new Map([
        ['primary', live({ p95_latency_ms: 300, remaining_tokens: remaining, quota_remaining_ratio: remaining / 100_000 })],
        ['secondary', live({ p95_latency_ms: 600, ...secondaryLive })],
      ]),
    );

  it('keeps the primary while its remaining tokens are at or above the threshold', () => {
    const d = decide(at(8000), REQ);
    expect(d.chosen?.id).toBe('primary');
    expect(d.chosen?.below_min_remaining).toBe(false);
    expect(d.chosen?.remaining_tokens).toBe(8000);
  });

  it('flips to the secondary when the primary drops below it, keeping the primary as the last fallback', () => {
    const d = decide(at(7999), REQ);
    expect(d.chosen?.id).toBe('secondary');
    expect(d.fallbacks.map((f) => [f.id, f.below_min_remaining])).toEqual([['primary', true]]);
    // Demoted despite the better score: performance 1 vs 0.5 and cost 1 vs 0.5.
    expect(d.fallbacks[0]!.score).toBeGreaterThan(d.chosen!.score);
  });

  it('still uses the primary below the threshold when the secondary cannot serve', () => {
    const d = decide(at(10, { quota_exhausted: true, retry_after_s: 60 }), REQ);
    expect(d.chosen?.id).toBe('primary');
    expect(d.chosen?.below_min_remaining).toBe(true);
    expect(d.excluded.map((e) => e.id)).toEqual(['secondary']);
  });
});

describe('simple tasks past a soft threshold', () => {
  // best: p95 200 ms, $10 + $10 per 1M; cheap: p95 2000 ms, $1 + $1 per 1M. Request 1000 + 1000 tokens.
  // Default weights: best = 0.3 x 1 + 0.25 x 0.1 + 0.2 + 0.15 x 1 + 0.1 = 0.775;
  // cheap = 0.3 x 0.1 + 0.25 x 1 + 0.2 + 0.15 + 0.1 = 0.73.
  const best = candidate('best', { price: { input_per_1m: 10, output_per_1m: 10 } });
  const cheap = candidate('cheap', { price: { input_per_1m: 1, output_per_1m: 1 } });
  const snap = (soft: boolean) =>
    compileSnapshot(
      [best, cheap],
      new Map([
        ['best', live({ p95_latency_ms: 200, quota_soft: soft })],
        ['cheap', live({ p95_latency_ms: 2000 })],
      ]),
    );

  it('ranks by score while every quota is below its soft threshold', () => {
    const d = decide(snap(false), { ...REQ, task_class: 'simple' });
    expect(d.chosen?.id).toBe('best');
    expect(d.chosen?.score).toBeCloseTo(0.775, 12);
    expect(d.fallbacks[0]?.score).toBeCloseTo(0.73, 12);
  });

  it('sends a simple task to the cheaper candidate first once a quota is soft', () => {
    const d = decide(snap(true), { ...REQ, task_class: 'simple' });
    expect(d.chosen?.id).toBe('cheap');
    expect(d.chosen?.estimated_cost_usd).toBeCloseTo(0.002, 15);
    expect(d.fallbacks.map((f) => f.id)).toEqual(['best']);
  });

  it.each(['standard', 'complex', undefined] as const)('keeps ranking by score for task class %s', (task_class) => {
    expect(decide(snap(true), { ...REQ, ...(task_class ? { task_class } : {}) }).chosen?.id).toBe('best');
  });
});

describe('each candidate appears once', () => {
  it('in chosen, fallbacks or excluded, never twice, over random live states and requests', () => {
    let seed = 42;
    const rand = () => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) & 0x7fffffff;
      return seed / 2_147_483_648;
    };
    const caps = ['tools', 'vision', 'json'];
    const ids = Array.from({ length: 12 }, (_, i) => `c${i}`);
    for (let round = 0; round < 300; round++) {
      const cands = ids.map((id) =>
        candidate(id, {
          capabilities: caps.filter(() => rand() < 0.6),
          price: { input_per_1m: Math.round(rand() * 10), output_per_1m: Math.round(rand() * 10) },
          min_remaining_tokens: rand() < 0.3 ? 5000 : undefined,
        }),
      );
      const lives = new Map(
        ids.map((id) => [
          id,
          live({
            p95_latency_ms: rand() < 0.2 ? null : 100 + rand() * 2000,
            error_rate: rand() * 0.3,
            quota_exhausted: rand() < 0.15,
            breaker_open: rand() < 0.15,
            quota_soft: rand() < 0.3,
            remaining_tokens: rand() < 0.5 ? Math.round(rand() * 10_000) : null,
          }),
        ]),
      );
      const d = decide(compileSnapshot(cands, lives), {
        ...REQ,
        priority: rand() < 0.5 ? 'low' : 'normal',
        task_class: rand() < 0.5 ? 'simple' : 'standard',
        required_capabilities: rand() < 0.3 ? ['vision'] : [],
      });
      const seen = [...(d.chosen ? [d.chosen.id] : []), ...d.fallbacks.map((f) => f.id), ...d.excluded.map((e) => e.id)];
      expect(seen.slice().sort()).toEqual(ids.slice().sort());
    }
  });
});

describe('determinism', () => {
  it('breaks a tie on score by the cheaper estimated cost, then by id', () => {
    // Only performance weighted; no latency data, so all score 0.5 and tie.
    const w: RoutingWeights = { performance: 1, cost: 0, features: 0, stability: 0, compliance: 0 };
    const cs = [
      candidate('b', { price: { input_per_1m: 1, output_per_1m: 1 } }),
      candidate('c', { price: { input_per_1m: 2, output_per_1m: 2 } }),
      candidate('a', { price: { input_per_1m: 1, output_per_1m: 1 } }),
      candidate('d', { price: { input_per_1m: 0.5, output_per_1m: 0.5 } }),
    ];
    const d = decide(compileSnapshot(cs, new Map(), w), REQ);
    expect([d.chosen!, ...d.fallbacks].map((r) => r.score)).toEqual([0.5, 0.5, 0.5, 0.5]);
    expect([d.chosen!, ...d.fallbacks].map((r) => r.id)).toEqual(['d', 'a', 'b', 'c']);
  });

  it('does not depend on the order of candidates or live entries', () => {
    const cs = Array.from({ length: 8 }, (_, i) =>
      candidate(`m${i}`, { capabilities: i % 2 ? ['tools'] : [], price: { input_per_1m: 1 + (i % 3), output_per_1m: 4 } }),
    );
    const entries = cs.map(
      (c, i) => [c.id, live({ p95_latency_ms: 300 + 100 * (i % 3), quota_exhausted: i === 5, retry_after_s: 10 })] as const,
    );
    const req = { ...REQ, required_capabilities: ['tools'] };
    const forward = decide(compileSnapshot(cs, new Map(entries)), req);
    const backward = decide(compileSnapshot([...cs].reverse(), new Map([...entries].reverse())), req);
    expect(backward).toEqual(forward);
  });

  it('gives the same answer on repeated calls; scratch state never leaks between requests', () => {
    const s = compileSnapshot(
      [
        candidate('a', { capabilities: ['vision'], compliance: ['gdpr'] }),
        candidate('b', { price: { input_per_1m: 9, output_per_1m: 9 } }),
      ],
      new Map(),
    );
    const wide = decide(s, REQ);
    const narrow = decide(s, {
      ...REQ,
      required_capabilities: ['vision'],
      required_compliance: ['gdpr'],
      preferred_capabilities: ['vision'],
    });
    expect(narrow.chosen?.id).toBe('a');
    expect(narrow.excluded.map((e) => e.id)).toEqual(['b']);
    expect(decide(s, REQ)).toEqual(wide);
    expect(wide.excluded).toEqual([]);
    expect(wide.fallbacks.map((f) => f.id)).toEqual(['b']);
  });
});

describe('config errors', () => {
  it('lists every problem: duplicate and empty ids, bad prices, bad weights, bad options', () => {
    const problems = problemsOf(() =>
      compileSnapshot(
        [candidate('a'), candidate('a'), candidate(''), candidate('p', { price: { input_per_1m: -1, output_per_1m: Number.NaN } })],
        new Map(),
        { ...DEFAULT_ROUTING_WEIGHTS, cost: -0.1 },
        { maxErrorRate: 0 },
      ),
    );
    expect(problems).toEqual([
      'candidates[1] (a): duplicate id',
      'candidates[2].id: must be a non-empty string',
      'candidates[3] (p).price.input_per_1m: must be a finite number >= 0, got -1',
      'candidates[3] (p).price.output_per_1m: must be a finite number >= 0, got NaN',
      'weights.cost: must be a finite number >= 0, got -0.1',
      'options.maxErrorRate: must be in (0, 1], got 0',
    ]);
  });

  it('rejects all-zero weights', () => {
    expect(problemsOf(() => compileSnapshot([], new Map(), { performance: 0, cost: 0, features: 0, stability: 0, compliance: 0 }))).toEqual(
      ['weights: at least one must be > 0'],
    );
  });
});
