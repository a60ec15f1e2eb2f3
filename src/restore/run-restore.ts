import type { Logger } from "../log/logger.js";
import { silentLogger } from "../log/logger.js";
import { LifeboatError, isAbortError } from "../model/errors.js";
import type { BackupJob } from "../model/job.js";
import type { Manifest } from "../model/manifest.js";
import type { AgeIdentity } from "../pipeline/age/index.js";
import { assertCanDecrypt, readBackupObject, type ReadMark } from "../catalog/read-backup.js";
import { resolveBackup, type BackupSelector } from "../catalog/catalog.js";
import type { Layout } from "../storage/layout.js";
import type { ObjectStore } from "../storage/store.js";
import { sourceKind } from "../sources/registry.js";
import type { RestoreTarget } from "../sources/source.js";

/**
 * On-demand restore of one backup into a target. Everything that can be
 * checked before a byte is written is checked first (manifest, key, target);
 * data goes to a staging area and is committed only after the stored bytes'
 * size and SHA-256 matched the manifest.
 */
export interface RestoreRequest {
  job: BackupJob;
  store: ObjectStore;
  layout: Layout;
  identities: readonly AgeIdentity[];
  selector: BackupSelector;
  /** The backup, when the caller already resolved it with `resolveRestorable` (the selector is then not used). */
  manifest?: Manifest | undefined;
  target: RestoreTarget;
  signal?: AbortSignal | undefined;
  log?: Logger;
  events?: { start?(info: { manifest: Manifest }): void; progress?(info: { storedBytes: number; totalBytes: number }): void };
}

/**
 * The backup a restore would use, checked for everything that can be known
 * before a byte is written: it exists, its manifest is sound, the configured
 * key can decrypt it, and it holds what the job's source restores.
 */
export async function resolveRestorable(request: Pick<RestoreRequest, "job" | "store" | "layout" | "identities" | "selector">): Promise<Manifest> {
  const manifest = await resolveBackup(request.store, request.layout, request.job.name, request.selector);
  assertRestorable(request.job, manifest, request.identities);
  return manifest;
}

/** Fails before a byte is written when the configured key cannot decrypt the backup or it holds another source kind. */
export function assertRestorable(job: BackupJob, manifest: Manifest, identities: readonly AgeIdentity[]): void {
  assertCanDecrypt(manifest, identities);
  if (manifest.source.kind !== job.source.type) {
    throw new LifeboatError("RESTORE_KIND_MISMATCH", `backup ${manifest.id} holds a "${manifest.source.kind}" source but job "${job.name}" is now "${job.source.type}"`, {
      kind: "usage",
    });
  }
}

export interface RestoreResult {
  manifest: Manifest;
  target: string;
  durationMs: number;
  /**
   * When each stage was active, as `performance.now()` readings, per object:
   * fetch (asked for → last stored byte), decode (first stored byte → last
   * decoded byte), restore (first stored byte → committed). In a stream they overlap.
   */
  phases: RestorePhase[];
}

export interface RestorePhase {
  phase: "fetch" | "decode" | "restore";
  startMs: number;
  endMs: number;
}

export async function runRestore(request: RestoreRequest): Promise<RestoreResult> {
  const started = performance.now();
  const { job, store, layout, signal } = request;
  const log = (request.log ?? silentLogger).child({ job: job.name });
  const manifest = request.manifest ?? (await resolveRestorable(request));
  const source = sourceKind(job.source);
  const prepared = await source.prepareRestore(job.source, request.target, { job: job.name, signal, log }, manifest);
  request.events?.start?.({ manifest });
  log.info({ backupId: manifest.id, target: prepared.description }, "restore started");

  const totalBytes = manifest.objects.reduce((sum, o) => sum + o.sizeBytes, 0);
  let doneBytes = 0;
  const marks: Array<Partial<Record<ReadMark, number>>> = [];
  try {
    // Objects in manifest order: the order the source dumped them and restores them.
    for (const object of manifest.objects) {
      const objectMarks: Partial<Record<ReadMark, number>> = {};
      marks.push(objectMarks);
      await readBackupObject(store, layout, manifest, object, (decoded) => prepared.write(decoded, object), {
        identities: request.identities,
        signal,
        onMark: (mark, at) => (objectMarks[mark] = at),
        onStoredBytes: (storedBytes) => {
          // A reporter that throws must never break the restore it reports on.
          try {
            request.events?.progress?.({ storedBytes: doneBytes + storedBytes, totalBytes });
          } catch (error) {
            log.warn({ err: (error as Error).message }, "progress reporter failed");
          }
        },
      });
      doneBytes += object.sizeBytes;
    }
    if (signal?.aborted) throw new LifeboatError("INTERRUPTED", "interrupted", { kind: "interrupted" });
    await prepared.commit();
  } catch (error) {
    await prepared.discard().catch((e: unknown) => log.warn({ err: (e as Error).message }, "could not remove the staging area"));
    if (signal?.aborted || isAbortError(error)) {
      throw new LifeboatError("INTERRUPTED", `restore of job "${job.name}" was interrupted; nothing was committed`, { kind: "interrupted", cause: error });
    }
    throw error;
  }
  const committed = performance.now();
  const durationMs = committed - started;
  log.info({ backupId: manifest.id, durationMs: Math.round(durationMs) }, "restore committed");
  return { manifest, target: prepared.description, durationMs, phases: restorePhases(marks, committed) };
}

function restorePhases(marks: ReadonlyArray<Partial<Record<ReadMark, number>>>, committedMs: number): RestorePhase[] {
  const phases: RestorePhase[] = [];
  marks.forEach((m, i) => {
    const firstByte = m["first-byte"] ?? m["stored-end"] ?? m.requested;
    if (m.requested !== undefined && m["stored-end"] !== undefined) phases.push({ phase: "fetch", startMs: m.requested, endMs: m["stored-end"] });
    if (firstByte !== undefined && m["decoded-end"] !== undefined) phases.push({ phase: "decode", startMs: firstByte, endMs: m["decoded-end"] });
    // An object is restored from its first byte until the next object starts, the last one until the commit.
    const end = marks[i + 1]?.requested ?? committedMs;
    if (firstByte !== undefined) phases.push({ phase: "restore", startMs: firstByte, endMs: Math.max(firstByte, end) });
  });
  return phases;
}
