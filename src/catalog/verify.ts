import type { Logger } from "../log/logger.js";
import { silentLogger } from "../log/logger.js";
import { LifeboatError } from "../model/errors.js";
import type { Manifest } from "../model/manifest.js";
import type { AgeIdentity } from "../pipeline/age/index.js";
import type { Layout } from "../storage/layout.js";
import type { ObjectStore } from "../storage/store.js";
import { writeVerification, type VerificationRecord } from "./catalog.js";
import { assertCanDecrypt, drain, readBackupObject } from "./read-backup.js";

/**
 * Reads every object of a backup back, checks size and SHA-256 against the
 * manifest, and — when an identity is configured — decrypts and decompresses
 * the whole stream. The outcome is stored next to the manifest.
 */
export interface VerifyOutcome {
  manifest: Manifest;
  ok: boolean;
  decrypted: boolean;
  problems: Array<{ code: string; message: string }>;
  durationMs: number;
}

export async function verifyBackup(
  store: ObjectStore,
  layout: Layout,
  manifest: Manifest,
  options: { identities: readonly AgeIdentity[]; signal?: AbortSignal | undefined; log?: Logger; now?: () => Date },
): Promise<VerifyOutcome> {
  const started = performance.now();
  const log = (options.log ?? silentLogger).child({ job: manifest.job, backupId: manifest.id });
  const problems: VerifyOutcome["problems"] = [];
  // Without an identity, an encrypted backup is checked by size and hash only.
  const decrypt = !manifest.encryption || options.identities.length > 0;
  if (decrypt) {
    try {
      assertCanDecrypt(manifest, options.identities);
    } catch (error) {
      problems.push({ code: (error as LifeboatError).code, message: (error as Error).message });
    }
  }
  if (problems.length === 0) {
    for (const object of manifest.objects) {
      try {
        await readBackupObject(store, layout, manifest, object, drain, { identities: options.identities, signal: options.signal, decode: decrypt });
      } catch (error) {
        if (options.signal?.aborted) throw error;
        if (!(error instanceof LifeboatError) || error.kind === "usage") throw error;
        problems.push({ code: error.code, message: error.message });
      }
    }
  }
  const ok = problems.length === 0;
  const record: VerificationRecord = {
    version: 1,
    verifiedAt: (options.now?.() ?? new Date()).toISOString(),
    ok,
    decrypted: decrypt && manifest.encryption !== null,
    problems: problems.map((p) => p.message),
  };
  await writeVerification(store, layout, manifest, record).catch((error: unknown) =>
    log.warn({ err: (error as Error).message }, "could not store the verification result"),
  );
  log.info({ ok, decrypted: record.decrypted }, "backup verified");
  return { manifest, ok, decrypted: record.decrypted, problems, durationMs: performance.now() - started };
}
