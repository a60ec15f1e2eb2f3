import { promises as fs } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline as streamPipeline, Transform, type Readable } from "node:stream";
import { feedTool, runTool, startTool } from "../exec/spawn.js";
import { locateTool } from "../exec/tools.js";
import { registerSecret } from "../log/redact.js";
import { describeConnection, parseDatabaseUrl } from "../model/connection.js";
import { LifeboatError } from "../model/errors.js";
import type { DatabaseConnection, MariadbSource } from "../model/job.js";
import type { SourceContext, SourceKind } from "./source.js";

/** Clients give up on a server that does not answer (mariadb-dump has no such option; the probe before it does). */
const CONNECT_TIMEOUT = "--connect-timeout=10";
/** The largest statement the client and dump accept (a row with a large BLOB is one statement). */
const MAX_PACKET = "--max-allowed-packet=1G";
const PROBE_TIMEOUT_MS = 120_000;
const DUMP_TOOLS = ["mariadb-dump", "mysqldump"] as const;
const CLIENT_TOOLS = ["mariadb", "mysql"] as const;
const UNKNOWN_DATABASE = 1049;

const toolVersions = new Map<string, Promise<string | undefined>>();

/**
 * `mariadb`: one MariaDB or MySQL database, dumped by `mariadb-dump`
 * (`mysqldump`) as a plain SQL script and restored by piping it into the
 * `mariadb` (`mysql`) client.
 *
 * - The script names no database (no `--databases`, so no `CREATE DATABASE`
 *   or `USE`, and the `ALTER DATABASE` lines mariadb-dump writes around some
 *   routines lose the source's name on the way to storage): it restores into
 *   whatever database the target names, by hand too (`… | mariadb otherdb`).
 * - `--single-transaction` gives InnoDB tables one consistent snapshot without
 *   locking writers. Tables on non-transactional engines (MyISAM, Aria,
 *   MEMORY) cannot be part of it, and system-versioned tables lose their
 *   history (`--dump-history` fails on transaction-precise ones): the backup
 *   carries a warning naming them.
 * - The password never reaches argv: it is written to a `[client]` option
 *   file (mode 0600, in a private 0700 folder) passed as the first argument,
 *   `--defaults-extra-file`, and deleted when the tool exits.
 * - Definers (`DEFINER=app@%` on views, routines, triggers, events) are kept:
 *   restoring them as another user needs the SET USER privilege, and the
 *   accounts must exist on the target for those objects to run.
 *
 * Restore checks the target before anything is written. A database holding
 * tables, views, routines or events is refused unless forced; forced, the
 * script's `DROP … IF EXISTS` statements replace the objects the backup holds
 * and leave the others alone. A database that does not exist is created
 * (default character set utf8mb4; every table keeps its own) and dropped
 * again if the restore fails. The script runs as it streams and
 * MariaDB DDL is not transactional: a restore that fails half-way into an
 * existing database leaves the tables it got to replaced, which is why a
 * non-empty target needs --force. A target URL without a password, on the
 * job's own server as the job's user, uses the job's password.
 */
export const mariadbSource: SourceKind<MariadbSource> = {
  type: "mariadb",

  parts() {
    return [{ role: "data", format: "sql" }];
  },

  describe(spec) {
    return `mariadb: ${describeConnection(spec.connection)}`;
  },

  toolVersion(spec) {
    const key = spec.bin ?? "";
    let version = toolVersions.get(key);
    if (!version) {
      version = locateTool(DUMP_TOOLS, { bin: spec.bin })
        .then((dump) => runTool({ argv: [dump, "--version"], context: "checking the mariadb-dump version" }))
        .then(
          (r) => r.stdout.split("\n")[0]?.trim() || undefined,
          () => undefined,
        );
      toolVersions.set(key, version);
    }
    return version;
  },

  async openDump(spec, context) {
    const c = spec.connection;
    const [dumpTool, client] = await Promise.all([locateTool(DUMP_TOOLS, { bin: spec.bin }), locateTool(CLIENT_TOOLS, { bin: spec.bin })]);
    const where = `backing up job "${context.job}"`;
    const before = context.now?.() ?? new Date();
    const options = await clientOptionFile(c.password);
    try {
      // The server's clock, read before the dump starts: mariadb-dump takes its
      // snapshot (START TRANSACTION WITH CONSISTENT SNAPSHOT) only after this
      // query returned, so the data is at least as new as this instant and the
      // backup never claims to be fresher than it is. The server's clock is
      // the one the data's own timestamps (and an rpo-probe) use.
      const probe = await runTool({
        argv: [
          client,
          ...options.args,
          ...connectionArgs(c),
          CONNECT_TIMEOUT,
          `--database=${c.database}`,
          "--default-character-set=utf8mb4",
          "--batch",
          "--skip-column-names",
          "--execute",
          "SELECT UTC_TIMESTAMP(6), VERSION(); " +
            "SELECT TABLE_NAME, TABLE_TYPE, IFNULL(ENGINE, '') FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
        ],
        context: where,
        timeoutMs: PROBE_TIMEOUT_MS,
        ...(context.signal ? { signal: context.signal } : {}),
      }).catch((error: unknown) => {
        throw explainClientError(error, c, context);
      });
      const [clock = "", ...tables] = probe.stdout.split("\n").filter((line) => line !== "");
      const [utcNow = "", serverVersion] = clock.split("\t");
      const consistentAt = parseServerTime(utcNow) ?? before;
      if (tables.length === 0 && !context.allowEmpty) {
        throw new LifeboatError("BACKUP_EMPTY", `database ${describeConnection(c)} has no tables (${where})`, {
          kind: "run",
          hint: "check the database name, or set allowEmpty: true on the job if an empty database is expected",
        });
      }
      const warnings = snapshotWarnings(tables);

      const tool = startTool({
        argv: [
          dumpTool,
          ...options.args,
          ...connectionArgs(c),
          "--single-transaction",
          "--routines",
          "--triggers",
          "--events",
          "--hex-blob",
          "--default-character-set=utf8mb4",
          "--no-tablespaces",
          MAX_PACKET,
          "--",
          c.database,
        ],
        context: where,
        stdout: "pipe",
        ...(context.signal ? { signal: context.signal } : {}),
      });
      // mariadb-dump does not report how many bytes it wrote, so its output
      // passes through Node, which counts it (`through` is not used). On the
      // way its ALTER DATABASE lines lose the source's name, so the stored
      // script restores into any database, by hand too. Destroying the
      // returned stream destroys the tool's stdout, which stops the tool.
      const stream = streamPipeline(tool.stdout!, retargetAlterDatabase(), () => {});
      const done = tool.done
        .finally(options.remove)
        .then(({ stderrTail }) => ({ status: "succeeded" as const, warnings: [...warnings, ...dumpWarnings(stderrTail)], serverVersion: serverVersion || undefined }));
      done.catch(() => {});
      return { stream, piped: false, consistentAt, done };
    } catch (error) {
      await options.remove();
      throw error;
    }
  },

  async prepareRestore(spec, target, context) {
    if (!target.location) {
      throw new LifeboatError("RESTORE_NO_TARGET", `restoring job "${context.job}" needs a target database (--to mariadb://user@host:port/database)`, {
        kind: "usage",
      });
    }
    const parsed = parseDatabaseUrl(target.location, "mariadb");
    if ("problem" in parsed) {
      throw new LifeboatError("RESTORE_TARGET_INVALID", `restore target ${parsed.problem}`, { kind: "usage" });
    }
    const c = parsed.connection;
    registerSecret(c.password);
    // A target on the job's own server, as the job's user, may use the job's password.
    const password = c.password ?? (sameServerAndUser(c, spec.connection) ? spec.connection.password : undefined);
    const client = await locateTool(CLIENT_TOOLS, { bin: spec.bin });
    const where = `restoring job "${context.job}" into ${describeConnection(c)}`;
    const runClient = async (args: string[]) => {
      const options = await clientOptionFile(password);
      try {
        return await runTool({
          argv: [client, ...options.args, ...connectionArgs(c), CONNECT_TIMEOUT, "--default-character-set=utf8mb4", "--batch", "--skip-column-names", ...args],
          context: where,
          timeoutMs: PROBE_TIMEOUT_MS,
          ...(context.signal ? { signal: context.signal } : {}),
        });
      } catch (error) {
        throw withHint(error);
      } finally {
        await options.remove();
      }
    };

    // Before anything is written: is the target there, and is it empty?
    let missing = false;
    const counts = await runClient([
      `--database=${c.database}`,
      "--execute",
      "SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()), " +
        "(SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()), " +
        "(SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE())",
    ]).then(
      (r) => r.stdout.trim().split("\t").map(Number),
      (error: unknown) => {
        if (serverErrorNumber(error) === UNKNOWN_DATABASE) {
          missing = true;
          return [0, 0, 0];
        }
        throw error;
      },
    );
    const [tables = 0, routines = 0, events = 0] = counts;
    if (tables + routines + events > 0 && !target.force) {
      const held = [plural(tables, "table or view", "tables or views"), plural(routines, "routine", "routines"), plural(events, "event", "events")].filter(Boolean);
      throw new LifeboatError("RESTORE_TARGET_NOT_EMPTY", `restore target database ${describeConnection(c)} is not empty (${held.join(", ")})`, {
        kind: "usage",
        hint: "restore into a new or empty database, or pass --force to replace the objects the backup holds (others are kept)",
      });
    }

    let created = false;
    return {
      description: `database ${describeConnection(c)}`,
      async write(stream: Readable) {
        if (missing && !created) {
          await runClient(["--execute", `CREATE DATABASE ${quoteIdentifier(c.database)} CHARACTER SET utf8mb4`]);
          created = true;
        }
        const options = await clientOptionFile(password);
        try {
          // The ALTER DATABASE lines lose the source's name on the way (older backups still carry it).
          const script = streamPipeline(stream, retargetAlterDatabase(), () => {});
          await feedTool(script, {
            argv: [client, ...options.args, ...connectionArgs(c), CONNECT_TIMEOUT, `--database=${c.database}`, "--binary-mode", "--default-character-set=utf8mb4", MAX_PACKET, "--batch"],
            context: where,
            ...(context.signal ? { signal: context.signal } : {}),
          }).catch((error: unknown) => {
            throw withHint(error);
          });
        } finally {
          await options.remove();
        }
      },
      // The SQL ran as it streamed; there is nothing left to move into place.
      async commit() {},
      async discard() {
        // A database this restore created held nothing before: drop it again,
        // so a failed restore into a new database leaves nothing behind.
        if (created) await runClient(["--execute", `DROP DATABASE IF EXISTS ${quoteIdentifier(c.database)}`]);
      },
    };
  },
};

/** Where to connect, as client options; never the password. A port means TCP (the client would use the socket for "localhost"). */
export function connectionArgs(c: DatabaseConnection): string[] {
  const args: string[] = [];
  if (c.socket) args.push(`--socket=${c.socket}`, "--protocol=SOCKET");
  else {
    if (c.host) args.push(`--host=${c.host}`);
    if (c.port) args.push(`--port=${c.port}`, "--protocol=TCP");
  }
  if (c.user) args.push(`--user=${c.user}`);
  return args;
}

export interface ClientOptions {
  /** `--defaults-extra-file=…` (it must come first), or nothing when there is no password. */
  args: string[];
  /** Deletes the file and its folder; idempotent. */
  remove(): Promise<void>;
}

/** A `[client]` option file holding the password, mode 0600 in a private folder. */
export async function clientOptionFile(password: string | undefined): Promise<ClientOptions> {
  if (password === undefined) return { args: [], remove: async () => {} };
  const dir = await fs.mkdtemp(join(tmpdir(), "lifeboat-mariadb-"));
  const remove = () => fs.rm(dir, { recursive: true, force: true });
  try {
    await fs.chmod(dir, 0o700);
    const path = join(dir, "client.cnf");
    await fs.writeFile(path, `[client]\npassword=${optionFileValue(password)}\n`, { mode: 0o600, flag: "wx" });
    return { args: [`--defaults-extra-file=${path}`], remove };
  } catch (error) {
    await remove();
    throw error;
  }
}

/**
 * A value in option-file syntax: double-quoted (so `#`, `;`, `=`, quotes and
 * leading or trailing spaces are kept), with the escapes the option-file
 * reader undoes (`\\`, `\"`, `\n`, `\r`, `\t`, `\b`).
 */
function optionFileValue(value: string): string {
  const escapes: Record<string, string> = { "\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b" };
  return `"${value.replace(/[\\"\n\r\t\b]/g, (ch) => escapes[ch]!)}"`;
}

/** An identifier in backquotes, safe whatever it holds. */
function quoteIdentifier(name: string): string {
  return `\`${name.replace(/`/g, "``")}\``;
}

/** `2026-11-21 19:05:12.123456` (UTC) as a Date, truncated to milliseconds (never later than the server's reading). */
function parseServerTime(text: string): Date | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?$/.exec(text.trim());
  if (!m) return undefined;
  const date = new Date(`${m[1]}T${m[2]}.${(m[3] ?? "0").padEnd(3, "0").slice(0, 3)}Z`);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * What the backup will not hold faithfully, as warnings for the manifest:
 * tables `--single-transaction` cannot snapshot, and the history of
 * system-versioned tables (mariadb-dump keeps only their current rows;
 * `--dump-history` fails on transaction-precise tables).
 */
function snapshotWarnings(tableLines: string[]): string[] {
  const rows = tableLines.map((line) => line.split("\t"));
  const loose = rows
    .filter(([, type, engine]) => (type === "BASE TABLE" || type === "SYSTEM VERSIONED") && engine && !/^innodb$/i.test(engine))
    .map(([name, , engine]) => `${name} (${engine})`);
  const versioned = rows.filter(([, type]) => type === "SYSTEM VERSIONED").map(([name]) => name ?? "");
  const warnings: string[] = [];
  if (loose.length > 0) {
    warnings.push(`tables on non-transactional engines are not part of the consistent snapshot and may be inconsistent with the rest: ${listed(loose)}`);
  }
  if (versioned.length > 0) warnings.push(`system-versioned tables are backed up without their history: ${listed(versioned)}`);
  return warnings;
}

function listed(names: string[]): string {
  return (names.length > 20 ? [...names.slice(0, 20), `and ${names.length - 20} more`] : names).join(", ");
}

/** Warnings mariadb-dump printed on a successful run. */
function dumpWarnings(stderrTail: string): string[] {
  return stderrTail
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /warning/i.test(l))
    .map((l) => l.replace(/^(mariadb-dump|mysqldump): /, ""));
}

/** The server's error number (`ERROR 1045 (28000): …`) in a failed client's stderr. */
function serverErrorNumber(error: unknown): number | undefined {
  if (!(error instanceof LifeboatError)) return undefined;
  const tail = typeof error.details?.stderrTail === "string" ? error.details.stderrTail : "";
  const m = /ERROR (\d+) \(/.exec(tail);
  return m ? Number(m[1]) : undefined;
}

/** The client's failure before a dump, with what to do about it. */
function explainClientError(error: unknown, c: DatabaseConnection, context: SourceContext): unknown {
  if (serverErrorNumber(error) === UNKNOWN_DATABASE) {
    return new LifeboatError("SOURCE_MISSING", `database ${describeConnection(c)} does not exist (backing up job "${context.job}")`, {
      kind: "run",
      hint: "check the database name in the job's source",
      cause: error,
    });
  }
  return withHint(error);
}

/** What to do about the server errors people meet most, as the error's hint. */
const HINTS: Array<[readonly number[], string]> = [
  [[1045, 1698], "check the user and password (password: or the url's password)"],
  [[2002, 2003, 2005, 2013], "check the host, port or socket, and that the server is running and reachable"],
  [[1044, 1142, 1143], "the user lacks privileges on the database"],
  [
    [1227],
    "the backup's views, routines, triggers and events keep their DEFINER; restoring them as another user needs the SET USER (or SUPER) privilege",
  ],
];

function withHint(error: unknown): unknown {
  if (!(error instanceof LifeboatError) || error.code !== "TOOL_FAILED" || error.hint) return error;
  const number = serverErrorNumber(error);
  const hint = HINTS.find(([numbers]) => number !== undefined && numbers.includes(number))?.[1];
  if (!hint) return error;
  return new LifeboatError(error.code, error.message, { kind: error.kind, hint, details: error.details, cause: error.cause });
}

function sameServerAndUser(a: DatabaseConnection, b: DatabaseConnection): boolean {
  return a.host === b.host && a.port === b.port && a.socket === b.socket && a.user === b.user;
}

function plural(n: number, one: string, many: string): string {
  return n === 0 ? "" : `${n} ${n === 1 ? one : many}`;
}

const NEEDLE = Buffer.from("\nALTER DATABASE `");
const ALTER_DATABASE = /^ALTER DATABASE `(?:[^`]|``)+` (CHARACTER SET \w+ COLLATE \w+ ;;?)$/;
/** Longer lines are not mariadb-dump's ALTER DATABASE statements (names are at most 64 characters). */
const MAX_ALTER_LINE = 1024;

/**
 * mariadb-dump brackets routines, triggers and events whose collation differs
 * from their database's default with `ALTER DATABASE `<source>` CHARACTER SET
 * … COLLATE … ;` lines that name the source database, even without
 * --databases. Restored into another database they would fail (or alter a
 * database of that name on the target server). Without a name the statement
 * applies to the database being restored into, so the name is dropped.
 * Everything else passes through unchanged.
 */
export function retargetAlterDatabase(): Transform {
  let carry: Buffer = Buffer.alloc(0);
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      const data = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
      carry = Buffer.alloc(0);
      let emitFrom = 0;
      let at = data.indexOf(NEEDLE);
      while (at !== -1) {
        const lineStart = at + 1;
        const end = data.indexOf(0x0a, lineStart);
        if (end === -1) {
          // The line goes on in the next chunk: keep it back unless it is too long to matter.
          if (data.length - lineStart <= MAX_ALTER_LINE) carry = data.subarray(at);
          break;
        }
        const match = ALTER_DATABASE.exec(data.toString("utf8", lineStart, end));
        if (match) {
          this.push(data.subarray(emitFrom, lineStart));
          this.push(Buffer.from(`ALTER DATABASE ${match[1]}`));
          emitFrom = end;
        }
        at = data.indexOf(NEEDLE, end);
      }
      let keepFrom = carry.length > 0 ? data.length - carry.length : data.length;
      if (carry.length === 0) {
        // The chunk may end inside the needle: keep that tail for the next one.
        for (let k = Math.min(NEEDLE.length - 1, data.length - emitFrom); k > 0; k--) {
          if (data.subarray(data.length - k).equals(NEEDLE.subarray(0, k))) {
            keepFrom = data.length - k;
            carry = data.subarray(keepFrom);
            break;
          }
        }
      }
      if (keepFrom > emitFrom) this.push(data.subarray(emitFrom, keepFrom));
      callback();
    },
    flush(callback) {
      if (carry.length > 0) this.push(carry);
      callback();
    },
  });
}
