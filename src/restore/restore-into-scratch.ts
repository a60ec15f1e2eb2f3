import type { Logger } from "../log/logger.js";
import { silentLogger } from "../log/logger.js";
import { LifeboatError } from "../model/errors.js";
import type { SourceSpec } from "../model/job.js";
import { SCRATCH_FITS, type NamedScratch } from "../model/scratch.js";
import { newRunId, provisionScratch, sweepScratch, type ScratchEnvironment } from "../scratch/environments.js";
import type { ScratchConnection } from "../scratch/scratch.js";
import { resolveRestorable, runRestore, type RestoreRequest, type RestoreResult } from "./run-restore.js";

/**
 * `restore JOB --to scratch:NAME`: sweeps what interrupted runs left behind,
 * creates a scratch environment, restores into it, and keeps it for the user
 * (that is the point of restoring into scratch). If anything fails, the
 * environment is torn down — unless `keepOnFailure` (for debugging) — and
 * the error is rethrown; an interrupted restore tears down too.
 */
export interface ScratchRestoreRequest extends Omit<RestoreRequest, "target"> {
  scratch: NamedScratch;
  /** Every scratch environment the config declares (the sweep needs their secrets). */
  declared: readonly NamedScratch[];
  keepOnFailure: boolean;
  /** Called when a failed restore's environment is kept (`keepOnFailure`), so the user learns where it is. */
  onKeptAfterFailure?: ((environment: ScratchEnvironment) => void) | undefined;
  /** Where environments live (default LIFEBOAT_SCRATCH_DIR or `<tmp>/lifeboat-scratch`). */
  root?: string | undefined;
  log?: Logger;
}

export interface ScratchRestoreResult extends RestoreResult {
  environment: ScratchEnvironment;
  /** How long creating the environment took (not part of `durationMs`). */
  provisionMs: number;
}

export async function restoreIntoScratch(request: ScratchRestoreRequest): Promise<ScratchRestoreResult> {
  const log = request.log ?? silentLogger;
  assertScratchFits(request.job.source, request.scratch);
  const manifest = await resolveRestorable(request);
  await sweepScratch({ root: request.root, specs: request.declared, log });
  const provisioning = performance.now();
  const environment = await provisionScratch(request.scratch, newRunId(), { root: request.root, log, signal: request.signal });
  const provisionMs = performance.now() - provisioning;
  try {
    const location = scratchLocation(request.job.source, environment.connection, request.scratch);
    const result = await runRestore({ ...request, manifest, target: { location, force: false, scratch: true } });
    await environment.keep();
    return { ...result, environment, provisionMs };
  } catch (error) {
    if (request.keepOnFailure) {
      await environment.keep();
      request.onKeptAfterFailure?.(environment);
    } else await environment.teardown().catch((e: unknown) => log.warn({ err: (e as Error).message }, "could not remove the scratch environment; the next start will"));
    throw error;
  }
}

const URL_SCHEMES = { postgres: /^postgres(ql)?:\/\//, mariadb: /^(mariadb|mysql):\/\// };

/** Fails before anything is created when the environment cannot hold the backup. */
export function assertScratchFits(source: SourceSpec, scratch: NamedScratch): void {
  if (!SCRATCH_FITS[source.type].includes(scratch.spec.type)) {
    throw new LifeboatError("SCRATCH_MISMATCH", `a ${source.type} backup cannot be restored into scratch "${scratch.name}" (${scratch.spec.type})`, {
      kind: "usage",
      hint: `use --to scratch:${SCRATCH_FITS[source.type][0]}`,
    });
  }
}

/** Where in a scratch environment a source's backup goes: a folder for files, a URL for databases. */
export function scratchLocation(source: SourceSpec, connection: ScratchConnection, scratch: NamedScratch): string {
  const wanted = source.type === "files" ? "directory" : source.type === "command" ? undefined : "url";
  const location = wanted ? connection[wanted] : (connection.url ?? connection.directory);
  if (!location) {
    throw new LifeboatError(
      "SCRATCH_MISMATCH",
      `scratch "${scratch.name}" (${scratch.spec.type}) has no ${wanted ?? "url or directory"} to restore a ${source.type} backup into`,
      { kind: "usage", hint: source.type === "files" ? "use --to scratch:directory" : `use --to scratch:${source.type}` },
    );
  }
  if (wanted === "url" && !URL_SCHEMES[source.type as "postgres" | "mariadb"].test(location)) {
    throw new LifeboatError("SCRATCH_MISMATCH", `scratch "${scratch.name}" (${scratch.spec.type}) is not a ${source.type} database`, {
      kind: "usage",
      hint: `use --to scratch:${source.type}`,
    });
  }
  // A password the environment reported (command kind, existing servers) travels inside the URL.
  if (wanted === "url" && connection.password) {
    const url = new URL(location);
    url.password = connection.password;
    return url.toString();
  }
  return location;
}
