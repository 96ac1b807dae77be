import type { ChildOutcome } from './types.js';

/** Most children a parent's request body carries. */
export const FAN_IN_MAX_CHILDREN = 1000;
/** Most bytes of children's outcomes a parent's request body carries (1 MiB). */
export const FAN_IN_MAX_BYTES = 1024 * 1024;

/**
 * The request body of an `http` job that is a released parent (it has children): the
 * payload's own body and its children's outcomes, so a service in any language fans in
 * without reading the database:
 *
 *   {"body": <payload.body, or null>, "children": [{"id", "type", "status", "result", "error"}, …],
 *    "children_truncated": false}
 *
 * In id order, at most FAN_IN_MAX_CHILDREN children and FAN_IN_MAX_BYTES of them; past
 * either bound the list stops and `children_truncated` is true (the service reads the rest
 * by SQL: `SELECT id, status, result, error FROM jobs WHERE parent_id = ? AND id > ?`).
 * Children are read page by page, so no more than a page and the body are in memory.
 */
export async function fanInBody(body: string | undefined, children: AsyncIterable<ChildOutcome>): Promise<string> {
  const items: string[] = [];
  let bytes = 0;
  let truncated = false;
  for await (const c of children) {
    const item = JSON.stringify({ id: c.id, type: c.type, status: c.status, result: c.result ?? null, error: c.error });
    const size = Buffer.byteLength(item) + 1;
    if (items.length >= FAN_IN_MAX_CHILDREN || bytes + size > FAN_IN_MAX_BYTES) {
      truncated = true;
      break;
    }
    items.push(item);
    bytes += size;
  }
  return `{"body":${body ?? 'null'},"children":[${items.join(',')}],"children_truncated":${truncated}}`;
}
