/**
 * NAB evaluation of the streaming detector core (processors/anomaly/detector.ts).
 *
 *   npm run bench:nab                                  # default options
 *   npm run bench:nab -- --options '{"shortPoints":8}' # try other options (JSON, partial)
 *   NAB_DIR=/path/to/nab npm run bench:nab             # corpus elsewhere than ../shared/data/nab
 *
 * Steps, as NAB's optimise/score/normalise: run one fresh detector per series over all 58 series
 * (no look-ahead: each score uses only earlier points); per profile, sweep every distinct score as
 * the corpus-wide threshold and keep the one with the best raw score; normalise between the null
 * and perfect detectors. Also prints the scores at the detector's own alertScore (its labels) and
 * a scorer self-check against NAB's published numenta results. Prints a scoreboard with every
 * detector of results/final_results.json. Not a test: the figures go to docs/anomaly-detection.md.
 */
import { DEFAULT_DETECTOR_OPTIONS, type DetectorOptions } from '../processors/anomaly/detector.ts';
import { baselineScores, type NabProfileName, normalisedScore } from '../processors/anomaly/nab-scorer.ts';
import {
  defaultNabDir,
  hasNabCorpus,
  loadFinalResults,
  loadNabCorpus,
  loadProfiles,
  loadPublishedFileScores,
  PROFILE_NAMES,
} from './nab/corpus.ts';
import { detectCorpus, evaluateCorpus, type ProfileResult } from './nab/evaluate.ts';

function parseArgs(argv: string[]): Partial<DetectorOptions> {
  const i = argv.indexOf('--options');
  if (i < 0) return {};
  const text = argv[i + 1];
  if (!text) throw new Error('--options needs a JSON object of detector options');
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('--options must be a JSON object');
  return parsed as Partial<DetectorOptions>;
}

const fmt = (x: number) => x.toFixed(2).padStart(8);

function main(): void {
  const dir = defaultNabDir();
  if (!hasNabCorpus(dir)) throw new Error(`NAB corpus not found at ${dir} (set NAB_DIR)`);
  const options = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const corpus = loadNabCorpus(dir);
  const profiles = loadProfiles(dir);
  const rows = corpus.reduce((n, s) => n + s.values.length, 0);
  const tLoad = performance.now();
  const scores = detectCorpus(corpus, options);
  const tDetect = performance.now();
  const best = evaluateCorpus(corpus, scores, profiles);
  const alertScore = options.alertScore ?? DEFAULT_DETECTOR_OPTIONS.alertScore;
  const atLabel = evaluateCorpus(corpus, scores, profiles, alertScore);
  const tScore = performance.now();

  // Scorer self-check: NAB's published per-file raw scores of numenta, normalised by our baselines.
  const sizes = corpus.map((s) => ({ rowCount: s.values.length, windows: s.windows }));
  const final = loadFinalResults(dir);
  const check = PROFILE_NAMES.map((p) => {
    const raw = loadPublishedFileScores('numenta', p, dir).reduce((sum, r) => sum + r.score, 0);
    return `${p} ${normalisedScore(raw, baselineScores(sizes, profiles[p])).toFixed(2)} (published ${final.numenta![p].toFixed(2)})`;
  });

  console.log(`NAB corpus: ${corpus.length} series, ${rows} rows, ${corpus.reduce((n, s) => n + s.windows.length, 0)} windows (${dir})`);
  console.log(`detector options: ${JSON.stringify({ ...DEFAULT_DETECTOR_OPTIONS, ...options })}`);
  console.log(`scorer check, numenta from its per-file CSVs: ${check.join('; ')}`);
  console.log('');
  const describe = (label: string, results: ProfileResult[]) => {
    console.log(label);
    for (const r of results) {
      console.log(
        `  ${r.profile.padEnd(20)} threshold ${r.threshold.toFixed(4)}  raw ${r.raw.toFixed(3).padStart(8)}  normalised ${r.normalised.toFixed(2).padStart(6)}  windows ${r.windowsDetected}/${r.windows}  FP rows ${r.falsePositiveRows}`,
      );
    }
  };
  describe('quotaflow, threshold optimised per profile (as NAB does):', best);
  describe(`quotaflow, at the detector's own alertScore ${alertScore} (its labels):`, atLabel);
  console.log('');

  const board: [string, Record<NabProfileName, number>][] = Object.entries(final);
  const mine = Object.fromEntries(best.map((r) => [r.profile, r.normalised])) as Record<NabProfileName, number>;
  board.push(['quotaflow', mine]);
  board.sort((a, b) => b[1].standard - a[1].standard);
  console.log(`${'detector'.padEnd(20)}${'standard'.padStart(10)}${'low_FP'.padStart(10)}${'low_FN'.padStart(10)}`);
  for (const [name, s] of board) {
    const mark = name === 'quotaflow' ? '  <-' : '';
    console.log(`${name.padEnd(20)}  ${fmt(s.standard)}  ${fmt(s.reward_low_FP_rate)}  ${fmt(s.reward_low_FN_rate)}${mark}`);
  }
  console.log('');
  const rank = board.findIndex(([name]) => name === 'quotaflow') + 1;
  console.log(
    JSON.stringify({
      bench: 'nab',
      series: corpus.length,
      rows,
      normalised: Object.fromEntries(best.map((r) => [r.profile, Number(r.normalised.toFixed(2))])),
      rank_standard: `${rank} of ${board.length}`,
      detect_points_per_s: Math.round(rows / ((tDetect - tLoad) / 1000)),
    }),
  );
  console.log(
    `time: load ${((tLoad - t0) / 1000).toFixed(1)} s, detect ${((tDetect - tLoad) / 1000).toFixed(1)} s (${Math.round(rows / ((tDetect - tLoad) / 1000))} points/s), score ${((tScore - tDetect) / 1000).toFixed(1)} s`,
  );
}

main();
