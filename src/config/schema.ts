import { z } from "zod";
import { parseDurationMs } from "../model/duration.js";
import { NAME_PATTERN, NAME_RULE } from "../model/names.js";
import { cronProblem } from "../schedule/cron.js";

/**
 * The shape of `lifeboat.yaml`, after `${env:…}`/`${file:…}` references are
 * resolved. Every object is strict: unknown keys are errors. Descriptions end
 * up in the JSON Schema that `lifeboat schema` prints for editors.
 */

export const name = z.string().regex(NAME_PATTERN, `must be ${NAME_RULE}`);

export const duration = z
  .string()
  .refine((s) => parseDurationMs(s) !== undefined && parseDurationMs(s)! > 0, {
    message: "must be a positive duration like 90s, 15m, 1h, 1h30m, 7d",
  })
  .describe("a duration: 90s, 15m, 1h, 1h30m, 7d, 2w");

const cron = z
  .string()
  .superRefine((s, ctx) => {
    if (!/^\S+(\s+\S+){4,5}$/.test(s.trim())) ctx.addIssue({ code: "custom", message: "must be a cron expression with 5 or 6 fields" });
    else {
      const problem = cronProblem(s);
      if (problem) ctx.addIssue({ code: "custom", message: problem.replace(/^is not a valid cron expression/, "must be a valid cron expression") });
    }
  })
  .describe('a cron expression, e.g. "0 * * * *" (minute hour day month weekday, optionally seconds first)');

/** An IANA time zone name that this Node.js knows, e.g. Europe/Berlin. */
const timezone = z
  .string()
  .refine((tz) => {
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  }, { message: "must be an IANA time zone such as UTC, Europe/Berlin or America/New_York" })
  .describe("IANA time zone the schedule is read in (default: the machine's)");

/** A host:port to listen on; loopback unless the user says otherwise. */
const listenAddress = z.string().refine((s) => /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(s) && Number(s.slice(s.lastIndexOf(":") + 1)) <= 65535, {
  message: 'must be HOST:PORT with a port of 0-65535, e.g. "127.0.0.1:9464"',
});

export const nonEmpty = z.string().min(1, "must not be empty");

export const S3StorageSchema = z
  .strictObject({
    type: z.literal("s3"),
    endpoint: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).optional().describe("S3 endpoint URL; omit for AWS S3"),
    region: nonEmpty.default("us-east-1"),
    bucket: nonEmpty.describe("bucket name"),
    prefix: z.string().default("").describe('key prefix for everything Lifeboat stores, e.g. "prod/"'),
    forcePathStyle: z.boolean().default(false).describe("path-style URLs (MinIO, Ceph RGW and most self-hosted stores need true)"),
    credentials: z
      .strictObject({
        accessKeyId: nonEmpty.describe("${env:…} or ${file:…} reference"),
        secretAccessKey: nonEmpty.describe("${env:…} or ${file:…} reference"),
        sessionToken: nonEmpty.optional().describe("${env:…} or ${file:…} reference"),
      })
      .optional()
      .describe("omit to use the AWS default credential chain"),
    checksum: z
      .enum(["when-required", "when-supported"])
      .default("when-required")
      .describe("SDK request checksums: when-supported is the SDK default; when-required works with stores that reject aws-chunked trailers"),
    partSizeMiB: z.number().int().min(5).max(5120).default(16).describe("multipart part size in MiB"),
    concurrency: z.number().int().min(1).max(16).default(4).describe("parts uploaded at once"),
    maxAttempts: z.number().int().min(1).max(20).default(5).describe("attempts per request, with jittered back-off"),
    stallTimeout: duration.default("60s").describe("a connection with no progress for this long is dropped and the request retried"),
    objectLock: z
      .strictObject({
        mode: z.enum(["governance", "compliance"]).describe("S3 Object Lock mode: governance (a privileged bypass can delete early) or compliance (nobody can)"),
        retain: duration.describe("how long every object of a backup is locked after it is written, e.g. 30d"),
      })
      .optional()
      .describe("write every backup object with an Object Lock retention date (the bucket must have Object Lock enabled)"),
  })
  .describe("an S3-compatible bucket");

export const FilesystemStorageSchema = z
  .strictObject({
    type: z.literal("filesystem"),
    path: nonEmpty.describe("directory used as an object store (relative to this file)"),
    prefix: z.string().default(""),
  })
  .describe("a local directory used as an object store");

export const StorageSchema = z.discriminatedUnion("type", [S3StorageSchema, FilesystemStorageSchema]);

export const FilesSourceSchema = z.strictObject({
  type: z.literal("files"),
  paths: z.array(nonEmpty).min(1, "needs at least one path").describe("files or folders to back up (relative to this file)"),
  exclude: z.array(nonEmpty).default([]).describe("tar --exclude patterns, e.g. *.tmp"),
});

export const argv = z.array(z.string()).min(1, "needs at least the program to run");

export const CommandSourceSchema = z.strictObject({
  type: z.literal("command"),
  command: argv.describe("argv of the command whose stdout is the backup"),
  restore: argv.optional().describe("argv of the command that reads a backup on stdin"),
  env: z.record(z.string(), z.string()).default({}).describe("extra environment (use references for secrets)"),
});

/** Either `url` or the discrete fields; a password always comes from a reference. */
const connectionFields = {
  url: nonEmpty.optional().describe("database URL; use ${env:NAME} when it holds a password"),
  host: nonEmpty.optional().describe("server host name or address"),
  port: z.number().int().min(1).max(65535).optional(),
  socket: nonEmpty.optional().describe("Unix socket directory (PostgreSQL) or file (MariaDB) instead of host/port"),
  user: nonEmpty.optional(),
  password: nonEmpty.optional().describe("${env:…} or ${file:…} reference; reaches the tools through their environment, never argv"),
  database: nonEmpty.optional().describe("the database to back up"),
};

const bin = nonEmpty.optional().describe("folder holding the tools (default: PATH, then pg_config --bindir for PostgreSQL)");

export const PostgresSourceSchema = z.strictObject({
  type: z.literal("postgres"),
  ...connectionFields,
  sslmode: z.enum(["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]).optional(),
  globals: z.boolean().default(false).describe("also back up roles and tablespaces (pg_dumpall --globals-only; needs a superuser)"),
  noOwner: z.boolean().optional().describe("restore without ownership and GRANTs (default: true unless the backup has globals)"),
  restoreJobs: z.number().int().min(1).max(64).optional().describe("pg_restore --jobs for large restores (default: number of CPUs, at most 8)"),
  stageAboveMiB: z
    .number()
    .int()
    .min(0)
    .optional()
    .describe(
      "dumps at least this large are staged to a file and restored with --jobs; smaller ones stream in one transaction (0: always stage; default 1024 with 4 or more CPUs, else never)",
    ),
  bin,
});

export const MariadbSourceSchema = z.strictObject({
  type: z.literal("mariadb"),
  ...connectionFields,
  bin: nonEmpty.optional().describe("folder holding mariadb-dump/mysqldump and mariadb/mysql (default: PATH)"),
});

export const SourceSchema = z.discriminatedUnion("type", [FilesSourceSchema, CommandSourceSchema, PostgresSourceSchema, MariadbSourceSchema]);

export const ScratchSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("directory") }).describe("a fresh temporary folder"),
  z
    .strictObject({
      type: z.literal("postgres"),
      server: nonEmpty.optional().describe("URL of an existing server to create a scratch database on (${env:…}); omit for an ephemeral cluster"),
      runAs: nonEmpty.default("postgres").describe("unprivileged user an ephemeral cluster runs as when lifeboat runs as root"),
      bin,
    })
    .describe("an ephemeral PostgreSQL cluster, or a scratch database on an existing server"),
  z
    .strictObject({
      type: z.literal("mariadb"),
      runAs: nonEmpty.default("mysql").describe("unprivileged user the ephemeral server runs as when lifeboat runs as root"),
      bin: nonEmpty.optional().describe("folder holding mariadb-install-db, mariadbd and mariadb (default: PATH)"),
    })
    .describe("an ephemeral MariaDB server"),
  z
    .strictObject({
      type: z.literal("command"),
      up: argv.describe("argv that creates the environment and prints its connection details as a JSON object"),
      down: argv.describe("argv that removes it (details arrive as LIFEBOAT_SCRATCH_* variables)"),
      env: z.record(z.string(), z.string()).default({}),
    })
    .describe("your own up/down commands (Docker, Kubernetes, Terraform…)"),
]);

const keep = z.number().int().min(0);

export const RetentionSchema = z.strictObject({
  keepLast: keep.optional(),
  keepHourly: keep.optional(),
  keepDaily: keep.optional(),
  keepWeekly: keep.optional(),
  keepMonthly: keep.optional(),
  keepYearly: keep.optional(),
  keepWithin: duration.optional(),
});

export const JobSchema = z.strictObject({
  source: SourceSchema,
  storage: name.optional().describe("name of an entry under storage; optional when there is only one"),
  schedule: cron.optional(),
  compression: z.enum(["zstd", "gzip", "none"]).default("zstd"),
  compressionLevel: z.number().int().min(1).max(19).optional().describe("zstd 1-19 (default 3), gzip 1-9 (default 6)"),
  encrypt: z.boolean().default(true).describe("encrypt to encryption.recipients (default true when encryption is configured)"),
  allowEmpty: z.boolean().default(false).describe("accept a source that produces no data"),
  retention: RetentionSchema.optional(),
  rpo: duration.optional().describe("recovery point objective: the newest backup should never be older"),
  timezone: timezone.optional(),
  overlap: z
    .enum(["skip", "queue-one"])
    .default("skip")
    .describe("when a scheduled run is due while the previous one still runs: skip it, or queue one run to start after it"),
  catchUp: z
    .enum(["none", "one"])
    .default("one")
    .describe("on daemon start, run once if the newest complete backup is older than one schedule interval (never a burst)"),
});

export const EncryptionSchema = z.strictObject({
  recipients: z
    .array(z.string().regex(/^age1[02-9ac-hj-np-z]{58}$/, "must be an age X25519 recipient (age1…)"))
    .default([])
    .describe("age public keys; backups are encrypted to all of them"),
  identity: nonEmpty.optional().describe("${file:…} reference to an age identity file, needed to verify and restore"),
});

export const NotificationEventSchema = z.enum(["backup-failed", "drill-failed", "rpo-exceeded", "daemon-downtime"]);

const notificationCommon = {
  on: z
    .array(NotificationEventSchema)
    .min(1)
    .optional()
    .describe("events to send (default: all of backup-failed, drill-failed, rpo-exceeded, daemon-downtime)"),
  attempts: z.number().int().min(1).max(20).default(5).describe("delivery attempts, with exponential back-off"),
  timeout: duration.default("10s").describe("time allowed for one delivery attempt"),
};

export const NotificationSchema = z.discriminatedUnion("type", [
  z
    .strictObject({
      type: z.literal("webhook"),
      url: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).describe("receives a JSON POST per event"),
      secret: nonEmpty.optional().describe("${env:…} or ${file:…} reference: signs each body with HMAC-SHA256 (X-Lifeboat-Signature: sha256=<hex>)"),
      headers: z.record(z.string(), z.string()).default({}).describe("extra request headers (use references for tokens)"),
      ...notificationCommon,
    })
    .describe("a generic webhook: JSON body, optional HMAC signature"),
  z
    .strictObject({
      type: z.literal("slack"),
      url: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).describe("a Slack-compatible incoming webhook URL (${env:…}: it is a secret)"),
      ...notificationCommon,
    })
    .describe("a Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat)"),
]);

export const DaemonSchema = z.strictObject({
  listen: listenAddress.default("127.0.0.1:9464").describe("address of /metrics and /healthz (loopback by default)"),
  concurrency: z.number().int().min(1).max(64).default(2).describe("runs (backups and drills) at once, across all jobs"),
  gracePeriod: duration.default("5m").describe("on SIGTERM/SIGINT, how long running backups and drills may take to finish before they are aborted"),
  multiInstance: z
    .boolean()
    .default(false)
    .describe("several daemons share this storage: each scheduled run is claimed with a conditional write (the store must enforce them)"),
  lease: duration.default("2m").describe("how long a run's claim holds without renewal; a crashed daemon's run is abandoned after this"),
  freshnessCheck: duration.default("1m").describe("how often RPO exposure is checked against each job's rpo"),
});

export const ConfigSchema = z
  .strictObject({
    storage: z.record(name, StorageSchema).default({}).describe("named storage locations"),
    encryption: EncryptionSchema.optional(),
    jobs: z.record(name, JobSchema).default({}).describe("named backup jobs"),
    scratch: z.record(name, ScratchSchema).default({}).describe("named scratch environments for restores and drills (--to scratch:NAME)"),
    drills: z
      .record(
        name,
        z.strictObject({
          plan: nonEmpty.describe("the restore plan file (relative to this file)"),
          schedule: cron.optional().describe("when the daemon runs this drill"),
          timezone: timezone.optional(),
        }),
      )
      .default({})
      .describe("named drills: `lifeboat drill NAME` runs the plan; the daemon runs it on its schedule"),
    daemon: DaemonSchema.default(DaemonSchema.parse({})).describe("the scheduler daemon (`lifeboat daemon`)"),
    prune: z
      .strictObject({
        orphanGrace: duration.default("24h").describe("objects without a manifest, and unfinished uploads, older than this are removed by prune"),
      })
      .default({ orphanGrace: "24h" })
      .describe("how prune cleans up after interrupted runs"),
    notifications: z.record(name, NotificationSchema).default({}).describe("named notification channels"),
  })
  .describe("Lifeboat configuration (lifeboat.yaml)");

export type RawConfig = z.output<typeof ConfigSchema>;
export type S3StorageConfig = z.output<typeof S3StorageSchema>;
export type FilesystemStorageConfig = z.output<typeof FilesystemStorageSchema>;
export type StorageConfig = z.output<typeof StorageSchema>;
export type SourceConfig = z.output<typeof SourceSchema>;
export type FilesSourceConfig = z.output<typeof FilesSourceSchema>;
export type CommandSourceConfig = z.output<typeof CommandSourceSchema>;
export type RawJob = z.output<typeof JobSchema>;
export type ScratchConfig = z.output<typeof ScratchSchema>;
export type DaemonConfig = z.output<typeof DaemonSchema>;
export type NotificationConfig = z.output<typeof NotificationSchema>;
export type NotificationEvent = z.output<typeof NotificationEventSchema>;

/** Fields whose value must come from a reference, never inline. Paths use "*" for any name. */
export const SECRET_FIELDS: ReadonlyArray<ReadonlyArray<string>> = [
  ["storage", "*", "credentials", "secretAccessKey"],
  ["storage", "*", "credentials", "sessionToken"],
  ["encryption", "identity"],
  ["jobs", "*", "source", "password"],
  ["notifications", "*", "secret"],
];

export function configJsonSchema(): unknown {
  return z.toJSONSchema(ConfigSchema, { io: "input", unrepresentable: "any" });
}
