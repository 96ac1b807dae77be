import Bottleneck from 'bottleneck';

/**
 * Paces job starts. Kept behind this small interface because bottleneck is stable but
 * no longer maintained: swapping it touches one file.
 */
export interface RateLimiter {
  /** Resolves when `n` starts are allowed (n ≤ `maxBatch`). */
  take(n?: number): Promise<void>;
  /**
   * Most tokens worth taking at once: about 10 ms of the rate, at least 1, at most the
   * bucket. Taking tokens per job would cost a timer tick each (≤ 1000 starts/s).
   */
  readonly maxBatch: number;
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
  private last = performance.now();
  private carry = 0;
  private refilling = false;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.maxBatch = Math.max(1, Math.min(Math.floor(burst), Math.floor(rate / 100)));
    this.bottleneck = new Bottleneck({ reservoir: Math.floor(burst) });
    const tickMs = Math.min(50, Math.max(5, Math.round(1000 / rate)));
    this.timer = setInterval(() => void this.refill(), tickMs);
    this.timer.unref();
  }

  async take(n = 1): Promise<void> {
    await this.bottleneck.schedule({ weight: Math.min(n, this.maxBatch) }, () => Promise.resolve());
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
