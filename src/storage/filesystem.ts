import { createReadStream, promises as fs } from "node:fs";
import { randomBytes } from "node:crypto";
import { dirname, join, relative, sep } from "node:path";
import type { Readable } from "node:stream";
import { LifeboatError } from "../model/errors.js";
import { assertValidKey, assertValidPrefix, type ObjectInfo, type ObjectStore, type PutOptions, type StoreCapabilities } from "./store.js";

/**
 * The embedded default: a directory used as an object store. Keys map to
 * files under `root`. A put writes a hidden temp file in the target folder,
 * fsyncs it and renames it into place, so a crash never leaves a half object
 * visible; leftover temp files are ignored by `list` and removed by `prune`.
 */
const TEMP_MARK = ".lifeboat-tmp-";

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
    if (key.split("/").some((s) => s.startsWith(TEMP_MARK))) {
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
    const temp = join(folder, `${TEMP_MARK}${randomBytes(6).toString("hex")}`);
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
      if (entry.name.startsWith(TEMP_MARK)) continue;
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

  async probe(probePrefix: string): Promise<StoreCapabilities> {
    // Creation with O_EXCL is this store's conditional write; renames are atomic.
    assertValidPrefix(probePrefix);
    return { conditionalWrites: true, multipartAbort: true };
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
