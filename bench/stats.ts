/**
 * Summary statistics of benchmark samples: median, p99 and the ratio of two medians.
 *
 * Percentiles use the nearest-rank method on the sorted samples, so every reported figure
 * is a value that was actually measured.
 *
 * @module
 */

/** Summary of a set of samples (all in the unit of the samples). */
export interface Summary {
  /** Number of samples. */
  n: number;
  median: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

/** The `p`-th percentile (0 < p ≤ 100) of `samples` by nearest rank; `NaN` when empty. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** The median of `samples` (mean of the two middle values for an even count). */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The 99th percentile of `samples`. */
export function p99(samples: readonly number[]): number {
  return percentile(samples, 99);
}

/** Median, p99, min, max and mean of `samples`. */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) {
    return { n: 0, median: NaN, p99: NaN, min: NaN, max: NaN, mean: NaN };
  }
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const value of samples) {
    sum += value;
    if (value < min) min = value;
    if (value > max) max = value;
  }
  return {
    n: samples.length,
    median: median(samples),
    p99: p99(samples),
    min,
    max,
    mean: sum / samples.length,
  };
}

/** A summary of a single figure (a throughput, a memory size). */
export function single(value: number): Summary {
  return { n: 1, median: value, p99: value, min: value, max: value, mean: value };
}

/** `subject / baseline`, or `NaN` when the baseline is not a positive number. */
export function ratio(subject: number, baseline: number): number {
  return baseline > 0 && Number.isFinite(subject) ? subject / baseline : NaN;
}

/** Milliseconds elapsed since `start` (a `performance.now()` reading). */
export function since(start: number): number {
  return performance.now() - start;
}
