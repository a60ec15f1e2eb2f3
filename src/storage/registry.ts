import type { StorageConfig } from "../config/schema.js";
import type { Logger } from "../log/logger.js";
import { LifeboatError } from "../model/errors.js";
import { parseDurationMs } from "../model/duration.js";
import { openFilesystemStore } from "./filesystem.js";
import type { ObjectStore } from "./store.js";

/**
 * Every storage kind, filled in one place. Looking up an unknown kind lists
 * the known ones.
 */
type Opener = (name: string, config: StorageConfig, log: Logger | undefined) => Promise<ObjectStore>;

const STORAGE_KINDS: Record<StorageConfig["type"], Opener> = {
  // The AWS SDK takes ~0.15 s and ~20 MiB to load: only when an s3 store is used.
  s3: async (name, config, log) => {
    if (config.type !== "s3") throw new Error("unreachable");
    const { openS3Store } = await import("./s3.js");
    const { objectLock, ...rest } = config;
    return openS3Store({
      name,
      ...rest,
      stallTimeoutMs: parseDurationMs(config.stallTimeout),
      objectLock: objectLock ? { mode: objectLock.mode, retainMs: parseDurationMs(objectLock.retain)! } : undefined,
      log,
    });
  },
  filesystem: async (_name, config) => {
    if (config.type !== "filesystem") throw new Error("unreachable");
    return openFilesystemStore({ path: config.path });
  },
};

export async function openStore(name: string, config: StorageConfig, log?: Logger): Promise<ObjectStore> {
  const open = STORAGE_KINDS[config.type];
  if (!open) {
    throw new LifeboatError("STORAGE_UNKNOWN_KIND", `unknown storage type "${String(config.type)}"; expected one of: ${Object.keys(STORAGE_KINDS).join(", ")}`, {
      kind: "usage",
    });
  }
  return open(name, config, log);
}
