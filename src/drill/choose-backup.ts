import { backupIdTime } from "../model/backup-id.js";
import { LifeboatError } from "../model/errors.js";
import type { BackupChoice } from "../model/plan.js";
import { listBackups, type CatalogEntry } from "../catalog/catalog.js";
import type { Layout } from "../storage/layout.js";
import type { ObjectStore } from "../storage/store.js";

/**
 * The backups a restore step may use, best first: the chosen one, then the
 * older ones it falls back to when a backup fails its integrity check.
 * Entries whose manifest is unusable stay in the list (without a manifest) so
 * that the drill can say why it skipped them.
 */
export async function backupCandidates(
  store: ObjectStore,
  layout: Layout,
  job: string,
  choice: BackupChoice,
  t0: Date,
  random: () => number,
): Promise<CatalogEntry[]> {
  const entries = await listBackups(store, layout, job);
  if (choice.by === "id") {
    const entry = entries.find((e) => e.id === choice.id);
    if (!entry) {
      throw new LifeboatError("BACKUP_NOT_FOUND", `no backup "${choice.id}" of job "${job}"`, {
        kind: "run",
        hint: entries.length ? `run "lifeboat list ${job}" to see the ${entries.length} backups` : "the job has no backups yet",
      });
    }
    return [entry];
  }
  const pointOf = (e: CatalogEntry) => (e.manifest ? Date.parse(e.manifest.consistentAt) : (backupIdTime(e.id)?.getTime() ?? 0));
  const newestFirst = [...entries].sort((a, b) => pointOf(b) - pointOf(a) || b.id.localeCompare(a.id));
  const until = choice.by === "at" ? choice.at.getTime() : t0.getTime();
  let candidates = newestFirst.filter((e) => pointOf(e) <= until);
  if (choice.by === "random-within") {
    const inWindow = candidates.filter((e) => e.manifest && pointOf(e) >= t0.getTime() - choice.withinMs);
    if (inWindow.length === 0) {
      throw new LifeboatError("BACKUP_NOT_FOUND", `job "${job}" has no complete backup from the last ${Math.round(choice.withinMs / 3_600_000)}h to pick at random`, {
        kind: "run",
        hint: `run "lifeboat backup ${job}" first`,
      });
    }
    const picked = inWindow[Math.min(inWindow.length - 1, Math.floor(random() * inWindow.length))]!;
    candidates = candidates.slice(candidates.indexOf(picked));
  }
  if (!candidates.some((e) => e.manifest)) {
    const when = choice.by === "at" ? ` at or before ${choice.at.toISOString()}` : "";
    throw new LifeboatError("BACKUP_NOT_FOUND", `job "${job}" has no complete backup${when}`, {
      kind: "run",
      hint: entries.length ? `the oldest is from ${entries.map((e) => e.manifest?.consistentAt).filter(Boolean).sort()[0] ?? "(none usable)"}` : `run "lifeboat backup ${job}" first`,
    });
  }
  return candidates;
}

/** Failures that mean this backup's stored bytes or manifest are bad, so an older backup may still be good. */
const INTEGRITY_CODES = new Set([
  "MANIFEST_INVALID",
  "VERIFY_MISSING_OBJECT",
  "VERIFY_SIZE_MISMATCH",
  "VERIFY_HASH_MISMATCH",
  "AGE_HEADER_INVALID",
  "AGE_HEADER_MAC_MISMATCH",
  "AGE_PAYLOAD_CORRUPT",
  "AGE_TRUNCATED",
]);

export function isIntegrityFailure(error: unknown): boolean {
  return error instanceof LifeboatError && INTEGRITY_CODES.has(error.code);
}
