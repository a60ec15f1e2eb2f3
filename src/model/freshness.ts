/**
 * Freshness: how much data a job would lose if its source died right now.
 * Pure: takes the newest backup's consistentAt and a clock reading.
 */
export interface RpoExposure {
  /** now − consistentAt of the newest complete backup; null when the job has none. */
  exposureMs: number | null;
  /**
   * Whether the exposure exceeds the job's RPO target; undefined when the job
   * has no target. A job that never succeeded is over any target it has: an
   * unbounded loss is worse than every finite one.
   */
  overTarget: boolean | undefined;
}

/**
 * The RPO exposure of a job at `now`. A backup dated after `now` (clock skew
 * between machines) reads as a negative exposure, never over target.
 */
export function rpoExposure(newestConsistentAt: Date | undefined, now: Date, rpoMs: number | undefined): RpoExposure {
  if (newestConsistentAt === undefined || Number.isNaN(newestConsistentAt.getTime())) {
    return { exposureMs: null, overTarget: rpoMs === undefined ? undefined : true };
  }
  const exposureMs = now.getTime() - newestConsistentAt.getTime();
  return { exposureMs, overTarget: rpoMs === undefined ? undefined : exposureMs > rpoMs };
}
