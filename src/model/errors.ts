/**
 * The one error type users read. Every failure that can reach the CLI is a
 * `LifeboatError` with a stable `code`, a `kind` that decides the exit code,
 * an optional `hint` (what to do) and the underlying `cause`.
 *
 * Messages are lower case, without a trailing period, and say what failed and
 * where: `pg_restore failed with exit code 1 (restoring orders-db into scratch "db")`.
 */

/** What kind of failure this is; the CLI maps it to an exit code (see DESIGN.md). */
export type ErrorKind =
  /** invalid config, plan or command-line usage → exit 2 */
  | "usage"
  /** a verification found wrong, missing or undecryptable data → exit 1 */
  | "verification"
  /** a run failed: storage, source, tool error → exit 3 */
  | "run"
  /** the user or a signal interrupted the run → exit 130 */
  | "interrupted";

export interface LifeboatErrorOptions {
  kind?: ErrorKind;
  hint?: string;
  cause?: unknown;
  /** Extra structured facts for `--json` output and logs (never secrets). */
  details?: Record<string, unknown>;
}

export class LifeboatError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, options: LifeboatErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "LifeboatError";
    this.code = code;
    this.kind = options.kind ?? "run";
    this.hint = options.hint;
    this.details = options.details;
  }

  /**
   * The same failure, marked as the echo of another one (a tool that failed
   * because its reader went away first): `settleAll` reports the other.
   */
  asEcho(): LifeboatError {
    return new LifeboatError(this.code, this.message, { kind: this.kind, hint: this.hint, cause: this.cause, details: { ...this.details, echo: true } });
  }
}

/** True when `error` (or anything in its cause chain) is an abort caused by an AbortSignal. */
export function isAbortError(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 10; depth++) {
    if (typeof e === "object" && e !== null) {
      const name = (e as { name?: unknown }).name;
      const code = (e as { code?: unknown }).code;
      if (name === "AbortError" || code === "ABORT_ERR" || code === "INTERRUPTED") return true;
      e = (e as { cause?: unknown }).cause;
    } else break;
  }
  return false;
}
