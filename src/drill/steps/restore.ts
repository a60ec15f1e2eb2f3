import { LifeboatError } from "../../model/errors.js";
import type { Manifest } from "../../model/manifest.js";
import type { RestoreAction } from "../../model/plan.js";
import { assertRestorable, runRestore } from "../../restore/run-restore.js";
import { scratchLocation } from "../../restore/restore-into-scratch.js";
import { backupCandidates, isIntegrityFailure } from "../choose-backup.js";
import type { StepOutcome, StepRunner } from "./step.js";

/**
 * Restores a job's backup into a scratch environment of the drill. When the
 * chosen backup fails its integrity check (bytes that do not match the
 * manifest, an unreadable manifest, corrupt encryption), the restore falls
 * back to the next older backup, up to `fallback` times, and records why:
 * the report then shows the larger RPO that recovery really had.
 * A failed restore commits nothing, so the next try starts from the same
 * empty target.
 */
export const restoreStep: StepRunner<RestoreAction> = {
  async run(action, context) {
    const { drill } = context;
    const job = drill.config.jobs[action.job]!;
    const environment = drill.environments.get(action.into)!;
    const { store, layout } = await drill.stores(job.storage);
    const choice = action.choice ?? drill.recoveryPoint;
    const candidates = await backupCandidates(store, layout, job.name, choice, drill.timeline.t0, drill.random);
    const location = scratchLocation(job.source, environment.connection, { name: environment.name, spec: context.scratch(action.into).spec });
    const fallbackFrom: NonNullable<StepOutcome["backup"]>["fallbackFrom"] = [];

    for (const [index, entry] of candidates.entries()) {
      const last = index === candidates.length - 1 || fallbackFrom.length >= action.fallback;
      try {
        if (!entry.manifest) {
          throw new LifeboatError("MANIFEST_INVALID", `the manifest of backup ${entry.id} of job "${job.name}" is invalid: ${entry.problems.join("; ")}`, { kind: "verification" });
        }
        const manifest = entry.manifest;
        assertRestorable(job, manifest, drill.identities);
        const result = await runRestore({
          job,
          store,
          layout,
          identities: drill.identities,
          selector: {},
          manifest,
          target: { location, force: false, scratch: true },
          signal: context.signal,
          log: context.log,
        });
        recordVersions(drill.tools, manifest);
        if (action.choice === undefined && drill.recoveryPoint.by === "random-within") drill.recoveryPoint = { by: "at", at: new Date(manifest.consistentAt) };
        const fellBack = fallbackFrom.length ? `, after ${fallbackFrom.length} newer backup${fallbackFrom.length > 1 ? "s" : ""} failed the integrity check` : "";
        return {
          note: `restored backup ${manifest.id} (consistent at ${manifest.consistentAt}) into ${result.target}${fellBack}`,
          output: null,
          phases: result.phases,
          backup: backupUsed(manifest, drill.timeline.t0, fallbackFrom),
        };
      } catch (error) {
        if (context.signal.aborted || !isIntegrityFailure(error) || last) {
          if (fallbackFrom.length && error instanceof LifeboatError) {
            throw new LifeboatError(error.code, `${error.message} (after falling back from ${fallbackFrom.map((f) => f.id).join(", ")})`, {
              kind: error.kind,
              cause: error,
              hint: error.hint,
            });
          }
          throw error;
        }
        const e = error as LifeboatError;
        context.log.warn({ backupId: entry.id, code: e.code, err: e.message }, "backup failed its integrity check; falling back to the previous one");
        fallbackFrom.push({ id: entry.id, consistentAt: entry.manifest?.consistentAt ?? null, code: e.code, message: e.message });
      }
    }
    throw new LifeboatError("BACKUP_NOT_FOUND", `job "${job.name}" has no backup left to fall back to`, { kind: "run" });
  },
};

function backupUsed(manifest: Manifest, t0: Date, fallbackFrom: NonNullable<StepOutcome["backup"]>["fallbackFrom"]): NonNullable<StepOutcome["backup"]> {
  return {
    job: manifest.job,
    id: manifest.id,
    consistentAt: manifest.consistentAt,
    ageMs: t0.getTime() - Date.parse(manifest.consistentAt),
    sizeBytes: manifest.objects.reduce((sum, o) => sum + o.sizeBytes, 0),
    codec: [...manifest.codec],
    objects: manifest.objects.map((o) => ({ key: o.key, sizeBytes: o.sizeBytes, sha256: o.sha256 })),
    fallbackFrom: [...fallbackFrom],
  };
}

function recordVersions(tools: Record<string, string>, manifest: Manifest): void {
  if (manifest.source.tool) tools[`${manifest.job}: backed up with`] = manifest.source.tool;
  if (manifest.source.serverVersion) tools[`${manifest.job}: source server`] = manifest.source.serverVersion;
}
