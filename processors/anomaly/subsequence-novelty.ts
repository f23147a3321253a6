/**
 * Streaming subsequence novelty (a left matrix profile): for each new point, the Euclidean
 * distance between the subsequence of the last `length` values and its nearest earlier
 * subsequence that ends at most `history` points back and does not overlap it. A pattern the series
 * has shown before scores near 0; a shape never seen scores high, even when no single value is
 * extreme. Idea from the matrix profile literature (Yeh et al., "Matrix Profile I", ICDM 2016;
 * the incremental form is their STAMPI); written here from the definition, with the sliding dot
 * product update QT(e, f) = QT(e-1, f-1) + x[e]x[f] - x[e-L]x[f-L], so a point costs O(history).
 *
 * Values are used as given: the caller normalises them (the detector core divides by a robust
 * scale fixed at the end of its learning period). Distances are raw (not z-normalised per
 * subsequence), so a new level counts as new, and are divided by sqrt(length): the RMS difference
 * per point, in the values' unit.
 *
 * The dot products are recomputed in full every {@link RECOMPUTE_EVERY} points, which bounds
 * floating-point drift. State is plain JSON-safe data and continues exactly (`toState` /
 * `fromState`).
 */

/** Points between two full recomputations of the sliding dot products. */
export const RECOMPUTE_EVERY = 500;

/** Plain-data state of a {@link SubsequenceNovelty}. */
export interface SubsequenceNoveltyState {
  length: number;
  history: number;
  /** Values pushed so far (also the index the next value gets). */
  count: number;
  /** The last `history + length + 1` values (fewer at the start), oldest first. */
  values: number[];
  /** Dot products of the previous subsequence with each candidate, first candidate's end index in `qtFirst`; empty when unknown. */
  qt: number[];
  qtFirst: number;
}

export class SubsequenceNovelty {
  readonly length: number;
  readonly history: number;
  private count = 0;
  private readonly keep: number;
  private values: number[] = [];
  /** Sum of squares of the subsequence ending at each kept index (aligned with `values`; 0 before L values). */
  private squares: number[] = [];
  private qt: Float64Array = new Float64Array(0);
  private qtFirst = 0;

  /**
   * @param length subsequence length L (points), >= 2
   * @param history how far back (points) a match may end, > L
   * @throws RangeError naming the argument when it is not an integer in range.
   */
  constructor(length: number, history: number) {
    if (!Number.isInteger(length) || length < 2) throw new RangeError(`length must be an integer >= 2, got ${length}`);
    if (!Number.isInteger(history) || history <= length)
      throw new RangeError(`history must be an integer > length (${length}), got ${history}`);
    this.length = length;
    this.history = history;
    this.keep = history + length + 1;
  }

  /** Values pushed so far. */
  get size(): number {
    return this.count;
  }

  /** Rebuilds from {@link toState} output. @throws RangeError on a bad state. */
  static fromState(state: SubsequenceNoveltyState): SubsequenceNovelty {
    const n = new SubsequenceNovelty(state.length, state.history);
    if (
      !Number.isInteger(state.count) ||
      !Array.isArray(state.values) ||
      state.values.length > n.keep ||
      state.values.length > state.count
    ) {
      throw new RangeError(`novelty state: values must hold at most ${n.keep} of the ${state.count} values pushed`);
    }
    n.count = state.count - state.values.length;
    for (const v of state.values) n.append(v);
    n.qt = Float64Array.from(state.qt);
    n.qtFirst = state.qtFirst;
    return n;
  }

  /**
   * Appends a value; returns the RMS distance of the newest subsequence to its nearest earlier
   * non-overlapping one, or NaN while there is none yet (the first 2L - 1 values).
   * @throws RangeError when the value is not finite.
   */
  push(value: number): number {
    if (!Number.isFinite(value)) throw new RangeError(`value must be a finite number, got ${value}`);
    this.append(value);
    const L = this.length;
    const e = this.count - 1;
    const first = Math.max(L - 1, e - this.history);
    const last = e - L; // candidates end at most here, so they do not overlap the newest one
    if (last < first) {
      this.qt = new Float64Array(0);
      return Number.NaN;
    }
    // Absolute index i lives at values[i - b]; squares is aligned with values.
    const b = this.base();
    const v = this.values;
    const sq = this.squares;
    const prev = this.qt;
    const prevFirst = this.qtFirst;
    const ve = v[e - b]!;
    const veL = v[e - L - b]!;
    const qt = new Float64Array(last - first + 1);
    const incremental = prev.length > 0 && e % RECOMPUTE_EVERY !== 0;
    const se = sq[e - b]!;
    let best = Number.POSITIVE_INFINITY;
    for (let f = first; f <= last; f++) {
      const p = f - 1 - prevFirst;
      let q: number;
      if (incremental && f - 1 >= L - 1 && p >= 0 && p < prev.length) {
        q = prev[p]! + ve * v[f - b]! - veL * v[f - L - b]!;
      } else {
        q = 0;
        for (let k = 0; k < L; k++) q += v[e - k - b]! * v[f - k - b]!;
      }
      qt[f - first] = q;
      const d2 = se + sq[f - b]! - 2 * q;
      if (d2 < best) best = d2;
    }
    this.qt = qt;
    this.qtFirst = first;
    return Math.sqrt(Math.max(best, 0) / L);
  }

  toState(): SubsequenceNoveltyState {
    return {
      length: this.length,
      history: this.history,
      count: this.count,
      values: [...this.values],
      qt: Array.from(this.qt),
      qtFirst: this.qtFirst,
    };
  }

  /** Index (in pushed order) of values[0]. */
  private base(): number {
    return this.count - this.values.length;
  }

  private append(value: number): void {
    this.values.push(value);
    this.count++;
    const L = this.length;
    const n = this.values.length;
    let s2 = 0;
    if (n >= L) for (let k = n - L; k < n; k++) s2 += this.values[k]! * this.values[k]!;
    this.squares.push(s2);
    if (n > this.keep) {
      this.values.shift();
      this.squares.shift();
    }
  }
}
