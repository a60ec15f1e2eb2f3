import { createReadStream, promises as fs } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { basename, dirname, join, relative, sep } from "node:path";
import type { Readable } from "node:stream";
import { LifeboatError } from "../model/errors.js";
import {
  assertValidKey,
  assertValidPrefix,
  type ImmutabilityProof,
  type ObjectInfo,
  type ObjectStore,
  type PendingUpload,
  type PutOptions,
  type StoreCapabilities,
  type WriteCondition,
} from "./store.js";

/**
 * The embedded default: a directory used as an object store. Keys map to
 * files under `root`. A put writes a hidden temp file in the target folder,
 * fsyncs it and renames it into place, so a crash never leaves a half object
 * visible; leftover temp files are ignored by `list`, reported by
 * `listPendingUploads` and removed by `prune`.
 *
 * Conditional writes are real: create-if-absent is `link(2)` of a complete
 * temp file (which fails when the name exists), replace-if-unchanged is a
 * compare-and-swap under a per-key lock file created with O_EXCL. Etags are
 * the hex SHA-256 of the content. There is no Object Lock.
 */
const TEMP_MARK = ".lifeboat-tmp-";
/** `<folder>/.lifeboat-lock-<name>`: held while a compare-and-swap replaces `<name>`. */
const LOCK_MARK = ".lifeboat-lock-";
/** A lock file older than this was left by a crashed writer and is broken. */
const STALE_LOCK_MS = 30_000;
/** Temp names carry the target's name, so a leftover says which key it was for. */
const MAX_NAME_IN_TEMP = 200;

export interface FilesystemStoreOptions {
  /** Absolute path of the folder that holds the objects. */
  path: string;
}

export function openFilesystemStore(options: FilesystemStoreOptions): ObjectStore {
  return new FilesystemStore(options.path);
}

class FilesystemStore implements ObjectStore {
  readonly kind = "filesystem";
  readonly description: string;

  constructor(private readonly root: string) {
    this.description = `filesystem store at ${root}`;
  }

  private pathOf(key: string): string {
    assertValidKey(key);
    if (key.split("/").some((s) => s.startsWith(TEMP_MARK) || s.startsWith(LOCK_MARK))) {
      throw new LifeboatError("STORAGE_INVALID_KEY", `invalid object key "${key}"`, { kind: "usage" });
    }
    return join(this.root, ...key.split("/"));
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<{ sizeBytes: number }> {
    const target = this.pathOf(key);
    const folder = dirname(target);
    await fs.mkdir(folder, { recursive: true }).catch((error) => {
      throw this.error(error, `creating folder for "${key}"`);
    });
    const temp = tempPathFor(target);
    try {
      const size = await writeDurably(temp, body, options.signal);
      await fs.rename(temp, target);
      await syncFolder(folder);
      return { sizeBytes: size };
    } catch (error) {
      await fs.rm(temp, { force: true }).catch(() => {});
      if (options.signal?.aborted) throw error;
      throw this.error(error, `writing "${key}"`);
    }
  }

  async get(key: string): Promise<Readable> {
    const path = this.pathOf(key);
    const handle = await fs.open(path, "r").catch((error) => {
      throw this.error(error, `reading "${key}"`);
    });
    return createReadStream("", { fd: handle, highWaterMark: 1024 * 1024 });
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const stat = await fs.stat(this.pathOf(key));
      return stat.isFile() ? { key, sizeBytes: stat.size, lastModified: stat.mtime } : undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT" || (error as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
      throw this.error(error, `reading "${key}"`);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    assertValidPrefix(prefix);
    const keys: ObjectInfo[] = [];
    // Walk only the folder that can hold matches.
    const slash = prefix.lastIndexOf("/");
    const startFolder = slash >= 0 ? prefix.slice(0, slash) : "";
    await this.walk(startFolder === "" ? this.root : join(this.root, ...startFolder.split("/")), prefix, keys);
    keys.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    yield* keys;
  }

  private async walk(folder: string, prefix: string, out: ObjectInfo[]): Promise<void> {
    let entries;
    try {
      entries = await fs.readdir(folder, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw this.error(error, `listing "${prefix}"`);
    }
    for (const entry of entries) {
      if (entry.name.startsWith(TEMP_MARK) || entry.name.startsWith(LOCK_MARK)) continue;
      const path = join(folder, entry.name);
      const key = relative(this.root, path).split(sep).join("/");
      if (entry.isDirectory()) {
        if (`${key}/`.startsWith(prefix) || prefix.startsWith(`${key}/`)) await this.walk(path, prefix, out);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        const stat = await fs.stat(path).catch(() => undefined);
        if (stat) out.push({ key, sizeBytes: stat.size, lastModified: stat.mtime });
      }
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      const path = this.pathOf(key);
      await fs.rm(path, { force: true }).catch((error) => {
        throw this.error(error, `deleting "${key}"`);
      });
      await removeEmptyFolders(dirname(path), this.root);
    }
  }

  async putConditional(key: string, body: Buffer, condition: WriteCondition): Promise<{ etag: string }> {
    const target = this.pathOf(key);
    const folder = dirname(target);
    const doing = "ifNoneMatch" in condition ? `creating "${key}" if absent` : `replacing "${key}" if unchanged`;
    await fs.mkdir(folder, { recursive: true }).catch((error) => {
      throw this.error(error, `creating folder for "${key}"`);
    });
    const etag = etagOf(body);
    const temp = tempPathFor(target);
    try {
      await writeSmallDurably(temp, body);
      if ("ifNoneMatch" in condition) {
        // link(2) fails with EEXIST when the name exists: atomic create-if-absent of a complete file.
        try {
          await fs.link(temp, target);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === "EEXIST") throw this.preconditionFailed(key, doing, "the object already exists", condition);
          throw error;
        }
      } else {
        const unlock = await this.lock(target, key);
        try {
          const current = await fs.readFile(target).catch((error: NodeJS.ErrnoException) => {
            if (error.code === "ENOENT") return undefined;
            throw error;
          });
          if (current === undefined) throw this.preconditionFailed(key, doing, "the object does not exist", condition);
          if (etagOf(current) !== condition.ifMatch) throw this.preconditionFailed(key, doing, "the object changed", condition);
          await fs.rename(temp, target);
        } finally {
          await unlock();
        }
      }
      await syncFolder(folder);
      return { etag };
    } catch (error) {
      throw this.error(error, doing);
    } finally {
      await fs.rm(temp, { force: true }).catch(() => {});
    }
  }

  /**
   * Takes the per-key lock of a compare-and-swap: a lock file created with
   * O_EXCL. A lock older than STALE_LOCK_MS is broken (its writer crashed; a
   * live writer holds it for milliseconds). Resolves with the release.
   */
  private async lock(target: string, key: string): Promise<() => Promise<void>> {
    const path = join(dirname(target), `${LOCK_MARK}${basename(target)}`);
    const deadline = Date.now() + 2 * STALE_LOCK_MS;
    for (let wait = 2; ; wait = Math.min(wait * 2, 100)) {
      try {
        const handle = await fs.open(path, "wx", 0o600);
        await handle.close();
        return () => fs.rm(path, { force: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      const stat = await fs.stat(path).catch(() => undefined);
      if (stat && Date.now() - stat.mtimeMs > STALE_LOCK_MS) {
        // Rename first, so that of several writers breaking the same stale lock only one removes it.
        const broken = `${path}-broken-${randomBytes(4).toString("hex")}`;
        if (await fs.rename(path, broken).then(() => true, () => false)) await fs.rm(broken, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new LifeboatError("STORAGE_ERROR", `timed out waiting for the lock of "${key}" (${this.description})`, {
          kind: "run",
          hint: `remove ${path} if no Lifeboat process is running`,
        });
      }
      await new Promise((r) => setTimeout(r, wait + Math.random() * wait));
    }
  }

  private preconditionFailed(key: string, doing: string, why: string, condition: WriteCondition): LifeboatError {
    return new LifeboatError("STORAGE_PRECONDITION_FAILED", `the condition did not hold while ${doing}: ${why} (${this.description})`, {
      kind: "run",
      details: { key, condition },
    });
  }

  async getSmall(key: string, maxBytes: number): Promise<{ bytes: Buffer; etag: string } | undefined> {
    const path = this.pathOf(key);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(path, "r");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR") return undefined;
      throw this.error(error, `reading "${key}"`);
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) return undefined;
      if (stat.size > maxBytes) {
        throw new LifeboatError("STORAGE_TOO_LARGE", `"${key}" holds ${stat.size} bytes, more than the ${maxBytes} expected (${this.description})`, { kind: "verification" });
      }
      // Objects are replaced by rename, never rewritten in place: the open file does not change.
      const bytes = await handle.readFile();
      return { bytes, etag: etagOf(bytes) };
    } catch (error) {
      throw this.error(error, `reading "${key}"`);
    } finally {
      await handle.close();
    }
  }

  async *listPendingUploads(prefix: string): AsyncIterable<PendingUpload> {
    assertValidPrefix(prefix);
    const found: PendingUpload[] = [];
    const slash = prefix.lastIndexOf("/");
    const startFolder = slash >= 0 ? prefix.slice(0, slash) : "";
    const walk = async (folder: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(folder, { withFileTypes: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
        throw this.error(error, `listing unfinished uploads under "${prefix}"`);
      }
      for (const entry of entries) {
        const path = join(folder, entry.name);
        const folderKey = relative(this.root, folder).split(sep).join("/");
        if (entry.isDirectory()) {
          if (entry.name.startsWith(TEMP_MARK) || entry.name.startsWith(LOCK_MARK)) continue;
          const key = folderKey === "" ? entry.name : `${folderKey}/${entry.name}`;
          if (`${key}/`.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(path);
        } else if (entry.isFile() && entry.name.startsWith(TEMP_MARK)) {
          const target = targetOfTemp(entry.name);
          const key = folderKey === "" ? target : `${folderKey}/${target}`;
          if (!key.startsWith(prefix)) continue;
          const stat = await fs.stat(path).catch(() => undefined);
          if (stat) found.push({ key, uploadId: entry.name, startedAt: stat.mtime });
        }
      }
    };
    await walk(startFolder === "" ? this.root : join(this.root, ...startFolder.split("/")));
    found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.uploadId < b.uploadId ? -1 : 1));
    yield* found;
  }

  async abortPendingUpload(upload: PendingUpload): Promise<void> {
    assertValidKey(upload.key);
    if (!upload.uploadId.startsWith(TEMP_MARK) || upload.uploadId.includes("/") || upload.uploadId.includes("\\")) {
      throw new LifeboatError("STORAGE_INVALID_KEY", `"${upload.uploadId}" is not an unfinished upload of the filesystem store (${this.description})`, { kind: "usage" });
    }
    const slash = upload.key.lastIndexOf("/");
    const folder = slash >= 0 ? join(this.root, ...upload.key.slice(0, slash).split("/")) : this.root;
    await fs.rm(join(folder, upload.uploadId), { force: true }).catch((error) => {
      throw this.error(error, `removing the unfinished upload of "${upload.key}"`);
    });
    await removeEmptyFolders(folder, this.root);
  }

  async proveImmutability(canaryPrefix: string): Promise<ImmutabilityProof> {
    assertValidPrefix(canaryPrefix);
    return { held: false, reason: "the filesystem store has no Object Lock" };
  }

  async probe(probePrefix: string): Promise<StoreCapabilities> {
    // Tried, not assumed: link(2) (create-if-absent) fails on some network and FUSE filesystems.
    assertValidPrefix(probePrefix);
    const key = `${probePrefix}${Date.now()}-${randomBytes(4).toString("hex")}`;
    let conditionalWrites = false;
    try {
      const { etag } = await this.putConditional(key, Buffer.from("lifeboat capability probe\n"), { ifNoneMatch: "*" });
      const refused = (condition: WriteCondition) =>
        this.putConditional(key, Buffer.from("again\n"), condition).then(
          () => false,
          (error: unknown) => {
            if (error instanceof LifeboatError && error.code === "STORAGE_PRECONDITION_FAILED") return true;
            throw error;
          },
        );
      conditionalWrites = (await refused({ ifNoneMatch: "*" })) && (await refused({ ifMatch: `${etag}0` }));
    } finally {
      await this.delete([key]).catch(() => {});
    }
    // Temp files are this store's unfinished uploads: prune can always remove them.
    return { conditionalWrites, multipartAbort: true };
  }

  private error(error: unknown, doing: string): LifeboatError {
    if (error instanceof LifeboatError) return error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      return new LifeboatError("STORAGE_NOT_FOUND", `object not found while ${doing} (${this.description})`, { kind: "verification", cause: error });
    }
    if (code === "EACCES" || code === "EPERM") {
      return new LifeboatError("STORAGE_ACCESS_DENIED", `permission denied while ${doing} (${this.description})`, {
        kind: "usage",
        cause: error,
      });
    }
    return new LifeboatError("STORAGE_ERROR", `${code ?? "error"} while ${doing} (${this.description}): ${(error as Error).message}`, {
      kind: "run",
      cause: error,
      ...(code === "ENOSPC" ? { hint: "the disk is full" } : {}),
    });
  }
}

/** The hex SHA-256 of an object's content: the filesystem store's etag. */
function etagOf(bytes: Buffer): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** `<folder>/.lifeboat-tmp-<random>-<name>` (just `<random>` when the name is too long to carry). */
function tempPathFor(target: string): string {
  const name = basename(target);
  const random = randomBytes(6).toString("hex");
  return join(dirname(target), `${TEMP_MARK}${random}${name.length <= MAX_NAME_IN_TEMP ? `-${name}` : ""}`);
}

/** The name a temp file was written for, or the temp file's own name when it does not say. */
function targetOfTemp(tempName: string): string {
  const match = /^\.lifeboat-tmp-[0-9a-f]{12}-(.+)$/.exec(tempName);
  return match ? match[1]! : tempName;
}

async function writeSmallDurably(path: string, body: Buffer): Promise<void> {
  const handle = await fs.open(path, "wx", 0o600);
  try {
    await handle.writeFile(body);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

const WRITE_BATCH_BYTES = 1024 * 1024;
const SYNC_EVERY_BYTES = 64 * 1024 * 1024;

/**
 * Writes a stream to a new file and makes it durable. Chunks are gathered
 * into ~1 MiB `writev` calls, and `fdatasync` runs every 64 MiB in the
 * background while writing goes on, so the final sync has little left to do.
 */
async function writeDurably(path: string, body: Readable, signal: AbortSignal | undefined): Promise<number> {
  const handle = await fs.open(path, "wx", 0o600);
  const abort = () => body.destroy(signal?.reason instanceof Error ? signal.reason : new Error("aborted"));
  signal?.addEventListener("abort", abort, { once: true });
  let syncing: Promise<void> = Promise.resolve();
  try {
    if (signal?.aborted) abort();
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let size = 0;
    let sinceSync = 0;
    const flush = async () => {
      if (batchBytes === 0) return;
      await writeAll(handle, batch, batchBytes);
      size += batchBytes;
      sinceSync += batchBytes;
      batch = [];
      batchBytes = 0;
      if (sinceSync >= SYNC_EVERY_BYTES) {
        await syncing;
        syncing = handle.datasync();
        sinceSync = 0;
      }
    };
    for await (const chunk of body as AsyncIterable<Buffer>) {
      batch.push(chunk);
      batchBytes += chunk.length;
      if (batchBytes >= WRITE_BATCH_BYTES) await flush();
    }
    await flush();
    await syncing;
    await handle.sync();
    return size;
  } finally {
    signal?.removeEventListener("abort", abort);
    await syncing.catch(() => {});
    await handle.close();
  }
}

/** `writev` may write less than asked; keep going until everything is on disk. */
async function writeAll(handle: fs.FileHandle, chunks: Buffer[], total: number): Promise<void> {
  let pending = chunks;
  let left = total;
  while (left > 0) {
    const { bytesWritten } = await handle.writev(pending);
    left -= bytesWritten;
    if (left === 0) return;
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const chunk of pending) {
      if (skip >= chunk.length) skip -= chunk.length;
      else {
        rest.push(skip > 0 ? chunk.subarray(skip) : chunk);
        skip = 0;
      }
    }
    pending = rest;
  }
}

async function syncFolder(folder: string): Promise<void> {
  const handle = await fs.open(folder, "r").catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } catch {
    // Some filesystems cannot fsync folders; the rename is still atomic.
  } finally {
    await handle.close();
  }
}

async function removeEmptyFolders(folder: string, root: string): Promise<void> {
  let current = folder;
  while (current.startsWith(root) && current !== root) {
    try {
      await fs.rmdir(current);
    } catch {
      return;
    }
    current = dirname(current);
  }
}
