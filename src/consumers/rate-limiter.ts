import Bottleneck from 'bottleneck';
import { TokenBucket } from '../token-bucket.js';

/**
 * Paces job starts. Kept behind this small interface because bottleneck is stable but
 * no longer maintained: swapping it touches one file.
 */
export interface RateLimiter {
  /**
   * Waits for at least one token, then takes as many as are there, up to `n`; resolves
   * with how many were granted. Taking tokens one job at a time would cost bottleneck's
   * timer tick per job (a few ms each).
   */
  take(n: number): Promise<number>;
  /** The bucket's size: no more can be granted at once. */
  readonly maxBatch: number;
  /** What the rate yields in 10 ms (at least 1): how far ahead of the slots it is safe to take. */
  readonly batchHint: number;
  /** Starts per second. */
  readonly rate: number;
  stop(): Promise<void>;
}

/**
 * A token bucket: bottleneck's reservoir holds the whole tokens (at most `burst`) and
 * queues the waiters; a TokenBucket counts what elapsed time adds, and each tick moves its
 * whole tokens into the reservoir. Bottleneck's own `reservoirIncrease*` refill only on
 * its heartbeat and drop the time a late tick lost, which ran measurably below the set
 * rate; here every elapsed millisecond counts. Bottleneck stays as the waiting queue: its
 * per-operation latency is what the runner's two-stage start is tuned around.
 */
export class TokenBucketLimiter implements RateLimiter {
  private readonly bottleneck: Bottleneck;
  private readonly timer: NodeJS.Timeout;
  readonly maxBatch: number;
  readonly batchHint: number;
  /** What elapsed time added since the last tick (whole tokens move on; the fraction waits). */
  private readonly refills: TokenBucket;
  private refilling = false;

  constructor(
    readonly rate: number,
    private readonly burst: number,
  ) {
    this.refills = new TokenBucket(rate, burst);
    this.refills.take(burst); // the reservoir holds the first burst: this counts from now on
    this.maxBatch = Math.max(1, Math.floor(burst));
    this.batchHint = Math.max(1, Math.min(this.maxBatch, Math.floor(rate / 100)));
    this.bottleneck = new Bottleneck({ reservoir: Math.floor(burst) });
    const tickMs = Math.min(50, Math.max(5, Math.round(1000 / rate)));
    this.timer = setInterval(() => void this.refill(), tickMs);
    this.timer.unref();
  }

  async take(n: number): Promise<number> {
    // Only the runner's token stage takes tokens, one request at a time: what the
    // reservoir holds now is still there when the request below is served.
    const available = (await this.bottleneck.currentReservoir()) ?? 0;
    const weight = Math.max(1, Math.min(n, this.maxBatch, available));
    await this.bottleneck.schedule({ weight }, () => Promise.resolve());
    return weight;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.bottleneck.stop({ dropWaitingJobs: true }).catch(() => undefined);
    await this.bottleneck.disconnect().catch(() => undefined);
  }

  private async refill(): Promise<void> {
    if (this.refilling) return;
    this.refilling = true;
    try {
      const whole = this.refills.drain();
      if (whole <= 0) return;
      // Tokens beyond the bucket's size overflow, as in any token bucket.
      const current = (await this.bottleneck.currentReservoir()) ?? 0;
      const add = Math.min(whole, Math.floor(this.burst) - current);
      if (add > 0) await this.bottleneck.incrementReservoir(add);
    } finally {
      this.refilling = false;
    }
  }
}
