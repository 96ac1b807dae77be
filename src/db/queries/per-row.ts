/**
 * Each row's own value in a single-table `UPDATE … WHERE id IN (ids)`: one parameter when
 * every row has the same value, else `ELT(INTERVAL(id, ids…), values…)`. `INTERVAL()` is a
 * binary search over ascending constants, so the pick costs log n per row. A join on
 * JSON_TABLE would carry the values too, but it makes MariaDB stage every row in a
 * temporary table and read it again before it writes it (docs/benchmarks.md, ninth pass).
 *
 * `ids` must ascend strictly (rowsById sorts and checks) and `values` follow them.
 * `column` is the id column as the statement names it.
 */
export function perRow(column: string, ids: readonly number[], values: readonly unknown[]): { sql: string; params: unknown[] } {
  const first = values[0] ?? null;
  if (values.every((v) => (v ?? null) === first)) return { sql: '?', params: [first] };
  return { sql: `ELT(INTERVAL(${column}, ?), ?)`, params: [ids, values.map((v) => v ?? null)] };
}

/** Sorted by id; `unique` false when an id comes twice (perRow cannot pick between them). */
export function rowsById<T extends { id: number }>(rows: readonly T[]): { rows: T[]; ids: number[]; unique: boolean } {
  const sorted = [...rows].sort((a, b) => a.id - b.id);
  const ids = sorted.map((r) => r.id);
  return { rows: sorted, ids, unique: ids.every((id, i) => i === 0 || id > ids[i - 1]!) };
}
