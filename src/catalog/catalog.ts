import { Readable } from "node:stream";
import { LifeboatError } from "../model/errors.js";
import { checkManifest, type Manifest } from "../model/manifest.js";
import type { Layout } from "../storage/layout.js";
import { VERIFICATION_NAME } from "../storage/layout.js";
import { readJsonObject } from "./small-object.js";
import type { ObjectStore } from "../storage/store.js";

/**
 * The bucket is the catalog: a backup exists when its manifest does. Listing
 * reads every manifest under the prefix (or one job's folder) and checks it;
 * a manifest that fails the check is reported, never used.
 */
export interface CatalogEntry {
  job: string;
  id: string;
  manifestKey: string;
  manifest: Manifest | undefined;
  /** Why the manifest cannot be used, when it cannot. */
  problems: string[];
  /** The latest `verify` result stored next to the manifest, if any. */
  verification: VerificationRecord | undefined;
}

/** Stored as `<job>/<id>/verification.json` by `verify`. */
export interface VerificationRecord {
  version: 1;
  verifiedAt: string;
  ok: boolean;
  decrypted: boolean;
  problems: string[];
}

const MAX_MANIFEST_BYTES = 1024 * 1024;

export async function listBackups(store: ObjectStore, layout: Layout, job?: string): Promise<CatalogEntry[]> {
  const manifests: Array<{ job: string; id: string; key: string }> = [];
  const verifications = new Set<string>();
  for await (const object of store.list(layout.listPrefix(job))) {
    const parsed = layout.parseManifestKey(object.key);
    if (parsed) manifests.push({ ...parsed, key: object.key });
    else if (object.key.endsWith(`/${VERIFICATION_NAME}`)) verifications.add(object.key);
  }
  const entries = await mapLimit(manifests, 8, async ({ job, id, key }): Promise<CatalogEntry> => {
    const entry: CatalogEntry = { job, id, manifestKey: key, manifest: undefined, problems: [], verification: undefined };
    try {
      const raw = await readJsonObject(store, key, MAX_MANIFEST_BYTES);
      const check = checkManifest(raw, { job, id });
      if (check.ok) entry.manifest = check.manifest;
      else entry.problems = check.problems;
    } catch (error) {
      if (error instanceof LifeboatError && error.code !== "CATALOG_JSON_INVALID") throw error;
      entry.problems = [(error as Error).message];
    }
    const verificationKey = layout.verificationKey(job, id);
    if (verifications.has(verificationKey)) {
      entry.verification = (await readJsonObject(store, verificationKey, MAX_MANIFEST_BYTES).catch(() => undefined)) as VerificationRecord | undefined;
    }
    return entry;
  });
  return entries.sort((a, b) => a.job.localeCompare(b.job) || a.id.localeCompare(b.id));
}

export interface BackupSelector {
  /** An exact backup id. */
  id?: string | undefined;
  /** The newest backup whose consistentAt is at or before this time. */
  at?: Date | undefined;
}

/**
 * Picks one usable backup of a job: by id, by point in time, or the newest.
 * Fails with a message that says what exists when nothing matches.
 */
export async function resolveBackup(store: ObjectStore, layout: Layout, job: string, selector: BackupSelector = {}): Promise<Manifest> {
  const entries = await listBackups(store, layout, job);
  if (selector.id !== undefined) {
    const entry = entries.find((e) => e.id === selector.id);
    if (!entry) {
      throw new LifeboatError("BACKUP_NOT_FOUND", `no backup "${selector.id}" of job "${job}"`, {
        kind: "usage",
        hint: entries.length ? `run "lifeboat list ${job}" to see the ${entries.length} backups` : "the job has no backups yet",
      });
    }
    if (!entry.manifest) {
      throw new LifeboatError("MANIFEST_INVALID", `the manifest of backup "${selector.id}" of job "${job}" is invalid: ${entry.problems.join("; ")}`, {
        kind: "verification",
      });
    }
    return entry.manifest;
  }
  const usable = entries.flatMap((e) => (e.manifest ? [e.manifest] : []));
  const candidates = selector.at
    ? usable.filter((m) => Date.parse(m.consistentAt) <= selector.at!.getTime())
    : usable;
  candidates.sort((a, b) => Date.parse(a.consistentAt) - Date.parse(b.consistentAt) || a.id.localeCompare(b.id));
  const chosen = candidates[candidates.length - 1];
  if (!chosen) {
    const when = selector.at ? ` at or before ${selector.at.toISOString()}` : "";
    throw new LifeboatError("BACKUP_NOT_FOUND", `job "${job}" has no complete backup${when}`, {
      kind: "usage",
      hint: usable.length ? `the oldest is from ${usable.map((m) => m.consistentAt).sort()[0]}` : `run "lifeboat backup ${job}" first`,
    });
  }
  return chosen;
}

export async function writeVerification(store: ObjectStore, layout: Layout, manifest: Manifest, record: VerificationRecord): Promise<void> {
  const body = Buffer.from(`${JSON.stringify(record, null, 2)}\n`);
  await store.put(layout.verificationKey(manifest.job, manifest.id), Readable.from([body]), { contentType: "application/json" });
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!);
    }
  });
  await Promise.all(workers);
  return results;
}
