/**
 * A bounded async channel between a publisher and a consumer.
 *
 * `send()` waits while the channel is full (backpressure), so a publisher never holds
 * more claimed work than the consumer can take. A publisher that claims from the
 * database asks `room()` first and claims no more than that, so `send()` rarely waits.
 */
export class Channel<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private head = 0;
  private readonly senders: Array<() => void> = [];
  private receivers: Array<(r: IteratorResult<T>) => void> = [];
  private closed = false;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`channel capacity must be a positive integer, got ${capacity}`);
  }

  get size(): number {
    return this.items.length - this.head;
  }

  /** Free places now: what a publisher may claim without blocking. */
  room(): number {
    return this.closed ? 0 : Math.max(0, this.capacity - this.size);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Waits while full; throws once the channel is closed. */
  async send(item: T): Promise<void> {
    while (!this.offer(item)) {
      if (this.closed) throw new Error('send on a closed channel');
      await new Promise<void>((resolve) => this.senders.push(resolve));
    }
  }

  /**
   * Sends without waiting: false when the channel is full or closed (then `send` waits or
   * throws). A publisher handing over a claimed batch pays no promise per item.
   */
  offer(item: T): boolean {
    if (this.closed) return false;
    const receiver = this.receivers.shift();
    if (receiver) {
      receiver({ value: item, done: false });
      return true;
    }
    if (this.size >= this.capacity) return false;
    this.items.push(item);
    return true;
  }

  /** Next item, waiting if empty; `undefined` once closed and drained. */
  async receive(): Promise<T | undefined> {
    const r = await this.next();
    return r.done ? undefined : r.value;
  }

  /** Takes every item not yet received (used to hand claimed work back on shutdown). */
  drain(): T[] {
    const out = this.items.slice(this.head);
    this.items.length = 0;
    this.head = 0;
    this.wakeSenders();
    return out;
  }

  /** Removes the items matching `pred` (cancelled before they started). */
  remove(pred: (item: T) => boolean): T[] {
    const kept: T[] = [];
    const removed: T[] = [];
    for (const item of this.items.slice(this.head)) (pred(item) ? removed : kept).push(item);
    if (removed.length > 0) {
      this.items.length = 0;
      this.head = 0;
      this.items.push(...kept);
      this.wakeSenders();
    }
    return removed;
  }

  /** Items not yet received, without taking them. */
  peekAll(): readonly T[] {
    return this.items.slice(this.head);
  }

  /** No more sends; receivers get what is left, then the end. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.wakeSenders();
    if (this.size === 0) {
      const receivers = this.receivers;
      this.receivers = [];
      for (const r of receivers) r({ value: undefined, done: true });
    }
  }

  /** Receives up to `max` items there are now, without waiting (none when empty). */
  receiveNow(max: number): T[] {
    const out: T[] = [];
    while (out.length < max && this.size > 0) out.push(this.shift());
    if (out.length > 0) this.wakeSenders();
    return out;
  }

  private next(): Promise<IteratorResult<T>> {
    if (this.size > 0) {
      const value = this.shift();
      this.wakeSenders();
      return Promise.resolve({ value, done: false });
    }
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.receivers.push(resolve));
  }

  /** The oldest item (the caller checked there is one). */
  private shift(): T {
    const value = this.items[this.head] as T;
    // Clear the slot: a received item (a job and its payload) must not stay reachable.
    this.items[this.head] = undefined as T;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    return value;
  }

  private wakeSenders(): void {
    const senders = this.senders.splice(0);
    for (const s of senders) s();
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return { next: () => this.next() };
  }
}
