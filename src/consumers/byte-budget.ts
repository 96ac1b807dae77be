/**
 * A counting semaphore by bytes: runs with large payloads take their size before the
 * payload is read and give it back when they end, so the payloads held at once stay
 * under the budget. One item larger than the whole budget still goes, alone.
 */
export class ByteBudget {
  private used = 0;
  private readonly waiters: Array<{ bytes: number; go: () => void }> = [];

  constructor(private readonly capacity: number) {}

  get inUse(): number {
    return this.used;
  }

  acquire(bytes: number): Promise<void> {
    if (this.fits(bytes) && this.waiters.length === 0) {
      this.used += bytes;
      return Promise.resolve();
    }
    return new Promise((go) => this.waiters.push({ bytes, go }));
  }

  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
    // First come, first served: a large item is not overtaken forever by small ones.
    while (this.waiters.length > 0 && this.fits(this.waiters[0]!.bytes)) {
      const w = this.waiters.shift()!;
      this.used += w.bytes;
      w.go();
    }
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.capacity;
  }
}
