import type { Readable } from "node:stream";
import type { Logger } from "../log/logger.js";
import type { BackupStatus, Codec } from "../model/manifest.js";
import type { SourceSpec } from "../model/job.js";
import type { ToolSpec } from "../exec/spawn.js";

/**
 * One kind of thing Lifeboat backs up (files, command; databases later).
 * Every kind has the same shape, and the same contract tests run against each.
 */
export interface SourceKind<S extends SourceSpec = SourceSpec> {
  readonly type: S["type"];
  /** The format of the dump stream, first entry of the manifest's codec. */
  readonly format: Extract<Codec, "tar" | "stream">;

  /** For people and the manifest: what is backed up (never secrets). */
  describe(spec: S): string;

  /** The tool and version that produce the stream, e.g. "tar (GNU tar) 1.34". */
  toolVersion(spec: S): Promise<string | undefined>;

  /**
   * Starts a dump. Fails fast (before any byte is stored) when the source is
   * clearly not there. The caller consumes `stream`; `done` settles when the
   * producing tool exited, with the run's status and warnings.
   */
  openDump(spec: S, context: SourceContext, options?: DumpOptions): Promise<Dump>;

  /**
   * Checks a restore target before anything is downloaded: a non-empty target
   * needs `force`. Returns the restore to run.
   */
  prepareRestore(spec: S, target: RestoreTarget, context: SourceContext): Promise<PreparedRestore>;
}

export interface SourceContext {
  job: string;
  /** The clock (injected in tests). */
  now?: (() => Date) | undefined;
  signal?: AbortSignal | undefined;
  log: Logger;
}

export interface DumpOptions {
  /**
   * A tool (the compressor) the dump may be piped straight into, process to
   * process, so its bytes never pass through Node. A source that produces its
   * dump with a tool and can count its own bytes uses it.
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
  /** `sizeBytes` is the dump's size when the source counted it itself (required when `piped`). */
  done: Promise<{ status: BackupStatus; warnings: string[]; sizeBytes?: number | undefined }>;
}

export interface RestoreTarget {
  /** A folder for `files`; passed to the restore command for `command`. */
  location: string | undefined;
  /** Write into a non-empty target, replacing what is there. */
  force: boolean;
}

/**
 * A restore happens in two phases so that nothing is declared good before the
 * stored bytes were verified: `write` consumes the decoded stream into a
 * staging area (or the restore command), then the caller checks size and
 * SHA-256 and either `commit`s (moves the staging area into place) or
 * `discard`s it. `discard` is safe to call after a failed `write`.
 */
export interface PreparedRestore {
  /** Where the data ends up, for messages. */
  readonly description: string;
  write(stream: Readable): Promise<void>;
  commit(): Promise<void>;
  discard(): Promise<void>;
}
