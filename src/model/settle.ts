import { LifeboatError } from "./errors.js";

/**
 * Waits for every one of a set of concurrent steps (stream pipelines, tools,
 * uploads), then rejects with the most telling failure: a Lifeboat error (a
 * tool's exit code, bad data, a storage refusal) beats an interruption, which
 * beats a generic stream error, which beats the echo of an earlier failure in
 * a neighbour (a tool killed by SIGPIPE, a reader that stopped reading).
 */
export async function settleAll(first: Promise<unknown>, others: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled([first, ...others]);
  const errors = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
  if (errors.length === 0) return;
  errors.sort((a, b) => severityRank(a) - severityRank(b));
  throw errors[0];
}

function severityRank(error: unknown): number {
  if (error instanceof LifeboatError) {
    // Echoes: a writer killed by SIGPIPE, or a feeder told its reader stopped reading.
    if (error.details?.signal === "SIGPIPE" || error.details?.echo === true || error.code === "TOOL_STOPPED_READING") return 3;
    return error.kind === "interrupted" ? 1 : 0;
  }
  return 2;
}
