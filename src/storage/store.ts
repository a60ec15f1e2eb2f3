import type { Readable } from "node:stream";
import { LifeboatError } from "../model/errors.js";

/**
 * Where backups live. Small on purpose: every kind (s3, filesystem) passes the
 * same contract suite (test/storage-contract.test.ts).
 *
 * Keys are `/`-separated, relative, without `.`/`..` segments; they are built
 * by `layout.ts` only. Errors are `LifeboatError`s with codes:
 * - STORAGE_NOT_FOUND (kind verification): the key does not exist — permanent;
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

  /** Deletes the keys; keys that do not exist are not an error (idempotent). */
  delete(keys: readonly string[]): Promise<void>;

  /**
   * Finds out what the store really enforces by trying it under
   * `<probePrefix>` (and cleaning up). Used to refuse features a store lacks.
   */
  probe(probePrefix: string): Promise<StoreCapabilities>;
}

export interface PutOptions {
  signal?: AbortSignal;
  contentType?: string;
}

export interface ObjectInfo {
  key: string;
  sizeBytes: number;
  lastModified: Date | undefined;
}

export interface StoreCapabilities {
  /** `If-None-Match: *` on an existing key is refused (412). */
  conditionalWrites: boolean;
  /** Interrupted multipart uploads can be aborted (storage is reclaimed at once). */
  multipartAbort: boolean;
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
