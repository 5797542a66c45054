/** Percentiles of measured samples and of the hub's Prometheus histograms. */

export interface Summary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentiles (a sample that was really measured), over a copy of the values. */
export function summarize(values: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  if (n === 0) return { count: 0, p50: NaN, p95: NaN, p99: NaN, max: NaN, mean: NaN };
  const rank = (q: number) => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!;
  let sum = 0;
  for (const v of sorted) sum += v;
  return { count: n, p50: rank(0.5), p95: rank(0.95), p99: rank(0.99), max: sorted[n - 1]!, mean: sum / n };
}

/** Cumulative bucket counts of one histogram series: upper bound (seconds) → count. */
export type Buckets = Map<number, number>;

/**
 * Reads the cumulative buckets of a histogram from Prometheus text, summed over
 * every series whose labels include `match` (e.g. { action: 'queue:call-next', outcome: 'ok' }).
 */
export function parseHistogram(text: string, name: string, match: Record<string, string> = {}): Buckets {
  const buckets: Buckets = new Map();
  const prefix = `${name}_bucket{`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const close = line.lastIndexOf('}');
    const labels = new Map<string, string>();
    for (const m of line.slice(prefix.length, close).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels.set(m[1]!, m[2]!);
    if (Object.entries(match).some(([k, v]) => labels.get(k) !== v)) continue;
    const le = labels.get('le');
    if (le === undefined) continue;
    const bound = le === '+Inf' ? Infinity : Number(le);
    buckets.set(bound, (buckets.get(bound) ?? 0) + Number(line.slice(close + 1).trim()));
  }
  return buckets;
}

/** Bucket counts observed between two scrapes. */
export function diffBuckets(after: Buckets, before: Buckets): Buckets {
  const out: Buckets = new Map();
  for (const [bound, count] of after) out.set(bound, count - (before.get(bound) ?? 0));
  return out;
}

export function addBuckets(a: Buckets, b: Buckets): Buckets {
  const out: Buckets = new Map(a);
  for (const [bound, count] of b) out.set(bound, (out.get(bound) ?? 0) + count);
  return out;
}

/**
 * Buckets of a histogram observed between two scrapes of several nodes
 * (`before[i]` and `after[i]` are node i's /metrics texts), summed over the nodes.
 */
export function histogramDelta(before: string[], after: string[], name: string, match: Record<string, string> = {}): Buckets {
  let total: Buckets = new Map();
  after.forEach((text, i) => {
    total = addBuckets(total, diffBuckets(parseHistogram(text, name, match), parseHistogram(before[i] ?? '', name, match)));
  });
  return total;
}

/** Total observations in cumulative buckets. */
export function bucketCount(buckets: Buckets): number {
  return buckets.get(Infinity) ?? Math.max(0, ...buckets.values());
}

/**
 * Quantile estimated as Prometheus' histogram_quantile does: linear within the
 * bucket that holds it. Returns seconds; NaN without observations; the largest
 * finite bound when the quantile falls in +Inf.
 */
export function histogramQuantile(q: number, buckets: Buckets): number {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = bucketCount(buckets);
  if (total <= 0 || bounds.length === 0) return NaN;
  const target = q * total;
  let previousBound = 0;
  let previousCount = 0;
  for (const bound of bounds) {
    const count = buckets.get(bound)!;
    if (count >= target) {
      if (bound === Infinity) return previousBound;
      const inBucket = count - previousCount;
      return inBucket <= 0 ? bound : previousBound + ((bound - previousBound) * (target - previousCount)) / inBucket;
    }
    previousBound = bound;
    previousCount = count;
  }
  return previousBound;
}
