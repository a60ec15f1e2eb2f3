import type { Readable } from "node:stream";
import type { Logger } from "../log/logger.js";
import type { BackupStatus, Codec, Manifest, ManifestObject } from "../model/manifest.js";
import type { SourceSpec } from "../model/job.js";
import type { ToolSpec } from "../exec/spawn.js";

/**
 * One kind of thing Lifeboat backs up (files, command, postgres, mariadb).
 * Every kind has the same shape, and the same contract tests run against each.
 */
export interface SourceKind<S extends SourceSpec = SourceSpec> {
  readonly type: S["type"];

  /**
   * The objects one backup stores, in the order they are dumped and restored
   * (e.g. PostgreSQL globals before the database). Exactly one has role
   * "data"; its consistency point is the backup's.
   */
  parts(spec: S): DumpPart[];

  /** For people and the manifest: what is backed up (never secrets). */
  describe(spec: S): string;

  /** The tool and version that produce the stream, e.g. "tar (GNU tar) 1.34". */
  toolVersion(spec: S): Promise<string | undefined>;

  /**
   * Starts a dump. Fails fast (before any byte is stored) when the source is
   * clearly not there. The caller consumes `stream`; `done` settles when the
   * producing tool exited, with the run's status and warnings.
   */
  openDump(spec: S, context: SourceContext, options: DumpOptions): Promise<Dump>;

  /**
   * Checks a restore target before anything is downloaded: a non-empty target
   * needs `force`. Returns the restore to run.
   */
  prepareRestore(spec: S, target: RestoreTarget, context: SourceContext, backup: Manifest): Promise<PreparedRestore>;
}

/** The format of a dump stream: the first entry of its object's codec. */
export type DumpFormat = Extract<Codec, "tar" | "stream" | "pg_dump-custom" | "sql">;

export interface DumpPart {
  /** The object's role in the manifest ("data", "globals"). */
  role: string;
  format: DumpFormat;
}

/** File-name extension of each dump format in object names. */
export const FORMAT_EXTENSION: Record<DumpFormat, string> = { tar: "tar", stream: "stream", "pg_dump-custom": "pgdump", sql: "sql" };

export interface SourceContext {
  job: string;
  /** The clock (injected in tests). */
  now?: (() => Date) | undefined;
  signal?: AbortSignal | undefined;
  log: Logger;
  /** The job accepts a source with no data (no files, no tables); otherwise that fails the dump. */
  allowEmpty?: boolean | undefined;
}

export interface DumpOptions {
  /** Which of `parts(spec)` to dump. */
  part: DumpPart;
  /**
   * A tool (the compressor) the dump may be piped straight into, process to
   * process, so its bytes never pass through Node. A source that produces its
   * dump with a tool uses it when it can still count the dump's bytes (tar
   * --totals; a `byteCounter` relay for pg_dump).
   */
  through?: ToolSpec | undefined;
}

export interface Dump {
  /** The dump, or `through`'s output when the source used it. */
  stream: Readable;
  /** Whether `stream` already went through `DumpOptions.through`. */
  piped: boolean;
  /** When the data was consistent; by default the moment the dump started. */
  consistentAt: Date;
  done: Promise<DumpResult>;
}

export interface DumpResult {
  status: BackupStatus;
  warnings: string[];
  /** The dump's size, when the source counted it itself (required when `piped`). */
  sizeBytes?: number | undefined;
  /** The database server's version, for the manifest. */
  serverVersion?: string | undefined;
}

export interface RestoreTarget {
  /** A folder for `files`, a database URL for databases; passed to the restore command for `command`. */
  location: string | undefined;
  /** Write into a non-empty target, replacing what is there. */
  force: boolean;
  /** The target is a scratch environment Lifeboat created for this restore. */
  scratch?: boolean | undefined;
}

/**
 * A restore happens in two phases so that nothing is declared good before the
 * stored bytes were verified: `write` consumes each object's decoded stream
 * (in manifest order) into a staging area, the restore tool, or a
 * transaction; the caller checks each object's size and SHA-256 and then
 * either `commit`s (moves the staging area into place, runs a staged restore)
 * or `discard`s. `discard` is safe to call after a failed `write`. A `write`
 * whose stream fails must not leave a half-applied restore it could undo
 * (a database restore runs in one transaction that a failure rolls back).
 */
export interface PreparedRestore {
  /** Where the data ends up, for messages. */
  readonly description: string;
  write(stream: Readable, object: ManifestObject): Promise<void>;
  commit(): Promise<void>;
  discard(): Promise<void>;
}
