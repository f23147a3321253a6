/**
 * Overfitting check for the NAB tuning of the detector core (figures in docs/anomaly-detection.md):
 * a 2-fold split of the 58 series by their position in the corpus (sorted by path): fold "odd"
 * holds series 1, 3, 5, ..., fold "even" series 0, 2, 4, .... For every parameter set of GRID it
 * runs the detector once over all series (each series has its own detector, so a fold's score is
 * exactly what a run over that fold alone would give) and records, under NAB's standard profile:
 * - per fold, the score with the threshold optimised on that fold (in-sample);
 * - per fold, the score at the threshold optimised on the other fold, and at the set's own
 *   alertScore (its labels).
 * Then, per direction: tune on one fold = pick the set with the best in-sample score there
 * (first in GRID order on ties), and score it on the other fold with the tuning fold's threshold
 * and with its alertScore. Neither uses anything of the scored fold. Also prints the best set on
 * all 58 series, for comparison with the defaults.
 *
 *   npx tsx bench/nab/split.ts              # GRID on 2 worker threads (about 25 min on 2 vCPUs)
 *   npx tsx bench/nab/split.ts --workers 1
 *
 * Not a test: it reports what it measures.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { DEFAULT_DETECTOR_OPTIONS, type DetectorOptions } from '../../processors/anomaly/detector.ts';
import { loadNabCorpus, loadProfiles, type NabSeries } from './corpus.ts';
import { detectCorpus, evaluateCorpus } from './evaluate.ts';

/**
 * Parameter values searched, on top of DEFAULT_DETECTOR_OPTIONS: the options that were tuned on
 * NAB, each with the default and one or two neighbours, and "off" for the parts added in the
 * second round (no refractory period, no range check, no novelty feature, hourly seasonal slots).
 */
const GRID: { [K in keyof DetectorOptions]?: number[] } = {
  alertScore: [0.5, 0.52, 0.54],
  calibrationQuantile: [0.998, 0.999],
  cooldownFactor: [0.5, 0.7],
  refractoryPoints: [0, 20],
  rangeTolerance: [0.03, 0.1, Number.POSITIVE_INFINITY],
  noveltyPoints: [0, 16],
  slotMinutes: [15, 60],
};

/** Standard-profile figures of one parameter set (normalised NAB scores, thresholds). */
interface SetResult {
  options: Partial<DetectorOptions>;
  all: number;
  allThreshold: number;
  allAtAlert: number;
  odd: number;
  oddThreshold: number;
  oddAtAlert: number;
  even: number;
  evenThreshold: number;
  evenAtAlert: number;
  /** Even fold at the odd fold's optimised threshold, and the reverse. */
  evenAtOddThreshold: number;
  oddAtEvenThreshold: number;
}

function gridSets(): Partial<DetectorOptions>[] {
  let sets: Partial<DetectorOptions>[] = [{}];
  for (const [key, values] of Object.entries(GRID)) sets = sets.flatMap((s) => values.map((v) => ({ ...s, [key]: v })));
  return sets;
}

function measure(corpus: readonly NabSeries[], options: Partial<DetectorOptions>): SetResult {
  const profiles = loadProfiles();
  const standard = { standard: profiles.standard } as unknown as typeof profiles;
  const scores = detectCorpus(corpus, options);
  const alert = options.alertScore ?? DEFAULT_DETECTOR_OPTIONS.alertScore;
  const fold = (parity: number) => {
    const idx = corpus.map((_, k) => k).filter((k) => k % 2 === parity);
    return { series: idx.map((k) => corpus[k]!), scores: idx.map((k) => scores[k]!) };
  };
  const score = (f: ReturnType<typeof fold>, threshold?: number) => evaluateCorpus(f.series, f.scores, standard, threshold)[0]!;
  const all = fold(0);
  all.series = [...corpus];
  all.scores = scores;
  const odd = fold(1);
  const even = fold(0);
  const a = score(all);
  const o = score(odd);
  const e = score(even);
  return {
    options,
    all: a.normalised,
    allThreshold: a.threshold,
    allAtAlert: score(all, alert).normalised,
    odd: o.normalised,
    oddThreshold: o.threshold,
    oddAtAlert: score(odd, alert).normalised,
    even: e.normalised,
    evenThreshold: e.threshold,
    evenAtAlert: score(even, alert).normalised,
    evenAtOddThreshold: score(even, o.threshold).normalised,
    oddAtEvenThreshold: score(odd, e.threshold).normalised,
  };
}

function workerMain(): void {
  const corpus = loadNabCorpus();
  parentPort!.on('message', (msg: { index: number; options: Partial<DetectorOptions> } | null) => {
    if (msg === null) {
      parentPort!.close();
      return;
    }
    parentPort!.postMessage({ index: msg.index, result: measure(corpus, msg.options) });
  });
}

/** Runs `sets` on `workers` threads (each worker loads the corpus once). */
async function runAll(sets: Partial<DetectorOptions>[], workers: number): Promise<SetResult[]> {
  const results: SetResult[] = new Array(sets.length);
  let next = 0;
  let done = 0;
  const file = fileURLToPath(import.meta.url);
  // tsx registers itself in a worker only through its API, so the worker is a tiny loader.
  const code = `import('tsx/esm/api').then(({ tsImport }) => tsImport(${JSON.stringify(file)}, ${JSON.stringify(import.meta.url)}))`;
  await Promise.all(
    Array.from({ length: workers }, () => {
      const w = new Worker(code, { eval: true, workerData: { role: 'worker' } });
      return new Promise<void>((resolve, reject) => {
        const feed = () => {
          if (next < sets.length) {
            const index = next++;
            w.postMessage({ index, options: sets[index] });
          } else {
            w.postMessage(null);
          }
        };
        w.on('message', (m: { index: number; result: SetResult }) => {
          results[m.index] = m.result;
          done++;
          process.stderr.write(`\r${done}/${sets.length} parameter sets`);
          feed();
        });
        w.on('error', reject);
        w.on('exit', () => resolve());
        feed();
      });
    }),
  );
  process.stderr.write('\n');
  return results;
}

const fmt = (x: number) => x.toFixed(2);
const describe = (o: Partial<DetectorOptions>) => JSON.stringify(o).replace(/null/g, 'Infinity');

async function main(): Promise<void> {
  const i = process.argv.indexOf('--workers');
  const workers = i >= 0 ? Number(process.argv[i + 1]) : Math.min(2, availableParallelism());
  if (!Number.isInteger(workers) || workers < 1) throw new Error('--workers must be a positive integer');
  const sets = gridSets();
  const t0 = performance.now();
  const results = await runAll(sets, workers);
  const best = (key: 'odd' | 'even' | 'all') => results.reduce((b, r) => (r[key] > b[key] ? r : b), results[0]!);
  const defaults = results.find((r) =>
    Object.entries(r.options).every(([k, v]) => DEFAULT_DETECTOR_OPTIONS[k as keyof DetectorOptions] === v),
  );

  console.log(
    `${sets.length} parameter sets, ${workers} worker(s), ${((performance.now() - t0) / 60_000).toFixed(1)} min; NAB standard profile`,
  );
  const tunedOdd = best('odd');
  const tunedEven = best('even');
  console.log(`tuned on odd:  ${describe(tunedOdd.options)}`);
  console.log(
    `  odd (in-sample) ${fmt(tunedOdd.odd)} at threshold ${tunedOdd.oddThreshold.toFixed(4)}; even (held out) ${fmt(tunedOdd.evenAtOddThreshold)} at that threshold, ${fmt(tunedOdd.evenAtAlert)} at alertScore`,
  );
  console.log(`tuned on even: ${describe(tunedEven.options)}`);
  console.log(
    `  even (in-sample) ${fmt(tunedEven.even)} at threshold ${tunedEven.evenThreshold.toFixed(4)}; odd (held out) ${fmt(tunedEven.oddAtEvenThreshold)} at that threshold, ${fmt(tunedEven.oddAtAlert)} at alertScore`,
  );
  const held = (tunedOdd.evenAtOddThreshold + tunedEven.oddAtEvenThreshold) / 2;
  const heldAlert = (tunedOdd.evenAtAlert + tunedEven.oddAtAlert) / 2;
  console.log(`held-out mean: ${fmt(held)} (transferred threshold), ${fmt(heldAlert)} (alertScore)`);
  const top = best('all');
  console.log(
    `best on all 58: ${describe(top.options)}: ${fmt(top.all)} (threshold ${top.allThreshold.toFixed(4)}), ${fmt(top.allAtAlert)} at alertScore`,
  );
  if (defaults) {
    console.log(
      `defaults: all ${fmt(defaults.all)}; odd ${fmt(defaults.odd)}, even ${fmt(defaults.even)} in-sample; even at odd's threshold ${fmt(defaults.evenAtOddThreshold)}, odd at even's ${fmt(defaults.oddAtEvenThreshold)}; at alertScore all ${fmt(defaults.allAtAlert)}, odd ${fmt(defaults.oddAtAlert)}, even ${fmt(defaults.evenAtAlert)}`,
    );
  }
  console.log(JSON.stringify({ bench: 'nab-split', sets: results.length, tunedOdd, tunedEven, bestAll: top, defaults }));
}

if (isMainThread) await main();
else if (workerData?.role === 'worker') workerMain();
