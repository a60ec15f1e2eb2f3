import { createHash } from "node:crypto";
import { existsSync, promises as fs, readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { runTool, type SystemUser } from "../exec/spawn.js";
import { isExecutable, isRoot, locateTool, lookupUser, pgConfigBindir } from "../exec/tools.js";
import { registerSecret } from "../log/redact.js";
import { postgresUrl } from "../model/connection.js";
import { LifeboatError } from "../model/errors.js";
import type { DatabaseConnection } from "../model/job.js";
import type { PostgresScratch } from "../model/scratch.js";
import { freePort, readLogFrom } from "./local-server.js";
import type { ProvisionedScratch, RemoveContext, ScratchConnection, ScratchContext, ScratchKind, ScratchResource } from "./scratch.js";

/**
 * `postgres`: somewhere to restore a PostgreSQL backup into.
 *
 * Without `server`, an ephemeral cluster: `initdb` into the environment's
 * folder (superuser `postgres`, UTF8, C collation with a UTF-8 ctype when the
 * system has C.UTF-8), trust authentication on the folder's own Unix socket
 * and 127.0.0.1 only, started with `pg_ctl` on a free loopback port and
 * tuned for restore speed (fsync off: it is scratch). initdb and the server
 * refuse to run as root, so under root they run as `runAs` (default
 * `postgres`), which then owns the folder. Removed with
 * `pg_ctl stop -m immediate`, or by killing the postmaster when pg_ctl cannot
 * (after checking that the pid really is that cluster's postmaster).
 *
 * With `server`, a database named `lifeboat_scratch_<run id>_<name>` created
 * on that server and dropped `WITH (FORCE)` (PostgreSQL 13 and later). The
 * password reaches psql as PGPASSWORD; it is never recorded, so a sweep after
 * a crash uses the password from the current config (or PGPASSWORD/.pgpass).
 */
export const postgresScratch: ScratchKind<PostgresScratch> = {
  type: "postgres",

  describe(spec) {
    return spec.server ? `a scratch database on ${postgresUrl(spec.server)}` : "an ephemeral PostgreSQL cluster on 127.0.0.1";
  },

  provision(spec, context) {
    return spec.server ? createScratchDatabase(spec, spec.server, context) : startCluster(spec, context);
  },

  async remove(resource, context) {
    if (typeof resource.server === "string" && typeof resource.database === "string") {
      await dropScratchDatabase(resource.server, resource.database, context);
    } else if (typeof resource.dataDir === "string") {
      await stopCluster(resource, context);
    }
    // Nothing recorded: provisioning failed before it created anything.
  },
};

const SUPERUSER = "postgres";
const SCRATCH_DATABASE = "scratch";
const START_ATTEMPTS = 3;
/** Unix socket paths are limited to 107 bytes; `<dir>/.s.PGSQL.<port>` must fit. */
const MAX_SOCKET_PATH = 107;

/** Trust, but only on the cluster's own socket (in a 0700 folder) and on loopback. */
const PG_HBA = ["# lifeboat scratch cluster: trust on its own socket and 127.0.0.1 only", "local all all trust", "host all all 127.0.0.1/32 trust", ""].join("\n");

// ---------------------------------------------------------------------------
// Ephemeral cluster

async function startCluster(spec: PostgresScratch, context: ScratchContext): Promise<ProvisionedScratch> {
  const what = `starting scratch environment "${context.name}"`;
  const signal = context.signal ? { signal: context.signal } : {};
  const initdb = await tool("initdb", spec.bin);
  const pgCtl = await tool("pg_ctl", spec.bin);
  const psql = await tool("psql", spec.bin);
  const runAs = isRoot() ? await lookupUser(spec.runAs || "postgres") : undefined;
  const as = runAs ? { runAs } : {};

  const dataDir = join(context.dir, "data");
  const logPath = join(context.dir, "postgres.log");
  const socketDir = join(context.dir, "socket");
  assertPgCtlSafe(context.dir, what);
  // A socket path that does not fit: the cluster listens on loopback only.
  const socket = socketDir.length + "/.s.PGSQL.65535".length <= MAX_SOCKET_PATH ? socketDir : undefined;
  if (socket) await fs.mkdir(socket, { mode: 0o700 });
  if (runAs) await chownTree(context.dir, runAs);

  const resource = { dataDir, runAs: runAs?.name ?? null, pgCtl, port: null as number | null, pid: null as number | null };
  await context.record(resource);
  throwIfAborted(context.signal, what);

  // A copy of a cluster initdb made once for this machine, PostgreSQL version and user: a third of the time of initdb.
  const template = await clusterTemplate(initdb, runAs, dirname(context.dir), what, context.signal).catch((error: unknown) => {
    throw runAs && /permission denied/i.test(String((error as Error).message))
      ? withHint(error, `initdb runs as user "${runAs.name}": every folder above ${context.dir} must be traversable by it (set LIFEBOAT_SCRATCH_DIR elsewhere)`)
      : error;
  });
  await runTool({ argv: ["cp", "-a", template, dataDir], context: what, ...signal });
  const confPath = join(dataDir, "postgresql.conf");
  const hbaPath = join(dataDir, "pg_hba.conf");
  await fs.writeFile(hbaPath, PG_HBA);
  const initialConf = await fs.readFile(confPath, "utf8");

  let port = 0;
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(context.signal, what);
    port = await freePort();
    await fs.writeFile(confPath, `${initialConf}\n${clusterSettings(port, socket)}`);
    if (runAs) for (const path of [confPath, hbaPath]) await fs.lchown(path, runAs.uid, runAs.gid);
    const logStart = await fs.stat(logPath).then((s) => s.size, () => 0);
    try {
      await runTool({
        argv: [pgCtl, "start", "-D", dataDir, "-l", logPath, "-w", "-t", "60", "-s"],
        context: what,
        // The server must not carry our storage credentials: a superuser could read them.
        inheritEnv: false,
        cwd: "/",
        timeoutMs: 90_000,
        ...as,
        ...signal,
      });
      break;
    } catch (error) {
      if (!(error instanceof LifeboatError) || error.code === "INTERRUPTED") throw error;
      const log = await readLogFrom(logPath, logStart);
      if (/could not bind IPv4 address|could not create any TCP\/IP sockets/.test(log) && attempt < START_ATTEMPTS) {
        context.log.debug({ port, attempt }, "scratch postgres port was taken; retrying with another");
        continue;
      }
      throw startFailed(error, log);
    }
  }
  await context.record({ ...resource, port, pid: postmasterPid(dataDir) ?? null });

  const url = `postgresql://${SUPERUSER}@127.0.0.1:${port}/${SCRATCH_DATABASE}`;
  const version = await psqlCommands(psql, `postgresql://${SUPERUSER}@127.0.0.1:${port}/postgres`, [`CREATE DATABASE ${SCRATCH_DATABASE}`, "SELECT version()"], clientEnv(undefined), what, context.signal);
  const connection: ScratchConnection = { url, host: "127.0.0.1", port: String(port), user: SUPERUSER, database: SCRATCH_DATABASE };
  if (socket) connection.socket = socket;
  return { connection, connectHint: `psql '${url}'`, versions: { server: shortVersion(version) } };
}

/**
 * The data folder of a cluster `initdb` made once, kept under the scratch
 * root in `.templates/<key>/` where the key covers the initdb binary and
 * version, its options and the user: every scratch cluster starts as a copy
 * (`cp -a`, ~0.15 s for ~70 MB, against ~0.65 s for initdb). Made in a
 * temporary folder and renamed into place, so a killed run never leaves a
 * half-made template; concurrent runs each make one and the first rename wins.
 * Templates of PostgreSQL versions no longer installed can be deleted by hand.
 */
async function clusterTemplate(initdb: string, runAs: SystemUser | undefined, root: string, what: string, signal: AbortSignal | undefined): Promise<string> {
  const version = (await runTool({ argv: [initdb, "--version"], context: what })).stdout.trim();
  const options = ["-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", ...(await localeOptions()), "--no-sync"];
  const key = createHash("sha256").update(JSON.stringify([initdb, version, options, runAs?.name ?? null])).digest("hex").slice(0, 16);
  const templates = join(root, ".templates");
  const template = join(templates, key);
  if (existsSync(join(template, "PG_VERSION"))) return template;

  await fs.mkdir(templates, { recursive: true, mode: 0o711 });
  const making = await fs.mkdtemp(join(templates, `${key}.making-`));
  try {
    if (runAs) await fs.chown(making, runAs.uid, runAs.gid);
    await runTool({
      argv: [initdb, "-D", join(making, "data"), ...options],
      context: what,
      inheritEnv: false,
      cwd: "/",
      timeoutMs: 120_000,
      ...(runAs ? { runAs } : {}),
      ...(signal ? { signal } : {}),
    });
    await fs.rename(join(making, "data"), template).catch((error: NodeJS.ErrnoException) => {
      // Another run made it first: use theirs.
      if (!["ENOTEMPTY", "EEXIST"].includes(error.code ?? "")) throw error;
    });
  } finally {
    await fs.rm(making, { recursive: true, force: true });
  }
  return template;
}

/** postgresql.conf lines appended after initdb's; later lines win. (The bench tunes its raw clusters with them too.) */
export function clusterSettings(port: number, socket: string | undefined): string {
  const settings: Array<[string, string | number]> = [
    ["port", port],
    ["listen_addresses", "127.0.0.1"],
    ["unix_socket_directories", socket ?? ""],
    // Scratch: a crash loses nothing worth keeping, so trade durability for restore speed.
    ["fsync", "off"],
    ["synchronous_commit", "off"],
    ["full_page_writes", "off"],
    ["wal_level", "minimal"],
    ["max_wal_senders", 0],
    ["max_wal_size", "4GB"],
    ["checkpoint_timeout", "30min"],
    ["autovacuum", "off"],
    ["shared_buffers", "128MB"],
    ["maintenance_work_mem", "256MB"],
    ["log_destination", "stderr"],
    ["logging_collector", "off"],
  ];
  const lines = settings.map(([key, value]) => `${key} = ${typeof value === "number" ? value : `'${value.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`}`);
  return ["# lifeboat scratch cluster", ...lines, ""].join("\n");
}

/**
 * `--locale=C` (byte-order collation: fast index builds, the same on every
 * machine, no collation-version drift), with `--lc-ctype=C.UTF-8` where the
 * system has it so upper()/lower() and regex classes know non-ASCII letters.
 * Either way the encoding is UTF8, which any dump restores into.
 */
let localeProbe: Promise<string[]> | undefined;
function localeOptions(): Promise<string[]> {
  localeProbe ??= runTool({ argv: ["locale", "-a"], context: "listing locales" }).then(
    (r) => (r.stdout.split("\n").some((l) => /^c\.utf-?8$/i.test(l.trim())) ? ["--locale=C", "--lc-ctype=C.UTF-8"] : ["--locale=C"]),
    () => ["--locale=C"],
  );
  return localeProbe;
}

async function stopCluster(resource: ScratchResource, context: RemoveContext<PostgresScratch>): Promise<void> {
  const dataDir = String(resource.dataDir);
  const what = `removing scratch environment "${basename(context.dir)}"`;
  const pid = postmasterPid(dataDir) ?? (typeof resource.pid === "number" ? resource.pid : undefined);
  if (pid === undefined || postmasterState(pid, dataDir) === "gone") return; // never started, or already stopped

  const pgCtl = await findPgCtl(resource, context.spec);
  if (pgCtl && existsSync(dataDir)) {
    try {
      const runAs = isRoot() && typeof resource.runAs === "string" ? await lookupUser(resource.runAs) : undefined;
      await runTool({
        argv: [pgCtl, "stop", "-D", dataDir, "-m", "immediate", "-w", "-t", "30", "-s"],
        context: what,
        cwd: "/",
        timeoutMs: 60_000,
        ...(runAs ? { runAs } : {}),
      });
    } catch (error) {
      context.log.warn({ pid, err: (error as Error).message }, "pg_ctl could not stop the scratch postgres server; killing it");
    }
  }
  if (postmasterState(pid, dataDir) === "running") {
    try {
      process.kill(pid, "SIGKILL");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw killFailed(pid, dataDir, what, error);
    }
    for (let waited = 0; waited < 5_000 && postmasterState(pid, dataDir) !== "gone"; waited += 50) await sleep(50);
  }
  if (postmasterState(pid, dataDir) !== "gone") throw killFailed(pid, dataDir, what);
}

/** The recorded pg_ctl when it is still there, else the configured or usual one; undefined when there is none. */
async function findPgCtl(resource: ScratchResource, spec: PostgresScratch | undefined): Promise<string | undefined> {
  if (!spec?.bin && typeof resource.pgCtl === "string" && isExecutable(resource.pgCtl)) return resource.pgCtl;
  return tool("pg_ctl", spec?.bin).catch(() => undefined);
}

/** The postmaster's pid from the first line of `postmaster.pid`, while the file exists. */
function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0] ?? "", 10);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether `pid` is the postmaster of `dataDir`: a `postgres` process whose
 * arguments name that folder (pg_ctl starts it as `postgres -D <dataDir>`).
 * A zombie has an empty command line and counts as gone. Without /proc the
 * process cannot be checked ("unverified"), and is never killed.
 */
function postmasterState(pid: number, dataDir: string): "running" | "gone" | "unverified" {
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    if (existsSync("/proc/self/cmdline")) return "gone";
    try {
      process.kill(pid, 0);
      return "unverified";
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "EPERM" ? "unverified" : "gone";
    }
  }
  const args = cmdline.split("\0").filter(Boolean);
  if (!/^(postgres|postmaster)$/.test(basename(args[0] ?? ""))) return "gone";
  const target = resolve(dataDir);
  return args.slice(1).some((a) => a.startsWith("/") && resolve(a) === target) ? "running" : "gone";
}

function killFailed(pid: number, dataDir: string, what: string, cause?: unknown): LifeboatError {
  return new LifeboatError("SCRATCH_REMOVE_FAILED", `could not stop the scratch postgres server (pid ${pid}, ${dataDir}) (${what})`, {
    kind: "run",
    hint: `stop it by hand (kill ${pid}), then run "lifeboat scratch remove"`,
    cause,
  });
}

function startFailed(error: LifeboatError, log: string): LifeboatError {
  const headline = error.message.split("\n")[0] ?? error.message;
  const tail = log.trimEnd().split("\n").slice(-15).join("\n");
  return new LifeboatError(error.code, tail ? `${headline}\n${indent(tail)}` : error.message, {
    kind: error.kind,
    cause: error,
    details: { ...error.details, logTail: tail },
  });
}

/** pg_ctl starts the server through `/bin/sh -c` with double-quoted paths: refuse paths that would not survive that. */
function assertPgCtlSafe(dir: string, what: string): void {
  if (/["`$\\\n]/.test(dir)) {
    throw new LifeboatError("SCRATCH_UNSAFE_PATH", `scratch folder ${JSON.stringify(dir)} contains characters pg_ctl cannot pass to the server safely (${what})`, {
      kind: "usage",
      hint: "set LIFEBOAT_SCRATCH_DIR to a plain path",
    });
  }
}


/** Gives the folder (and everything in it) to the user the server runs as. */
async function chownTree(dir: string, user: SystemUser): Promise<void> {
  await fs.lchown(dir, user.uid, user.gid);
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(path, user);
    else await fs.lchown(path, user.uid, user.gid);
  }
}


// ---------------------------------------------------------------------------
// A scratch database on an existing server

async function createScratchDatabase(spec: PostgresScratch, server: DatabaseConnection, context: ScratchContext): Promise<ProvisionedScratch> {
  const what = `starting scratch environment "${context.name}"`;
  registerSecret(server.password);
  const psql = await tool("psql", spec.bin);
  const database = scratchDatabaseName(context.runId, context.name);
  const maintenanceUrl = postgresUrl(server);
  const env = clientEnv(server.password);
  // Connect first: a server that cannot be reached leaves no record for every later sweep to retry.
  const version = await psqlCommands(psql, maintenanceUrl, ["SELECT version()"], env, what, context.signal).catch((error: unknown) => {
    throw withHint(error, `check the server of scratch "${context.name}" (${maintenanceUrl}) and that it accepts connections`);
  });
  await context.record({ server: maintenanceUrl, database });
  throwIfAborted(context.signal, what);
  await psqlCommands(psql, maintenanceUrl, [`CREATE DATABASE ${quoteIdentifier(database)}`], env, what, context.signal).catch((error: unknown) => {
    throw /permission denied to create database/.test(String((error as Error).message)) ? withHint(error, `give ${server.user ?? "the user"} the CREATEDB privilege (ALTER ROLE … CREATEDB)`) : error;
  });
  const url = postgresUrl(server, database);
  const connection: ScratchConnection = { url, database };
  if (server.host) connection.host = server.host;
  if (server.port) connection.port = String(server.port);
  if (server.socket) connection.socket = server.socket;
  if (server.user) connection.user = server.user;
  if (server.password) connection.password = server.password;
  return { connection, connectHint: `psql '${url}'`, versions: { server: shortVersion(version) } };
}

async function dropScratchDatabase(serverUrl: string, database: string, context: RemoveContext<PostgresScratch>): Promise<void> {
  const what = `removing scratch database "${database}"`;
  const declared = context.spec?.server;
  // The password comes from the config only when it still declares the same server.
  const password = declared && postgresUrl(declared) === serverUrl ? declared.password : undefined;
  const psql = await tool("psql", context.spec?.bin);
  await psqlCommands(psql, serverUrl, [`DROP DATABASE IF EXISTS ${quoteIdentifier(database)} WITH (FORCE)`], clientEnv(password), what);
}

/**
 * `lifeboat_scratch_<run id>_<name>`, at most 63 characters (PostgreSQL's
 * identifier limit): lower case, `[a-z0-9_]`. A name that has to be cut gets
 * a short hash of the whole name so two long names stay distinct.
 */
export function scratchDatabaseName(runId: string, name: string): string {
  const prefix = `lifeboat_scratch_${runId.toLowerCase().replace(/[^a-z0-9]/g, "_")}_`;
  const clean = name.toLowerCase().replace(/[^a-z0-9_]/g, "_");
  const room = 63 - prefix.length;
  if (clean.length <= room) return prefix + clean;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, 6);
  return `${prefix}${clean.slice(0, Math.max(0, room - hash.length - 1))}_${hash}`.slice(0, 63);
}

// ---------------------------------------------------------------------------
// Shared

function tool(name: string, bin: string | undefined): Promise<string> {
  return locateTool(name, { bin, fallback: pgConfigBindir });
}

/** Runs each command as its own request (so CREATE DATABASE is outside a transaction); returns unaligned tuples. */
async function psqlCommands(psql: string, url: string, commands: string[], env: Record<string, string>, what: string, signal?: AbortSignal): Promise<string> {
  const { stdout } = await runTool({
    argv: [psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", `--dbname=${url}`, ...commands.flatMap((c) => ["-c", c])],
    env,
    context: what,
    timeoutMs: 300_000,
    ...(signal ? { signal } : {}),
  });
  return stdout.trim();
}

function clientEnv(password: string | undefined): Record<string, string> {
  return { PGCONNECT_TIMEOUT: "10", PGAPPNAME: "lifeboat", ...(password ? { PGPASSWORD: password } : {}) };
}

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `PostgreSQL 15.8 (Debian 15.8-1) on x86_64-pc-linux-gnu, compiled by …` without the compiler. */
function shortVersion(version: string): string {
  return (version.split("\n")[0] ?? version).replace(/, compiled by .*$/, "");
}

/** The same tool failure, with advice on what to do (the tool's own error is the cause). */
function withHint(error: unknown, hint: string): unknown {
  if (!(error instanceof LifeboatError) || error.kind === "interrupted") return error;
  return new LifeboatError(error.code, error.message, { kind: error.kind, hint, cause: error, details: error.details });
}

function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) {
    throw new LifeboatError("INTERRUPTED", `stopped because the run was interrupted (${what})`, { kind: "interrupted", cause: signal.reason });
  }
}


function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}
