/**
 * The statistics every scenario reports, one definition each. Percentiles are nearest-rank (the
 * smallest sample with at least `q` of the samples at or below it): no interpolation between
 * samples that were never observed. NaN samples (a round that measured nothing) are left out.
 */

/** The samples in ascending order, NaN left out. */
export function sorted(values: ArrayLike<number>): number[] {
  return Array.from(values)
    .filter((value) => !Number.isNaN(value))
    .sort((a, b) => a - b);
}

/** Nearest-rank percentile of samples already in ascending order; NaN for none. */
export function percentileOfSorted(ascending: ArrayLike<number>, q: number): number {
  if (ascending.length === 0) return Number.NaN;
  return ascending[Math.min(ascending.length - 1, Math.max(0, Math.ceil(q * ascending.length) - 1))] ?? Number.NaN;
}

/** Nearest-rank percentile (`q` from 0 to 1). */
export function percentile(values: ArrayLike<number>, q: number): number {
  return percentileOfSorted(sorted(values), q);
}

/** The middle sample, or the mean of the two middle ones. */
export function median(values: ArrayLike<number>): number {
  const ascending = sorted(values);
  if (ascending.length === 0) return Number.NaN;
  const middle = Math.floor(ascending.length / 2);
  return ascending.length % 2 === 1
    ? (ascending[middle] ?? Number.NaN)
    : ((ascending[middle - 1] ?? 0) + (ascending[middle] ?? 0)) / 2;
}

/** `value` with `digits` decimals, as a number (for JSON summaries). */
export function fix(value: number, digits = 2): number {
  return Number(value.toFixed(digits));
}

/** Median and worst over the samples of one number, and every sample. */
export function spread(values: readonly number[], digits = 1) {
  return {
    median: fix(median(values), digits),
    max: fix(Math.max(...values), digits),
    all: values.map((v) => fix(v, digits)),
  };
}

/** Median over the rounds of the per-round ratios ours/raw. */
export function pairedRatio<T>(samples: ReadonlyArray<Record<'ours' | 'raw', T>>, pick: (sample: T) => number): number {
  return fix(median(samples.map((s) => pick(s.ours) / pick(s.raw))), 2);
}
