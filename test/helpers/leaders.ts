import type { Leader } from '../../src/leader/leader.js';

/** Watches candidates' transitions; `mostAtOnce()` is the most that led at one instant. */
export function watchLeaders(leaders: readonly Leader[]): { mostAtOnce(): number } {
  let now = 0;
  let most = 0;
  for (const leader of leaders) {
    leader.onChange((state) => {
      now += state ? 1 : -1;
      most = Math.max(most, now);
    });
  }
  return { mostAtOnce: () => most };
}

/** Records every state a leader reports through onChange, in order. */
export function changes(leader: Leader): boolean[] {
  const seen: boolean[] = [];
  leader.onChange((state) => seen.push(state));
  return seen;
}
