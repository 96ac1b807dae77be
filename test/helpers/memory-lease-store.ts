import type { LeaseRecord, LeaseStore, LeaseWrite, StoredLease } from '../../src/leader/lease-store.js';

export interface LeaseCall {
  /** The client (candidate) that made the call. */
  by: string;
  op: 'get' | 'create' | 'replace';
  /** The record written (create, replace). */
  record?: LeaseRecord;
  /** How it ended: ok, absent (get of no record), conflict, failed (thrown), or pending (hung). */
  outcome: 'ok' | 'absent' | 'conflict' | 'failed' | 'pending';
}

/**
 * One Lease record in memory, with the API server's rules: every write makes a new
 * version, a create of an existing record and a replace of a stale version are
 * conflicts. Candidates share it through `client(name)`, which records their calls.
 * Tests make it fail (`failWith`), hang until the call's signal aborts (`hang`), or slip
 * a competing write in just before a candidate's (`beforeWrite`).
 */
export class MemoryLeaseStore {
  readonly calls: LeaseCall[] = [];
  failWith: Error | undefined;
  hang = false;
  beforeWrite: ((op: 'create' | 'replace') => void) | undefined;
  private current: StoredLease | undefined;
  private version = 0;

  /** The record as stored, or undefined. */
  get record(): LeaseRecord | undefined {
    return this.current && { ...this.current.record };
  }

  /** Stores a record as a write from outside the election would (a new version). */
  put(record: LeaseRecord): StoredLease {
    this.current = { record: { ...record }, version: String(++this.version) };
    return this.current;
  }

  /** The store as one candidate sees it; its calls are recorded under `by`. */
  client(by: string): LeaseStore {
    return {
      name: 'memory/sluice-leader',
      get: (signal) => this.call({ by, op: 'get' }, signal, () => this.current),
      create: (record, signal) =>
        this.call({ by, op: 'create', record }, signal, () => this.write('create', record, undefined)),
      replace: (current, record, signal) =>
        this.call({ by, op: 'replace', record }, signal, () => this.write('replace', record, current)),
    };
  }

  callsBy(by: string): LeaseCall[] {
    return this.calls.filter((c) => c.by === by);
  }

  private write(op: 'create' | 'replace', record: LeaseRecord, base: StoredLease | undefined): LeaseWrite {
    this.beforeWrite?.(op);
    if (op === 'replace' && this.current === undefined) throw new Error('HTTP 404: the lease is gone');
    const conflict = op === 'create' ? this.current !== undefined : this.current?.version !== base?.version;
    return conflict ? { ok: false, conflict: true } : { ok: true, lease: this.put(record) };
  }

  /** Runs `serve` after a turn of the event loop, as a remote call would, unless told to fail or hang. */
  private async call<T extends StoredLease | LeaseWrite | undefined>(
    entry: Omit<LeaseCall, 'outcome'>,
    signal: AbortSignal,
    serve: () => T,
  ): Promise<T> {
    const call: LeaseCall = { ...entry, record: entry.record && { ...entry.record }, outcome: 'pending' };
    this.calls.push(call);
    try {
      await Promise.resolve();
      signal.throwIfAborted();
      if (this.failWith) throw this.failWith;
      if (this.hang) {
        await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }));
      }
      const out = serve();
      call.outcome = out === undefined ? 'absent' : 'ok' in out && !out.ok ? 'conflict' : 'ok';
      return out;
    } catch (err) {
      call.outcome = 'failed';
      throw err;
    }
  }
}
