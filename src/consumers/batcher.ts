import { errorBackoffMs } from '../backoff.js';
import { coerceError } from '../errors.js';

export interface BatcherOptions<I, R> {
  /** Writes a batch; returns one result per item, in order. Must be safe to repeat. */
  write: (items: I[]) => Promise<R[]>;
  /** Largest batch one statement carries. */
  maxBatch: number;
  /** Longest an item waits for company before its batch is written. */
  delayMs: number;
  /** Told about each failed write; the batch is retried after a backoff. */
  onError: (err: Error, failures: number, size: number) => void;
}

interface Waiter<I, R> {
  item: I;
  resolve: (r: R) => void;
  reject: (e: Error) => void;
}

/**
 * Group commit for state writes: items wait up to `delayMs` (or until `maxBatch`, or an
 * explicit `flush()`) and go to the database in one statement. One write is in flight
 * at a time, so under load batches grow by themselves. A failed write (database gone)
 * is retried with backoff until it succeeds or `close()` gives up: the writes are
 * fenced, so repeating one is harmless.
 */
export class Batcher<I, R> {
  private queue: Array<Waiter<I, R>> = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly opts: BatcherOptions<I, R>) {}

  get pending(): number {
    return this.queue.length;
  }

  add(item: I): Promise<R> {
    if (this.closed) return Promise.reject(new Error('batcher closed'));
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.queue.length >= this.opts.maxBatch) this.kick();
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
    w!.resolve(value);
    return true;
  }

  /** Writes what waits now, without waiting for the delay. */
  flush(): void {
    this.kick();
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
    for (const w of left) w.reject(new Error('batcher closed before the write succeeded'));
  }

  private kick(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.inFlight || this.queue.length === 0) return;
    this.inFlight = this.writeLoop().finally(() => {
      this.inFlight = undefined;
      if (this.queue.length > 0 && !this.closed) this.timer ??= setTimeout(() => this.kick(), this.opts.delayMs);
    });
  }

  private async writeLoop(): Promise<void> {
    const batch = this.queue.splice(0, this.opts.maxBatch);
    let failures = 0;
    for (;;) {
      try {
        const results = await this.opts.write(batch.map((w) => w.item));
        batch.forEach((w, i) => w.resolve(results[i] as R));
        return;
      } catch (thrown) {
        failures++;
        const err = coerceError(thrown);
        this.opts.onError(err, failures, batch.length);
        if (this.closed) {
          for (const w of batch) w.reject(err);
          return;
        }
        await new Promise((r) => setTimeout(r, errorBackoffMs(failures)));
        if (this.closed) {
          for (const w of batch) w.reject(err);
          return;
        }
      }
    }
  }
}
