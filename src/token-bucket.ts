/**
 * A token bucket: `rate` tokens a second, at most `burst` held, every elapsed millisecond
 * counted. Non-blocking: it answers "how many now?" (a claim's budget for a queue) and
 * "how long until the next?"; the replica's rate limiter hands its whole tokens on to
 * bottleneck, which queues the waiters. The one refill arithmetic in sluice.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private rate: number,
    private burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Changes rate and size in place (a queue's rate was updated). */
  configure(rate: number, burst: number): void {
    this.refill();
    this.rate = rate;
    this.burst = burst;
    this.tokens = Math.min(this.tokens, burst);
  }

  /** Whole tokens available now. */
  available(): number {
    this.refill();
    return Math.floor(this.tokens);
  }

  take(n: number): void {
    this.refill();
    this.tokens -= n;
  }

  /**
   * Takes every whole token there is and returns how many; the fraction stays and keeps
   * growing. For a holder that keeps whole tokens elsewhere (the rate limiter's reservoir).
   */
  drain(): number {
    const whole = Math.max(0, this.available());
    this.tokens -= whole;
    return whole;
  }

  /** ms until at least one token is available. */
  msUntilToken(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.rate) * 1000);
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.rate);
    this.last = t;
  }
}
