import { Readable } from "node:stream";
import type { Logger } from "../log/logger.js";
import { silentLogger } from "../log/logger.js";
import { newBackupId } from "../model/backup-id.js";
import { LifeboatError, isAbortError } from "../model/errors.js";
import type { BackupJob } from "../model/job.js";
import { MANIFEST_VERSION, checkManifest, type Codec, type Manifest, type ManifestObject } from "../model/manifest.js";
import { encodeChain } from "../pipeline/codec-chain.js";
import { settleAll } from "../model/settle.js";
import { zstdCompressTool } from "../pipeline/compression.js";
import type { Layout } from "../storage/layout.js";
import type { ObjectStore } from "../storage/store.js";
import { sourceKind } from "../sources/registry.js";
import { FORMAT_EXTENSION, type DumpPart } from "../sources/source.js";
import { LIFEBOAT_VERSION } from "../version.js";

/**
 * Runs one backup job: source → codec chain → storage, then the manifest,
 * written last. Until the manifest is stored the backup does not exist; when
 * anything fails, the data objects written so far are deleted (best effort —
 * a SIGKILL leaves them for prune) and no manifest is written.
 */
export interface BackupRequest {
  job: BackupJob;
  store: ObjectStore;
  layout: Layout;
  /** age recipients for jobs that encrypt. */
  recipients: readonly string[];
  signal?: AbortSignal | undefined;
  log?: Logger;
  events?: BackupEvents;
  /** Injected for tests. */
  now?: () => Date;
  /**
   * A scheduled run: recorded in the manifest, and `fence` is awaited right
   * before the manifest is written; it rejects when this run lost its lease
   * (another instance took the job over), and then no manifest is written.
   */
  run?: { scheduledAt: Date; trigger: "schedule" | "catch-up" | "external"; instance: string; fence(): Promise<number> } | undefined;
}

/** What a backup reports while it runs; the CLI renders these (engines never print). */
export interface BackupEvents {
  start?(info: { job: string; id: string }): void;
  /**
   * `storedBytes`: bytes written to storage so far. `sourceBytes`: bytes read from
   * the source so far, when they pass through Lifeboat (0 when the source pipes
   * straight into the compressor; the manifest still records the exact size).
   */
  progress?(info: { job: string; sourceBytes: number; storedBytes: number }): void;
}

export interface BackupResult {
  manifest: Manifest;
  durationMs: number;
}

export async function runBackup(request: BackupRequest): Promise<BackupResult> {
  const { job, store, layout, signal } = request;
  const now = request.now ?? (() => new Date());
  const startedAt = now();
  const started = performance.now();
  const id = newBackupId(startedAt);
  const log = (request.log ?? silentLogger).child({ job: job.name, backupId: id });
  const source = sourceKind(job.source);
  const context = `backing up job "${job.name}"`;
  const recipients = job.encrypt ? request.recipients : [];
  if (job.encrypt && recipients.length === 0) {
    throw new LifeboatError("BACKUP_NO_RECIPIENTS", `job "${job.name}" encrypts but no age recipients are configured`, { kind: "usage" });
  }

  request.events?.start?.({ job: job.name, id });
  log.info({ source: source.describe(job.source), storage: store.description }, "backup started");

  const written: string[] = [];
  let sourceBytes = 0;
  let storedBytes = 0;
  // Totals of the parts already stored, so progress counts across parts.
  let sourceBase = 0;
  let storedBase = 0;
  // A reporter that throws must never break the backup it reports on.
  const progress = () => {
    try {
      request.events?.progress?.({ job: job.name, sourceBytes, storedBytes });
    } catch (error) {
      log.warn({ err: (error as Error).message }, "progress reporter failed");
    }
  };

  /** Dumps one part through the codec chain into its object; the object is deleted again if the run fails. */
  const storePart = async (part: DumpPart) => {
    // zstd can take the source tool's output straight from it, process to process.
    const through = job.compression === "zstd" ? zstdCompressTool(job.compressionLevel, context, signal) : undefined;
    const dump = await source.openDump(job.source, { job: job.name, signal, log, now, allowEmpty: job.allowEmpty }, { part, through });
    const chain = encodeChain(dump.stream, {
      compression: job.compression,
      precompressed: dump.piped ? "zstd" : undefined,
      compressionLevel: job.compressionLevel,
      recipients,
      context,
      signal,
      // Not called when the source piped itself into zstd (the chain never sees its bytes).
      onSourceBytes: (n) => {
        sourceBytes = sourceBase + n;
      },
      onStoredBytes: (n) => {
        storedBytes = storedBase + n;
        progress();
      },
    });
    const objectName = `${part.role}.${FORMAT_EXTENSION[part.format]}${chain.extension ? `.${chain.extension}` : ""}`;
    const key = layout.objectKey(job.name, id, objectName);
    written.push(key);

    const stored = store.put(key, chain.output, { immutable: true, ...(signal ? { signal } : {}) });
    // If the store gives up, stop the chain (and through it the source tool).
    stored.catch(() => chain.output.destroy());
    // Every stage winds down before we go on; the most telling failure is reported.
    await settleAll(stored, [chain.done, dump.done]);
    const { sizeBytes } = await stored;
    const dumpResult = await dump.done;
    const dumpBytes = dumpResult.sizeBytes ?? chain.sourceTap.sizeBytes;
    sourceBase += dumpBytes;
    storedBase += sizeBytes;

    if (sizeBytes !== chain.storedTap.sizeBytes) {
      throw new LifeboatError(
        "BACKUP_SIZE_MISMATCH",
        `the store confirmed ${sizeBytes} bytes for "${key}" but ${chain.storedTap.sizeBytes} were sent (${context})`,
        { kind: "run" },
      );
    }
    if (dumpBytes === 0 && !job.allowEmpty) {
      throw new LifeboatError("BACKUP_EMPTY", `the source produced no data (${context})`, {
        kind: "run",
        hint: "check the source, or set allowEmpty: true on the job if empty backups are expected",
      });
    }
    const codec: Codec[] = [part.format, ...chain.codec];
    const object: ManifestObject = { key: objectName, role: part.role, sizeBytes, sha256: chain.storedTap.sha256(), sourceBytes: dumpBytes };
    return { object, codec, consistentAt: dump.consistentAt, status: dumpResult.status, warnings: dumpResult.warnings, serverVersion: dumpResult.serverVersion };
  };

  try {
    const toolVersion = source.toolVersion(job.source);
    toolVersion.catch(() => {});
    // One object per part, in order (e.g. PostgreSQL globals, then the database).
    const parts: Array<Awaited<ReturnType<typeof storePart>>> = [];
    for (const part of source.parts(job.source)) parts.push(await storePart(part));
    const data = parts.find((p) => p.object.role === "data");
    if (!data) throw new LifeboatError("BACKUP_NO_DATA_PART", `internal error: source "${job.source.type}" declares no data part`);
    // The manifest's codec is the data object's; another object records its own when it differs.
    const objects = parts.map(({ object, codec }) => (codec.join() === data.codec.join() ? object : { ...object, codec }));

    const finishedAt = now();
    const tool = await toolVersion;
    const manifest: Manifest = {
      version: MANIFEST_VERSION,
      id,
      job: job.name,
      status: parts.some((p) => p.status === "partial") ? "partial" : "succeeded",
      source: {
        kind: job.source.type,
        ...(tool ? { tool } : {}),
        ...(data.serverVersion ? { serverVersion: data.serverVersion } : {}),
        description: source.describe(job.source),
      },
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      consistentAt: data.consistentAt.toISOString(),
      codec: data.codec,
      objects,
      encryption: recipients.length > 0 ? { format: "age-v1", recipients: [...recipients] } : null,
      warnings: parts.flatMap((p) => p.warnings),
      lifeboat: { version: LIFEBOAT_VERSION },
    };
    if (request.run) {
      if (signal?.aborted) throw new LifeboatError("INTERRUPTED", `interrupted (${context})`, { kind: "interrupted" });
      const fencingToken = await request.run.fence();
      manifest.run = { scheduledAt: request.run.scheduledAt.toISOString(), trigger: request.run.trigger, fencingToken, instance: request.run.instance };
    }
    const check = checkManifest(manifest, { job: job.name, id });
    if (!check.ok) throw new LifeboatError("BACKUP_MANIFEST_INVALID", `internal error: the new manifest is invalid: ${check.problems.join("; ")}`);

    if (signal?.aborted) throw new LifeboatError("INTERRUPTED", `interrupted (${context})`, { kind: "interrupted" });
    const manifestKey = layout.manifestKey(job.name, id);
    await store.put(manifestKey, Readable.from([Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`)]), { contentType: "application/json", immutable: true });

    const durationMs = performance.now() - started;
    log.info({ sizeBytes: storedBase, sourceBytes: sourceBase, durationMs: Math.round(durationMs), status: manifest.status }, "backup stored");
    return { manifest, durationMs };
  } catch (error) {
    await removeQuietly(store, written, log);
    if (isAbortError(error) || signal?.aborted) {
      throw error instanceof LifeboatError && error.kind === "interrupted"
        ? error
        : new LifeboatError("INTERRUPTED", `interrupted (${context})`, { kind: "interrupted", cause: error });
    }
    if (error instanceof LifeboatError) throw error;
    throw new LifeboatError("BACKUP_FAILED", `backup failed: ${(error as Error).message} (${context})`, { kind: "run", cause: error });
  }
}

async function removeQuietly(store: ObjectStore, keys: string[], log: Logger): Promise<void> {
  if (keys.length === 0) return;
  try {
    await store.delete(keys);
  } catch (error) {
    log.warn({ keys, err: (error as Error).message }, "could not remove the objects of a failed backup; prune will");
  }
}
