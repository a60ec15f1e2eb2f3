import type { Readable } from "node:stream";
import { LifeboatError } from "../model/errors.js";

/**
 * Where backups live. Small on purpose: every kind (s3, filesystem) passes the
 * same contract suite (test/storage-contract.test.ts).
 *
 * Keys are `/`-separated, relative, without `.`/`..` segments; they are built
 * by `layout.ts` only. Errors are `LifeboatError`s with codes:
 * - STORAGE_NOT_FOUND (kind verification): the key does not exist — permanent;
 * - STORAGE_PRECONDITION_FAILED (kind run): a conditional write lost (412) — permanent for that write;
 * - STORAGE_ACCESS_DENIED, STORAGE_NO_BUCKET, STORAGE_INVALID_KEY (kind usage): permanent;
 * - STORAGE_UNREACHABLE, STORAGE_ERROR (kind run): transient causes were already
 *   retried with back-off inside the store before this surfaced.
 */
export interface ObjectStore {
  /** Kind name from the registry, e.g. "s3". */
  readonly kind: string;
  /** Where this store points, for messages; never contains credentials. */
  readonly description: string;

  /**
   * Stores the stream under `key`, replacing any object there. Atomic: readers
   * see either the old object or the complete new one, never a part; on error
   * or abort nothing new becomes visible and partial uploads are aborted
   * (best effort: a store that cannot abort leaves them for `prune`).
   * The store consumes `body` to its end; on failure the caller destroys it.
   * Resolves with the byte count the store confirms it holds.
   */
  put(key: string, body: Readable, options?: PutOptions): Promise<{ sizeBytes: number }>;

  /** Streams the object. The caller consumes or destroys the stream. */
  get(key: string, options?: { signal?: AbortSignal }): Promise<Readable>;

  /** Size and time of an object, or undefined when it does not exist. */
  head(key: string): Promise<ObjectInfo | undefined>;

  /** Every object whose key starts with `prefix`, in ascending key order. */
  list(prefix: string, options?: { signal?: AbortSignal }): AsyncIterable<ObjectInfo>;

  /**
   * Deletes the keys; keys that do not exist are not an error (idempotent). A
   * store with Object Lock configured deletes every version of each key; a
   * version still locked is refused (STORAGE_ACCESS_DENIED) and stays.
   */
  delete(keys: readonly string[]): Promise<void>;

  /**
   * Writes a small object only when `condition` holds, atomically with respect
   * to every other writer: `{ ifNoneMatch: "*" }` creates the object only if
   * none exists; `{ ifMatch: etag }` replaces it only if it is still the version
   * with that etag. Resolves with the new object's etag. Rejects with
   * STORAGE_PRECONDITION_FAILED when the condition does not hold. A store that
   * silently ignores conditions is found by `probe` (conditionalWrites: false):
   * callers that rely on conditions check the probe first.
   */
  putConditional(key: string, body: Buffer, condition: WriteCondition): Promise<{ etag: string }>;

  /**
   * A small object's bytes with its etag (as `putConditional` expects it), or
   * undefined when it does not exist. Rejects with STORAGE_TOO_LARGE (kind
   * verification) when the object holds more than `maxBytes`.
   */
  getSmall(key: string, maxBytes: number): Promise<{ bytes: Buffer; etag: string } | undefined>;

  /**
   * Uploads under `prefix` that were started and never completed or aborted:
   * S3 multipart uploads, the filesystem store's temp files. `prune` aborts the
   * stale ones.
   */
  listPendingUploads(prefix: string): AsyncIterable<PendingUpload>;

  /** Aborts one pending upload and frees its storage; idempotent. */
  abortPendingUpload(upload: PendingUpload): Promise<void>;

  /**
   * Proves that Object Lock holds: writes a small canary object under
   * `canaryPrefix` with the store's configured lock, then tries to delete that
   * exact version with the store's own credentials (without any bypass). The
   * lock holds when the store refuses. Stores without Object Lock configured
   * answer `{ held: false, reason }` without writing anything.
   */
  proveImmutability(canaryPrefix: string): Promise<ImmutabilityProof>;

  /**
   * Finds out what the store really enforces by trying it under
   * `<probePrefix>` (and cleaning up). Used to refuse features a store lacks.
   */
  probe(probePrefix: string): Promise<StoreCapabilities>;
}

export interface PutOptions {
  signal?: AbortSignal;
  contentType?: string;
  /**
   * Write the object under the store's configured Object Lock (a retention date
   * of now + the configured period). Backup data and manifests ask for it; run
   * records and other mutable bookkeeping do not. Ignored by stores without a lock.
   */
  immutable?: boolean;
}

export type WriteCondition = { ifNoneMatch: "*" } | { ifMatch: string };

export interface ObjectInfo {
  key: string;
  sizeBytes: number;
  lastModified: Date | undefined;
  /** From `head` only: the Object Lock retention date of the current version, when it has one. */
  retainUntil?: Date | undefined;
}

export interface PendingUpload {
  key: string;
  /** The store's id for the upload (the S3 UploadId, the filesystem temp file name). */
  uploadId: string;
  startedAt: Date | undefined;
}

export interface ImmutabilityProof {
  /** True when the store refused to delete a locked object version. */
  held: boolean;
  /** What was tried and what the store answered, for people. */
  reason: string;
  mode?: "governance" | "compliance" | undefined;
  retainUntil?: Date | undefined;
}

export interface StoreCapabilities {
  /** `If-None-Match: *` on an existing key is refused (412). */
  conditionalWrites: boolean;
  /** Interrupted multipart uploads can be aborted (storage is reclaimed at once). */
  multipartAbort: boolean;
}

/** How the store should lock backup objects (S3 Object Lock), from `storage.<name>.objectLock`. */
export interface ObjectLockSettings {
  mode: "governance" | "compliance";
  retainMs: number;
}

/** Rejects keys that could escape a folder or confuse a store. */
export function assertValidKey(key: string): void {
  const bad =
    key === "" ||
    key.startsWith("/") ||
    key.includes("\\") ||
    key.includes("\0") ||
    key.split("/").some((segment, i, all) => segment === "." || segment === ".." || (segment === "" && i < all.length - 1));
  if (bad) throw new LifeboatError("STORAGE_INVALID_KEY", `invalid object key "${key}"`, { kind: "usage" });
}

/** Same as assertValidKey for list prefixes, which may be empty or end with "/". */
export function assertValidPrefix(prefix: string): void {
  if (prefix === "") return;
  assertValidKey(prefix.endsWith("/") ? `${prefix}x` : prefix);
}
