import type { ClaimCursor, ClaimedJob } from '../db/queries/jobs-claim.js';

/**
 * Per queue, where the last full claim stopped and when this run of such claims began.
 * The next claim starts there instead of walking the entries of jobs just claimed; a
 * short claim, an error, or one poll interval sends the next look back to the head, so
 * a job that sorts earlier (a more urgent one, one handed back) waits at most that long.
 */
export class ClaimCursors {
  private readonly cursors = new Map<string, { at: ClaimCursor; since: number }>();

  constructor(private readonly pollMs: number) {}

  /** Where a claim begun at `now` starts in `queue`; undefined: at the head. */
  of(queue: string, now: number): ClaimCursor | undefined {
    const cursor = this.cursors.get(queue);
    if (cursor && now - cursor.since < this.pollMs) return cursor.at;
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
