import { randomBytes } from "node:crypto";
import { startTool, type ToolSpec } from "../exec/spawn.js";
import { locateTool, pgConfigBindir } from "../exec/tools.js";
import { registerSecret } from "../log/redact.js";
import { parseDatabaseUrl, postgresUrl, type DatabaseFamily } from "../model/connection.js";
import { LifeboatError } from "../model/errors.js";
import type { DatabaseConnection } from "../model/job.js";
import { clientOptionFile, connectionArgs } from "../sources/mariadb.js";

/**
 * One SQL query through the database's own command-line client, its result
 * as text: what a drill's sql checks and rpo-probes read.
 *
 * - PostgreSQL: `psql -X -q --csv -t -v ON_ERROR_STOP=1 -P null=<marker>`.
 *   CSV quotes every value holding a comma, quote or line break, so values
 *   come back exactly. psql prints SQL NULL and the empty string alike (an
 *   empty unquoted field), so NULL is printed as a marker that is random per
 *   query: an unquoted field equal to it is NULL.
 * - MariaDB / MySQL: `mariadb --batch --xml --binary-mode`. Batch mode's
 *   tab-separated output cannot be read back exactly (`NULL` and the string
 *   'NULL' print the same; `--raw` leaves tabs and line breaks bare); the
 *   XML output marks NULL with `xsi:nil` and escapes `<`, `>`, `&` and `"`,
 *   so every value is exact, except that the client prints a NUL byte as a
 *   space. `--binary-mode` sends the SQL as written: no client commands
 *   (`\!`, `source`…) are interpreted in it.
 *
 * Both sessions run with the time zone set to UTC (PGTZ, `SET time_zone`),
 * so timestamps without an offset print in UTC (see `parseTimestamp`). With
 * several statements, the rows of all of them come back in order. The
 * password (from the URL or `password`) reaches psql as PGPASSWORD and the
 * MariaDB client through a 0600 option file, never argv; it is registered
 * as a secret so that no message shows it.
 */
export interface QueryTarget {
  family: DatabaseFamily;
  /** postgresql:// (postgres://) or mariadb:// (mysql://), with or without a password. */
  url: string;
  /** The folder holding psql / mariadb (default: PATH, then pg_config --bindir). */
  bin?: string | undefined;
  /** Takes precedence over a password in the URL. */
  password?: string | undefined;
}

/** Every row of the result, each value as the client prints it; SQL NULL as null. */
export interface QueryResult {
  rows: Array<Array<string | null>>;
}

export interface QueryOptions {
  /** What Lifeboat was doing, for errors: `running the query on scratch "db"`. */
  context: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** More than this is not a check's answer; the query should count or aggregate in SQL. */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;
const CONNECT_TIMEOUT_SECONDS = "10";

/**
 * Runs `sql` and returns its rows. Fails with QUERY_FAILED (kind "run") when
 * the client fails (a SQL error, an unreachable server), with the client's
 * stderr (the server's message) in the error's message; with
 * QUERY_TARGET_INVALID (kind "usage") for a URL it cannot use. An abort or
 * timeout keeps the tool layer's error (INTERRUPTED, TOOL_TIMEOUT).
 */
export async function runQuery(target: QueryTarget, sql: string, options: QueryOptions): Promise<QueryResult> {
  const connection = parseTarget(target, options.context);
  const password = target.password ?? connection.password;
  registerSecret(password);
  return target.family === "postgres" ? queryPostgres(target, connection, password, sql, options) : queryMariadb(target, connection, password, sql, options);
}

function parseTarget(target: QueryTarget, context: string): DatabaseConnection {
  // The URL may hold a password: register it before anything could echo it.
  try {
    const password = new URL(target.url).password;
    if (password) registerSecret(decodeURIComponent(password));
  } catch {
    // not a URL: parseDatabaseUrl says so below
  }
  const parsed = parseDatabaseUrl(target.url, target.family);
  if ("problem" in parsed) throw new LifeboatError("QUERY_TARGET_INVALID", `the database url ${parsed.problem} (${context})`, { kind: "usage" });
  return parsed.connection;
}

async function queryPostgres(target: QueryTarget, c: DatabaseConnection, password: string | undefined, sql: string, options: QueryOptions): Promise<QueryResult> {
  if (sql.trimStart().startsWith("\\")) {
    throw new LifeboatError("QUERY_INVALID", `the query is a psql meta-command, not SQL (${options.context})`, { kind: "usage" });
  }
  const psql = await locateTool("psql", { bin: target.bin, fallback: pgConfigBindir });
  const nullMarker = `lifeboat-null-${randomBytes(12).toString("hex")}`;
  const stdout = await collect(
    {
      argv: [psql, "-X", "-q", "--csv", "-t", "-v", "ON_ERROR_STOP=1", "-P", `null=${nullMarker}`, `--dbname=${postgresUrl(c)}`, "-c", sql],
      env: {
        PGCONNECT_TIMEOUT: CONNECT_TIMEOUT_SECONDS,
        PGAPPNAME: "lifeboat",
        PGCLIENTENCODING: "UTF8",
        PGTZ: "UTC",
        ...(password ? { PGPASSWORD: password } : {}),
      },
      context: options.context,
      ...toolLimits(options),
    },
    "psql",
    options,
  );
  return { rows: parseCsv(stdout).map((row) => row.map((field) => (!field.quoted && field.text === nullMarker ? null : field.text))) };
}

async function queryMariadb(target: QueryTarget, c: DatabaseConnection, password: string | undefined, sql: string, options: QueryOptions): Promise<QueryResult> {
  const client = await locateTool(["mariadb", "mysql"], { bin: target.bin });
  const optionFile = await clientOptionFile(password);
  try {
    const stdout = await collect(
      {
        argv: [
          client,
          ...optionFile.args,
          ...connectionArgs(c),
          `--connect-timeout=${CONNECT_TIMEOUT_SECONDS}`,
          `--database=${c.database}`,
          "--default-character-set=utf8mb4",
          "--init-command=SET time_zone = '+00:00'",
          "--batch",
          "--xml",
          "--binary-mode",
          "--comments",
          "--execute",
          sql,
        ],
        context: options.context,
        ...toolLimits(options),
      },
      client.split("/").pop() ?? "mariadb",
      options,
    );
    return { rows: parseMariadbXml(stdout, options.context) };
  } finally {
    await optionFile.remove();
  }
}

function toolLimits(options: QueryOptions): Pick<ToolSpec, "signal" | "timeoutMs"> {
  return { ...(options.signal ? { signal: options.signal } : {}), ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}) };
}

/** Runs the client and returns its stdout; the client's failure becomes QUERY_FAILED. */
async function collect(spec: ToolSpec, toolName: string, options: QueryOptions): Promise<string> {
  const tool = startTool({ ...spec, stdout: "pipe" });
  const chunks: Buffer[] = [];
  let bytes = 0;
  let tooLarge = false;
  tool.stdout!.on("data", (chunk: Buffer) => {
    if (tooLarge) return;
    bytes += chunk.length;
    if (bytes > MAX_OUTPUT_BYTES) {
      tooLarge = true;
      chunks.length = 0;
      tool.kill();
      return;
    }
    chunks.push(chunk);
  });
  try {
    await tool.done;
  } catch (error) {
    if (tooLarge) {
      throw new LifeboatError("QUERY_RESULT_TOO_LARGE", `the query returned more than ${MAX_OUTPUT_BYTES / 1024 / 1024} MiB (${options.context})`, {
        kind: "usage",
        hint: "count or aggregate in SQL (select count(*) …) instead of returning the rows",
      });
    }
    throw queryFailed(error, toolName);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function queryFailed(error: unknown, toolName: string): unknown {
  if (!(error instanceof LifeboatError) || (error.code !== "TOOL_FAILED" && error.code !== "TOOL_KILLED")) return error;
  const stderr = typeof error.details?.stderrTail === "string" ? error.details.stderrTail : "";
  const unreachable = /could not connect|connection to server|Can't connect|Unknown MySQL server host|Lost connection|Connection refused/i.test(stderr);
  return new LifeboatError("QUERY_FAILED", error.message, {
    kind: "run",
    hint: unreachable ? `check that the database server is running and reachable (${toolName} could not connect)` : error.hint,
    details: error.details,
    cause: error,
  });
}

interface CsvField {
  text: string;
  quoted: boolean;
}

/**
 * RFC 4180 records as psql --csv prints them: fields separated by commas,
 * records ended by a line break, fields holding a comma, quote or line break
 * in double quotes (a quote doubled inside). Each field says whether it was
 * quoted (psql never quotes its NULL marker).
 */
export function parseCsv(text: string): CsvField[][] {
  const records: CsvField[][] = [];
  let record: CsvField[] = [];
  let i = 0;
  while (i < text.length) {
    let field: CsvField;
    if (text[i] === '"') {
      let value = "";
      i++;
      for (;;) {
        const close = text.indexOf('"', i);
        if (close === -1) throw malformed("an unterminated quoted value");
        value += text.slice(i, close);
        if (text[close + 1] === '"') {
          value += '"';
          i = close + 2;
        } else {
          i = close + 1;
          break;
        }
      }
      field = { text: value, quoted: true };
    } else {
      let end = i;
      while (end < text.length && text[end] !== "," && text[end] !== "\n" && text[end] !== "\r") end++;
      field = { text: text.slice(i, end), quoted: false };
      i = end;
    }
    record.push(field);
    if (text[i] === ",") {
      i++;
      // A separator at the very end still starts a last (empty) field.
      if (i === text.length) record.push({ text: "", quoted: false });
      continue;
    }
    if (text[i] === "\r") i++;
    if (i < text.length && text[i] !== "\n") throw malformed("text after a quoted value");
    i++;
    records.push(record);
    record = [];
  }
  if (record.length > 0) records.push(record);
  return records;
}

function malformed(what: string): LifeboatError {
  return new LifeboatError("QUERY_OUTPUT", `psql printed CSV with ${what}`, { kind: "run" });
}

const XML_TOKEN = /<row>|<field name="[^"]*"(?: xsi:nil="true" \/>|>([^<]*)<\/field>)/g;
const ENTITIES: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

/**
 * The rows of the client's `--xml` output (one `<resultset>` per statement).
 * Values never hold a bare `<` (the client escapes it), so a field's text
 * runs to the next `<`.
 */
export function parseMariadbXml(text: string, context: string): Array<Array<string | null>> {
  if (text.trim() !== "" && !text.includes("<resultset")) {
    throw new LifeboatError("QUERY_OUTPUT", `the client did not print XML (${context})`, { kind: "run" });
  }
  const rows: Array<Array<string | null>> = [];
  for (const match of text.matchAll(XML_TOKEN)) {
    if (match[0] === "<row>") rows.push([]);
    else {
      const row = rows[rows.length - 1];
      if (!row) throw new LifeboatError("QUERY_OUTPUT", `the client printed a field outside a row (${context})`, { kind: "run" });
      row.push(match[1] === undefined ? null : unescapeXml(match[1]));
    }
  }
  return rows;
}

function unescapeXml(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name: string) => {
    if (name.startsWith("#x") || name.startsWith("#X")) return String.fromCodePoint(Number.parseInt(name.slice(2), 16));
    if (name.startsWith("#")) return String.fromCodePoint(Number(name.slice(1)));
    return ENTITIES[name] ?? whole;
  });
}
