import { Readable } from "node:stream";
import { LifeboatError } from "../model/errors.js";
import { mapLimit } from "../model/map-limit.js";
import { checkManifest, type Manifest } from "../model/manifest.js";
import type { Layout } from "../storage/layout.js";
import { VERIFICATION_NAME } from "../storage/layout.js";
import { readJsonObject } from "./small-object.js";
import type { ObjectInfo, ObjectStore } from "../storage/store.js";

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

/**
 * Checked manifests by key, for a long-running process (the daemon) that lists
 * the same folders again and again. A manifest is written once and never
 * changed, so an entry stays valid while the object's size and time are the
 * same; anything else is read again.
 */
export class ManifestCache {
  private readonly entries = new Map<string, { stamp: string; manifest: Manifest | undefined; problems: string[] }>();

  get(object: ObjectInfo): { manifest: Manifest | undefined; problems: string[] } | undefined {
    const hit = this.entries.get(object.key);
    return hit && hit.stamp === stampOf(object) ? hit : undefined;
  }

  set(object: ObjectInfo, value: { manifest: Manifest | undefined; problems: string[] }): void {
    this.entries.set(object.key, { stamp: stampOf(object), ...value });
  }

  /** Forgets the keys that were not seen under `prefix` in the latest listing. */
  retainOnly(prefix: string, seen: ReadonlySet<string>): void {
    for (const key of this.entries.keys()) if (key.startsWith(prefix) && !seen.has(key)) this.entries.delete(key);
  }
}

function stampOf(object: ObjectInfo): string {
  return `${object.sizeBytes}:${object.lastModified?.getTime() ?? ""}`;
}

export interface ListOptions {
  /** Reuse manifests read before (the daemon keeps one). */
  cache?: ManifestCache;
  /** Also read each backup's verification.json (default true). */
  verifications?: boolean;
}

export async function listBackups(store: ObjectStore, layout: Layout, job?: string, options: ListOptions = {}): Promise<CatalogEntry[]> {
  const manifests: Array<{ job: string; id: string; object: ObjectInfo }> = [];
  const verifications = new Set<string>();
  const prefix = layout.listPrefix(job);
  for await (const object of store.list(prefix)) {
    const parsed = layout.parseManifestKey(object.key);
    if (parsed) manifests.push({ ...parsed, object });
    else if (object.key.endsWith(`/${VERIFICATION_NAME}`)) verifications.add(object.key);
  }
  const { cache } = options;
  cache?.retainOnly(prefix, new Set(manifests.map((m) => m.object.key)));
  const entries = await mapLimit(manifests, 8, async ({ job, id, object }): Promise<CatalogEntry> => {
    let read = cache?.get(object);
    if (!read) {
      read = await readManifest(store, object.key, { job, id });
      cache?.set(object, read);
    }
    const entry: CatalogEntry = { job, id, manifestKey: object.key, ...read, verification: undefined };
    const verificationKey = layout.verificationKey(job, id);
    if (options.verifications !== false && verifications.has(verificationKey)) {
      entry.verification = (await readJsonObject(store, verificationKey, MAX_MANIFEST_BYTES).catch(() => undefined)) as VerificationRecord | undefined;
    }
    return entry;
  });
  return entries.sort((a, b) => a.job.localeCompare(b.job) || a.id.localeCompare(b.id));
}

/** Reads and checks one manifest; a malformed one is reported in `problems`, never used. */
async function readManifest(store: ObjectStore, key: string, expected: { job: string; id: string }): Promise<{ manifest: Manifest | undefined; problems: string[] }> {
  try {
    const check = checkManifest(await readJsonObject(store, key, MAX_MANIFEST_BYTES), expected);
    return check.ok ? { manifest: check.manifest, problems: [] } : { manifest: undefined, problems: check.problems };
  } catch (error) {
    if (error instanceof LifeboatError && error.code !== "CATALOG_JSON_INVALID") throw error;
    return { manifest: undefined, problems: [(error as Error).message] };
  }
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
