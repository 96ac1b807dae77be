import { errorBackoffMs } from '../backoff.js';
import { coerceError } from '../errors.js';
import type { SluiceEvents } from '../events.js';
import type { Logger } from '../observability/logger.js';

/** What one iteration did (counts of rows it changed, for tests and logs) and when to run the next. */
export interface Round {
  /** ms before the next call. */
  readonly delayMs: number;
}

/** One iteration of a publisher: does its work and says how long to wait before the next. */
export interface Pollable {
  readonly name: string;
  /** The delay in ms before the next call, or a Round that also says what this one did (the sweeps). */
  runOnce(): Promise<number | Round>;
  /**
   * For a publisher woken by events of its own (room freed in the channel, a probe's
   * sighting): the poller hands it the function that cuts the current wait short.
   */
  wakeWith?(wake: () => void): void;
}

/** The delay a runOnce() asked for. */
function delayOf(result: number | Round): number {
  return typeof result === 'number' ? result : result.delayMs;
}

/**
 * Runs a publisher's `runOnce()` in a loop. The loop only handles timing, errors and
 * stopping: an error is coerced, logged, counted and followed by a jittered backoff that
 * grows while the failures last — a background loop never throws.
 */
export class Poller {
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private failures = 0;

  constructor(
    private readonly target: Pollable,
    private readonly logger: Logger,
    private readonly events?: SluiceEvents,
    private readonly opts: { maxBackoffMs?: number } = {},
  ) {
    target.wakeWith?.(() => this.poke());
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Cuts the current wait short (new room in the channel, say). */
  poke(): void {
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.poke();
    await this.running;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let delay: number;
      try {
        delay = delayOf(await this.target.runOnce());
        if (this.failures > 0) this.logger.info({ loop: this.target.name, failures: this.failures }, 'recovered');
        this.failures = 0;
      } catch (thrown) {
        this.failures++;
        const error = coerceError(thrown);
        delay = errorBackoffMs(this.failures, { maxMs: this.opts.maxBackoffMs ?? 30_000 });
        this.events?.emit('loop:error', { loop: this.target.name, error, failures: this.failures });
        const log = this.failures <= 3 || this.failures % 20 === 0 ? 'warn' : 'debug';
        this.logger[log]({ loop: this.target.name, err: error.message, failures: this.failures, retry_in_ms: delay }, 'poll failed; backing off');
      }
      if (this.stopped) break;
      if (delay <= 0) {
        await new Promise((r) => setImmediate(r));
        continue;
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.timer = setTimeout(resolve, delay);
      });
      clearTimeout(this.timer);
      this.wake = undefined;
    }
  }
}
