/** The server's counters of the daemons' work (MariaDB userstat) and the host's CPU ticks. */
import { readFileSync } from 'node:fs';
import { USER } from './config.js';
import { q } from './db.js';

/** Statements the daemons' user has sent so far, as the server counts them. */
export async function statements(): Promise<number> {
  return (await serverCounters()).statements;
}

export interface Counters {
  statements: number;
  /** Server CPU seconds spent on the daemons' statements. */
  cpuS: number;
  rowsRead: number;
}

/** The server's own counters for the daemons' user. */
export async function serverCounters(): Promise<Counters> {
  const rows = await q(
    'SELECT SELECT_COMMANDS + UPDATE_COMMANDS + OTHER_COMMANDS AS n, CPU_TIME AS cpu, ROWS_READ AS rows_read FROM information_schema.USER_STATISTICS WHERE USER = ?',
    [USER],
  );
  return { statements: Number(rows[0]?.n ?? 0), cpuS: Number(rows[0]?.cpu ?? 0), rowsRead: Number(rows[0]?.rows_read ?? 0) };
}

/** Busy and total CPU ticks of this host so far (Linux /proc/stat), to tell a CPU-bound run. */
export function hostTicks(): { busy: number; total: number } | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}
