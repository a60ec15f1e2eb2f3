import { isBackupId } from "../model/backup-id.js";
import { LifeboatError } from "../model/errors.js";
import type { BackupJob, RetentionPolicy } from "../model/job.js";
import { applyRetention } from "../model/retention.js";
import { silentLogger, type Logger } from "../log/logger.js";
import { MANIFEST_NAME, type Layout } from "../storage/layout.js";
import type { ObjectInfo, ObjectStore, PendingUpload } from "../storage/store.js";
import { listBackups, type ManifestCache } from "./catalog.js";

/**
 * Retention and clean-up of one storage, in two steps: `planPrune` reads the
 * bucket and decides (nothing is changed: `--dry-run` prints the plan), then
 * `applyPrune` carries the plan out.
 *
 * Rules the plan and its application keep:
 * - a backup exists when its manifest does (the bucket is the catalog);
 *   retention (model/retention.ts) decides which complete backups to forget;
 * - a backup whose manifest cannot be read or checked is never forgotten;
 * - folders of runs in progress (`activeBackupFolders`) are never touched;
 * - a forgotten backup loses its manifest first, then its data objects (and
 *   verification.json), so no manifest ever points at deleted data; a data
 *   delete that fails after that leaves an orphan that a later prune removes;
 * - a forgotten backup with any object under an Object Lock retention date in
 *   the future is skipped whole and reported `retained-by-lock` (not an error);
 * - orphans (objects in a backup folder that has no manifest) and pending
 *   uploads are removed only once they are older than the grace period, so a
 *   backup still being written is not mistaken for debris.
 */

export interface PruneJob {
  name: string;
  retention?: RetentionPolicy | undefined;
  /** The time zone retention buckets are computed in (UTC when undefined). */
  timezone?: string | undefined;
}

export interface PlanPruneRequest {
  store: ObjectStore;
  layout: Layout;
  jobs: ReadonlyArray<PruneJob | BackupJob>;
  now: Date;
  orphanGraceMs: number;
  /** `layout.backupFolder(job, id)` of every run in progress: never touched. */
  activeBackupFolders: ReadonlySet<string>;
  /**
   * Also abort stale pending uploads outside the jobs' folders (anywhere under
   * the storage's prefix): set when every job of the storage is pruned.
   */
  wholeStorage?: boolean;
  /** Manifests read before (the daemon prunes after every backup and keeps one). */
  manifests?: ManifestCache | undefined;
}

export interface PlannedObject {
  key: string;
  sizeBytes: number;
}

export interface PlannedBackup {
  id: string;
  /** Undefined when the manifest is unreadable. */
  consistentAt: string | undefined;
  decision: "keep" | "forget";
  /** Why it is kept (every rule that keeps it); empty for forgotten backups. */
  reasons: string[];
  manifestKey: string;
  /** Every other object in the backup's folder (data, verification.json), in key order. */
  dataObjects: PlannedObject[];
  sizeBytes: number;
}

export interface PlannedOrphan {
  /** The backup folder, `layout.backupFolder(job, id)`. */
  folder: string;
  objects: PlannedObject[];
  sizeBytes: number;
  /** The newest lastModified in the folder, when the store reports one. */
  newestAt: string | undefined;
  decision: "remove" | "keep";
  /** Why it is kept: "orphan within grace", "run in progress". */
  reason: string | undefined;
}

export interface PrunePlanJob {
  job: string;
  policy: RetentionPolicy | undefined;
  /** Newest first; unreadable manifests last. */
  backups: PlannedBackup[];
  orphans: PlannedOrphan[];
}

export interface PlannedUpload extends PendingUpload {
  decision: "abort" | "keep";
  reason: string | undefined;
}

export interface PrunePlan {
  storage: string;
  now: string;
  orphanGraceMs: number;
  jobs: PrunePlanJob[];
  uploads: PlannedUpload[];
}

export async function planPrune(request: PlanPruneRequest): Promise<PrunePlan> {
  const { store, layout, now, orphanGraceMs, activeBackupFolders } = request;
  const cutoff = now.getTime() - orphanGraceMs;
  const isActive = (key: string) => [...activeBackupFolders].some((folder) => key.startsWith(folder));
  const plan: PrunePlan = { storage: store.description, now: now.toISOString(), orphanGraceMs, jobs: [], uploads: [] };

  for (const job of request.jobs) {
    const jobFolder = layout.jobFolder(job.name);
    // Objects first, manifests second: a backup that completes in between has
    // its manifest seen by listBackups and is then not taken for an orphan.
    const folders = new Map<string, { id: string; objects: ObjectInfo[]; hasManifest: boolean }>();
    for await (const object of store.list(jobFolder)) {
      const [id, ...rest] = object.key.slice(jobFolder.length).split("/");
      if (id === undefined || rest.length === 0 || !isBackupId(id)) continue; // not a backup folder: not Lifeboat's to touch
      const folder = layout.backupFolder(job.name, id);
      const entry = folders.get(folder) ?? { id, objects: [], hasManifest: false };
      entry.objects.push(object);
      if (rest.join("/") === MANIFEST_NAME) entry.hasManifest = true;
      folders.set(folder, entry);
    }
    const entries = await listBackups(store, layout, job.name, { verifications: false, ...(request.manifests ? { cache: request.manifests } : {}) });
    const cataloged = new Set(entries.map((e) => layout.backupFolder(job.name, e.id)));

    const usable = entries.filter((e) => e.manifest);
    const decision = applyRetention(
      usable.map((e) => ({ id: e.id, time: new Date(e.manifest!.consistentAt) })),
      job.retention,
      { timezone: job.timezone, now },
    );
    const byId = new Map(entries.map((e) => [e.id, e]));
    const planned = (id: string, choice: "keep" | "forget", reasons: string[]): PlannedBackup => {
      const entry = byId.get(id)!;
      const folder = layout.backupFolder(job.name, id);
      const dataObjects = (folders.get(folder)?.objects ?? [])
        .filter((o) => o.key !== entry.manifestKey)
        .map((o) => ({ key: o.key, sizeBytes: o.sizeBytes }));
      const manifestSize = folders.get(folder)?.objects.find((o) => o.key === entry.manifestKey)?.sizeBytes ?? 0;
      return {
        id,
        consistentAt: entry.manifest?.consistentAt,
        decision: choice,
        reasons,
        manifestKey: entry.manifestKey,
        dataObjects,
        sizeBytes: manifestSize + dataObjects.reduce((s, o) => s + o.sizeBytes, 0),
      };
    };
    const backups: PlannedBackup[] = [];
    for (const k of decision.keep) backups.push(planned(k.id, "keep", k.reasons));
    for (const f of decision.forget) {
      const active = isActive(layout.backupFolder(job.name, f.id));
      backups.push(active ? planned(f.id, "keep", ["run in progress"]) : planned(f.id, "forget", []));
    }
    backups.sort((a, b) => (b.consistentAt ?? "").localeCompare(a.consistentAt ?? "") || b.id.localeCompare(a.id));
    for (const e of entries.filter((e) => !e.manifest)) backups.push(planned(e.id, "keep", [`manifest unreadable: ${e.problems.join("; ")}`]));

    const orphans: PlannedOrphan[] = [];
    for (const [folder, entry] of folders) {
      if (entry.hasManifest || cataloged.has(folder)) continue;
      const times = entry.objects.map((o) => o.lastModified?.getTime());
      const newest = times.some((t) => t === undefined) ? undefined : Math.max(...(times as number[]));
      const objects = entry.objects.map((o) => ({ key: o.key, sizeBytes: o.sizeBytes }));
      const base = { folder, objects, sizeBytes: objects.reduce((s, o) => s + o.sizeBytes, 0), newestAt: newest === undefined ? undefined : new Date(newest).toISOString() };
      if (isActive(folder)) orphans.push({ ...base, decision: "keep", reason: "run in progress" });
      else if (newest === undefined || newest > cutoff) orphans.push({ ...base, decision: "keep", reason: "orphan within grace" });
      else orphans.push({ ...base, decision: "remove", reason: undefined });
    }
    plan.jobs.push({ job: job.name, policy: job.retention, backups, orphans });
  }

  const jobFolders = request.jobs.map((j) => layout.jobFolder(j.name));
  for await (const upload of store.listPendingUploads(layout.listPrefix())) {
    if (!request.wholeStorage && !jobFolders.some((f) => upload.key.startsWith(f))) continue;
    const started = upload.startedAt?.getTime();
    if (isActive(upload.key)) plan.uploads.push({ ...upload, decision: "keep", reason: "run in progress" });
    else if (started === undefined || started > cutoff) plan.uploads.push({ ...upload, decision: "keep", reason: "upload within grace" });
    else plan.uploads.push({ ...upload, decision: "abort", reason: undefined });
  }
  return plan;
}

export type BackupAction = "kept" | "forgotten" | "retained-by-lock" | "failed";

export interface PrunedBackup {
  job: string;
  id: string;
  consistentAt: string | undefined;
  action: BackupAction;
  /** Why it is kept, retained or failed. */
  reasons: string[];
  objectsDeleted: number;
  bytesFreed: number;
  /** For `retained-by-lock`: the latest retention date found, when known. */
  retainUntil?: string | undefined;
  error?: { code: string; message: string } | undefined;
}

export interface PrunedOrphan {
  job: string;
  folder: string;
  action: "removed" | "kept" | "retained-by-lock" | "failed";
  reason: string | undefined;
  objectsDeleted: number;
  bytesFreed: number;
  error?: { code: string; message: string } | undefined;
}

export interface PrunedUpload {
  key: string;
  uploadId: string;
  startedAt: string | undefined;
  action: "aborted" | "kept" | "failed";
  reason: string | undefined;
  error?: { code: string; message: string } | undefined;
}

export interface PruneResult {
  storage: string;
  backups: PrunedBackup[];
  orphans: PrunedOrphan[];
  uploads: PrunedUpload[];
  /** How many backups, orphan folders and uploads could not be removed because of an error. */
  failed: number;
  bytesFreed: number;
}

export interface ApplyPruneOptions {
  store: ObjectStore;
  log?: Logger | undefined;
  now: Date;
}

/**
 * Carries out a plan. Never throws for one item: each failure is recorded in
 * the result and the rest goes on.
 */
export async function applyPrune(plan: PrunePlan, options: ApplyPruneOptions): Promise<PruneResult> {
  const { store, now } = options;
  const log = (options.log ?? silentLogger).child({ storage: plan.storage });
  const result: PruneResult = { storage: plan.storage, backups: [], orphans: [], uploads: [], failed: 0, bytesFreed: 0 };

  for (const job of plan.jobs) {
    for (const backup of job.backups) {
      const base = { job: job.job, id: backup.id, consistentAt: backup.consistentAt, objectsDeleted: 0, bytesFreed: 0 };
      if (backup.decision === "keep") {
        result.backups.push({ ...base, action: "kept", reasons: backup.reasons });
        continue;
      }
      const outcome = await forgetBackup(store, backup, now);
      result.backups.push({ ...base, ...outcome });
      result.bytesFreed += outcome.bytesFreed;
      if (outcome.action === "failed") {
        result.failed++;
        log.error({ job: job.job, backupId: backup.id, err: outcome.error }, "could not forget backup");
      } else if (outcome.action === "retained-by-lock") {
        log.info({ job: job.job, backupId: backup.id, retainUntil: outcome.retainUntil }, "backup retained by object lock");
      } else {
        log.info({ job: job.job, backupId: backup.id, objects: outcome.objectsDeleted, bytesFreed: outcome.bytesFreed }, "backup forgotten");
      }
    }
  }

  for (const job of plan.jobs) {
    for (const orphan of job.orphans) {
      const base = { job: job.job, folder: orphan.folder, objectsDeleted: 0, bytesFreed: 0 };
      if (orphan.decision === "keep") {
        result.orphans.push({ ...base, action: "kept", reason: orphan.reason });
        continue;
      }
      try {
        await store.delete(orphan.objects.map((o) => o.key));
        result.orphans.push({ ...base, action: "removed", reason: undefined, objectsDeleted: orphan.objects.length, bytesFreed: orphan.sizeBytes });
        result.bytesFreed += orphan.sizeBytes;
        log.info({ job: job.job, folder: orphan.folder, objects: orphan.objects.length }, "orphan removed");
      } catch (error) {
        if (isLockRefusal(error)) {
          result.orphans.push({ ...base, action: "retained-by-lock", reason: "an object is under an object lock" });
          continue;
        }
        result.failed++;
        result.orphans.push({ ...base, action: "failed", reason: undefined, error: describe(error) });
        log.error({ job: job.job, folder: orphan.folder, err: error }, "could not remove orphan");
      }
    }
  }

  for (const upload of plan.uploads) {
    const base = { key: upload.key, uploadId: upload.uploadId, startedAt: upload.startedAt?.toISOString() };
    if (upload.decision === "keep") {
      result.uploads.push({ ...base, action: "kept", reason: upload.reason });
      continue;
    }
    try {
      await store.abortPendingUpload(upload);
      result.uploads.push({ ...base, action: "aborted", reason: undefined });
      log.info({ key: upload.key }, "stale upload aborted");
    } catch (error) {
      result.failed++;
      result.uploads.push({ ...base, action: "failed", reason: undefined, error: describe(error) });
      log.error({ key: upload.key, err: error }, "could not abort stale upload");
    }
  }
  return result;
}

type ForgetOutcome = Pick<PrunedBackup, "action" | "reasons" | "objectsDeleted" | "bytesFreed" | "retainUntil" | "error">;

async function forgetBackup(store: ObjectStore, backup: PlannedBackup, now: Date): Promise<ForgetOutcome> {
  const none = { objectsDeleted: 0, bytesFreed: 0 };
  const keys = [backup.manifestKey, ...backup.dataObjects.map((o) => o.key)];
  let latestLock: Date | undefined;
  try {
    for (const key of keys) {
      const info = await store.head(key);
      if (info?.retainUntil && info.retainUntil.getTime() > now.getTime() && (!latestLock || info.retainUntil > latestLock)) latestLock = info.retainUntil;
    }
  } catch (error) {
    return { ...none, action: "failed", reasons: ["could not read the object lock state"], error: describe(error) };
  }
  if (latestLock) {
    return { ...none, action: "retained-by-lock", reasons: [`object lock until ${latestLock.toISOString()}`], retainUntil: latestLock.toISOString() };
  }

  // The manifest first: from this moment the backup no longer exists, and
  // nothing can point at the data deleted next.
  try {
    await store.delete([backup.manifestKey]);
  } catch (error) {
    if (isLockRefusal(error)) return { ...none, action: "retained-by-lock", reasons: [lockReason(error)] };
    return { ...none, action: "failed", reasons: ["the manifest could not be deleted; nothing was removed"], error: describe(error) };
  }
  const manifestBytes = backup.sizeBytes - backup.dataObjects.reduce((s, o) => s + o.sizeBytes, 0);
  try {
    if (backup.dataObjects.length) await store.delete(backup.dataObjects.map((o) => o.key));
  } catch (error) {
    const deleted = { objectsDeleted: 1, bytesFreed: manifestBytes };
    const rest = "the manifest was deleted; the remaining objects are orphans that a later prune removes";
    if (isLockRefusal(error)) return { ...deleted, action: "retained-by-lock", reasons: [lockReason(error), rest] };
    return { ...deleted, action: "failed", reasons: [rest], error: describe(error) };
  }
  return { action: "forgotten", reasons: [], objectsDeleted: keys.length, bytesFreed: backup.sizeBytes };
}

/**
 * A delete the store refused because an object is locked: S3 answers a
 * DeleteObjects entry with AccessDenied for a locked version (the request
 * itself was authorised), or names the lock in its message.
 */
function isLockRefusal(error: unknown): boolean {
  if (!(error instanceof LifeboatError) || error.code !== "STORAGE_ACCESS_DENIED") return false;
  const failed = error.details?.failed;
  const perKeyDenied = Array.isArray(failed) && failed.some((f) => (f as { code?: unknown }).code === "AccessDenied");
  return perKeyDenied || /lock|retention/i.test(`${error.message} ${JSON.stringify(error.details ?? {})}`);
}

function lockReason(error: unknown): string {
  return `the store refused the delete (object lock): ${(error as Error).message}`;
}

function describe(error: unknown): { code: string; message: string } {
  return error instanceof LifeboatError ? { code: error.code, message: error.message } : { code: "PRUNE_ERROR", message: (error as Error)?.message ?? String(error) };
}
