import { readFileSync, statSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { LifeboatError } from "../model/errors.js";
import { availableParallelism } from "node:os";
import type { BackupJob, DatabaseConnection, SourceSpec } from "../model/job.js";
import { parseDatabaseUrl, type DatabaseFamily } from "../model/connection.js";
import type { NamedScratch, ScratchSpec } from "../model/scratch.js";
import { parseDurationMs } from "../model/duration.js";
import { isValidName } from "../model/names.js";
import { registerSecret } from "../log/redact.js";
import { parseIdentities } from "../pipeline/age/keys.js";
import { formatDiagnostics, sortDiagnostics, type Diagnostic } from "./diagnostics.js";
import { resolveReferences } from "./references.js";
import { ConfigSchema, DaemonSchema, EncryptionSchema, JobSchema, ScratchSchema, SECRET_FIELDS, StorageSchema, type NotificationConfig, type RawConfig, type ScratchConfig, type StorageConfig } from "./schema.js";
import { describeIssues } from "./zod-issues.js";
import { MAX_CONFIG_BYTES, parseYaml, type Path } from "./yaml-document.js";

/** The validated configuration the engines use. */
export interface LifeboatConfig {
  /** The config file as the user named it. */
  file: string;
  /** The folder relative paths in the config are resolved against. */
  baseDir: string;
  storage: Record<string, StorageConfig>;
  encryption: {
    /** age recipients every encrypted backup is encrypted to. */
    recipients: string[];
    /** The age identity file's text, when configured (needed to verify and restore). */
    identity: string | undefined;
  };
  jobs: Record<string, BackupJob>;
  /** Named scratch environments (`scratch:` in the config). */
  scratch: Record<string, ScratchSpec>;
  /** Named drills: drill name → absolute path of its plan file. */
  drills: Record<string, string>;
  /** The drills that have a schedule, for the daemon. */
  scheduledDrills: Record<string, ScheduledDrill>;
  daemon: DaemonSettings;
  /** Objects without a manifest and unfinished uploads older than this are removed by prune. */
  orphanGraceMs: number;
  notifications: Record<string, NotificationConfig>;
}

export interface ScheduledDrill {
  name: string;
  /** Absolute path of the plan file. */
  plan: string;
  schedule: string;
  timezone: string | undefined;
}

export interface DaemonSettings {
  listen: { host: string; port: number };
  concurrency: number;
  gracePeriodMs: number;
  multiInstance: boolean;
  leaseMs: number;
  freshnessCheckMs: number;
}

/**
 * The scratch environment `--to scratch:NAME` means: the one declared under
 * that name, or a kind's defaults when NAME is a kind (`scratch:postgres`).
 */
export function scratchNamed(config: LifeboatConfig, name: string): NamedScratch {
  const declared = config.scratch[name];
  if (declared) return { name, spec: declared };
  const kind = ScratchSchema.safeParse({ type: name });
  if (kind.success && name !== "command") return { name, spec: buildScratch(name, kind.data, config.baseDir, () => {}) };
  const known = [...Object.keys(config.scratch), ...["directory", "postgres", "mariadb"].filter((k) => !(k in config.scratch))];
  throw new LifeboatError("SCRATCH_UNKNOWN", `unknown scratch environment "${name}"; expected one of: ${known.join(", ")}`, { kind: "usage" });
}

export interface LoadedConfig {
  config: LifeboatConfig;
  warnings: Diagnostic[];
}

/** The storage used when the config declares none: a folder next to the config. */
export const DEFAULT_STORAGE_NAME = "local";
export const DEFAULT_STORAGE_PATH = ".lifeboat/store";

/**
 * Reads, validates and resolves a config file. Throws one `LifeboatError`
 * (code CONFIG_INVALID, kind usage) that lists every problem at once.
 */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const result = checkConfig(file, env);
  if (!result.config) {
    throw new LifeboatError("CONFIG_INVALID", result.report, {
      kind: "usage",
      details: { diagnostics: result.diagnostics },
    });
  }
  return { config: result.config, warnings: result.diagnostics.filter((d) => d.severity === "warning") };
}

export interface ConfigCheck {
  config: LifeboatConfig | undefined;
  /** Errors and warnings, sorted by position. */
  diagnostics: Diagnostic[];
  /** The diagnostics rendered with source lines. */
  report: string;
}

export function checkConfig(file: string, env: NodeJS.ProcessEnv = process.env): ConfigCheck {
  const path = resolve(file);
  const diagnostics: Diagnostic[] = [];
  const finish = (config: LifeboatConfig | undefined, text = ""): ConfigCheck => {
    const sorted = sortDiagnostics(diagnostics);
    const hasErrors = sorted.some((d) => d.severity === "error");
    return { config: hasErrors ? undefined : config, diagnostics: sorted, report: formatDiagnostics(sorted, new Map([[file, text]])) };
  };
  const fileProblem = (message: string) => {
    diagnostics.push({ file, line: 0, col: 0, length: 1, message, rule: "file", severity: "error" });
    return finish(undefined);
  };

  let text: string;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) return fileProblem("is not a regular file");
    if (stat.size > MAX_CONFIG_BYTES) return fileProblem(`is ${stat.size} bytes; config files are limited to 1 MiB`);
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return fileProblem(code === "ENOENT" ? "config file not found (use -c FILE or LIFEBOAT_CONFIG)" : `cannot read config file (${code})`);
  }

  const parsed = parseYaml(file, text);
  diagnostics.push(...parsed.diagnostics);
  if (parsed.diagnostics.some((d) => d.severity === "error")) return finish(undefined, text);

  const problem = (path: Path, message: string, rule: Diagnostic["rule"], options: { atKey?: boolean; severity?: Diagnostic["severity"] } = {}) =>
    diagnostics.push({ file, ...parsed.locate(path, { key: options.atKey ?? false }), message, rule, severity: options.severity ?? "error" });

  const raw = parsed.data ?? {};
  const baseDir = dirname(path);
  const refs = resolveReferences(raw, { baseDir, env });
  for (const p of refs.problems) problem(p.path, p.message, "reference");

  checkInlineSecrets(raw, refs.referencedPaths, (p, message) => problem(p, message, "secret"));

  const validated = ConfigSchema.safeParse(refs.data);
  if (!validated.success) {
    // A value whose reference failed is already reported; its schema echo would only mislead.
    const unresolved = new Set(refs.problems.map((p) => p.path.join(".")));
    for (const p of describeIssues(validated.error.issues, ConfigSchema, refs.data)) {
      if (!unresolved.has(p.path.join("."))) problem(p.path, p.message, "schema", { atKey: p.atKey });
    }
    // Checks across fields still run on the well-formed parts, so every problem shows at once.
    const partial = salvage(refs.data);
    buildConfig(file, partial.data, raw, baseDir, problem, partial);
    return finish(undefined, text);
  }
  if (diagnostics.some((d) => d.severity === "error")) return finish(undefined, text);

  // From here on values are trusted to have the right shape; remaining checks
  // look across fields.
  for (const ref of refs.values) if (isSecretReference(ref)) registerSecret(ref.value);
  const config = buildConfig(file, validated.data, raw, baseDir, problem);
  return finish(config, text);
}

export type Report = (path: Path, message: string, rule: Diagnostic["rule"], options?: { atKey?: boolean; severity?: Diagnostic["severity"] }) => void;

/**
 * The well-formed entries of a config that failed its schema check. Names of
 * malformed storage entries are kept, so that jobs naming them do not get an
 * echo error; a malformed encryption section switches off checks that depend on it.
 */
interface Salvaged {
  data: RawConfig;
  declaredStorage: string[];
  encryptionUsable: boolean;
}

function salvage(value: unknown): Salvaged {
  const section = (key: string): Record<string, unknown> => {
    const v = value && typeof value === "object" ? (value as Record<string, unknown>)[key] : undefined;
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  };
  const wellFormed = <T>(entries: Record<string, unknown>, schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }) => {
    const out: Record<string, T> = {};
    for (const [name, entry] of Object.entries(entries)) {
      const parsed = schema.safeParse(entry);
      if (parsed.success && isValidName(name)) out[name] = parsed.data;
    }
    return out;
  };
  const rawEncryption = value && typeof value === "object" ? (value as Record<string, unknown>).encryption : undefined;
  const encryption = rawEncryption === undefined ? undefined : EncryptionSchema.safeParse(rawEncryption);
  return {
    data: {
      storage: wellFormed(section("storage"), StorageSchema),
      jobs: wellFormed(section("jobs"), JobSchema),
      scratch: wellFormed(section("scratch"), ScratchSchema),
      drills: {},
      daemon: DaemonSchema.parse({}),
      prune: { orphanGrace: "24h" },
      notifications: {},
      ...(encryption?.success ? { encryption: encryption.data } : {}),
    },
    declaredStorage: Object.keys(section("storage")),
    encryptionUsable: encryption === undefined || encryption.success,
  };
}

function buildConfig(file: string, data: RawConfig, raw: unknown, baseDir: string, problem: Report, partial?: Salvaged): LifeboatConfig {
  const storage: Record<string, StorageConfig> = {};
  for (const [name, s] of Object.entries(data.storage)) {
    const prefix = normalizePrefix(s.prefix);
    if (prefix === undefined) problem(["storage", name, "prefix"], `prefix in storage "${name}" must not start with "/" or contain ".", ".." or empty segments`, "schema");
    storage[name] = s.type === "filesystem" ? { ...s, path: resolve(baseDir, s.path), prefix: prefix ?? "" } : { ...s, prefix: prefix ?? "" };
  }
  const declared = partial?.declaredStorage ?? Object.keys(storage);
  if (declared.length === 0) {
    storage[DEFAULT_STORAGE_NAME] = { type: "filesystem", path: resolve(baseDir, DEFAULT_STORAGE_PATH), prefix: "" };
  }

  let identity: string | undefined;
  let recipients = data.encryption?.recipients ?? [];
  if (data.encryption?.identity !== undefined) {
    try {
      const identities = parseIdentities(data.encryption.identity);
      identity = data.encryption.identity;
      registerSecret(identity);
      if (recipients.length === 0) recipients = identities.map((i) => i.recipient);
    } catch (error) {
      problem(["encryption", "identity"], `identity in encryption is not a valid age identity file: ${(error as Error).message}`, "schema");
    }
  }
  if (data.encryption && recipients.length === 0 && data.encryption.identity === undefined) {
    problem(["encryption"], "encryption needs recipients (age1… public keys) or an identity to derive them from", "schema", { atKey: true });
  }

  const storageNames = declared.length > 0 ? declared : Object.keys(storage);
  const jobs: Record<string, BackupJob> = {};
  for (const [name, job] of Object.entries(data.jobs)) {
    let storageName = job.storage;
    if (storageName === undefined) {
      if (storageNames.length === 1) storageName = storageNames[0]!;
      else problem(["jobs", name], `job "${name}" must name its storage; one of: ${storageNames.join(", ")}`, "schema", { atKey: true });
    } else if (!storageNames.includes(storageName)) {
      problem(["jobs", name, "storage"], `unknown storage "${storageName}" in job "${name}"; expected one of: ${storageNames.join(", ")}`, "schema");
    }
    const explicitEncrypt = hasKey(raw, ["jobs", name, "encrypt"]);
    const encrypt = recipients.length > 0 ? job.encrypt : false;
    if (explicitEncrypt && job.encrypt && recipients.length === 0 && (partial?.encryptionUsable ?? true)) {
      problem(["jobs", name, "encrypt"], `job "${name}" asks for encryption but no encryption.recipients are configured`, "schema");
    }
    if (job.compressionLevel !== undefined && job.compression === "gzip" && job.compressionLevel > 9) {
      problem(["jobs", name, "compressionLevel"], `compressionLevel in job "${name}" must be 1-9 for gzip`, "schema");
    }
    if (job.compressionLevel !== undefined && job.compression === "none") {
      problem(["jobs", name, "compressionLevel"], `compressionLevel in job "${name}" has no effect with compression: none`, "schema", { severity: "warning" });
    }
    jobs[name] = {
      name,
      source: buildSource(name, job.source, baseDir, problem),
      storage: storageName ?? "",
      schedule: job.schedule,
      compression: job.compression,
      compressionLevel: job.compressionLevel,
      encrypt,
      allowEmpty: job.allowEmpty,
      retention: job.retention,
      rpoMs: job.rpo === undefined ? undefined : parseDurationMs(job.rpo),
      timezone: job.timezone,
      overlap: job.overlap,
      catchUp: job.catchUp,
    };
  }

  checkLockCoversRetention(storage, jobs, problem);

  const scratch: Record<string, ScratchSpec> = {};
  for (const [name, entry] of Object.entries(data.scratch)) scratch[name] = buildScratch(name, entry, baseDir, problem);

  const drills: Record<string, string> = {};
  const scheduledDrills: Record<string, ScheduledDrill> = {};
  for (const [name, drill] of Object.entries(data.drills)) {
    drills[name] = resolve(baseDir, drill.plan);
    if (drill.schedule === undefined) continue;
    scheduledDrills[name] = { name, plan: drills[name]!, schedule: drill.schedule, timezone: drill.timezone };
  }

  const listen = data.daemon.listen;
  const colon = listen.lastIndexOf(":");
  const daemon: DaemonSettings = {
    listen: { host: listen.slice(0, colon).replace(/^\[|\]$/g, ""), port: Number(listen.slice(colon + 1)) },
    concurrency: data.daemon.concurrency,
    gracePeriodMs: parseDurationMs(data.daemon.gracePeriod)!,
    multiInstance: data.daemon.multiInstance,
    leaseMs: parseDurationMs(data.daemon.lease)!,
    freshnessCheckMs: parseDurationMs(data.daemon.freshnessCheck)!,
  };

  return {
    file,
    baseDir,
    storage,
    encryption: { recipients, identity },
    jobs,
    scratch,
    drills,
    scheduledDrills,
    daemon,
    orphanGraceMs: parseDurationMs(data.prune.orphanGrace)!,
    notifications: data.notifications,
  };
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * Warns when a storage's Object Lock ends before a job's retention policy lets
 * go of its backups: those backups stay, but unprotected. How long a policy
 * keeps backups is estimated from its longest rule (keepLast alone: unknown).
 */
function checkLockCoversRetention(storage: Record<string, StorageConfig>, jobs: Record<string, BackupJob>, problem: Report): void {
  for (const job of Object.values(jobs)) {
    const entry = storage[job.storage];
    if (entry?.type !== "s3" || !entry.objectLock || !job.retention) continue;
    const lockMs = parseDurationMs(entry.objectLock.retain);
    const kept = retentionSpan(job.retention);
    if (lockMs === undefined || !kept || lockMs >= kept.ms) continue;
    problem(
      ["storage", job.storage, "objectLock", "retain"],
      `objectLock.retain ${entry.objectLock.retain} in storage "${job.storage}" is shorter than job "${job.name}" keeps backups (${kept.rule}, about ${aboutDuration(kept.ms)}): older backups stay but are no longer immutable`,
      "schema",
      { severity: "warning" },
    );
  }
}

/** The longest span a retention policy keeps backups for, and the rule that gives it. */
function retentionSpan(retention: NonNullable<BackupJob["retention"]>): { ms: number; rule: string } | undefined {
  const spans: Array<[string, number | undefined, number]> = [
    ["keepHourly", retention.keepHourly, HOUR_MS],
    ["keepDaily", retention.keepDaily, DAY_MS],
    ["keepWeekly", retention.keepWeekly, 7 * DAY_MS],
    ["keepMonthly", retention.keepMonthly, 31 * DAY_MS],
    ["keepYearly", retention.keepYearly, 366 * DAY_MS],
  ];
  let longest: { ms: number; rule: string } | undefined;
  const within = retention.keepWithin === undefined ? undefined : parseDurationMs(retention.keepWithin);
  if (within) longest = { ms: within, rule: `keepWithin: ${retention.keepWithin}` };
  for (const [rule, count, unitMs] of spans) {
    if (!count) continue;
    if (!longest || count * unitMs > longest.ms) longest = { ms: count * unitMs, rule: `${rule}: ${count}` };
  }
  return longest;
}

function aboutDuration(ms: number): string {
  return ms < DAY_MS ? `${Math.round(ms / HOUR_MS)}h` : `${Math.round(ms / DAY_MS)}d`;
}

function buildSource(job: string, source: RawConfig["jobs"][string]["source"], baseDir: string, problem: Report): SourceSpec {
  if (source.type === "files") {
    const paths = source.paths.map((p) => resolve(baseDir, p));
    const seen = new Map<string, number>();
    paths.forEach((p, i) => {
      const name = basename(p);
      if (name === "" || p === "/") problem(["jobs", job, "source", "paths", i], `paths[${i}] in job "${job}" must not be the root folder`, "schema");
      const earlier = seen.get(name);
      if (earlier !== undefined) {
        problem(["jobs", job, "source", "paths", i], `paths[${i}] in job "${job}" has the same folder name "${name}" as paths[${earlier}]; each path is stored under its base name`, "schema");
      }
      seen.set(name, i);
    });
    return { type: "files", paths, exclude: source.exclude };
  }
  if (source.type === "command") return { type: "command", command: source.command, restore: source.restore, env: source.env };
  const where: Path = ["jobs", job, "source"];
  const connection = buildConnection(source, source.type, `job "${job}"`, where, problem);
  const bin = source.bin === undefined ? undefined : resolve(baseDir, source.bin);
  if (source.type === "mariadb") return { type: "mariadb", connection, bin };
  if (source.sslmode) connection.options.sslmode = source.sslmode;
  return {
    type: "postgres",
    connection,
    globals: source.globals,
    noOwner: source.noOwner,
    restoreJobs: source.restoreJobs ?? Math.max(1, Math.min(8, availableParallelism())),
    stageAboveBytes: source.stageAboveMiB === undefined ? defaultStageAboveBytes() : source.stageAboveMiB * 1024 * 1024,
    bin,
  };
}

/**
 * When a PostgreSQL restore is staged to a file and run with pg_restore --jobs.
 * Measured with `npm run bench` on 2 CPUs (a 1 GB database): streaming in one
 * transaction was as fast or faster at every size, because the server already
 * keeps both cores busy; so with fewer than 4 CPUs Lifeboat always streams.
 */
function defaultStageAboveBytes(): number {
  return availableParallelism() >= 4 ? 1024 * 1024 * 1024 : Number.POSITIVE_INFINITY;
}

type ConnectionFields = { url?: string | undefined; host?: string | undefined; port?: number | undefined; socket?: string | undefined; user?: string | undefined; password?: string | undefined; database?: string | undefined };

/** A connection from `url` (plus an optional `password`) or from the discrete fields, never a mix. */
function buildConnection(fields: ConnectionFields, family: DatabaseFamily, owner: string, where: Path, problem: Report, urlKey = "url"): DatabaseConnection {
  let connection: DatabaseConnection = { host: fields.host, port: fields.port, socket: fields.socket, user: fields.user, password: fields.password, database: fields.database ?? "", options: {} };
  if (fields.url !== undefined) {
    const mixed = (["host", "port", "socket", "user", "database"] as const).filter((k) => fields[k] !== undefined);
    if (mixed.length) problem([...where, mixed[0]!], `${mixed[0]} in ${owner} cannot be combined with url; put it in the URL`, "schema");
    const parsed = parseDatabaseUrl(fields.url, family);
    if ("problem" in parsed) problem([...where, urlKey], `${urlKey} in ${owner} ${parsed.problem}`, "schema");
    else {
      if (parsed.connection.password !== undefined && fields.password !== undefined) {
        problem([...where, "password"], `password in ${owner} is also in its url; give it once`, "schema");
      }
      connection = { ...parsed.connection, password: parsed.connection.password ?? fields.password };
    }
  } else if (fields.database === undefined) {
    problem(where, `${owner} needs a url or a database`, "schema", { atKey: true });
  }
  if (connection.password) registerSecret(connection.password);
  return connection;
}

export function buildScratch(name: string, scratch: ScratchConfig, baseDir: string, problem: Report): ScratchSpec {
  const bin = "bin" in scratch && scratch.bin !== undefined ? resolve(baseDir, scratch.bin) : undefined;
  switch (scratch.type) {
    case "directory":
      return { type: "directory" };
    case "command":
      return { type: "command", up: scratch.up, down: scratch.down, env: scratch.env };
    case "mariadb":
      return { type: "mariadb", runAs: scratch.runAs, bin };
    case "postgres": {
      const server = scratch.server === undefined ? undefined : buildConnection({ url: scratch.server }, "postgres", `scratch "${name}"`, ["scratch", name], problem, "server");
      return { type: "postgres", server, runAs: scratch.runAs, bin };
    }
  }
}

function normalizePrefix(prefix: string): string | undefined {
  if (prefix === "") return "";
  if (prefix.startsWith("/") || prefix.split("/").some((s, i, all) => s === ".." || s === "." || (s === "" && i < all.length - 1))) {
    return undefined;
  }
  return prefix.endsWith("/") ? prefix : `${prefix}/`;
}

function hasKey(data: unknown, path: string[]): boolean {
  let value = data;
  for (const segment of path) {
    if (!value || typeof value !== "object" || !Object.prototype.hasOwnProperty.call(value, segment)) return false;
    value = (value as Record<string, unknown>)[segment];
  }
  return true;
}

/**
 * Secrets must come from references: the fields in SECRET_FIELDS, any age
 * secret key and any password inside a URL.
 */
function checkInlineSecrets(raw: unknown, referenced: Set<string>, report: (path: Path, message: string) => void): void {
  const visit = (value: unknown, path: Array<string | number>) => {
    if (typeof value === "string") {
      // What the user wrote inline: the value with its references taken out.
      const inline = value.replace(/\$\{[a-z]+:[^}]*\}/g, "");
      const wholly = referenced.has(path.join(".")) && inline.trim() === "";
      if (SECRET_FIELDS.some((f) => matches(f, path))) {
        if (!wholly) report(path, `${String(path[path.length - 1])} must not be written inline; use \${env:NAME} or \${file:PATH}`);
      } else if (/AGE-SECRET-KEY-1/i.test(inline)) {
        report(path, "an age secret key must not be written inline; put it in a file and use ${file:PATH}");
      } else if (/\b[a-z][a-z0-9+.-]*:\/\/[^\s/@:]+:[^\s/@]+@/i.test(inline)) {
        report(path, "a password inside a URL must not be written inline; use ${env:NAME} for the password");
      }
      return;
    }
    if (Array.isArray(value)) value.forEach((v, i) => visit(v, [...path, i]));
    else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) visit(v, [...path, k]);
  };
  visit(raw, []);
}

/**
 * Which resolved references are redacted everywhere: secret fields, anything
 * read from a file, and environment given to commands (tokens live there).
 * An endpoint or bucket name from ${env:…} stays readable in error messages.
 */
function isSecretReference(ref: { path: Path; scheme: string }): boolean {
  return (
    ref.scheme === "file" ||
    SECRET_FIELDS.some((f) => matches(f, ref.path)) ||
    ref.path.includes("env") ||
    ref.path.includes("credentials") ||
    ref.path.includes("headers") ||
    (ref.path[0] === "notifications" && ref.path[2] === "url")
  );
}

function matches(pattern: ReadonlyArray<string>, path: ReadonlyArray<string | number>): boolean {
  return pattern.length === path.length && pattern.every((p, i) => p === "*" || p === String(path[i]));
}

/** Resolves the config file the CLI should use: -c FILE, then LIFEBOAT_CONFIG, then ./lifeboat.yaml. */
export function configPath(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return explicit ?? (env.LIFEBOAT_CONFIG || "lifeboat.yaml");
}
