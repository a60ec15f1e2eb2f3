import { randomBytes } from "node:crypto";
import { createWriteStream, promises as fs } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { byteCounter, feedTool, relayedBytes, runTool, startTool, startToolChain, type RunningTool } from "../exec/spawn.js";
import { locateTool, pgConfigBindir } from "../exec/tools.js";
import { registerSecret } from "../log/redact.js";
import { describeConnection, parseDatabaseUrl, postgresUrl } from "../model/connection.js";
import { LifeboatError } from "../model/errors.js";
import type { DatabaseConnection, PostgresSource } from "../model/job.js";
import { dataObject } from "../model/manifest.js";
import { settleAll } from "../model/settle.js";
import type { Dump, DumpResult, PreparedRestore, SourceContext, SourceKind } from "./source.js";

/**
 * `postgres`: one database as `pg_dump -Fc -Z0` (compression is the
 * pipeline's job), plus optionally the cluster's globals (roles, tablespaces)
 * from `pg_dumpall --globals-only` as a second object, dumped first.
 *
 * Consistency point: before pg_dump starts, a psql session opens a
 * REPEATABLE READ transaction and, in its first statement, exports its
 * snapshot and reads `statement_timestamp()`. pg_dump then dumps exactly that
 * snapshot (`--snapshot`), and the session stays open until it is done. The
 * statement's start time is taken just before the snapshot, so the recorded
 * `consistentAt` is never later than the data: the RPO it implies is never
 * better than the truth (by at most a few milliseconds). The dump's own
 * header timestamp was not used: it has one-second resolution, in the
 * dumping machine's local time.
 *
 * Restore goes through `pg_restore`. Small backups stream into it as one
 * transaction (`--single-transaction`), which a failure — including stored
 * bytes that turn out wrong at the very end — rolls back. Backups of at least
 * `stageAboveBytes` are first staged to a file and restored with `--jobs`.
 * Passwords reach the tools as PGPASSWORD, never in argv.
 */
export const postgresSource: SourceKind<PostgresSource> = {
  type: "postgres",

  parts(spec) {
    return [...(spec.globals ? [{ role: "globals", format: "sql" as const }] : []), { role: "data", format: "pg_dump-custom" }];
  },

  describe(spec) {
    return `postgres: ${describeConnection(spec.connection)}${spec.globals ? " (with globals)" : ""}`;
  },

  async toolVersion(spec) {
    const pgDump = await tool("pg_dump", spec);
    const { stdout } = await runTool({ argv: [pgDump, "--version"], context: "checking the pg_dump version" });
    return stdout.trim().split("\n")[0];
  },

  async openDump(spec, context, { part, through }) {
    const startedAt = context.now?.() ?? new Date();
    const env = clientEnv(spec.connection);
    const url = postgresUrl(spec.connection);
    const what = `backing up job "${context.job}"`;
    const signal = context.signal ? { signal: context.signal } : {};

    if (part.role === "globals") {
      const dumpall = startTool({ argv: [await tool("pg_dumpall", spec), "--globals-only", `--dbname=${url}`], env, context: what, stdout: "pipe", ...signal });
      return { stream: dumpall.stdout!, piped: false, consistentAt: startedAt, done: dumpall.done.then(() => ({ status: "succeeded", warnings: [] })) };
    }

    const session = await openSnapshot(await tool("psql", spec), url, env, what, context);
    let tools: RunningTool[];
    try {
      if (session.relations === 0 && !context.allowEmpty) {
        throw new LifeboatError("BACKUP_EMPTY", `database ${describeConnection(spec.connection)} has no tables and no large objects (${what})`, {
          kind: "run",
          hint: "check that the job points at the right database, or set allowEmpty: true on the job",
        });
      }
      const pgDump = {
        argv: [await tool("pg_dump", spec), "--format=custom", "--compress=0", `--snapshot=${session.snapshot}`, `--dbname=${url}`],
        env,
        context: what,
        ...signal,
      };
      // pg_dump | dd | zstd, process to process: the dump's bytes never pass through Node; dd counts them.
      tools = through ? startToolChain([pgDump, byteCounter(what, context.signal), through]) : [startTool({ ...pgDump, stdout: "pipe" })];
    } catch (error) {
      session.close();
      throw error;
    }
    const [dump, counter] = tools;
    const done: Promise<DumpResult> = settleAll(dump!.done, tools.slice(1).map((t) => t.done))
      .finally(() => session.close())
      .then(async () => {
        await session.closed;
        const sizeBytes = counter ? relayedBytes(await counter.done) : undefined;
        return { status: "succeeded", warnings: [], serverVersion: session.serverVersion, sizeBytes };
      });
    done.catch(() => {});
    return { stream: tools[tools.length - 1]!.stdout!, piped: through !== undefined, consistentAt: session.consistentAt, done } satisfies Dump;
  },

  async prepareRestore(spec, target, context, backup) {
    if (!target.location) {
      throw new LifeboatError("RESTORE_NO_TARGET", `restoring job "${context.job}" needs a target database: --to postgresql://user@host/db or --to scratch:postgres`, {
        kind: "usage",
      });
    }
    const parsed = parseDatabaseUrl(target.location, "postgres");
    if ("problem" in parsed) throw new LifeboatError("RESTORE_TARGET_INVALID", `restore target ${parsed.problem}`, { kind: "usage" });
    const connection = parsed.connection;
    if (connection.password) registerSecret(connection.password);
    const env = clientEnv(connection);
    const url = postgresUrl(connection);
    const where = describeConnection(connection);
    const what = `restoring job "${context.job}" into ${where}`;
    const psql = await tool("psql", spec);
    const pgRestore = await tool("pg_restore", spec);

    // Before anything is written: the target exists (or is created) and is empty unless --force.
    const relations = await countRelations(psql, url, env, what).catch(async (error: unknown) => {
      if (!isMissingDatabase(error, connection.database)) throw error;
      await createDatabase(psql, connection, env, what);
      return 0;
    });
    if (relations > 0 && !target.force) {
      throw new LifeboatError("RESTORE_TARGET_NOT_EMPTY", `target database ${where} already holds ${relations} ${relations === 1 ? "table, view or sequence" : "tables, views or sequences"}`, {
        kind: "usage",
        hint: "restore into an empty database, or pass --force to replace the objects the backup contains",
      });
    }

    const hasGlobals = backup.objects.some((o) => o.role === "globals");
    const noOwner = spec.noOwner ?? !hasGlobals;
    const options = [
      `--dbname=${url}`,
      "--exit-on-error",
      ...(noOwner ? ["--no-owner", "--no-privileges"] : []),
      ...(target.force && relations > 0 ? ["--clean", "--if-exists"] : []),
    ];
    const staged = spec.restoreJobs > 1 && dataObject(backup).sourceBytes >= spec.stageAboveBytes;
    const stagingFile = join(process.env.LIFEBOAT_STAGING_DIR || tmpdir(), `lifeboat-restore-${randomBytes(6).toString("hex")}.pgdump`);
    let stagedWritten = false;
    const signal = context.signal ? { signal: context.signal } : {};

    return {
      description: `database ${where}`,
      async write(stream: Readable, object) {
        if (object.role === "globals") {
          // Roles and tablespaces are cluster-wide: applied only to a scratch cluster Lifeboat made.
          if (!target.scratch) {
            context.log.warn({ target: where }, "globals (roles, tablespaces) are not applied to a server you named; apply them by hand if needed");
            return drainStream(stream);
          }
          await feedTool(stream, { argv: [psql, "-X", "-q", "-v", "ON_ERROR_STOP=0", `--dbname=${url}`], env, context: what, ...signal });
          return;
        }
        if (!staged) {
          await feedTool(stream, { argv: [pgRestore, ...options, "--single-transaction"], env, context: what, ...signal });
          return;
        }
        stagedWritten = true;
        await pipeline(stream, createWriteStream(stagingFile, { mode: 0o600 }));
      },
      async commit() {
        if (!stagedWritten) return;
        try {
          await runTool({ argv: [pgRestore, ...options, `--jobs=${spec.restoreJobs}`, stagingFile], env, context: what, ...signal });
        } finally {
          await fs.rm(stagingFile, { force: true });
        }
      },
      async discard() {
        await fs.rm(stagingFile, { force: true });
      },
    } satisfies PreparedRestore;
  },
};

/** A psql session holding the snapshot pg_dump dumps, with the moment it was taken. */
interface SnapshotSession {
  snapshot: string;
  consistentAt: Date;
  serverVersion: string;
  /** Tables, materialized views and large objects outside the system schemas. */
  relations: number;
  /** Ends the transaction (idempotent). */
  close(): void;
  closed: Promise<void>;
}

const SNAPSHOT_QUERY = `BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;
SELECT concat_ws('|', pg_export_snapshot(),
  to_char(statement_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
  current_setting('server_version'),
  (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%')
  + (SELECT count(*) FROM pg_largeobject_metadata));
`;

async function openSnapshot(psql: string, url: string, env: Record<string, string>, what: string, context: SourceContext): Promise<SnapshotSession> {
  const session = startTool({
    argv: [psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", `--dbname=${url}`],
    env,
    context: what,
    stdin: "pipe",
    stdout: "pipe",
    ...(context.signal ? { signal: context.signal } : {}),
  });
  const close = () => {
    if (!session.stdin!.writableEnded && !session.stdin!.destroyed) session.stdin!.end("COMMIT;\n");
  };
  session.stdin!.write(SNAPSHOT_QUERY);
  let line: string;
  try {
    line = await firstLine(session);
  } catch (error) {
    session.stdin!.destroy();
    throw error;
  }
  const [snapshot, at, serverVersion, relations] = line.split("|");
  const consistentAt = new Date(at ?? "");
  if (!snapshot || Number.isNaN(consistentAt.getTime())) {
    close();
    throw new LifeboatError("SOURCE_SNAPSHOT", `psql answered "${line.slice(0, 200)}" instead of a snapshot (${what})`, { kind: "run" });
  }
  return { snapshot, consistentAt, serverVersion: `PostgreSQL ${serverVersion}`, relations: Number(relations), close, closed: session.done.then(() => {}) };
}

/** The first line a tool prints, or its failure if it exits first. */
function firstLine(tool: RunningTool): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const onData = (chunk: Buffer) => {
      text += chunk.toString("utf8");
      const end = text.indexOf("\n");
      if (end >= 0) {
        tool.stdout!.off("data", onData);
        tool.stdout!.resume();
        resolve(text.slice(0, end).trim());
      }
    };
    tool.stdout!.on("data", onData);
    tool.done.then(
      () => reject(new LifeboatError("SOURCE_SNAPSHOT", "psql exited before it reported a snapshot", { kind: "run" })),
      reject,
    );
  });
}

async function drainStream(stream: Readable): Promise<void> {
  for await (const _chunk of stream) {
    // discarded
  }
}

async function countRelations(psql: string, url: string, env: Record<string, string>, what: string): Promise<number> {
  const { stdout } = await runTool({
    argv: [
      psql,
      "-X",
      "-A",
      "-t",
      "-v",
      "ON_ERROR_STOP=1",
      `--dbname=${url}`,
      "-c",
      "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'm', 'v', 'S', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'",
    ],
    env,
    context: what,
  });
  return Number(stdout.trim());
}

function isMissingDatabase(error: unknown, database: string): boolean {
  return error instanceof LifeboatError && error.message.includes(`database "${database}" does not exist`);
}

/** Creates the target database through the server's maintenance database. */
async function createDatabase(psql: string, connection: DatabaseConnection, env: Record<string, string>, what: string): Promise<void> {
  const identifier = `"${connection.database.replace(/"/g, '""')}"`;
  await runTool({ argv: [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", `--dbname=${postgresUrl(connection, "postgres")}`, "-c", `CREATE DATABASE ${identifier}`], env, context: what });
}

/** The environment every client tool gets: the password, and a connect timeout so an unreachable host fails fast. */
function clientEnv(connection: DatabaseConnection): Record<string, string> {
  return {
    PGCONNECT_TIMEOUT: "10",
    PGAPPNAME: "lifeboat",
    ...(connection.password ? { PGPASSWORD: connection.password } : {}),
  };
}

function tool(name: string, spec: PostgresSource): Promise<string> {
  return locateTool(name, { bin: spec.bin, fallback: pgConfigBindir });
}
