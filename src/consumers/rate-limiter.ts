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
 * A token bucket on bottleneck's reservoir: `burst` tokens at most, refilled at `rate`
 * per second in small steps (every 1000/rate ms, or every 10 ms in fractional amounts
 * above 100/s, so high rates don't need a timer per token).
 */
export class TokenBucketLimiter implements RateLimiter {
  private readonly bottleneck: Bottleneck;
  readonly maxBatch: number;

  constructor(rate: number, burst: number) {
    this.maxBatch = Math.max(1, Math.min(Math.floor(burst), Math.floor(rate / 100)));
    const intervalMs = Math.max(10, Math.round(1000 / rate));
    this.bottleneck = new Bottleneck({
      reservoir: burst,
      reservoirIncreaseInterval: intervalMs,
      reservoirIncreaseAmount: (rate * intervalMs) / 1000,
      reservoirIncreaseMaximum: burst,
    });
  }

  async take(n = 1): Promise<void> {
    await this.bottleneck.schedule({ weight: Math.min(n, this.maxBatch) }, () => Promise.resolve());
  }

  async stop(): Promise<void> {
    await this.bottleneck.stop({ dropWaitingJobs: true }).catch(() => undefined);
    await this.bottleneck.disconnect().catch(() => undefined);
  }
}
