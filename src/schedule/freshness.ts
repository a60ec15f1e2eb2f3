import { listBackups, type ManifestCache } from "../catalog/catalog.js";
import type { LifeboatConfig } from "../config/load.js";
import { LifeboatError } from "../model/errors.js";
import { mapLimit } from "../model/map-limit.js";
import { rpoExposure } from "../model/freshness.js";
import type { BackupJob } from "../model/job.js";
import type { Manifest } from "../model/manifest.js";
import type { Layout } from "../storage/layout.js";
import type { ObjectStore } from "../storage/store.js";
import { CronSchedule } from "./cron.js";

/**
 * Where each job stands right now, computed from storage only (the bucket is
 * the catalog), so the answer is the same after a restart, on another
 * machine, or from `lifeboat status`.
 */
export interface JobFreshness {
  job: string;
  storage: string;
  /** The newest complete backup (by consistentAt), or undefined when the job has none. */
  newest: { id: string; consistentAt: string; finishedAt: string; sizeBytes: number; status: string } | undefined;
  /** now − newest.consistentAt; null when the job never succeeded. */
  exposureMs: number | null;
  rpoMs: number | undefined;
  /** undefined when the job has no RPO target; true for a job with a target and no backup. */
  overTarget: boolean | undefined;
  /** The next scheduled slot after now, when the job has a schedule. */
  nextRun: Date | undefined;
}

/**
 * Reads every job's newest usable backup and its RPO exposure at `now`.
 * "Complete" means a manifest that passes its check, whatever its status:
 * a `partial` backup (some files unreadable) is what a restore or drill would
 * use, so it counts; its status is reported in `newest.status`. Only each
 * job's own folder is listed. Storage errors propagate (`LifeboatError`s).
 */
export async function readFreshness(
  config: LifeboatConfig,
  storeFor: (job: BackupJob) => Promise<{ store: ObjectStore; layout: Layout }>,
  now: Date,
  options: { cache?: ManifestCache } = {},
): Promise<JobFreshness[]> {
  // A few jobs at a time: one listing each, and manifests only when they are not in the cache.
  return mapLimit(Object.values(config.jobs), 8, async (job): Promise<JobFreshness> => {
    const { store, layout } = await storeFor(job);
    const manifest = await newestBackup(store, layout, job.name, options.cache);
    const { exposureMs, overTarget } = rpoExposure(manifest ? new Date(manifest.consistentAt) : undefined, now, job.rpoMs);
    return {
      job: job.name,
      storage: job.storage,
      newest: manifest
        ? {
            id: manifest.id,
            consistentAt: manifest.consistentAt,
            finishedAt: manifest.finishedAt,
            sizeBytes: manifest.objects.reduce((sum, o) => sum + o.sizeBytes, 0),
            status: manifest.status,
          }
        : undefined,
      exposureMs,
      rpoMs: job.rpoMs,
      overTarget,
      nextRun: nextRunOf(job, now),
    };
  });
}

/** The newest usable backup of one job, by consistentAt (then id), as `resolveBackup` picks it. */
async function newestBackup(store: ObjectStore, layout: Layout, job: string, cache: ManifestCache | undefined): Promise<Manifest | undefined> {
  let newest: Manifest | undefined;
  for (const entry of await listBackups(store, layout, job, { verifications: false, ...(cache ? { cache } : {}) })) {
    const m = entry.manifest;
    if (!m) continue;
    const order = newest === undefined ? 1 : Date.parse(m.consistentAt) - Date.parse(newest.consistentAt) || m.id.localeCompare(newest.id);
    if (order > 0) newest = m;
  }
  return newest;
}

function nextRunOf(job: BackupJob, now: Date): Date | undefined {
  if (job.schedule === undefined) return undefined;
  try {
    return CronSchedule.of(job.schedule, job.timezone).next(now);
  } catch (error) {
    throw new LifeboatError("SCHEDULE_INVALID", `the schedule of job "${job.name}" cannot be used: ${(error as Error).message}`, { kind: "usage", cause: error });
  }
}
