import { configPath, loadConfig, type LifeboatConfig } from "../config/load.js";
import { createLogger, type Logger, type LogLevel } from "../log/logger.js";
import { LifeboatError } from "../model/errors.js";
import type { BackupJob } from "../model/job.js";
import { parseIdentities, type AgeIdentity } from "../pipeline/age/index.js";
import { Layout } from "../storage/layout.js";
import { openStore } from "../storage/registry.js";
import type { ObjectStore } from "../storage/store.js";
import type { Output } from "./output.js";

/**
 * What every command needs, built once from the global options: the config,
 * a logger, and an AbortSignal that fires on SIGINT/SIGTERM.
 */
export interface GlobalOptions {
  config: string | undefined;
  json: boolean;
  verbose: boolean;
}

export interface CommandContext {
  output: Output;
  log: Logger;
  signal: AbortSignal;
  options: GlobalOptions;
  loadConfig(): LifeboatConfig;
  storeFor(job: BackupJob): Promise<{ store: ObjectStore; layout: Layout }>;
  storeNamed(name: string): Promise<{ store: ObjectStore; layout: Layout }>;
  identities(): AgeIdentity[];
  job(name: string): BackupJob;
}

const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

/** LIFEBOAT_LOG_LEVEL wins; otherwise debug with --verbose, warn on a terminal, info for machines. */
function logLevel(fromEnv: string | undefined, verbose: boolean): LogLevel {
  if (fromEnv) {
    if (!LOG_LEVELS.includes(fromEnv as LogLevel)) {
      throw new LifeboatError("USAGE", `LIFEBOAT_LOG_LEVEL "${fromEnv}" is not a log level; expected one of: ${LOG_LEVELS.join(", ")}`, { kind: "usage" });
    }
    return fromEnv as LogLevel;
  }
  return verbose ? "debug" : process.stderr.isTTY ? "warn" : "info";
}

export function createContext(options: GlobalOptions, output: Output, signal: AbortSignal): CommandContext {
  const level = logLevel(process.env.LIFEBOAT_LOG_LEVEL, options.verbose);
  const log = createLogger({ level });
  let config: LifeboatConfig | undefined;
  const stores = new Map<string, { store: ObjectStore; layout: Layout }>();

  const context: CommandContext = {
    output,
    log,
    signal,
    options,
    loadConfig() {
      if (!config) {
        const loaded = loadConfig(configPath(options.config));
        for (const w of loaded.warnings) log.warn({ file: w.file, line: w.line, col: w.col }, w.message);
        config = loaded.config;
      }
      return config;
    },
    async storeNamed(name) {
      const cfg = context.loadConfig();
      const storage = cfg.storage[name];
      if (!storage) {
        throw new LifeboatError("STORAGE_UNKNOWN", `unknown storage "${name}"; expected one of: ${Object.keys(cfg.storage).join(", ")}`, { kind: "usage" });
      }
      let entry = stores.get(name);
      if (!entry) {
        entry = { store: await openStore(name, storage, log), layout: new Layout(storage.prefix) };
        stores.set(name, entry);
      }
      return entry;
    },
    storeFor(job) {
      return context.storeNamed(job.storage);
    },
    identities() {
      const identity = context.loadConfig().encryption.identity;
      return identity ? parseIdentities(identity) : [];
    },
    job(name) {
      const cfg = context.loadConfig();
      const job = cfg.jobs[name];
      if (!job) {
        const known = Object.keys(cfg.jobs);
        throw new LifeboatError("JOB_UNKNOWN", `unknown job "${name}"${known.length ? `; expected one of: ${known.join(", ")}` : "; the config has no jobs"}`, {
          kind: "usage",
        });
      }
      return job;
    },
  };
  return context;
}

