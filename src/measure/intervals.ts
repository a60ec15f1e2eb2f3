/** A span on the drill's timeline, in milliseconds after t0. */
export interface Interval {
  startMs: number;
  endMs: number;
}

/** Total time covered by a set of intervals, counting overlaps once. */
export function coveredMs(intervals: readonly Interval[]): number {
  const sorted = [...intervals].sort((a, b) => a.startMs - b.startMs);
  let total = 0;
  let current: Interval | undefined;
  for (const next of sorted) {
    if (!current || next.startMs > current.endMs) {
      if (current) total += current.endMs - current.startMs;
      current = { ...next };
    } else current.endMs = Math.max(current.endMs, next.endMs);
  }
  if (current) total += current.endMs - current.startMs;
  return total;
}
