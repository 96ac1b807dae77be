import { pino, type Logger } from 'pino';

/**
 * The part both leader implementations share: the current state and its listeners, and
 * the campaign loop (a round now, then one after each delay the round returns, until
 * halted). A transition is reported once; a listener that throws is logged and never
 * reaches the loop. Begin and halt are each safe to call twice.
 */
export class Leadership {
  private held = false;
  private readonly listeners: Array<(leader: boolean) => void> = [];
  private wake: (() => void) | undefined;
  private halting = false;
  private began: Promise<void> | undefined;
  private loop: Promise<void> | undefined;

  constructor(private readonly log: Logger) {}

  get current(): boolean {
    return this.held;
  }

  /** True once halt() was called: rounds in flight should give up quietly. */
  get stopping(): boolean {
    return this.halting;
  }

  onChange(listener: (leader: boolean) => void): void {
    this.listeners.push(listener);
  }

  /** Records the new state; logs and notifies listeners only when it changed. */
  set(leader: boolean, reason: string): void {
    if (this.held === leader) return;
    this.held = leader;
    this.log.info({ leader, reason }, leader ? 'became leader' : 'lost leadership');
    for (const listener of this.listeners) {
      try {
        listener(leader);
      } catch (err) {
        this.log.warn({ err }, 'leadership listener threw');
      }
    }
  }

  /**
   * Runs `round` at once and resolves after it; then keeps running it in the background,
   * each time after the delay (ms) it returned. `round` must never throw.
   */
  begin(round: () => Promise<number>): Promise<void> {
    this.began ??= (async () => {
      if (this.halting) return;
      const delay = await round();
      this.loop = this.campaign(round, delay);
    })();
    return this.began;
  }

  /** Ends the loop: interrupts its wait and resolves once the round in flight (if any) is over. */
  async halt(): Promise<void> {
    this.halting = true;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
    await this.began;
    await this.loop;
  }

  private async campaign(round: () => Promise<number>, firstDelay: number): Promise<void> {
    let delay = firstDelay;
    while (!this.halting) {
      await this.sleep(delay);
      if (this.halting) break;
      delay = await round();
    }
  }

  /** Waits `ms`, or less if halt() is called meanwhile. Never keeps the process alive. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

/** `ms` stretched by up to +20% so replicas started together do not campaign in lockstep. */
export function withJitter(ms: number): number {
  return Math.round(ms * (1 + Math.random() * 0.2));
}

/** A logger that drops everything, for callers that pass none. */
export function silentLogger(): Logger {
  return pino({ enabled: false });
}
