import type { Executor } from '../db/database.js';
import { jobsSelectChildren } from '../db/queries/workflows-children.js';
import type { ChildOutcome } from '../handlers/types.js';

/**
 * Children read per statement by ctx.children(). Results are at most 1 MiB each, so a
 * page holds at most 100 MiB in the worst case and a few KiB usually; 10,000 children
 * cost 100 index-range reads.
 */
export const CHILDREN_PAGE = 100;

/**
 * A parent's children in id order, page by page by key (`id > last`) on jobs_parent:
 * never more than one page in memory, and no OFFSET, so the last page costs what the
 * first did. A child inserted while the iteration runs is seen if its id is still ahead.
 */
export async function* childrenOf(db: Executor, parentId: number, pageSize = CHILDREN_PAGE): AsyncGenerator<ChildOutcome> {
  let after = 0;
  for (;;) {
    const page = await jobsSelectChildren(db, { parentId, afterId: after, limit: pageSize });
    for (const child of page) yield child;
    const last = page.at(-1);
    if (!last || page.length < pageSize) return;
    after = last.id;
  }
}
