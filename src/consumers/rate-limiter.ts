import Bottleneck from 'bottleneck';

/**
 * Paces job starts. Kept behind this small interface because bottleneck is stable but
 * no longer maintained: swapping it touches one file.
 */
export interface RateLimiter {
  /** Resolves when a start is allowed. */
  take(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A token bucket on bottleneck's reservoir: `burst` tokens at most, refilled at `rate`
 * per second in small steps (every 1000/rate ms, or every 10 ms in fractional amounts
 * above 100/s, so high rates don't need a timer per token).
 */
export class TokenBucketLimiter implements RateLimiter {
  private readonly bottleneck: Bottleneck;

  constructor(rate: number, burst: number) {
    const intervalMs = Math.max(10, Math.round(1000 / rate));
    this.bottleneck = new Bottleneck({
      reservoir: burst,
      reservoirIncreaseInterval: intervalMs,
      reservoirIncreaseAmount: (rate * intervalMs) / 1000,
      reservoirIncreaseMaximum: burst,
    });
  }

  async take(): Promise<void> {
    await this.bottleneck.schedule(() => Promise.resolve());
  }

  async stop(): Promise<void> {
    await this.bottleneck.stop({ dropWaitingJobs: true }).catch(() => undefined);
    await this.bottleneck.disconnect().catch(() => undefined);
  }
}
