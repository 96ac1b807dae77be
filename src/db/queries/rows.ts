/**
 * Field conversions for the row mappers. mysql2 hands back BIGINT as a number or a
 * string, booleans as 0/1 (or '0'/'1' inside JSON), JSON columns as text (MariaDB) or
 * parsed (MySQL 8), DATETIME as text (dateStrings). Each query file maps its rows to their
 * TS type through these, one small function per row type, instead of casting the row.
 */
import type { Row } from '../database.js';

export type { Row };

export function num(v: unknown): number {
  return Number(v);
}

export function numOrNull(v: unknown): number | null {
  return v == null ? null : Number(v);
}

/** A text column (or a number read as text); anything else, which no column here holds, as JSON. */
export function text(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v) ?? '';
}

export function textOrNull(v: unknown): string | null {
  return v == null ? null : text(v);
}

/** A 0/1 (or '0'/'1', true/false) column as a boolean. */
export function flag(v: unknown): boolean {
  return Boolean(Number(v));
}

/** A JSON column: parsed when it comes as text; text that is not JSON stays text. */
export function json(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}

/** A JSON object (an element of JSON_ARRAYAGG, say) that a mapper can read as a row. */
export function isRow(v: unknown): v is Row {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A JSON array column (JSON_ARRAYAGG: NULL when no row): its elements, or none. */
export function jsonList(v: unknown): unknown[] {
  const parsed = json(v);
  return Array.isArray(parsed) ? parsed : [];
}

/** The `id` column of each row. */
export function idsOf(rows: readonly Row[]): number[] {
  return rows.map((r) => num(r.id));
}
