import { z } from "zod";
import { BACKUP_ID_PATTERN } from "./backup-id.js";
import { NAME_PATTERN } from "./names.js";

/**
 * The manifest is the last object written for a backup and the only proof that
 * it is complete: no manifest, no backup. It holds every fact needed to restore
 * by hand (codec chain, recipients, sizes and hashes of the stored bytes).
 *
 * Object `key`s are names relative to the backup's folder
 * (`<prefix><job>/<id>/`), so a bucket can be moved under another prefix.
 */
export const MANIFEST_VERSION = 1;

/** A name inside a backup folder: no slashes, no dots at the start. */
const OBJECT_NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/;

const isoTime = z.iso.datetime({ offset: true });

/**
 * Dump formats (first entry of a codec chain) and the transforms applied after them.
 * `pg_dump-custom` is `pg_dump -Fc`; `sql` a plain SQL script (mariadb-dump, pg_dumpall --globals-only).
 */
export const CodecSchema = z.enum(["tar", "stream", "pg_dump-custom", "sql", "zstd", "gzip", "age"]);
const CodecChainSchema = z.array(CodecSchema).min(1);

export const ManifestObjectSchema = z.strictObject({
  key: z.string().regex(OBJECT_NAME, "must be a plain object name inside the backup folder"),
  /** What the object holds, e.g. "data" or "globals". */
  role: z.string().regex(NAME_PATTERN),
  /** Size of the stored bytes (after compression and encryption). */
  sizeBytes: z.number().int().nonnegative(),
  /** SHA-256 of the stored bytes, lower-case hex. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Size of the source stream before compression and encryption. */
  sourceBytes: z.number().int().nonnegative(),
  /** This object's codec steps, when they differ from the manifest's (e.g. a SQL globals script next to a pg_dump archive). */
  codec: CodecChainSchema.optional(),
});

export const BackupStatusSchema = z.enum(["succeeded", "partial"]);

export const ManifestSchema = z.strictObject({
  version: z.literal(MANIFEST_VERSION),
  id: z.string().regex(BACKUP_ID_PATTERN),
  job: z.string().regex(NAME_PATTERN),
  status: BackupStatusSchema,
  source: z.strictObject({
    kind: z.string().regex(NAME_PATTERN),
    /** Tool and version that produced the stream, e.g. "tar (GNU tar) 1.34". */
    tool: z.string().max(200).optional(),
    serverVersion: z.string().max(200).optional(),
    /** What was backed up, for people (paths, a command name); never secrets. */
    description: z.string().max(2000).optional(),
  }),
  startedAt: isoTime,
  finishedAt: isoTime,
  /** The point in time the data represents. */
  consistentAt: isoTime,
  /** Applied in order when writing: e.g. ["tar", "zstd", "age"]. Read back in reverse. */
  codec: CodecChainSchema,
  objects: z.array(ManifestObjectSchema).min(1),
  encryption: z
    .strictObject({
      format: z.literal("age-v1"),
      recipients: z.array(z.string().regex(/^age1[02-9ac-hj-np-z]{58}$/)).min(1),
    })
    .nullable(),
  warnings: z.array(z.string().max(2000)).default([]),
  lifeboat: z.strictObject({ version: z.string().max(50) }),
  /**
   * The scheduled run that made this backup, when one did (daemon or `lifeboat run`):
   * its slot, and the fencing token of the job's lease when the manifest was written.
   * Of two manifests for one slot, the higher token is the lease holder's.
   */
  run: z
    .strictObject({
      scheduledAt: isoTime,
      trigger: z.enum(["schedule", "catch-up", "external"]),
      fencingToken: z.number().int().positive(),
      instance: z.string().max(200),
    })
    .optional(),
});

export type Manifest = z.infer<typeof ManifestSchema>;
export type ManifestObject = z.infer<typeof ManifestObjectSchema>;
export type BackupStatus = z.infer<typeof BackupStatusSchema>;
export type Codec = z.infer<typeof CodecSchema>;

/** The codec steps of one stored object, as written (format first). */
export function objectCodec(manifest: Manifest, object: ManifestObject): Codec[] {
  return object.codec ?? manifest.codec;
}

/** The object that holds the backed-up data itself (role "data", else the first). */
export function dataObject(manifest: Manifest): ManifestObject {
  return manifest.objects.find((o) => o.role === "data") ?? manifest.objects[0]!;
}

export type ManifestCheck = { ok: true; manifest: Manifest } | { ok: false; problems: string[] };

/**
 * Checks a manifest read from storage before anything is downloaded or written:
 * the schema, and that it really belongs where it was found (`job`, `id`).
 */
export function checkManifest(raw: unknown, expected: { job: string; id: string }): ManifestCheck {
  const parsed = ManifestSchema.safeParse(raw);
  if (!parsed.success) {
    return {
      ok: false,
      problems: parsed.error.issues.map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`),
    };
  }
  const m = parsed.data;
  const problems: string[] = [];
  if (m.job !== expected.job) problems.push(`job is "${m.job}" but the manifest is stored under job "${expected.job}"`);
  if (m.id !== expected.id) problems.push(`id is "${m.id}" but the manifest is stored under id "${expected.id}"`);
  const keys = new Set<string>();
  for (const o of m.objects) {
    if (o.key === "manifest.json") problems.push(`object "${o.key}" collides with the manifest itself`);
    if (keys.has(o.key)) problems.push(`object "${o.key}" is listed twice`);
    keys.add(o.key);
  }
  if (Date.parse(m.finishedAt) < Date.parse(m.startedAt)) problems.push("finishedAt is before startedAt");
  for (const chain of [m.codec, ...m.objects.flatMap((o) => (o.codec ? [o.codec] : []))]) {
    if (chain.includes("age") !== (m.encryption !== null)) {
      problems.push("codec and encryption disagree about age encryption");
      break;
    }
  }
  return problems.length ? { ok: false, problems } : { ok: true, manifest: m };
}
