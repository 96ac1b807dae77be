import { Cron } from 'croner';

/** A cron or time zone that cannot be read: the schedule row is skipped, with this as last_error. */
export class ScheduleSpecError extends Error {
  override name = 'ScheduleSpecError';
}

const HOUR_MS = 3_600_000;
/** A zone's offset is looked up this far either side of a wall time: wider than any transition. */
const TRANSITION_WINDOW_MS = 48 * HOUR_MS;
/** A walk forward stops here: more than an hour of seconds (a repeated hour) plus room. */
const MAX_STEPS = 10_000;

/**
 * A cron read in an IANA time zone, as instants (ms since the epoch, UTC).
 *
 * croner parses the cron and steps through *wall-clock* times (run in UTC, where no
 * time is missing or repeated); this class maps each wall time to an instant in the
 * zone with the platform's IANA data (Intl). The mapping carries DESIGN.md's DST rules
 * for every kind of cron alike:
 * - a wall time in a spring-forward gap runs at the first valid instant after the gap
 *   (several ticks of the gap collapse into that one instant, made once);
 * - a wall time that occurs twice (fall back) runs once, at its first occurrence.
 * Stepping through wall time in UTC is also ~10× faster in croner than its own zoned mode.
 */
export class ScheduleClock {
  private constructor(
    private readonly cron: Cron,
    private readonly zone: Zone,
  ) {}

  /** Parses `cron` (5 or 6 fields, or a nickname such as @daily) in `timezone`; throws ScheduleSpecError. */
  static parse(cron: string, timezone: string): ScheduleClock {
    const zone = Zone.of(timezone);
    let parsed: Cron;
    try {
      // utcOffset 0: croner steps wall-clock fields only. Day-of-month and day-of-week
      // combine with OR when both are restricted, as in Vixie cron (croner's default).
      parsed = new Cron(cron.trim(), { utcOffset: 0, mode: '5-or-6-parts' });
    } catch (err) {
      const why = (err as Error).message.replace(/^CronPattern: /, '');
      throw new ScheduleSpecError(`invalid cron "${cron}": ${why} (sluice reads 5 fields, or 6 with a leading seconds field)`);
    }
    return new ScheduleClock(parsed, zone);
  }

  /** The first tick strictly after `instant`, or null if the cron has none (e.g. 30 February). */
  nextAfter(instant: number): number | null {
    let wall = this.zone.wallOf(instant);
    for (let step = 0; step < MAX_STEPS; step++) {
      const next = this.cron.nextRun(new Date(wall));
      if (!next) return null;
      wall = next.getTime();
      const at = this.zone.instantOf(wall);
      // ≤ instant: a wall time repeated later (we are in its second occurrence, it ran in
      // the first) or a gap tick already made at the gap's end. Walk on.
      if (at > instant) return at;
    }
    return null;
  }

  /**
   * Ticks in (after, upTo], oldest first, at most `max` of them: the latest ones. `dropped`
   * counts older ticks left out (exact up to CATCH_UP_COUNT_LIMIT, then a floor).
   * Walks back from `upTo` (croner's previousRuns), so a long outage of a seconds cron
   * costs `max` steps, not one per missed tick.
   */
  ticksIn(after: number, upTo: number, max: number): { ticks: number[]; dropped: number } {
    if (max <= 0 || upTo <= after) return { ticks: [], dropped: 0 };
    // Back in wall time from upTo: every wall time ≤ wall(upTo) maps to an instant ≤ upTo.
    const back = this.cron.previousRuns(max + 1, new Date(this.zone.wallOf(upTo) + 1));
    const found = new Set<number>();
    for (const wall of back) {
      const at = this.zone.instantOf(wall.getTime());
      if (at > after && at <= upTo) found.add(at);
    }
    // Forward from the newest: wall times past wall(upTo) that map to ≤ upTo (upTo is in
    // the second occurrence of a repeated hour, their first occurrence is behind it).
    let from = Math.max(after, ...found);
    for (let step = 0; step < MAX_STEPS; step++) {
      const at = this.nextAfter(from);
      if (at === null || at > upTo) break;
      found.add(at);
      from = at;
    }
    const all = [...found].sort((a, b) => a - b);
    const ticks = all.slice(-max);
    let dropped = all.length - ticks.length;
    // previousRuns stopped at max + 1: older ticks may remain. Count them, within a bound.
    if (back.length > max && dropped > 0) {
      const oldest = all[0] as number;
      for (let t = this.nextAfter(after); t !== null && t < oldest && dropped < CATCH_UP_COUNT_LIMIT; t = this.nextAfter(t)) dropped++;
    }
    return { ticks, dropped };
  }
}

/** Counting dropped ticks (for metrics) stops here: each step costs a few microseconds. */
export const CATCH_UP_COUNT_LIMIT = 1000;

/**
 * An IANA zone's offsets, from the platform's time zone data (Intl). Wall times are
 * represented as the instant the same fields would denote in UTC.
 */
class Zone {
  private static readonly cache = new Map<string, Zone>();

  private constructor(private readonly format: Intl.DateTimeFormat) {}

  static of(timezone: string): Zone {
    const cached = Zone.cache.get(timezone);
    if (cached) return cached;
    let format: Intl.DateTimeFormat;
    try {
      if (timezone.trim() === '') throw new RangeError('empty');
      format = new Intl.DateTimeFormat('en-US', {
        timeZone: timezone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch {
      throw new ScheduleSpecError(`invalid time zone "${timezone}": use an IANA name such as Europe/Berlin or UTC`);
    }
    const zone = new Zone(format);
    // Bounded: only valid zone names get here, and there are a few hundred of them.
    if (Zone.cache.size < 1000) Zone.cache.set(timezone, zone);
    return zone;
  }

  /** The wall time at `instant`. */
  wallOf(instant: number): number {
    return instant + this.offsetAt(instant);
  }

  /**
   * The instant of wall time `wall`: the earlier one if it occurs twice, the first valid
   * instant after the gap if it does not occur at all.
   */
  instantOf(wall: number): number {
    const before = this.offsetAt(wall - TRANSITION_WINDOW_MS);
    const after = this.offsetAt(wall + TRANSITION_WINDOW_MS);
    const candidates = [wall - before, wall - after].filter((at) => this.wallOf(at) === wall);
    if (candidates.length > 0) return Math.min(...candidates);
    // In a gap: the instant where the clock jumps past `wall` (the gap's end), found by
    // bisection between the two candidates (at most a few hours apart).
    let lo = Math.min(wall - before, wall - after);
    let hi = Math.max(wall - before, wall - after);
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (this.wallOf(mid) >= wall) hi = mid;
      else lo = mid;
    }
    return hi;
  }

  /** UTC offset in ms at `instant` (whole seconds: sub-second offsets do not exist). */
  private offsetAt(instant: number): number {
    const whole = Math.floor(instant / 1000) * 1000;
    const f: Record<string, number> = {};
    for (const p of this.format.formatToParts(new Date(whole))) if (p.type !== 'literal') f[p.type] = Number(p.value);
    const asUtc = Date.UTC(f.year ?? 1970, (f.month ?? 1) - 1, f.day ?? 1, f.hour ?? 0, f.minute ?? 0, f.second ?? 0);
    return asUtc - whole;
  }
}
