import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync } from "node:fs";
import { join } from "node:path";
import { silentLogger } from "../../src/log/logger.js";
import type { DatabaseConnection } from "../../src/model/job.js";
import { newRunId, provisionScratch, type ScratchEnvironment } from "../../src/scratch/environments.js";
import { tempDir } from "./builders.js";

/**
 * Real MariaDB servers for tests, started by Lifeboat's own `mariadb` scratch
 * kind on 127.0.0.1, plus a small SQL client helper.
 */

/** A folder for scratch environments that the unprivileged server user can traverse. */
export function scratchRoot(label = "lifeboat-mariadb-"): { work: string; root: string } {
  const work = tempDir(label);
  // mkdtemp makes 0700 folders; mariadbd runs as "mysql" and must reach its data directory.
  chmodSync(work, 0o711);
  return { work, root: join(work, "scratch") };
}

export async function startMariadb(root: string, name = "db"): Promise<ScratchEnvironment> {
  return provisionScratch({ name, spec: { type: "mariadb", runAs: "mysql", bin: undefined } }, newRunId(), { root, log: silentLogger });
}

/** The environment's URL with another database in its path (and an optional user and password). */
export function databaseUrl(env: ScratchEnvironment, database: string, user = "root", password?: string): string {
  const auth = password === undefined ? encodeURIComponent(user) : `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
  return `mariadb://${auth}@${env.connection.host}:${env.connection.port}/${encodeURIComponent(database)}`;
}

/** A connection to the environment's server, as a job's source holds it. */
export function connectionTo(env: ScratchEnvironment, database: string, user = "root", password?: string): DatabaseConnection {
  return { host: env.connection.host, port: Number(env.connection.port), socket: undefined, user, password, database, options: {} };
}

function clientArgs(url: string): { args: string[]; env: NodeJS.ProcessEnv } {
  const u = new URL(url);
  const database = decodeURIComponent(u.pathname.slice(1));
  const args = ["--no-defaults", "-h", u.hostname, "-P", u.port, "-u", decodeURIComponent(u.username), "--default-character-set=utf8mb4", ...(database ? [`--database=${database}`] : [])];
  const env = { ...process.env, ...(u.password ? { MYSQL_PWD: decodeURIComponent(u.password) } : {}) };
  return { args, env };
}

/** Runs SQL (several statements allowed) and returns the rows as tab-separated lines. Throws with stderr on failure. */
export function sql(url: string, query: string): string {
  const { args, env } = clientArgs(url);
  const result = spawnSync("mariadb", [...args, "--batch", "--skip-column-names", "--execute", query], { env, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`mariadb failed (${result.status}): ${result.stderr}\n${query.slice(0, 500)}`);
  return result.stdout.replace(/\n$/, "");
}

/** Runs a script read from stdin (DELIMITER works, unlike with --execute). */
export function sqlScript(url: string, script: string): void {
  const { args, env } = clientArgs(url);
  const result = spawnSync("mariadb", args, { env, input: script, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`mariadb failed (${result.status}): ${result.stderr}`);
}

/** A client session that holds `LOCK TABLES … WRITE` on a table until released. */
export async function holdWriteLock(url: string, table: string): Promise<{ release(): Promise<void> }> {
  const { args, env } = clientArgs(url);
  const child = spawn("mariadb", [...args, "--batch", "--skip-column-names", "--unbuffered"], { env, stdio: ["pipe", "pipe", "pipe"] });
  const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("locked")) resolve();
    });
    child.on("close", (code) => reject(new Error(`lock session exited with ${code}`)));
    child.stdin.write(`LOCK TABLES \`${table}\` WRITE; SELECT 'locked';\n`);
  });
  return {
    async release() {
      child.stdin.end("UNLOCK TABLES;\n");
      await exited;
    },
  };
}

/** `mariadb-dump` of a database's schema, normalized so two databases' schemas compare equal. */
export function schemaOf(url: string): string {
  const { args, env } = clientArgs(url);
  const database = decodeURIComponent(new URL(url).pathname.slice(1));
  const connection = args.filter((a) => !a.startsWith("--database="));
  const result = spawnSync(
    "mariadb-dump",
    [...connection, "--no-data", "--skip-dump-date", "--skip-comments", "--routines", "--triggers", "--events", "--", database],
    { env, encoding: "utf8" },
  );
  if (result.status !== 0) throw new Error(`mariadb-dump failed: ${result.stderr}`);
  // ALTER DATABASE lines (around routines) name the database itself.
  return result.stdout.replace(/ AUTO_INCREMENT=\d+/g, "").replace(/^ALTER DATABASE `(?:[^`]|``)+`/gm, "ALTER DATABASE `DB`");
}

/** Every row of every base table, in primary-key order, as mariadb-dump prints them (BLOBs in hex). */
export function dataOf(url: string): string {
  const { args, env } = clientArgs(url);
  const database = decodeURIComponent(new URL(url).pathname.slice(1));
  const connection = args.filter((a) => !a.startsWith("--database="));
  const result = spawnSync(
    "mariadb-dump",
    [...connection, "--no-create-info", "--skip-triggers", "--skip-extended-insert", "--order-by-primary", "--hex-blob", "--skip-comments", "--skip-dump-date", "--", database],
    { env, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 },
  );
  if (result.status !== 0) throw new Error(`mariadb-dump failed: ${result.stderr}`);
  return result.stdout;
}

/**
 * Row count and checksum of each table, by name: CHECKSUM TABLE, or for a
 * system-versioned table (whose checksum covers the hidden row_start/row_end
 * a restore sets anew) the SHA-256 of its current rows in key order.
 */
export function tableChecksums(url: string): Record<string, { rows: number; checksum: string }> {
  const tables = sql(url, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY 1")
    .split("\n")
    .filter(Boolean)
    .map((line) => line.split("\t") as [string, string]);
  const out: Record<string, { rows: number; checksum: string }> = {};
  for (const [table, type] of tables) {
    const rows = Number(sql(url, `SELECT COUNT(*) FROM \`${table}\``));
    const checksum =
      type === "SYSTEM VERSIONED"
        ? createHash("sha256").update(sql(url, `SELECT * FROM \`${table}\` ORDER BY 1`)).digest("hex")
        : (sql(url, `CHECKSUM TABLE \`${table}\` EXTENDED`).split("\t")[1] ?? "");
    out[table] = { rows, checksum };
  }
  return out;
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export async function accepts(port: number): Promise<boolean> {
  const { connect } = await import("node:net");
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
