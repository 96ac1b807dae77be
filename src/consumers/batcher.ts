import { errorBackoffMs } from '../backoff.js';
import { coerceError, isRetryableDbError } from '../errors.js';

export interface BatcherOptions<I, R> {
  /** Writes a batch; returns one result per item, in order. Must be safe to repeat. */
  write: (items: I[]) => Promise<R[]>;
  /** Largest batch one statement carries. */
  maxBatch: number;
  /** Most bytes one batch carries (with `sizeOf`); a single larger item still goes alone. */
  maxBytes?: number;
  /** An item's size in bytes as the statement will carry it. */
  sizeOf?: (item: I) => number;
  /** Longest an item waits for company before its batch is written. */
  delayMs: number;
  /** Told about each failed write; a retryable failure is retried after a backoff. */
  onError: (err: Error, failures: number, size: number) => void;
  /**
   * A lone item the database refuses for good (not a lost connection, a deadlock…):
   * returns what to write instead (the job failed, with why), or a result to settle it
   * with and nothing written. Without it the item is retried like any failure.
   */
  onPoison?: (item: I, err: Error) => { replace: I } | { settle: R };
  /** Which errors are worth repeating the same write for; default: transient database errors. */
  isRetryable?: (err: unknown) => boolean;
}

interface Waiter<I, R> {
  item: I;
  resolve: (r: R) => void;
  reject: (e: Error) => void;
}

/**
 * Group commit for state writes: items wait up to `delayMs` (or until `maxBatch` or
 * `maxBytes`, or an explicit `flush()`) and go to the database in one statement. One
 * write is in flight at a time, so under load batches grow by themselves.
 *
 * A transient failure (database gone) is retried with backoff until it succeeds or
 * `close()` gives up: the writes are fenced, so repeating one is harmless. A permanent
 * failure (the server refuses the statement's data) is split in halves until the item it
 * comes from stands alone, and that item goes to `onPoison`: one bad row never holds up
 * the others.
 */
export class Batcher<I, R> {
  private queue: Array<Waiter<I, R>> = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private closed = false;
  /** performance.now() of the first failure of the write now being retried. */
  private failingSince: number | undefined;
  /** Ends the current retry backoff early. */
  private wake: (() => void) | undefined;

  constructor(private readonly opts: BatcherOptions<I, R>) {}

  get pending(): number {
    return this.queue.length;
  }

  /** ms the current write has been failing (0 while writes succeed). */
  failingForMs(now = performance.now()): number {
    return this.failingSince === undefined ? 0 : now - this.failingSince;
  }

  add(item: I): Promise<R> {
    if (this.closed) return Promise.reject(new Error('batcher closed'));
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.opts.sizeOf) this.queuedBytes += this.opts.sizeOf(item);
      if (this.queue.length >= this.opts.maxBatch || this.queuedBytes >= (this.opts.maxBytes ?? Infinity)) this.kick();
      else this.timer ??= setTimeout(() => this.kick(), this.opts.delayMs);
    });
  }

  /**
   * Takes back an item that still waits (not yet in a write), resolving its promise
   * with `value`. False if it is already being written, or was written.
   */
  withdraw(match: (item: I) => boolean, value: R): boolean {
    const i = this.queue.findIndex((w) => match(w.item));
    if (i < 0) return false;
    const [w] = this.queue.splice(i, 1);
    if (this.opts.sizeOf) this.queuedBytes -= this.opts.sizeOf(w!.item);
    w!.resolve(value);
    return true;
  }

  /** Writes what waits now, without waiting for the delay. */
  flush(): void {
    this.kick();
  }

  /** A write waiting out its backoff tries again now (the database is back). */
  retryNow(): void {
    this.wake?.();
  }

  /** Resolves once everything queued so far is written, or when `deadline` (epoch ms) passes. */
  async drain(deadline = Infinity): Promise<boolean> {
    while ((this.queue.length > 0 || this.inFlight) && Date.now() < deadline) {
      this.kick();
      await Promise.race([this.inFlight, new Promise((r) => setTimeout(r, Math.max(1, Math.min(50, deadline - Date.now()))))]);
    }
    return this.queue.length === 0 && !this.inFlight;
  }

  /** Stops retrying; whatever is still queued is rejected. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const left = this.queue.splice(0);
    this.queuedBytes = 0;
    for (const w of left) w.reject(new Error('batcher closed before the write succeeded'));
  }

  private kick(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.inFlight || this.queue.length === 0) return;
    this.inFlight = this.writeLoop(this.takeBatch()).finally(() => {
      this.inFlight = undefined;
      if (this.queue.length > 0 && !this.closed) this.timer ??= setTimeout(() => this.kick(), this.opts.delayMs);
    });
  }

  /** The next batch: at most maxBatch items and maxBytes bytes (but at least one item). */
  private takeBatch(): Array<Waiter<I, R>> {
    const { sizeOf, maxBatch } = this.opts;
    if (!sizeOf) return this.queue.splice(0, maxBatch);
    const maxBytes = this.opts.maxBytes ?? Infinity;
    let n = 0;
    let bytes = 0;
    while (n < this.queue.length && n < maxBatch) {
      const size = sizeOf(this.queue[n]!.item);
      if (n > 0 && bytes + size > maxBytes) break;
      bytes += size;
      n++;
    }
    this.queuedBytes -= bytes;
    return this.queue.splice(0, n);
  }

  /** `replacement`: a poisoned item's replacement, which a second refusal rejects. */
  private async writeLoop(batch: Array<Waiter<I, R>>, replacement = false): Promise<void> {
    const retryable = this.opts.isRetryable ?? isRetryableDbError;
    let failures = 0;
    for (;;) {
      try {
        const results = await this.opts.write(batch.map((w) => w.item));
        batch.forEach((w, i) => w.resolve(results[i] as R));
        this.failingSince = undefined;
        return;
      } catch (thrown) {
        failures++;
        const err = coerceError(thrown);
        this.opts.onError(err, failures, batch.length);
        if (this.opts.onPoison && !retryable(thrown)) {
          this.failingSince = undefined;
          if (replacement) for (const w of batch) w.reject(err);
          else await this.isolate(batch, err);
          return;
        }
        this.failingSince ??= performance.now();
        if (!this.closed) await this.backoff(failures);
        if (this.closed) {
          for (const w of batch) w.reject(err);
          return;
        }
      }
    }
  }

  /** Waits before the next try, at most 2 s (outcomes are precious), unless woken. */
  private backoff(failures: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.wake === done) this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, errorBackoffMs(failures, { maxMs: 2000 }));
      this.wake = done;
    });
  }

  /** Writes a refused batch in halves until the refused items stand alone. */
  private async isolate(batch: Array<Waiter<I, R>>, err: Error): Promise<void> {
    if (batch.length > 1) {
      const half = Math.ceil(batch.length / 2);
      await this.writeLoop(batch.slice(0, half));
      await this.writeLoop(batch.slice(half));
      return;
    }
    const [w] = batch;
    if (!w) return;
    const instead = this.opts.onPoison!(w.item, err);
    if ('settle' in instead) {
      w.resolve(instead.settle);
      return;
    }
    // The replacement is not split or replaced again: a second refusal rejects it.
    await this.writeLoop([{ item: instead.replace, resolve: w.resolve, reject: w.reject }], true);
  }
}
