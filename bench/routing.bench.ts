/**
 * Routing decision benchmark: decide() over one compiled snapshot of 20 candidates.
 * Prints ns/op for three request shapes:
 * - `plain`: token estimate only;
 * - `filtered`: required capability and compliance tags plus preferred ones, so some candidates are excluded;
 * - `compile`: compileSnapshot() once per refresh, for scale.
 *
 *   npx tsx bench/routing.bench.ts [calls=1000000]
 *
 * Not a test: figures depend on the machine.
 */
import {
  type CandidateLive,
  compileSnapshot,
  decide,
  type RoutingCandidate,
  type RoutingDecision,
  type RoutingRequest,
} from '../domain/routing.ts';

const calls = Number(process.argv[2] ?? 1_000_000);
const N = 20;
const caps = ['tools', 'vision', 'json_mode', 'long_context', 'audio', 'reasoning'];
const comps = ['gdpr', 'soc2', 'eu_residency', 'no_training'];

const candidates: RoutingCandidate[] = Array.from({ length: N }, (_, i) => ({
  id: `cand-${String(i).padStart(2, '0')}`,
  provider: ['openai', 'anthropic', 'google', 'mistral'][i % 4]!,
  model: `model-${i}`,
  capabilities: caps.filter((_, k) => (i + k) % 3 !== 0),
  compliance: comps.filter((_, k) => (i * 7 + k) % 4 !== 0),
  price: { input_per_1m: 0.15 + (i % 7) * 0.9, output_per_1m: 0.6 + (i % 5) * 3.1 },
}));
const live = new Map<string, CandidateLive>(
  candidates.map((c, i) => [
    c.id,
    {
      p95_latency_ms: i === 19 ? null : 300 + ((i * 137) % 2500),
      error_rate: (i % 6) * 0.03,
      requests: 50 + i * 100,
      quota_remaining_ratio: i % 3 === 0 ? null : ((i * 13) % 100) / 100,
      quota_exhausted: i === 4,
      breaker_open: i === 11,
      retry_after_s: i === 4 || i === 11 ? 300 : null,
    },
  ]),
);

function measure(name: string, request: RoutingRequest, snapshot = compileSnapshot(candidates, live)) {
  let sink = 0;
  let last: RoutingDecision | undefined;
  for (let i = 0; i < 100_000; i++) sink += decide(snapshot, request).fallbacks.length; // warm up (JIT)
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) {
    last = decide(snapshot, request);
    sink += last.fallbacks.length;
  }
  const ns = Number(process.hrtime.bigint() - start);
  return {
    name,
    calls,
    ns_per_op: Math.round(ns / calls),
    ops_per_s: Math.round(calls / (ns / 1e9)),
    allowed: last?.chosen ? last.fallbacks.length + 1 : 0,
    excluded: last?.excluded.length,
    chosen: last?.chosen?.id,
    sink,
  };
}

const plain = measure('plain', { tenant: 't', estimated_input_tokens: 2000, estimated_output_tokens: 500 });
const filtered = measure('filtered', {
  tenant: 't',
  estimated_input_tokens: 2000,
  estimated_output_tokens: 500,
  required_capabilities: ['tools'],
  required_compliance: ['gdpr'],
  preferred_capabilities: ['vision', 'long_context'],
});

const compiles = 10_000;
const start = process.hrtime.bigint();
for (let i = 0; i < compiles; i++) compileSnapshot(candidates, live);
const compileNs = Number(process.hrtime.bigint() - start) / compiles;

console.log(
  JSON.stringify({
    bench: 'routing-decide',
    candidates: N,
    decide: [plain, filtered].map(({ sink: _sink, ...r }) => r),
    compile_snapshot_us: Number((compileNs / 1000).toFixed(2)),
    node: process.version,
  }),
);
