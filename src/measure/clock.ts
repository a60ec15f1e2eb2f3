/**
 * Time as a drill sees it: a monotonic clock for durations (it never jumps
 * when NTP or a person sets the system clock) and a wall clock for the
 * instants people read (t0, a backup's consistentAt). Tests pass a fake.
 */
export interface Clock {
  /** Milliseconds on a monotonic clock with an arbitrary origin. */
  monotonicMs(): number;
  /** The wall-clock time now. */
  now(): Date;
}

export const systemClock: Clock = {
  monotonicMs: () => performance.now(),
  now: () => new Date(),
};

/**
 * The drill's time axis: t0 is the moment the drill declares the disaster;
 * every later instant is measured as monotonic milliseconds after it.
 */
export interface Timeline {
  /** Wall-clock t0. */
  readonly t0: Date;
  /** Milliseconds since t0 now. */
  elapsedMs(): number;
  /** Milliseconds since t0 for a monotonic reading taken earlier (e.g. by a restore). */
  at(monotonicMs: number): number;
  /** Wall-clock time of a point on the timeline. */
  wallAt(elapsedMs: number): Date;
}

export function startTimeline(clock: Clock): Timeline {
  const origin = clock.monotonicMs();
  const t0 = clock.now();
  return {
    t0,
    elapsedMs: () => clock.monotonicMs() - origin,
    at: (monotonicMs) => monotonicMs - origin,
    wallAt: (elapsedMs) => new Date(t0.getTime() + elapsedMs),
  };
}
