import Bottleneck from 'bottleneck';

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
  stop(): Promise<void>;
}

/**
 * A token bucket: bottleneck's reservoir holds the tokens (at most `burst`) and queues
 * the waiters; this class refills it from elapsed time. Bottleneck's own
 * `reservoirIncrease*` refill only on its heartbeat and drop the time a late tick lost,
 * which ran measurably below the set rate; here every elapsed millisecond counts.
 */
export class TokenBucketLimiter implements RateLimiter {
  private readonly bottleneck: Bottleneck;
  private readonly timer: NodeJS.Timeout;
  readonly maxBatch: number;
  readonly batchHint: number;
  private last = performance.now();
  private carry = 0;
  private refilling = false;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
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
      const now = performance.now();
      this.carry += ((now - this.last) / 1000) * this.rate;
      this.last = now;
      const whole = Math.floor(this.carry);
      if (whole <= 0) return;
      this.carry -= whole;
      // Tokens beyond the bucket's size overflow, as in any token bucket.
      const current = (await this.bottleneck.currentReservoir()) ?? 0;
      const add = Math.min(whole, Math.floor(this.burst) - current);
      if (add > 0) await this.bottleneck.incrementReservoir(add);
    } finally {
      this.refilling = false;
    }
  }
}
