import { Counter } from 'prom-client';

type Labels<T extends string> = Partial<Record<T, string>>;

/**
 * A counter for per-job events: `add` sums in a Map, and the sums go into the prom-client
 * counter when it is read (a scrape), so a scrape shows the same values as with `inc`.
 * prom-client's `inc` hashes its labels on every call; `add` costs one Map lookup. Series
 * are keyed by the labels object itself: pass the same object for the same series.
 */
export class DeferredCounter<T extends string> extends Counter<T> {
  private readonly pending = new Map<Labels<T>, number>();

  add(labels: Labels<T>): void {
    this.pending.set(labels, (this.pending.get(labels) ?? 0) + 1);
  }

  override async get(): ReturnType<Counter<T>['get']> {
    for (const [labels, n] of this.pending) this.inc(labels, n);
    this.pending.clear();
    return super.get();
  }

  override reset(): void {
    // The base constructor calls this too, before `pending` exists.
    (this.pending as Map<Labels<T>, number> | undefined)?.clear();
    super.reset();
  }
}
