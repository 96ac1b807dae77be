import type { ClaimCursor, ClaimedJob } from '../db/queries/jobs-claim.js';

/**
 * Shortest life of a cursor: a look from the head walks every entry claimed rows left
 * delete-marked until InnoDB purges them (about 1 µs each; 30,000 behind in a fast
 * drain: 38 ms a look against 10 from a cursor). With a short SLUICE_POLL_MS that was a
 * tenth of the looks and a sixth of the server's work (docs/benchmarks.md, ninth pass).
 */
export const CURSOR_LIFE_MIN_MS = 1000;

/**
 * Per queue, where the last full claim stopped and when this run of such claims began.
 * The next claim starts there instead of walking the entries of jobs just claimed; a
 * short claim, an error, or one poll interval (at least CURSOR_LIFE_MIN_MS) sends the
 * next look back to the head, so a job that sorts earlier (a more urgent one, one handed
 * back) waits at most that long.
 */
export class ClaimCursors {
  private readonly cursors = new Map<string, { at: ClaimCursor; since: number }>();
  private readonly lifeMs: number;

  constructor(pollMs: number) {
    this.lifeMs = Math.max(pollMs, CURSOR_LIFE_MIN_MS);
  }

  /** Where a claim begun at `now` starts in `queue`; undefined: at the head. */
  of(queue: string, now: number): ClaimCursor | undefined {
    const cursor = this.cursors.get(queue);
    if (cursor && now - cursor.since < this.lifeMs) return cursor.at;
    this.cursors.delete(queue);
    return undefined;
  }

  /** A claim begun at `started` committed: `next` holds, per queue it looked at, where the next may start. */
  committed(next: ReadonlyMap<string, ClaimCursor | undefined>, started: number): void {
    for (const [queue, at] of next) {
      if (!at) this.cursors.delete(queue);
      else this.cursors.set(queue, { at, since: this.cursors.get(queue)?.since ?? started });
    }
  }

  /** A claim failed: every next look starts at the head. */
  clear(): void {
    this.cursors.clear();
  }
}

/**
 * Where the next claim of a queue may start: after the last row, if the claim was full
 * (more is likely waiting) and had no keyed job (the others of its key, and keys freed
 * meanwhile, sit behind it: the next look must start at the head to see them).
 */
export function nextCursor(rows: readonly ClaimedJob[], asked: number): ClaimCursor | undefined {
  const last = rows.at(-1);
  if (!last || rows.length < asked || rows.some((r) => r.concurrencyKey !== null)) return undefined;
  return { priority: last.priority, runAt: last.runAt, id: last.id };
}
