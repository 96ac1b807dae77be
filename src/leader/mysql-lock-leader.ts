import { createHash } from 'node:crypto';
import { createConnection, type Connection, type ConnectionOptions, type RowDataPacket } from 'mysql2/promise';
import type { Logger } from 'pino';
import { errorBackoffMs } from '../backoff.js';
import { coerceError } from '../errors.js';
import type { Leader } from './leader.js';
import { Leadership, silentLogger, withJitter } from './leadership.js';

export interface MysqlLockLeaderOptions {
  /**
   * The dedicated connection that holds the lock: mysql2 connection options, a
   * `mysql://` URL, or a factory (the daemon's DB settings). Never a pooled connection:
   * the lock lives exactly as long as this session.
   */
  connection: ConnectionOptions | string | (() => Promise<Connection>);
  /**
   * Name passed to GET_LOCK. Default `sluice-leader:<database>`, so daemons draining two
   * databases on one server elect two leaders. Names over 64 characters (MySQL's limit)
   * are shortened with a hash.
   */
  lockName?: string;
  /**
   * Time between rounds in ms, one statement each: the leader checks it still holds the
   * lock, the others try to take it (plus up to 20% jitter). Also the statement timeout.
   * Default 5000.
   */
  renewIntervalMs?: number;
  /**
   * How often the leader re-checks that its session still holds the lock. A lost
   * connection ends leadership at once anyway (mysql2 reports it); this catches the
   * rest. Default: renewIntervalMs.
   */
  leaderCheckIntervalMs?: number;
  /** Ceiling of the doubling reconnect backoff, ms. Default 30000. */
  maxBackoffMs?: number;
  logger?: Logger;
}

/** What one round did; returned by `runOnce()` for tests and logs. */
export type LockRound = { action: 'acquired' | 'held'; leader: true } | { action: 'busy' | 'lost'; leader: false };

interface LockRow extends RowDataPacket {
  result: number | null;
}

/**
 * Leader election on a MySQL named lock, for runs outside Kubernetes. The leader is the
 * process whose dedicated connection holds `GET_LOCK(name, 0)`; MySQL frees the lock the
 * moment that session ends, so a crashed leader is replaced within one round of the
 * others. A lost connection ends leadership at once (mysql2's error event), and the
 * connection is then reopened with a doubling backoff. Every replica sends one statement
 * per round: a follower `SELECT GET_LOCK(?, 0)` (never waits), the leader
 * `SELECT IS_USED_LOCK(?) = CONNECTION_ID()`.
 */
export class MysqlLockLeader implements Leader {
  private readonly connect: () => Promise<Connection>;
  private readonly renewIntervalMs: number;
  private readonly leaderCheckIntervalMs: number;
  private readonly maxBackoffMs: number;
  private readonly log: Logger;
  private readonly leadership: Leadership;
  private lockName: string | undefined;
  private conn: Connection | undefined;
  private failures = 0;
  /** performance.now() before which no new connection is opened (backoff). */
  private reconnectAt = 0;
  private stopped: Promise<void> | undefined;

  constructor(opts: MysqlLockLeaderOptions) {
    this.renewIntervalMs = opts.renewIntervalMs ?? 5_000;
    this.leaderCheckIntervalMs = opts.leaderCheckIntervalMs ?? this.renewIntervalMs;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30_000;
    if (!Number.isInteger(this.renewIntervalMs) || this.renewIntervalMs <= 0) {
      throw new RangeError(`MysqlLockLeader: renewIntervalMs must be a whole number > 0 (got ${this.renewIntervalMs})`);
    }
    if (!Number.isInteger(this.maxBackoffMs) || this.maxBackoffMs < this.renewIntervalMs) {
      throw new RangeError(`MysqlLockLeader: maxBackoffMs must be a whole number >= renewIntervalMs (got ${this.maxBackoffMs})`);
    }
    const connection = opts.connection;
    this.connect =
      typeof connection === 'function'
        ? connection
        : typeof connection === 'string'
          ? () => createConnection(connection)
          : () => createConnection(connection);
    this.lockName = opts.lockName === undefined ? undefined : shorten(opts.lockName);
    this.log = (opts.logger ?? silentLogger()).child({ component: 'leader' });
    this.leadership = new Leadership(this.log);
  }

  start(): Promise<void> {
    return this.leadership.begin(() => this.round());
  }

  isLeader(): boolean {
    return this.leadership.current;
  }

  onChange(listener: (leader: boolean) => void): void {
    this.leadership.onChange(listener);
  }

  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  /** The lock name in use; known once the first connection told us the database. */
  get name(): string | undefined {
    return this.lockName;
  }

  /** One round: connect if needed, then one statement. Throws on database errors. */
  async runOnce(): Promise<LockRound> {
    const conn = this.conn ?? (await this.open());
    const name = this.lockName ?? defaultLockName(conn.config.database);
    this.lockName = name;
    if (this.leadership.current) {
      if ((await this.select(conn, 'SELECT IS_USED_LOCK(?) = CONNECTION_ID() AS result', name)) === 1) {
        return { action: 'held', leader: true };
      }
      // Cannot happen while the session lives; if it does, start over on a fresh session.
      this.drop(conn, 'lock no longer held by this connection');
      return { action: 'lost', leader: false };
    }
    // NULL (an error such as the session being killed) counts as not acquired.
    if ((await this.select(conn, 'SELECT GET_LOCK(?, 0) AS result', name)) === 1) {
      this.leadership.set(true, 'lock acquired');
      return { action: 'acquired', leader: true };
    }
    return { action: 'busy', leader: false };
  }

  /** Runs one round and returns the wait before the next. Never throws. */
  private async round(): Promise<number> {
    const reconnectIn = this.reconnectAt - performance.now();
    if (this.conn === undefined && reconnectIn > 0) return reconnectIn;
    try {
      await this.runOnce();
      this.failures = 0;
      return this.leadership.current ? this.leaderCheckIntervalMs : withJitter(this.renewIntervalMs);
    } catch (err) {
      if (this.conn) this.drop(this.conn, 'lock round failed');
      else this.backOff();
      if (!this.leadership.stopping) {
        this.log.warn({ err: coerceError(err).message, failures: this.failures }, 'lock round failed; reconnecting with backoff');
      }
      return Math.max(0, this.reconnectAt - performance.now());
    }
  }

  private async open(): Promise<Connection> {
    const conn = await this.connect();
    // Without a listener mysql2's 'error' event would crash the process.
    conn.on('error', (err: unknown) => {
      if (this.conn !== conn) return;
      this.log.warn({ err: coerceError(err).message }, 'lock connection lost');
      this.drop(conn, 'lock connection lost');
    });
    if (this.leadership.stopping) {
      conn.destroy();
      throw new Error('stopping');
    }
    this.conn = conn;
    return conn;
  }

  private async select(conn: Connection, sql: string, name: string): Promise<number | null | undefined> {
    const [rows] = await conn.query<LockRow[]>({ sql, timeout: this.renewIntervalMs }, [name]);
    return rows[0]?.result;
  }

  /**
   * Forgets the session (MySQL frees its lock when it ends), stops leading, and delays the
   * next connection attempt: twice the round interval at first, doubling per failure, so
   * a healthy follower (one round away) takes over rather than the replica that just failed
   * (errorBackoffMs: the one backoff of a failed try).
   */
  private drop(conn: Connection, reason: string): void {
    if (this.conn === conn) this.conn = undefined;
    conn.destroy();
    this.backOff();
    this.leadership.set(false, reason);
  }

  private backOff(): void {
    this.failures += 1;
    // At first 1.5–2.5 rounds (±25 % jitter): a follower, at most 1.2 rounds away, goes first.
    const backoff = errorBackoffMs(this.failures, { baseMs: 2 * this.renewIntervalMs, maxMs: this.maxBackoffMs });
    this.reconnectAt = performance.now() + backoff;
  }

  private async shutdown(): Promise<void> {
    await this.leadership.halt();
    const conn = this.conn;
    this.conn = undefined;
    // Sweeps stop before another replica can take over.
    this.leadership.set(false, 'stopping');
    if (!conn) return;
    try {
      if (this.lockName !== undefined) await this.select(conn, 'SELECT RELEASE_LOCK(?) AS result', this.lockName);
      await conn.end();
    } catch (err) {
      // Closing the session frees the lock anyway.
      this.log.warn({ err: coerceError(err).message }, 'could not release the lock cleanly');
      conn.destroy();
    }
  }
}

/** `sluice-leader:<database>`, or `sluice-leader` when the connection names no database. */
export function defaultLockName(database: string | undefined): string {
  return shorten(database ? `sluice-leader:${database}` : 'sluice-leader');
}

/** MySQL refuses lock names over 64 characters; keep a readable prefix and a hash. */
function shorten(name: string): string {
  if (name.length <= 64) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 32);
  return `${name.slice(0, 31)}:${hash}`;
}
