import { Histogram, type HistogramConfiguration } from 'prom-client';

type Labels<T extends string> = Partial<Record<T, string>>;

/** What prom-client 15 keeps per series (`hashMap`); a unit test pins it against `observe`. */
interface SeriesValues {
  labels: object;
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

/** Observations of one series since the last scrape. */
interface Pending {
  counts: Float64Array;
  sum: number;
  count: number;
}

/**
 * A histogram for per-job observations: `add` counts into a bucket array, and the sums go
 * into the prom-client histogram when it is read (a scrape), so a scrape shows the same
 * values as with `observe`. prom-client's `observe` builds a closure, a label object and a
 * hash string on every call; `add` costs one Map lookup and a short bucket search. Series
 * are keyed by the labels object itself: pass the same object for the same series.
 */
export class DeferredHistogram<T extends string> extends Histogram<T> {
  private readonly pending = new Map<Labels<T>, Pending>();
  private readonly bounds: readonly number[];

  constructor(config: HistogramConfiguration<T> & { buckets: number[] }) {
    super(config);
    this.bounds = [...config.buckets].sort((a, b) => a - b);
  }

  add(labels: Labels<T>, value: number): void {
    if (!Number.isFinite(value)) return; // observe would throw; a metric never stops a job
    let p = this.pending.get(labels);
    if (!p) this.pending.set(labels, (p = { counts: new Float64Array(this.bounds.length), sum: 0, count: 0 }));
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    if (i < this.bounds.length) p.counts[i]!++;
    p.sum += value;
    p.count++;
  }

  /** What a scrape reads (the registry's text format, and `get()` through it). */
  async getForPromString(): ReturnType<Histogram<T>['get']> {
    this.merge();
    return baseGetForPromString.call(this);
  }

  override reset(): void {
    // The base constructor calls this too, before `pending` exists.
    (this.pending as Map<Labels<T>, Pending> | undefined)?.clear();
    super.reset();
  }

  /** Adds the pending observations to prom-client's series (made by `zero` when new). */
  private merge(): void {
    if (this.pending.size === 0) return;
    const map = (this as unknown as { hashMap: Record<string, SeriesValues> }).hashMap;
    for (const [labels, p] of this.pending) {
      let series = Object.values(map).find((s) => sameLabels(s.labels, labels));
      if (!series) {
        this.zero(labels);
        series = Object.values(map).find((s) => sameLabels(s.labels, labels))!;
      }
      for (let i = 0; i < this.bounds.length; i++) series.bucketValues[this.bounds[i]!]! += p.counts[i]!;
      series.sum += p.sum;
      series.count += p.count;
    }
    this.pending.clear();
  }
}

const baseGetForPromString = (Histogram.prototype as unknown as { getForPromString: (this: Histogram) => ReturnType<Histogram['get']> }).getForPromString;

function sameLabels(a: object, b: object): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => (a as Record<string, unknown>)[k] === (b as Record<string, unknown>)[k]);
}
