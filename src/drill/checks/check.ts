import type { Logger } from "../../log/logger.js";
import type { ScratchReference, Template } from "../../model/plan.js";
import type { ScratchSpec } from "../../model/scratch.js";
import type { ScratchConnection } from "../../scratch/scratch.js";

/**
 * What a check (a verify step, an rpo-probe, a run step) can see of the
 * drill: the scratch environments by name, template rendering, and the
 * attempt's abort signal (it fires on timeout and on SIGINT/SIGTERM).
 *
 * A check that passes returns what it observed; one that fails throws a
 * `LifeboatError` whose message says what was expected and what was found
 * (kind "verification" for a wrong answer, "run" when it could not run).
 */
export interface CheckContext {
  /** A scratch environment of the drill; throws for an unknown name. */
  scratch(name: string): ScratchHandle;
  /** Fills `${scratch.NAME.KEY}` references; throws when a key does not exist. */
  render(template: Template): string;
  /** The folder relative paths in the plan are resolved against (the plan file's folder). */
  baseDir: string;
  signal: AbortSignal;
  log: Logger;
}

export interface ScratchHandle {
  name: string;
  spec: ScratchSpec;
  connection: ScratchConnection;
}

export interface CheckResult {
  /** What was observed, for the report: `returned t`, `1200 rows (expected 1000..)`, `HTTP 200`. */
  note: string;
  /** The end of what the check printed (stdout and stderr), when it ran a command; redacted by the caller. */
  output: string | null;
}

export type { ScratchReference };
