import { Writable, type Readable } from "node:stream";
import { LifeboatError } from "../model/errors.js";
import { objectCodec, type Manifest, type ManifestObject } from "../model/manifest.js";
import type { AgeIdentity } from "../pipeline/age/index.js";
import { decodeChain } from "../pipeline/codec-chain.js";
import { settleAll } from "../model/settle.js";
import type { Layout } from "../storage/layout.js";
import type { ObjectStore } from "../storage/store.js";

/**
 * Reads one stored object of a backup back through the codec chain into
 * `consume`, and checks the stored bytes' size and SHA-256 against the
 * manifest. The check completes only after the whole stream was read, so
 * callers that write somewhere (restore) must do so provisionally and commit
 * only when this resolves.
 */
export interface ReadOptions {
  identities: readonly AgeIdentity[];
  /** false: only read and hash the stored bytes (no decryption or decompression). Default true. */
  decode?: boolean;
  signal?: AbortSignal | undefined;
  onStoredBytes?: ((sizeBytes: number) => void) | undefined;
  /** Called with `performance.now()` at each mark, for drills that time the phases of a restore. */
  onMark?: ((mark: ReadMark, monotonicMs: number) => void) | undefined;
}

/** requested: the object was asked for; first-byte: stored bytes arrive; stored-end: the last stored byte arrived; decoded-end: the decoded stream ended. */
export type ReadMark = "requested" | "first-byte" | "stored-end" | "decoded-end";

export async function readBackupObject(
  store: ObjectStore,
  layout: Layout,
  manifest: Manifest,
  object: ManifestObject,
  consume: (decoded: Readable) => Promise<void>,
  options: ReadOptions,
): Promise<void> {
  const key = layout.objectKey(manifest.job, manifest.id, object.key);
  const where = `object "${object.key}" of backup ${manifest.id} of job "${manifest.job}"`;
  const head = await store.head(key);
  if (!head) {
    throw new LifeboatError("VERIFY_MISSING_OBJECT", `${where} is missing from the store`, { kind: "verification" });
  }
  if (head.sizeBytes !== object.sizeBytes) {
    throw new LifeboatError("VERIFY_SIZE_MISMATCH", `${where} has ${head.sizeBytes} bytes in the store; the manifest says ${object.sizeBytes}`, {
      kind: "verification",
    });
  }
  const corrupt = (actual: { sizeBytes: number; sha256: string | undefined }) =>
    new LifeboatError(
      "VERIFY_HASH_MISMATCH",
      actual.sha256
        ? `${where} is corrupt: read ${actual.sizeBytes} bytes with SHA-256 ${actual.sha256}, the manifest says ${object.sizeBytes} bytes with SHA-256 ${object.sha256}`
        : `${where} is corrupt: read more than the ${object.sizeBytes} bytes the manifest says`,
      { kind: "verification", details: { key: object.key, expectedSha256: object.sha256, actualSha256: actual.sha256 ?? null } },
    );
  const mark = options.onMark;
  mark?.("requested", performance.now());
  const stored = await store.get(key, options.signal ? { signal: options.signal } : {});
  let firstByte = true;
  const chain = decodeChain(stored, {
    // Checked before the decoded stream ends, so a consumer never commits wrong bytes.
    expect: { sizeBytes: object.sizeBytes, sha256: object.sha256, mismatch: corrupt },
    codec: options.decode === false ? [] : objectCodec(manifest, object),
    identities: options.identities,
    context: `reading ${where}`,
    signal: options.signal,
    onStoredBytes:
      mark || options.onStoredBytes
        ? (sizeBytes) => {
            if (firstByte) mark?.("first-byte", performance.now());
            firstByte = false;
            options.onStoredBytes?.(sizeBytes);
          }
        : undefined,
  });
  if (mark) {
    chain.storedTap.once("finish", () => mark("stored-end", performance.now()));
    chain.output.once("end", () => mark("decoded-end", performance.now()));
  }
  const consumed = consume(chain.output);
  // If the consumer gives up, stop reading (and stop the decoding tools, whose
  // failures then count as echoes: see toolStage).
  consumed.catch(() => chain.output.destroy());
  const [read] = await Promise.allSettled([chain.done, consumed]);
  // Wrong bytes explain every later failure (bad decryption, a broken archive): check them first.
  const { sizeBytes } = chain.storedTap;
  if (read.status === "fulfilled" && (sizeBytes !== object.sizeBytes || chain.storedTap.sha256() !== object.sha256)) {
    throw corrupt({ sizeBytes, sha256: chain.storedTap.sha256() });
  }
  await settleAll(chain.done, [consumed]);
}

/** A sink that discards what it reads (for verification). */
export async function drain(stream: Readable): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const sink = new Writable({ write: (_chunk, _enc, cb) => cb(), highWaterMark: 1024 * 1024 });
    stream.pipe(sink);
    sink.on("finish", resolve);
    stream.on("error", reject);
    sink.on("error", reject);
  });
}

/**
 * Before anything is downloaded or written: an encrypted backup needs an
 * identity that matches one of its recipients.
 */
export function assertCanDecrypt(manifest: Manifest, identities: readonly AgeIdentity[]): void {
  if (!manifest.encryption) return;
  const recipients = manifest.encryption.recipients;
  if (identities.length === 0) {
    throw new LifeboatError("DECRYPT_NO_IDENTITY", `backup ${manifest.id} of job "${manifest.job}" is encrypted and no identity is configured`, {
      kind: "usage",
      hint: "set encryption.identity to ${file:…} pointing at the age identity file",
    });
  }
  if (!identities.some((i) => recipients.includes(i.recipient))) {
    throw new LifeboatError(
      "DECRYPT_WRONG_KEY",
      `the configured identity cannot decrypt backup ${manifest.id} of job "${manifest.job}": it was encrypted to ${recipients.join(", ")}`,
      { kind: "verification", hint: "use the age identity that matches one of those recipients" },
    );
  }
}
