/**
 * Read the Prometheus text exposition format in tests: samples by name and labels, and the
 * families declared by `# HELP` lines. Handles what prom-client writes (no escaped quotes in the
 * label values the tests use, no timestamps).
 * https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
 */

export interface Scrape {
  /** Value of the sample `name` whose labels include every `labels` pair; undefined when none. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** Every sample of `name`, with its labels. */
  samples(name: string): Array<{ labels: Record<string, string>; value: number }>;
  /** Family names declared by `# HELP` lines. */
  families: Set<string>;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** @throws Error naming the line when a non-comment line is not a sample. */
export function parseScrape(text: string): Scrape {
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  const families = new Set<string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('# HELP ')) {
      families.add(line.split(' ')[2] as string);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a Prometheus sample: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(LABEL)) labels[k as string] = v as string;
    const raw = m[3] as string;
    const value = raw === '+Inf' ? Number.POSITIVE_INFINITY : raw === '-Inf' ? Number.NEGATIVE_INFINITY : Number(raw);
    samples.push({ name: m[1] as string, labels, value });
  }
  const matching = (name: string, labels: Record<string, string> = {}) =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return {
    value: (name, labels) => matching(name, labels)[0]?.value,
    samples: (name) => matching(name).map(({ labels, value }) => ({ labels, value })),
    families,
  };
}
