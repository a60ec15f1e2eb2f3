import { registerSecret } from "../../log/redact.js";
import { LifeboatError } from "../../model/errors.js";
import type { SqlCheck, SqlQuery } from "../../model/plan.js";
import { parseTimestamp } from "../../model/timestamp.js";
import { runQuery, type QueryResult, type QueryTarget } from "../query.js";
import type { CheckContext, CheckResult, ScratchHandle } from "./check.js";
import { stoppedError } from "./command.js";

/**
 * `verify: { sql, on, expect }` and `rpo-probe: { sql, on }`: a query on a
 * scratch database, through `runQuery` (psql, or the mariadb client).
 *
 * The scratch environment must be a database: a `postgres` or `mariadb` one,
 * or a `command` one whose `url` is postgresql:// (postgres://), mariadb://
 * or mysql:// (the scheme chooses the client; a `password` detail, or the
 * URL's, is used and never shown).
 *
 * Expectations:
 * - `true`: exactly one row with one value that reads as true (t, true, 1,
 *   yes; any case): psql prints booleans as t/f, MariaDB as 1/0.
 * - `rows`: the number of rows is within min..max (both inclusive, either open).
 * - `equals`: exactly one row with one value, equal to the text after
 *   trimming both.
 * A wrong answer fails with CHECK_FAILED (kind "verification"):
 * `query on scratch "db" returned f; expected true`.
 */
export async function runSqlCheck(check: SqlCheck, ctx: CheckContext): Promise<CheckResult> {
  const where = `query on scratch "${check.on}"`;
  const { rows } = await runOn(check, ctx, `running a sql check on scratch "${check.on}"`);
  const expect = check.expect;
  const fail = (found: string, expected: string) =>
    new LifeboatError("CHECK_FAILED", `${where} returned ${found}; expected ${expected}`, { kind: "verification", details: { rows: rows.length } });

  if (expect.type === "rows") {
    const { min, max } = expect;
    const wanted = describeRange(min, max);
    if ((min !== undefined && rows.length < min) || (max !== undefined && rows.length > max)) throw fail(countRows(rows.length), wanted);
    return { note: `returned ${countRows(rows.length)} (expected ${wanted})`, output: null };
  }

  const value = singleValue(rows);
  if (expect.type === "true") {
    if (value === undefined) throw fail(describeShape(rows), "one row with one true value");
    if (value === null || !TRUE.test(value.trim())) throw fail(describeValue(value), "true");
    return { note: `returned ${describeValue(value)}`, output: null };
  }

  const wanted = expect.value.trim();
  if (value === undefined) throw fail(describeShape(rows), `one row with one value, ${quote(wanted)}`);
  if (value === null || value.trim() !== wanted) throw fail(value === null ? "NULL" : quote(value.trim()), quote(wanted));
  return { note: `returned ${quote(wanted)}`, output: null };
}

/**
 * An rpo-probe query: one row with one value, the newest timestamp in the
 * restored data (read by `parseTimestamp`; one without an offset is UTC,
 * and the session runs in UTC). No rows, NULL (an empty table's max()) or
 * something else fails with PROBE_FAILED (kind "verification").
 */
export async function readProbeSql(query: SqlQuery, ctx: CheckContext): Promise<Date> {
  const { rows } = await runOn(query, ctx, `running the rpo probe on scratch "${query.on}"`);
  const where = `rpo probe on scratch "${query.on}"`;
  const fail = (found: string, hint?: string) =>
    new LifeboatError("PROBE_FAILED", `${where} returned ${found}; expected one row with the newest timestamp in the restored data`, {
      kind: "verification",
      ...(hint ? { hint } : {}),
    });
  const value = singleValue(rows);
  if (value === undefined) throw fail(describeShape(rows));
  if (value === null) throw fail("NULL", "is the table empty? max() of no rows is NULL");
  const at = parseTimestamp(value);
  if (!at) throw fail(`${quote(value)}, which is not a timestamp`, "select a timestamp (with a time zone, or in UTC) or Unix seconds");
  return at;
}

/** How to reach a scratch database with `runQuery`; a usage error for anything else. */
export function scratchQueryTarget(handle: ScratchHandle): QueryTarget {
  const { spec, connection, name } = handle;
  const url = connection.url;
  if (spec.type === "directory") {
    throw new LifeboatError("CHECK_SCRATCH_KIND", `scratch "${name}" is a directory, not a database; sql runs on postgres, mariadb or command scratch environments`, {
      kind: "usage",
    });
  }
  if (!url) {
    throw new LifeboatError("CHECK_SCRATCH_KIND", `scratch "${name}" has no url among its connection details, so sql cannot run on it`, {
      kind: spec.type === "command" ? "usage" : "run",
      hint: spec.type === "command" ? 'make its up command print a "url": "postgresql://…" or "mariadb://…"' : undefined,
    });
  }
  if (spec.type === "postgres") return { family: "postgres", url, bin: spec.bin, password: spec.server?.password };
  if (spec.type === "mariadb") return { family: "mariadb", url, bin: spec.bin };
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  const family = scheme === "postgres" || scheme === "postgresql" ? "postgres" : scheme === "mariadb" || scheme === "mysql" ? "mariadb" : undefined;
  if (!family) {
    throw new LifeboatError("CHECK_SCRATCH_KIND", `scratch "${name}" has a ${scheme ? `${scheme}:` : "non-URL"} url; sql runs on postgresql://, postgres://, mariadb:// or mysql:// urls`, {
      kind: "usage",
    });
  }
  registerSecret(connection.password);
  return { family, url, password: connection.password };
}

const TRUE = /^(t|true|1|yes)$/i;

async function runOn(query: SqlQuery, ctx: CheckContext, context: string): Promise<QueryResult> {
  const target = scratchQueryTarget(ctx.scratch(query.on));
  try {
    return await runQuery(target, query.sql, { context, signal: ctx.signal });
  } catch (error) {
    if (ctx.signal.aborted && error instanceof LifeboatError && error.code === "INTERRUPTED") throw stoppedError(ctx.signal, `the query on scratch "${query.on}"`);
    throw error;
  }
}

/** The only value of a one-row, one-column result; undefined for any other shape. */
function singleValue(rows: QueryResult["rows"]): string | null | undefined {
  return rows.length === 1 && rows[0]!.length === 1 ? rows[0]![0] : undefined;
}

function describeShape(rows: QueryResult["rows"]): string {
  if (rows.length !== 1) return countRows(rows.length);
  const width = rows[0]!.length;
  return width === 0 ? "a row without values" : `a row of ${width} values (${rows[0]!.slice(0, 5).map(describeValue).join(", ")}${width > 5 ? ", …" : ""})`;
}

function countRows(n: number): string {
  return n === 0 ? "no rows" : n === 1 ? "1 row" : `${n} rows`;
}

function describeRange(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return min === max ? `exactly ${min}` : `between ${min} and ${max}`;
  if (min !== undefined) return `at least ${min}`;
  if (max !== undefined) return `at most ${max}`;
  return "any number";
}

/** A value for messages: bare when it is a plain word or number, else quoted; NULL for NULL. */
function describeValue(value: string | null): string {
  if (value === null) return "NULL";
  return /^[\w.:+-]{1,80}$/.test(value) ? value : quote(value);
}

function quote(value: string): string {
  return JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}…` : value);
}
