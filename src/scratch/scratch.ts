import type { Logger } from "../log/logger.js";
import type { ScratchSpec } from "../model/scratch.js";

/**
 * One kind of scratch environment (directory, postgres, mariadb, command).
 * Every kind has the same shape. Lifecycle and bookkeeping (the ledger
 * record, the environment's folder, sweeping leftovers) live in
 * `environments.ts`; a kind only creates and removes its own resource.
 */
export interface ScratchKind<S extends ScratchSpec = ScratchSpec> {
  readonly type: S["type"];

  /** For people: what this environment is (never secrets). */
  describe(spec: S): string;

  /**
   * Creates the environment. Before creating anything that outlives the
   * process (a server, a database), the kind calls `context.record` with what
   * `remove` needs to delete it, so a run killed at any moment leaves a record
   * the next start's sweep acts on. When provisioning fails, the caller
   * removes what was recorded; the kind need not clean up itself.
   */
  provision(spec: S, context: ScratchContext): Promise<ProvisionedScratch>;

  /**
   * Removes a recorded resource: on teardown, and for leftovers of runs that
   * died. Idempotent: a resource that is already gone is not an error.
   * `spec` is the environment's current configuration when it is still
   * declared (it carries secrets the record never stores).
   */
  remove(resource: ScratchResource, context: RemoveContext<S>): Promise<void>;
}

export interface ScratchContext {
  /** The run this environment belongs to; every resource is named or tagged with it. */
  runId: string;
  /** The environment's name (from the plan or config, or the kind). */
  name: string;
  /** A fresh, empty folder owned by this environment, removed after `remove`. */
  dir: string;
  /** Records what `remove` needs (replacing the previous record). Call before creating it. */
  record(resource: ScratchResource): Promise<void>;
  log: Logger;
  signal?: AbortSignal | undefined;
}

export interface RemoveContext<S extends ScratchSpec = ScratchSpec> {
  /** The environment's folder (it still exists while `remove` runs). */
  dir: string;
  spec: S | undefined;
  log: Logger;
}

/** What a kind needs to remove its resource: plain JSON, never secrets. */
export type ScratchResource = Record<string, string | number | boolean | null>;

/**
 * How to reach an environment: `url` for databases, `directory` for folders,
 * whatever `up` printed for commands. Values are strings so that plans can
 * interpolate them (`${scratch.db.url}`).
 */
export type ScratchConnection = Record<string, string>;

export interface ProvisionedScratch {
  connection: ScratchConnection;
  /** How a person connects, e.g. `psql 'postgresql://postgres@127.0.0.1:54012/scratch'`. */
  connectHint?: string | undefined;
  /** Versions of the servers and tools involved, for reports. */
  versions?: Record<string, string> | undefined;
}
