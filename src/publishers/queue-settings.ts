import type { QueueRow } from '../db/queries/probe.js';
import { TokenBucket } from '../token-bucket.js';

/**
 * The served queues' settings (job_queues rows) as the last probe read them, and each
 * rated queue's share of its cluster-wide rate as a token bucket: what a claim may take
 * from which queue. Replaced whole by every probe, so an UPDATE of job_queues takes
 * effect within one poll interval.
 */
export class QueueSettings {
  private settings = new Map<string, QueueRow>();
  private readonly buckets = new Map<string, TokenBucket>();
  private rotation = 0;

  /** `served`: the queues this replica serves; empty = all. */
  constructor(
    private readonly served: readonly string[],
    private readonly now?: () => number,
  ) {}

  serves(queue: string): boolean {
    return this.served.length === 0 || this.served.includes(queue);
  }

  /** Queues known to be registered (the probe then skips looking for them). */
  names(): string[] {
    return [...this.settings.keys()];
  }

  /** The queue's own timeout, if it has one. */
  timeoutMsOf(queue: string): number | null | undefined {
    return this.settings.get(queue)?.timeoutMs;
  }

  /** Some served, unpaused queue had a job that could start. */
  anyReady(): boolean {
    return [...this.settings.values()].some((q) => q.ready && this.serves(q.name) && !q.paused);
  }

  /**
   * Takes what a probe read. Each replica gets an equal share of a queue's cluster-wide
   * rate: `liveWorkerQueues` are the queue lists of the live replicas.
   */
  update(queues: readonly QueueRow[], liveWorkerQueues: readonly string[]): void {
    this.settings = new Map(queues.map((q) => [q.name, q]));
    for (const q of queues) {
      if (q.ratePerSec == null) {
        this.buckets.delete(q.name);
        continue;
      }
      const serving = Math.max(1, liveWorkerQueues.filter((list) => list === '*' || list.split(',').includes(q.name)).length);
      const share = q.ratePerSec / serving;
      // A quarter second's worth: starts spread over the second, and no one-second window
      // sees more than 1.25 × the rate. At least one job, and two where the share allows,
      // so a claim loop slowed by a busy machine does not lose tokens to overflow.
      const burst = Math.max(1, Math.min(2, share), share / 4);
      const bucket = this.buckets.get(q.name);
      if (bucket) bucket.configure(share, burst);
      else this.buckets.set(q.name, new TokenBucket(share, burst, this.now));
    }
  }

  /** Served, unpaused queues whose rate and cap allow a job now; the first one rotates. */
  claimable(): QueueRow[] {
    const list = [...this.settings.values()].filter(
      (q) => this.serves(q.name) && !q.paused && (q.concurrency == null || q.concurrency > 0) && this.tokens(q.name) > 0,
    );
    // Rotate the starting queue so one busy queue cannot starve the others.
    const start = list.length === 0 ? 0 : this.rotation++ % list.length;
    return [...list.slice(start), ...list.slice(0, start)];
  }

  /** Jobs the queue's rate allows now (Infinity: no rate). */
  tokens(queue: string): number {
    return this.buckets.get(queue)?.available() ?? Infinity;
  }

  /** A claim took `n` jobs of the queue. */
  took(queue: string, n: number): void {
    this.buckets.get(queue)?.take(n);
  }

  /** ms until some rated queue has a token again (Infinity: none is rated). */
  msUntilRateToken(): number {
    let ms = Infinity;
    for (const b of this.buckets.values()) ms = Math.min(ms, Math.max(5, b.msUntilToken()));
    return ms;
  }
}
