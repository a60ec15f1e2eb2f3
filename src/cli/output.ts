import { LifeboatError, isAbortError, type ErrorKind } from "../model/errors.js";
import { redactText, redactValue } from "../log/redact.js";

/** Exit codes from DESIGN.md. */
export const EXIT = { ok: 0, failed: 1, usage: 2, run: 3, interrupted: 130 } as const;

const EXIT_BY_KIND: Record<ErrorKind, number> = {
  usage: EXIT.usage,
  verification: EXIT.failed,
  run: EXIT.run,
  interrupted: EXIT.interrupted,
};

export interface Output {
  json: boolean;
  verbose: boolean;
  /** Standard output: results. */
  out(text: string): void;
  /** Standard error: progress, warnings, errors. */
  err(text: string): void;
  /** Prints a JSON document on stdout (secrets redacted). */
  printJson(value: unknown): void;
}

export function createOutput(options: { json: boolean; verbose: boolean }): Output {
  return {
    ...options,
    out: (text) => process.stdout.write(`${redactText(text)}\n`),
    err: (text) => process.stderr.write(`${redactText(text)}\n`),
    printJson: (value) => process.stdout.write(`${JSON.stringify(redactValue(value), null, 2)}\n`),
  };
}

export function exitCodeFor(error: unknown): number {
  if (error instanceof LifeboatError) return EXIT_BY_KIND[error.kind];
  if (isAbortError(error)) return EXIT.interrupted;
  return EXIT.run;
}

/** Prints an error the way users read it: message, hint, and (with --verbose) the cause chain. */
export function reportError(output: Output, error: unknown): void {
  if (output.json) {
    const e = error as LifeboatError;
    output.printJson({
      ok: false,
      error: {
        code: e instanceof LifeboatError ? e.code : "INTERNAL",
        message: (e as Error).message ?? String(error),
        ...(e instanceof LifeboatError && e.hint ? { hint: e.hint } : {}),
        ...(e instanceof LifeboatError && e.details ? { details: e.details } : {}),
      },
    });
    return;
  }
  if (error instanceof LifeboatError) {
    output.err(error.code === "CONFIG_INVALID" ? error.message : `error: ${error.message}`);
    if (error.hint) output.err(`hint: ${error.hint}`);
  } else {
    output.err(`error: ${(error as Error)?.message ?? String(error)}`);
  }
  if (output.verbose) {
    for (let cause = (error as Error)?.cause, depth = 0; cause && depth < 5; cause = (cause as Error).cause, depth++) {
      output.err(`caused by: ${(cause as Error).stack ?? String(cause)}`);
    }
    if (!(error instanceof LifeboatError) && (error as Error)?.stack) output.err((error as Error).stack!);
  }
}
