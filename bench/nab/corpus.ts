/**
 * Reads the Numenta Anomaly Benchmark folder (../shared/data/nab, see its README.md): the 58
 * series, their anomaly windows, the scoring profiles and the published results. File I/O only;
 * the scoring rules live in processors/anomaly/nab-scorer.ts.
 *
 * Timestamps in NAB are zone-less `YYYY-MM-DD HH:MM:SS[.ffffff]`; they are read as UTC epoch ms.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CostMatrix, NabProfileName, WindowSpan } from '../../processors/anomaly/nab-scorer.ts';

/** One NAB series. `name` is the path under data/, e.g. `realKnownCause/nyc_taxi.csv`. */
export interface NabSeries {
  name: string;
  /** Epoch ms (zone-less NAB times read as UTC), one per row. */
  timestampsMs: Float64Array;
  values: Float64Array;
  /** Anomaly windows as inclusive row indices, sorted. */
  windows: WindowSpan[];
}

/** One row of a published `<detector>_<profile>_scores.csv`. */
export interface PublishedFileScore {
  file: string;
  threshold: number;
  score: number;
  tp: number;
  tn: number;
  fp: number;
  fn: number;
  totalCount: number;
}

export const PROFILE_NAMES: readonly NabProfileName[] = ['standard', 'reward_low_FP_rate', 'reward_low_FN_rate'];

/** The NAB folder: `$NAB_DIR`, else `<repo>/../shared/data/nab`. */
export function defaultNabDir(): string {
  const env = process.env.NAB_DIR;
  if (env) return env;
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  return path.resolve(repo, '..', 'shared', 'data', 'nab');
}

/** True when `dir` holds the NAB data, labels and results folders. */
export function hasNabCorpus(dir: string): boolean {
  return ['data', 'labels/combined_windows.json', 'results/final_results.json'].every((p) => existsSync(path.join(dir, p)));
}

/**
 * Parses a NAB time (`2014-10-30 15:30:00` or `2014-10-30 15:30:00.000000`) as UTC epoch ms.
 * @throws Error naming the text when it is not such a time.
 */
export function parseNabTime(text: string): number {
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?$/.exec(text.trim());
  if (!m) throw new Error(`not a NAB timestamp (YYYY-MM-DD HH:MM:SS[.ffffff]): ${JSON.stringify(text)}`);
  const ms = Date.parse(`${m[1]}T${m[2]}Z`);
  const frac = m[3] ? Math.round(Number(`0.${m[3]}`) * 1000) : 0;
  if (Number.isNaN(ms)) throw new Error(`invalid NAB timestamp: ${JSON.stringify(text)}`);
  return ms + frac;
}

function readCsvRows(file: string): string[][] {
  const lines = readFileSync(file, 'utf8').split(/\r?\n/);
  return lines.filter((l) => l.length > 0).map((l) => l.split(','));
}

function windowRows(name: string, timestampsMs: Float64Array, limits: [string, string][]): WindowSpan[] {
  const index = new Map<number, number>();
  timestampsMs.forEach((t, i) => {
    index.set(t, i);
  });
  const spans = limits.map(([a, b]) => {
    const start = index.get(parseNabTime(a));
    const end = index.get(parseNabTime(b));
    if (start === undefined || end === undefined)
      throw new Error(`${name}: window [${a}, ${b}] does not start and end on rows of the series`);
    return { start, end };
  });
  return spans.sort((x, y) => x.start - y.start);
}

/**
 * All series of the corpus with their windows from labels/combined_windows.json, sorted by name.
 * @throws Error when a series has a bad row or a window does not fall on its timestamps.
 */
export function loadNabCorpus(dir = defaultNabDir()): NabSeries[] {
  const labels = JSON.parse(readFileSync(path.join(dir, 'labels', 'combined_windows.json'), 'utf8')) as Record<string, [string, string][]>;
  const out: NabSeries[] = [];
  for (const name of Object.keys(labels).sort()) {
    const rows = readCsvRows(path.join(dir, 'data', name));
    const header = rows.shift();
    if (header?.[0] !== 'timestamp' || header[1] !== 'value') throw new Error(`${name}: expected header timestamp,value`);
    const timestampsMs = new Float64Array(rows.length);
    const values = new Float64Array(rows.length);
    rows.forEach((r, i) => {
      timestampsMs[i] = parseNabTime(r[0] ?? '');
      const v = Number(r[1]);
      if (r[1] === undefined || r[1] === '' || !Number.isFinite(v)) throw new Error(`${name}: row ${i + 2} value is not a number: ${r[1]}`);
      values[i] = v;
    });
    out.push({ name, timestampsMs, values, windows: windowRows(name, timestampsMs, labels[name]!) });
  }
  return out;
}

/** The cost matrices of config/profiles.json. */
export function loadProfiles(dir = defaultNabDir()): Record<NabProfileName, CostMatrix> {
  const raw = JSON.parse(readFileSync(path.join(dir, 'config', 'profiles.json'), 'utf8')) as Record<string, { CostMatrix: CostMatrix }>;
  const out = {} as Record<NabProfileName, CostMatrix>;
  for (const p of PROFILE_NAMES) {
    const m = raw[p]?.CostMatrix;
    if (!m) throw new Error(`config/profiles.json has no profile ${p}`);
    out[p] = { tpWeight: m.tpWeight, fpWeight: m.fpWeight, fnWeight: m.fnWeight };
  }
  return out;
}

/** results/final_results.json: normalised score per detector and profile. */
export function loadFinalResults(dir = defaultNabDir()): Record<string, Record<NabProfileName, number>> {
  return JSON.parse(readFileSync(path.join(dir, 'results', 'final_results.json'), 'utf8'));
}

/** config/thresholds.json: the threshold NAB used per detector and profile. */
export function loadThresholds(dir = defaultNabDir()): Record<string, Record<NabProfileName, { threshold: number; score: number }>> {
  return JSON.parse(readFileSync(path.join(dir, 'config', 'thresholds.json'), 'utf8'));
}

/** Detectors with a results/<name>/ folder. */
export function publishedDetectors(dir = defaultNabDir()): string[] {
  return readdirSync(path.join(dir, 'results'), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
}

/** Per-file rows of results/<detector>/<detector>_<profile>_scores.csv, without the Totals row. */
export function loadPublishedFileScores(detector: string, profile: NabProfileName, dir = defaultNabDir()): PublishedFileScore[] {
  const file = path.join(dir, 'results', detector, `${detector}_${profile}_scores.csv`);
  const rows = readCsvRows(file);
  const header = rows.shift()?.join(',');
  if (header !== 'Detector,Profile,File,Threshold,Score,TP,TN,FP,FN,Total_Count') throw new Error(`${file}: unexpected header ${header}`);
  return rows
    .filter((r) => r[0] !== 'Totals')
    .map((r) => ({
      file: r[2]!,
      threshold: Number(r[3]),
      score: Number(r[4]),
      tp: Number(r[5]),
      tn: Number(r[6]),
      fp: Number(r[7]),
      fn: Number(r[8]),
      totalCount: Number(r[9]),
    }));
}

/**
 * The `anomaly_score` column of a published per-row output
 * (results/<detector>/<category>/<detector>_<name>.csv; only numenta and windowedGaussian are present).
 */
export function loadPublishedAnomalyScores(detector: string, seriesName: string, dir = defaultNabDir()): Float64Array {
  const [category, base] = seriesName.split('/');
  const file = path.join(dir, 'results', detector, category!, `${detector}_${base}`);
  const rows = readCsvRows(file);
  const col = rows.shift()?.indexOf('anomaly_score') ?? -1;
  if (col < 0) throw new Error(`${file}: no anomaly_score column`);
  return Float64Array.from(rows, (r) => Number(r[col]));
}
