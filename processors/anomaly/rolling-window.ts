/**
 * A sliding window over the last `capacity` numbers that keeps a sorted copy, for robust
 * statistics in a stream: push is O(log n) search + O(n) memmove (n <= capacity, a few hundred
 * to a few thousand here), median and quantiles are O(1), MAD is O(n).
 *
 * Quantiles use the linear-interpolation definition (R type 7, numpy's default) through
 * simple-statistics' `quantileSorted`. MAD is the raw median absolute deviation from the median
 * (multiply by 1.4826 for a normal sigma).
 */
import { quantileSorted } from 'simple-statistics';

/** Plain-data state of a {@link RollingWindow}, for JSON round trips. */
export interface RollingWindowState {
  capacity: number;
  /** Values in arrival order, oldest first. */
  values: number[];
}

export class RollingWindow {
  readonly capacity: number;
  private readonly ring: Float64Array;
  private readonly sorted: Float64Array;
  private head = 0; // index of the oldest value in ring
  private count = 0;

  /** @throws RangeError when capacity is not a positive integer. */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity <= 0) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.ring = new Float64Array(capacity);
    this.sorted = new Float64Array(capacity);
  }

  /** Rebuilds a window from {@link toState} output. @throws RangeError on a bad state. */
  static fromState(state: RollingWindowState): RollingWindow {
    const w = new RollingWindow(state.capacity);
    if (!Array.isArray(state.values) || state.values.length > state.capacity) {
      throw new RangeError(`values must be an array of at most capacity (${state.capacity}) numbers`);
    }
    for (const v of state.values) w.push(v);
    return w;
  }

  get size(): number {
    return this.count;
  }

  /**
   * Appends a value, evicting the oldest when full.
   * @throws RangeError when value is not finite.
   */
  push(value: number): void {
    if (!Number.isFinite(value)) throw new RangeError(`value must be a finite number, got ${value}`);
    if (this.count === this.capacity) {
      const old = this.ring[this.head]!;
      this.ring[this.head] = value;
      this.head = (this.head + 1) % this.capacity;
      this.removeSorted(old);
    } else {
      this.ring[(this.head + this.count) % this.capacity] = value;
      this.count++;
    }
    this.insertSorted(value);
  }

  /** Newest-last values (a copy). */
  values(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.ring[(this.head + i) % this.capacity]!);
    return out;
  }

  /** The k-th most recent value (0 = newest). @throws RangeError when k is out of range. */
  recent(k: number): number {
    if (!Number.isInteger(k) || k < 0 || k >= this.count) throw new RangeError(`recent(${k}) outside 0..${this.count - 1}`);
    return this.ring[(this.head + this.count - 1 - k) % this.capacity]!;
  }

  /** Quantile p in [0, 1] of the current values. @throws Error when empty or p is outside [0, 1]. */
  quantile(p: number): number {
    // quantileSorted only reads length and indices, so a typed-array view serves as its array.
    return quantileSorted(this.sortedView() as unknown as number[], p);
  }

  median(): number {
    return this.quantile(0.5);
  }

  /** Median absolute deviation from the median. @throws Error when empty. */
  mad(): number {
    const s = this.sortedView();
    const n = s.length;
    if (n === 0) throw new Error('mad of an empty window');
    const med = quantileSorted(s as unknown as number[], 0.5);
    // The absolute deviations, in increasing order, come from two cursors walking outwards from
    // the median; the median of those deviations is found in about n/2 steps.
    let lo = n % 2 === 1 ? (n - 1) / 2 : n / 2 - 1;
    let hi = lo + 1;
    const take = (): number => {
      const dl = lo >= 0 ? med - s[lo]! : Number.POSITIVE_INFINITY;
      const dh = hi < n ? s[hi]! - med : Number.POSITIVE_INFINITY;
      if (dl <= dh) {
        lo--;
        return dl;
      }
      hi++;
      return dh;
    };
    const half = Math.floor((n - 1) / 2);
    let d = 0;
    for (let i = 0; i <= half; i++) d = take();
    if (n % 2 === 1) return d;
    return (d + take()) / 2;
  }

  /** Fraction of current values strictly below `value` (0 when empty). */
  rankBelow(value: number): number {
    if (this.count === 0) return 0;
    return this.lowerBound(value) / this.count;
  }

  toState(): RollingWindowState {
    return { capacity: this.capacity, values: this.values() };
  }

  private sortedView(): Float64Array {
    return this.sorted.subarray(0, this.count);
  }

  /** First index in sorted[0..count) whose value is >= v. */
  private lowerBound(v: number): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.sorted[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private insertSorted(v: number): void {
    // count already includes v when not full; when full, removeSorted left count - 1 sorted values.
    const n = this.count - 1;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.sorted[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    this.sorted.copyWithin(lo + 1, lo, n);
    this.sorted[lo] = v;
  }

  private removeSorted(v: number): void {
    const n = this.count;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.sorted[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    this.sorted.copyWithin(lo, lo + 1, n);
  }
}
