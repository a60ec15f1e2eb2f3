import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CheckContext } from "../src/drill/checks/check.js";
import { readProbeCommand, runCommandCheck, runPlanCommand, startBackgroundCommand } from "../src/drill/checks/command.js";
import { runFilesCheck } from "../src/drill/checks/files.js";
import { runHttpCheck } from "../src/drill/checks/http.js";
import { readProbeSql, runSqlCheck } from "../src/drill/checks/sql.js";
import { runQuery, type QueryTarget } from "../src/drill/query.js";
import { silentLogger } from "../src/log/logger.js";
import { LifeboatError } from "../src/model/errors.js";
import { parseTemplate, renderTemplate, type CommandCheck, type CommandSpec, type FilesCheck, type HttpCheck, type SqlCheck } from "../src/model/plan.js";
import type { ScratchSpec } from "../src/model/scratch.js";
import { parseTimestamp } from "../src/model/timestamp.js";
import type { ScratchEnvironment } from "../src/scratch/environments.js";
import { scratchRoot, sql as mariadbSql, startMariadb } from "./support/mariadb.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";

/**
 * The checks a drill runs (sql, command, http, files, rpo-probes), against
 * real services: an ephemeral PostgreSQL cluster and MariaDB server, a
 * node:http server on 127.0.0.1, temporary folders, and tiny real commands.
 */

type Family = "postgres" | "mariadb";
type Scratch = { spec: ScratchSpec; connection: Record<string, string> };

const PG_PASSWORD = "pg-Secret-Pässword/42";
const MARIADB_PASSWORD = "my-Secret p@ss:w/rd#1";
/** Every order is a minute older than the one before; order 1 is the newest. */
const NEWEST_ORDER = new Date("2026-11-21T19:41:32.385Z");

let pg: TestPostgres | undefined;
let maria: ScratchEnvironment | undefined;
let work = "";
const scratch: Record<string, Scratch> = {};

function context(options: { signal?: AbortSignal } = {}): CheckContext {
  return {
    scratch(name) {
      const found = scratch[name];
      if (!found) throw new Error(`unknown scratch "${name}"`);
      return { name, ...found };
    },
    render: (template) =>
      renderTemplate(template, ({ scratch: name, key }) => {
        const value = scratch[name]?.connection[key];
        if (value === undefined) throw new Error(`no ${key} in scratch "${name}"`);
        return value;
      }),
    baseDir: work,
    signal: options.signal ?? new AbortController().signal,
    log: silentLogger,
  };
}

/** The scratch holding each family's test database. */
const ON: Record<Family, string> = { postgres: "pg", mariadb: "maria" };

beforeAll(async () => {
  const roots = scratchRoot("lifeboat-checks-");
  work = roots.work;
  const [startedPg, startedMaria] = await Promise.allSettled([startPostgres({ name: "checks-pg" }), startMariadb(roots.root, "checks")]);
  if (startedPg.status === "fulfilled") pg = startedPg.value;
  if (startedMaria.status === "fulfilled") maria = startedMaria.value;
  if (startedPg.status === "rejected") throw startedPg.reason;
  if (startedMaria.status === "rejected") throw startedMaria.reason;

  await pg!.sql(`
    create table orders (id int primary key, created_at timestamptz not null, note text);
    insert into orders select g, timestamptz '2026-11-21 19:42:32.385123+00' - make_interval(mins => g), 'n' || g from generate_series(1, 1200) g;
    create table events (at timestamp without time zone);
    insert into events values ('2026-11-21 18:00:00.5');
    create table nothing (at timestamptz);
    create role app login password '${PG_PASSWORD}';
    grant select on all tables in schema public to app;
  `);
  const mariaUrl = maria!.connection.url!;
  mariadbSql(
    mariaUrl,
    `SET max_recursive_iterations = 100000;
     CREATE TABLE orders (id INT PRIMARY KEY, created_at DATETIME(6) NOT NULL, note VARCHAR(20));
     INSERT INTO orders (id, created_at, note) WITH RECURSIVE q(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM q WHERE n < 1200)
       SELECT n, TIMESTAMP'2026-11-21 19:42:32.385123' - INTERVAL n MINUTE, CONCAT('n', n) FROM q;
     CREATE TABLE nothing (at DATETIME);
     CREATE USER app@'%' IDENTIFIED BY '${MARIADB_PASSWORD}';
     GRANT SELECT ON scratch.* TO app@'%';`,
  );

  const pgPort = String(pg!.port);
  scratch.pg = {
    spec: { type: "postgres", server: undefined, runAs: "postgres", bin: undefined },
    connection: { url: pg!.url, host: "127.0.0.1", port: pgPort, user: "postgres", database: "scratch" },
  };
  scratch.maria = { spec: { type: "mariadb", runAs: "mysql", bin: undefined }, connection: { ...maria!.connection } };
  const command: ScratchSpec = { type: "command", up: ["true"], down: ["true"], env: {} };
  const mariaHost = `${maria!.connection.host}:${maria!.connection.port}`;
  scratch["pg-app"] = { spec: command, connection: { url: `postgresql://app:${encodeURIComponent(PG_PASSWORD)}@127.0.0.1:${pgPort}/scratch` } };
  scratch["maria-app"] = { spec: command, connection: { url: `mysql://app:${encodeURIComponent(MARIADB_PASSWORD)}@${mariaHost}/scratch` } };
  scratch["maria-app-password"] = { spec: command, connection: { url: `mariadb://app@${mariaHost}/scratch`, password: MARIADB_PASSWORD } };
  scratch["maria-wrong"] = { spec: command, connection: { url: `mariadb://app@${mariaHost}/scratch`, password: `${MARIADB_PASSWORD}-wrong` } };
  scratch["web-only"] = { spec: command, connection: { url: "https://app.example/" } };
  scratch.files = { spec: { type: "directory" }, connection: { directory: join(work, "files") } };
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([pg?.stop(), maria?.teardown()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

function sqlCheck(on: string, sql: string, expect: SqlCheck["expect"]): SqlCheck {
  return { type: "sql", on, sql, expect };
}

/** The LifeboatError a promise rejects with. */
async function failure(promise: Promise<unknown>): Promise<LifeboatError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof LifeboatError)) throw new Error(`expected a LifeboatError, got ${error instanceof Error ? error.stack : String(error)}`);
  return error;
}

/** Whether a process is running (a zombie no longer counts). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

async function waitUntilGone(pid: number, ms = 3_000): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until; await sleep(50)) if (!running(pid)) return true;
  return !running(pid);
}

describe("sql checks", () => {
  const expectations: Array<{
    name: string;
    sql: Record<Family, string>;
    expect: SqlCheck["expect"];
    note?: Record<Family, string>;
    fails?: Record<Family, string>;
  }> = [
    {
      name: "a true answer passes",
      sql: { postgres: "select count(*) >= 1000 from orders", mariadb: "SELECT COUNT(*) >= 1000 FROM orders" },
      expect: { type: "true" },
      note: { postgres: "returned t", mariadb: "returned 1" },
    },
    {
      name: "a false answer fails and says what came back",
      sql: { postgres: "select count(*) >= 5000 from orders", mariadb: "SELECT COUNT(*) >= 5000 FROM orders" },
      expect: { type: "true" },
      fails: { postgres: 'query on scratch "pg" returned f; expected true', mariadb: 'query on scratch "maria" returned 0; expected true' },
    },
    {
      name: "NULL is not true",
      sql: { postgres: "select null::boolean", mariadb: "SELECT NULL" },
      expect: { type: "true" },
      fails: { postgres: 'query on scratch "pg" returned NULL; expected true', mariadb: 'query on scratch "maria" returned NULL; expected true' },
    },
    {
      name: "two true rows are not one true value",
      sql: { postgres: "select true union all select true", mariadb: "SELECT 1 UNION ALL SELECT 1" },
      expect: { type: "true" },
      fails: {
        postgres: 'query on scratch "pg" returned 2 rows; expected one row with one true value',
        mariadb: 'query on scratch "maria" returned 2 rows; expected one row with one true value',
      },
    },
    {
      name: "the words true and yes are true in any case",
      sql: { postgres: "select 'YES'", mariadb: "SELECT 'True'" },
      expect: { type: "true" },
      note: { postgres: "returned YES", mariadb: "returned True" },
    },
    {
      name: "a row count within min and max passes",
      sql: { postgres: "select id from orders where id <= 10", mariadb: "SELECT id FROM orders WHERE id <= 10" },
      expect: { type: "rows", min: 10, max: 10 },
      note: { postgres: "returned 10 rows (expected exactly 10)", mariadb: "returned 10 rows (expected exactly 10)" },
    },
    {
      name: "too few rows fail",
      sql: { postgres: "select id from orders where id <= 3", mariadb: "SELECT id FROM orders WHERE id <= 3" },
      expect: { type: "rows", min: 10, max: undefined },
      fails: { postgres: 'query on scratch "pg" returned 3 rows; expected at least 10', mariadb: 'query on scratch "maria" returned 3 rows; expected at least 10' },
    },
    {
      name: "too many rows fail",
      sql: { postgres: "select id from orders where id <= 3", mariadb: "SELECT id FROM orders WHERE id <= 3" },
      expect: { type: "rows", min: 1, max: 2 },
      fails: { postgres: 'query on scratch "pg" returned 3 rows; expected between 1 and 2', mariadb: 'query on scratch "maria" returned 3 rows; expected between 1 and 2' },
    },
    {
      name: "no rows pass when at most zero are expected",
      sql: { postgres: "select id from orders where id < 0", mariadb: "SELECT id FROM orders WHERE id < 0" },
      expect: { type: "rows", min: undefined, max: 0 },
      note: { postgres: "returned no rows (expected at most 0)", mariadb: "returned no rows (expected at most 0)" },
    },
    {
      name: "an equal value passes",
      sql: { postgres: "select note from orders where id = 7", mariadb: "SELECT note FROM orders WHERE id = 7" },
      expect: { type: "equals", value: "n7" },
      note: { postgres: 'returned "n7"', mariadb: 'returned "n7"' },
    },
    {
      name: "values are compared after trimming",
      sql: { postgres: "select '  padded\t'", mariadb: "SELECT '  padded  '" },
      expect: { type: "equals", value: " padded " },
      note: { postgres: 'returned "padded"', mariadb: 'returned "padded"' },
    },
    {
      name: "a different value fails with both values quoted",
      sql: { postgres: "select note from orders where id = 7", mariadb: "SELECT note FROM orders WHERE id = 7" },
      expect: { type: "equals", value: "n8" },
      fails: { postgres: 'query on scratch "pg" returned "n7"; expected "n8"', mariadb: 'query on scratch "maria" returned "n7"; expected "n8"' },
    },
    {
      name: "NULL does not equal the empty string",
      sql: { postgres: "select null", mariadb: "SELECT NULL" },
      expect: { type: "equals", value: "" },
      fails: { postgres: 'query on scratch "pg" returned NULL; expected ""', mariadb: 'query on scratch "maria" returned NULL; expected ""' },
    },
    {
      name: "the empty string equals the empty string",
      sql: { postgres: "select ''", mariadb: "SELECT ''" },
      expect: { type: "equals", value: "" },
      note: { postgres: 'returned ""', mariadb: 'returned ""' },
    },
  ];

  for (const family of ["postgres", "mariadb"] as const) {
    describe(family, () => {
      for (const c of expectations) {
        it(c.name, async () => {
          const check = sqlCheck(ON[family], c.sql[family], c.expect);
          if (c.fails) {
            const error = await failure(runSqlCheck(check, context()));
            expect(error.code).toBe("CHECK_FAILED");
            expect(error.kind).toBe("verification");
            expect(error.message).toBe(c.fails[family]);
          } else {
            const result = await runSqlCheck(check, context());
            expect(result).toEqual({ note: c.note![family], output: null });
          }
        });
      }
    });
  }

  it("a directory scratch is not a database", async () => {
    const error = await failure(runSqlCheck(sqlCheck("files", "select 1", { type: "true" }), context()));
    expect([error.code, error.kind]).toEqual(["CHECK_SCRATCH_KIND", "usage"]);
    expect(error.message).toContain('scratch "files" is a directory, not a database');
  });

  it("a command scratch whose url is not a database url is refused by its scheme", async () => {
    const error = await failure(runSqlCheck(sqlCheck("web-only", "select 1", { type: "true" }), context()));
    expect([error.code, error.kind]).toEqual(["CHECK_SCRATCH_KIND", "usage"]);
    expect(error.message).toContain("https: url");
  });
});

describe("sql checks under the attempt's timeout", () => {
  it.each([
    ["postgres", "pg", "select pg_sleep(30) is not null"],
    ["mariadb", "maria", "SELECT SLEEP(30) = 0"],
  ])("%s: a query that runs too long is stopped with CHECK_TIMEOUT", async (_family, on, sql) => {
    const started = Date.now();
    const error = await failure(runSqlCheck(sqlCheck(on, sql, { type: "true" }), context({ signal: AbortSignal.timeout(500) })));
    expect([error.code, error.kind]).toEqual(["CHECK_TIMEOUT", "run"]);
    expect(error.message).toBe(`the query on scratch "${on}" timed out`);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe("runQuery returns values exactly", () => {
  const values: Record<Family, string> = {
    postgres: `select null, '', 'NULL', 'a,b', E'x\\ny', E'tab\\there', '"q"', '<&>', '\\.', 'ünï 🚀', E' lead\\r\\n', 'lifeboat-null-x'`,
    mariadb: `SELECT NULL, '', 'NULL', 'a,b', 'x\\ny', 'tab\\there', '"q"', '<&>', '\\\\.', 'ünï 🚀', ' lead\\r\\n', 'lifeboat-null-x'`,
  };
  const expected = [null, "", "NULL", "a,b", "x\ny", "tab\there", '"q"', "<&>", "\\.", "ünï 🚀", " lead\r\n", "lifeboat-null-x"];

  function target(family: Family): QueryTarget {
    return { family, url: scratch[ON[family]]!.connection.url! };
  }

  for (const family of ["postgres", "mariadb"] as const) {
    it(`${family}: NULL, the empty string, the word NULL, commas, line breaks, tabs, quotes and markup come back as they are`, async () => {
      const { rows } = await runQuery(target(family), values[family], { context: "testing values" });
      expect(rows).toEqual([expected]);
    });

    it(`${family}: several rows and columns come back in order, and no rows as none`, async () => {
      const many = await runQuery(target(family), "SELECT id, note FROM orders WHERE id <= 3 ORDER BY id", { context: "testing rows" });
      expect(many.rows).toEqual([
        ["1", "n1"],
        ["2", "n2"],
        ["3", "n3"],
      ]);
      const none = await runQuery(target(family), "SELECT id FROM orders WHERE id < 0", { context: "testing rows" });
      expect(none.rows).toEqual([]);
      const oneEmpty = await runQuery(target(family), "SELECT ''", { context: "testing rows" });
      expect(oneEmpty.rows).toEqual([[""]]);
    });

    it(`${family}: a syntax error fails with QUERY_FAILED, the server's message and the context`, async () => {
      const error = await failure(runQuery(target(family), "selec 1", { context: 'running a sql check on scratch "x"' }));
      expect([error.code, error.kind]).toEqual(["QUERY_FAILED", "run"]);
      expect(error.message).toContain('(running a sql check on scratch "x")');
      expect(error.message).toMatch(family === "postgres" ? /syntax error at or near "selec"/ : /You have an error in your SQL syntax/);
    });

    it(`${family}: the session runs in UTC`, async () => {
      const sql = family === "postgres" ? "select current_setting('TimeZone')" : "SELECT @@session.time_zone";
      const { rows } = await runQuery(target(family), sql, { context: "testing the time zone" });
      expect(rows[0]![0]).toMatch(/^(UTC|\+00:00)$/);
    });
  }

  it("postgres: a psql meta-command is not SQL", async () => {
    const error = await failure(runQuery(target("postgres"), "\\! echo hi", { context: "testing" }));
    expect([error.code, error.kind]).toEqual(["QUERY_INVALID", "usage"]);
  });
});

describe("passwords in command scratch urls", () => {
  const secrets = [PG_PASSWORD, MARIADB_PASSWORD, encodeURIComponent(PG_PASSWORD), encodeURIComponent(MARIADB_PASSWORD)];
  function everything(error: LifeboatError): string {
    return [error.message, error.hint ?? "", JSON.stringify(error.details ?? {}), String((error.cause as Error | undefined)?.message ?? "")].join("\n");
  }

  it.each([
    ["a postgresql url with a password works", "pg-app"],
    ["a mysql url with a password reaches the server through the option file", "maria-app"],
    ["a password detail next to a mariadb url is used", "maria-app-password"],
  ])("%s", async (_name, on) => {
    const result = await runSqlCheck(sqlCheck(on, "SELECT COUNT(*) = 1200 FROM orders", { type: "true" }), context());
    expect(result.note).toMatch(/^returned (t|1)$/);
  });

  /** Every process's command line that mentions `needle`. */
  function commandLines(needle: string): string[] {
    const lines: string[] = [];
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const line = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ");
        if (line.includes(needle)) lines.push(line);
      } catch {
        // gone already
      }
    }
    return lines;
  }

  it.each([
    ["psql", "pg-app", "select pg_sleep(1)", () => `:${pg!.port}/`],
    ["the mariadb client", "maria-app", "SELECT SLEEP(1)", () => `--port=${maria!.connection.port}`],
  ])("%s never gets the password on its command line", async (_name, on, sql, marker) => {
    const seen: string[] = [];
    let querying = true;
    const query = runSqlCheck(sqlCheck(on, sql, { type: "rows", min: 1, max: 1 }), context()).finally(() => {
      querying = false;
    });
    while (querying) {
      seen.push(...commandLines(marker()));
      await sleep(20);
    }
    await query;
    expect(seen.length).toBeGreaterThan(0);
    for (const line of seen) for (const secret of secrets) expect(line).not.toContain(secret);
  });

  it.each([
    ["a failing query on a postgresql url with a password never shows the password", "pg-app", "selec 1", /syntax error/],
    ["a failing query on a mysql url with a password never shows the password", "maria-app", "selec 1", /SQL syntax/],
    ["a wrong password is refused by the server and not shown", "maria-wrong", "SELECT 1", /Access denied/],
  ])("%s", async (_name, on, sql, serverSays) => {
    const error = await failure(runSqlCheck(sqlCheck(on, sql, { type: "true" }), context()));
    expect(error.code).toBe("QUERY_FAILED");
    expect(error.message).toMatch(serverSays);
    for (const secret of secrets) expect(everything(error)).not.toContain(secret);
  });
});

describe("rpo probes", () => {
  const probes: Array<{ name: string; on: string; sql: string; at: Date }> = [
    { name: "postgres timestamptz", on: "pg", sql: "select max(created_at) from orders", at: NEWEST_ORDER },
    { name: "postgres timestamp without time zone, read as UTC", on: "pg", sql: "select max(at) from events", at: new Date("2026-11-21T18:00:00.500Z") },
    { name: "postgres epoch seconds", on: "pg", sql: "select extract(epoch from max(created_at)) from orders", at: NEWEST_ORDER },
    { name: "postgres epoch milliseconds", on: "pg", sql: "select (extract(epoch from max(created_at)) * 1000)::bigint from orders", at: NEWEST_ORDER },
    { name: "mariadb DATETIME(6)", on: "maria", sql: "SELECT MAX(created_at) FROM orders", at: NEWEST_ORDER },
    { name: "mariadb UNIX_TIMESTAMP (in the UTC session)", on: "maria", sql: "SELECT UNIX_TIMESTAMP(MAX(created_at)) FROM orders", at: NEWEST_ORDER },
  ];
  it.each(probes)("reads the newest timestamp: $name", async ({ on, sql, at }) => {
    expect((await readProbeSql({ type: "sql", on, sql }, context())).toISOString()).toBe(at.toISOString());
  });

  it.each([
    ["NULL from an empty table", "pg", "select max(at) from nothing", 'rpo probe on scratch "pg" returned NULL;'],
    ["no rows", "maria", "SELECT at FROM nothing", 'rpo probe on scratch "maria" returned no rows;'],
    ["two values", "pg", "select now(), now()", 'rpo probe on scratch "pg" returned a row of 2 values'],
    ["text that is no timestamp", "maria", "SELECT 'yesterday'", 'rpo probe on scratch "maria" returned "yesterday", which is not a timestamp;'],
  ])("fails with PROBE_FAILED on %s", async (_name, on, sql, message) => {
    const error = await failure(readProbeSql({ type: "sql", on, sql }, context()));
    expect([error.code, error.kind]).toEqual(["PROBE_FAILED", "verification"]);
    expect(error.message).toContain(message);
  });
});

describe("parseTimestamp", () => {
  const accepted: Array<[string, string]> = [
    ["2026-11-21T19:42:32Z", "2026-11-21T19:42:32.000Z"],
    ["2026-11-21t19:42:32z", "2026-11-21T19:42:32.000Z"],
    ["2026-11-21 19:42:32.385123+00", "2026-11-21T19:42:32.385Z"],
    ["2026-11-21 19:42:32.385999+00", "2026-11-21T19:42:32.385Z"],
    ["2026-11-21 19:42:32.1+0000", "2026-11-21T19:42:32.100Z"],
    ["2026-11-21T21:42:32.123456789+02:00", "2026-11-21T19:42:32.123Z"],
    ["2026-11-21 14:12:32-05:30", "2026-11-21T19:42:32.000Z"],
    ["2026-11-21 19:42:32 +0000", "2026-11-21T19:42:32.000Z"],
    ["2026-11-21 19:42:32 UTC", "2026-11-21T19:42:32.000Z"],
    ["2026-11-21 19:42:32", "2026-11-21T19:42:32.000Z"],
    ["2026-11-21T19:42", "2026-11-21T19:42:00.000Z"],
    ["2024-02-29 00:00:00Z", "2024-02-29T00:00:00.000Z"],
    ["  2026-11-21T19:42:32Z\n", "2026-11-21T19:42:32.000Z"],
    ["1795290152", "2026-11-21T19:42:32.000Z"],
    ["1795290152.385", "2026-11-21T19:42:32.385Z"],
    ["1795290152385", "2026-11-21T19:42:32.385Z"],
    ["0001-01-01 00:00:00Z", "0001-01-01T00:00:00.000Z"],
  ];
  it.each(accepted)("reads %j as %s", (text, iso) => {
    expect(parseTimestamp(text)?.toISOString()).toBe(iso);
  });

  const refused = [
    "",
    "   ",
    "NULL",
    "garbage",
    "2026-11-21",
    "2026-02-30 12:00:00Z",
    "2025-02-29 12:00:00Z",
    "2026-13-01 12:00:00Z",
    "2026-11-21 24:00:00Z",
    "2026-11-21 23:60:00Z",
    "2026-11-21 23:59:60Z",
    "2026-11-21 19:42:32+25",
    "2026-11-21 19:42:32 BC",
    "infinity",
    "179529015",
    "17952901520",
    "-1795290152",
    "1795290152e3",
    "2026-11-21T19:42:32Zjunk",
  ];
  it.each(refused)("refuses %j", (text) => {
    expect(parseTimestamp(text)).toBeUndefined();
  });
});

describe("command checks", () => {
  function spec(argv: string[], env: Record<string, string> = {}, cwd = work): CommandSpec {
    return { argv: argv.map(parseTemplate), env: Object.fromEntries(Object.entries(env).map(([k, v]) => [k, parseTemplate(v)])), cwd };
  }
  function commandCheck(argv: string[], stdoutContains?: string, env: Record<string, string> = {}): CommandCheck {
    return { type: "command", command: spec(argv, env), stdoutContains };
  }

  it.each([
    { name: "exit code 0 passes", argv: ["sh", "-c", "echo all good"], contains: undefined, note: "exit code 0" },
    { name: "expected output passes", argv: ["sh", "-c", "echo first; echo all good"], contains: "all good", note: 'exit code 0, output contains "all good"' },
  ])("$name", async ({ argv, contains, note }) => {
    const result = await runCommandCheck(commandCheck(argv, contains), context());
    expect(result.note).toBe(note);
    expect(result.output).toContain("all good");
  });

  it.each([
    { name: "a non-zero exit code fails with the code and the end of stderr", argv: ["sh", "-c", "echo partial; echo 'table orders is missing' >&2; exit 3"], contains: undefined, message: /^command sh exited with code 3\n {2}table orders is missing$/ },
    { name: "output without the expected text fails and shows how it ended", argv: ["sh", "-c", "echo something else"], contains: "all good", message: /^command sh exited with code 0 but its output does not contain "all good"; it ended with:\n {2}something else$/ },
  ])("$name", async ({ argv, contains, message }) => {
    const error = await failure(runCommandCheck(commandCheck(argv, contains), context()));
    expect([error.code, error.kind]).toEqual(["CHECK_FAILED", "verification"]);
    expect(error.message).toMatch(message);
  });

  it("renders ${scratch.…} in argv and env, and the command sees only PATH, HOME, USER, the locale and its own env", async () => {
    process.env.LIFEBOAT_TEST_LEAK = "storage-credentials";
    try {
      const script = "process.stdout.write(JSON.stringify({ arg: process.argv[1], env: process.env }))";
      const { stdout } = await runPlanCommand(spec(["node", "-e", script, "--", "--port=${scratch.pg.port}"], { DATABASE_URL: "${scratch.pg.url}", PLAIN: "x" }), context());
      const seen = JSON.parse(stdout) as { arg: string; env: Record<string, string> };
      expect(seen.arg).toBe(`--port=${pg!.port}`);
      expect(seen.env.DATABASE_URL).toBe(pg!.url);
      expect(seen.env.PLAIN).toBe("x");
      expect(seen.env.LIFEBOAT_TEST_LEAK).toBeUndefined();
      expect(seen.env.PATH).toBe(process.env.PATH);
      if (process.env.HOME) expect(seen.env.HOME).toBe(process.env.HOME);
    } finally {
      delete process.env.LIFEBOAT_TEST_LEAK;
    }
  });

  it("the rendered url reaches a real client: psql through ${scratch.pg.url} in env", async () => {
    const { stdout } = await runPlanCommand(spec(["sh", "-c", 'psql -X -At "$DATABASE_URL" -c "select count(*) from orders"'], { DATABASE_URL: "${scratch.pg.url}" }), context());
    expect(stdout.trim()).toBe("1200");
  });

  it("a relative program path is resolved against the command's folder", async () => {
    const dir = join(work, "scripts-home");
    mkdirSync(join(dir, "scripts"), { recursive: true });
    writeFileSync(join(dir, "scripts", "smoke.sh"), "#!/bin/sh\necho \"smoke from $(pwd)\"\n");
    chmodSync(join(dir, "scripts", "smoke.sh"), 0o755);
    const { stdout } = await runPlanCommand(spec(["./scripts/smoke.sh"], {}, dir), context());
    expect(stdout.trim()).toBe(`smoke from ${dir}`);
  });

  it.each([
    ["a program that is not on PATH", ["lifeboat-no-such-program"], "command lifeboat-no-such-program was not found on PATH"],
    ["a relative program that does not exist", ["./missing.sh"], `command ./missing.sh was not found in ${"WORK"}`],
  ])("%s fails with COMMAND_NOT_FOUND", async (_name, argv, message) => {
    const error = await failure(runPlanCommand(spec(argv), context()));
    expect([error.code, error.kind]).toEqual(["COMMAND_NOT_FOUND", "run"]);
    expect(error.message).toBe(message.replace("WORK", work));
  });

  it("the attempt's timeout kills the command and what it started", async () => {
    const pidFile = join(work, "timeout-child.pid");
    const started = Date.now();
    const error = await failure(runPlanCommand(spec(["sh", "-c", `sleep 30 & echo $! > ${pidFile}; wait`]), context({ signal: AbortSignal.timeout(500) }), { context: 'step "slow"' }));
    expect([error.code, error.kind]).toEqual(["CHECK_TIMEOUT", "run"]);
    expect(error.message).toBe('command sh (step "slow") timed out');
    expect(Date.now() - started).toBeLessThan(5_000);
    const child = Number(readFileSync(pidFile, "utf8"));
    expect(await waitUntilGone(child)).toBe(true);
  });

  it("children left behind by a finished command are terminated, so they cannot hold the check open", async () => {
    const pidFile = join(work, "leftover.pid");
    const started = Date.now();
    await runPlanCommand(spec(["sh", "-c", `sleep 30 & echo $! > ${pidFile}; echo done`]), context());
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await waitUntilGone(Number(readFileSync(pidFile, "utf8")))).toBe(true);
  });

  describe("rpo probe commands", () => {
    it("read the last non-empty line as the timestamp", async () => {
      const at = await readProbeCommand(commandCheck(["sh", "-c", "echo connecting; echo '2026-11-21 19:41:32.385123+00'; echo; echo '   '"]), context());
      expect(at.toISOString()).toBe(NEWEST_ORDER.toISOString());
    });

    it.each([
      ["nothing", ["true"], "rpo probe command true printed nothing;"],
      ["something else", ["sh", "-c", "echo 2026-11-21; echo not a time"], 'rpo probe command sh printed "not a time" as its last line, which is not a timestamp'],
    ])("fail with PROBE_FAILED when they print %s", async (_name, argv, message) => {
      const error = await failure(readProbeCommand(commandCheck(argv), context()));
      expect([error.code, error.kind]).toEqual(["PROBE_FAILED", "verification"]);
      expect(error.message).toContain(message);
    });
  });

  describe("background commands", () => {
    it("start, keep running, and are gone with what they started after stop (which is idempotent)", async () => {
      const pidFile = join(work, "background-child.pid");
      const app = await startBackgroundCommand(spec(["sh", "-c", `sleep 60 & echo $! > ${pidFile}; echo listening; wait`]), context(), "app");
      expect(app.pid).toBeGreaterThan(0);
      await sleep(300);
      expect(running(app.pid!)).toBe(true);
      const child = Number(readFileSync(pidFile, "utf8"));
      expect(running(child)).toBe(true);
      await Promise.all([app.stop(), app.stop()]);
      await app.stop();
      expect(running(app.pid!)).toBe(false);
      expect(await waitUntilGone(child)).toBe(true);
      const exited = await app.exited;
      expect(exited.exitCode).toBeNull();
      expect(exited.output).toContain("listening");
    });

    it("are not stopped when the start step's signal fires later", async () => {
      const controller = new AbortController();
      const app = await startBackgroundCommand(spec(["sleep", "60"]), context({ signal: controller.signal }), "app");
      controller.abort();
      await sleep(300);
      expect(running(app.pid!)).toBe(true);
      await app.stop();
      expect(running(app.pid!)).toBe(false);
    });

    it("a command that fails right after it started fails the step with its stderr", async () => {
      const error = await failure(startBackgroundCommand(spec(["sh", "-c", "echo 'port 8080 in use' >&2; exit 4"]), context(), "app"));
      expect([error.code, error.kind]).toEqual(["CHECK_FAILED", "verification"]);
      expect(error.message).toMatch(/^command sh exited with code 4 right after it started \(background command "app"\)\n.*port 8080 in use/s);
    });

    it("a program that cannot be found fails the step", async () => {
      const error = await failure(startBackgroundCommand(spec(["lifeboat-no-such-app"]), context(), "app"));
      expect(error.code).toBe("COMMAND_NOT_FOUND");
    });

    it("a process that ignores SIGTERM is killed after 5 s", async () => {
      const app = await startBackgroundCommand(spec(["node", "-e", "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"]), context(), "stubborn");
      await sleep(500); // node has installed its handler
      const started = Date.now();
      await app.stop();
      const took = Date.now() - started;
      expect(took).toBeGreaterThanOrEqual(4_500);
      expect(took).toBeLessThan(8_000);
      expect(running(app.pid!)).toBe(false);
    }, 20_000);
  });
});

describe("http checks", () => {
  let server: Server;
  let base = "";
  let refusedPort = 0;
  const AUTH_PASSWORD = "http-Secret-pw";

  beforeAll(async () => {
    server = createServer((req, res) => {
      const send = (status: number, body: string, headers: Record<string, string> = {}) => {
        res.writeHead(status, { "content-type": "text/plain", ...headers });
        res.end(req.method === "HEAD" ? undefined : body);
      };
      switch (req.url) {
        case "/ok":
          return send(200, "all good\n");
        case "/down":
          return send(503, "database\n\n   unavailable");
        case "/moved":
          return send(302, "", { location: "/ok" });
        case "/echo":
          return send(200, `header=${String(req.headers["x-scratch"])}`);
        case "/auth":
          return req.headers.authorization === `Basic ${Buffer.from(`app:${AUTH_PASSWORD}`).toString("base64")}` ? send(200, "welcome") : send(401, "who are you");
        case "/big":
          return send(200, `${"x".repeat(2 * 1024 * 1024)}needle`);
        case "/slow":
          return; // never answers
        default:
          return send(404, "not found");
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    refusedPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  function httpCheck(url: string, overrides: Partial<HttpCheck> = {}): HttpCheck {
    return { type: "http", url: parseTemplate(url), method: "GET", status: [200], bodyContains: undefined, headers: {}, ...overrides };
  }

  it.each([
    { name: "an accepted status passes", path: "/ok", overrides: {}, note: "HTTP 200" },
    { name: "the expected body passes", path: "/ok", overrides: { bodyContains: "good" }, note: 'HTTP 200, body contains "good"' },
    { name: "a redirect is not followed and passes when its status is accepted", path: "/moved", overrides: { status: [301, 302] }, note: "HTTP 302" },
    { name: "HEAD requests pass on their status", path: "/ok", overrides: { method: "HEAD" as const }, note: "HTTP 200" },
  ])("$name", async ({ path, overrides, note }) => {
    expect(await runHttpCheck(httpCheck(`${base}${path}`, overrides), context())).toEqual({ note, output: null });
  });

  it("renders ${scratch.…} in the url and headers", async () => {
    const url = `http://127.0.0.1:${base.split(":").pop()}/echo`;
    const check = httpCheck(url.replace("127.0.0.1", "${scratch.pg.host}"), { headers: { "x-scratch": parseTemplate("db-${scratch.pg.port}") }, bodyContains: `header=db-${pg!.port}` });
    expect((await runHttpCheck(check, context())).note).toBe(`HTTP 200, body contains "header=db-${pg!.port}"`);
  });

  it.each([
    { name: "a wrong status fails with the url, the status and the start of the body", path: "/down", overrides: {}, message: "GET BASE/down returned HTTP 503; expected 200: database unavailable" },
    { name: "a redirect fails when only 200 is accepted", path: "/moved", overrides: {}, message: "GET BASE/moved returned HTTP 302; expected 200" },
    { name: "several accepted statuses are listed", path: "/nope", overrides: { status: [200, 204] }, message: "GET BASE/nope returned HTTP 404; expected one of 200, 204: not found" },
    { name: "a body without the text fails", path: "/ok", overrides: { bodyContains: "ready" }, message: 'GET BASE/ok returned HTTP 200 but its body does not contain "ready": all good' },
    { name: "only the first MiB of the body is searched", path: "/big", overrides: { bodyContains: "needle" }, message: /^GET BASE\/big returned HTTP 200 but its body does not contain "needle": x{200}…$/ },
  ])("$name", async ({ path, overrides, message }) => {
    const error = await failure(runHttpCheck(httpCheck(`${base}${path}`, overrides), context()));
    expect([error.code, error.kind]).toEqual(["CHECK_FAILED", "verification"]);
    if (typeof message === "string") expect(error.message).toBe(message.replace("BASE", base));
    else expect(error.message).toMatch(new RegExp(message.source.replace("BASE", base.replace(/[.]/g, "\\."))));
  });

  it("credentials in the url are sent as basic authentication and never shown", async () => {
    const url = `http://app:${AUTH_PASSWORD}@${base.slice("http://".length)}`;
    expect((await runHttpCheck(httpCheck(`${url}/auth`, { bodyContains: "welcome" }), context())).note).toBe('HTTP 200, body contains "welcome"');
    const error = await failure(runHttpCheck(httpCheck(`${url}/down`), context()));
    expect(error.message).toContain(`GET http://app:[redacted]@${base.slice("http://".length)}/down returned HTTP 503`);
    expect(error.message).not.toContain(AUTH_PASSWORD);
  });

  it("a refused connection fails with a readable reason", async () => {
    const error = await failure(runHttpCheck(httpCheck(`http://127.0.0.1:${refusedPort}/health`), context()));
    expect([error.code, error.kind]).toEqual(["CHECK_FAILED", "verification"]);
    expect(error.message).toBe(`GET http://127.0.0.1:${refusedPort}/health failed: connection refused (nothing listens there)`);
  });

  it("the attempt's timeout stops a request that never gets an answer", async () => {
    const started = Date.now();
    const error = await failure(runHttpCheck(httpCheck(`${base}/slow`), context({ signal: AbortSignal.timeout(300) })));
    expect([error.code, error.kind]).toEqual(["CHECK_TIMEOUT", "run"]);
    expect(error.message).toBe(`GET ${base}/slow timed out`);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it("an interrupt stops it as INTERRUPTED", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const error = await failure(runHttpCheck(httpCheck(`${base}/slow`), context({ signal: controller.signal })));
    expect([error.code, error.kind]).toEqual(["INTERRUPTED", "interrupted"]);
  });
});

describe("files checks", () => {
  const A = "restored uploads\n";
  const B = Buffer.from([0, 1, 2, 3, 255]);
  const sha = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
  let dir = "";

  beforeAll(() => {
    dir = scratch.files!.connection.directory!;
    mkdirSync(join(dir, "sub"), { recursive: true });
    writeFileSync(join(dir, "a.txt"), A);
    writeFileSync(join(dir, "sub", "b.bin"), B);
    const outside = join(work, "outside");
    mkdirSync(outside);
    writeFileSync(join(outside, "secret.txt"), "outside\n");
    symlinkSync(join(dir, "a.txt"), join(dir, "link-inside"));
    symlinkSync(join(outside, "secret.txt"), join(dir, "link-outside"));
    symlinkSync(outside, join(dir, "dir-outside"));
    symlinkSync(join(dir, "sub"), join(dir, "dir-inside"));
  });

  function filesCheck(exist: string[], sha256: Record<string, string> = {}, on = "files"): FilesCheck {
    return { type: "files", on, exist, sha256 };
  }

  it("paths that exist and matching hashes pass, following links that stay inside", async () => {
    const result = await runFilesCheck(filesCheck(["a.txt", "sub", "sub/b.bin", "link-inside", "dir-inside/b.bin"], { "a.txt": sha(A), "sub/b.bin": sha(B).toUpperCase(), "link-inside": sha(A), "sub/../a.txt": sha(A) }), context());
    expect(result).toEqual({ note: "5 paths exist, 4 sha256 match", output: null });
  });

  it("collects every missing file and wrong hash in one failure", async () => {
    const wrong = "0".repeat(64);
    const error = await failure(runFilesCheck(filesCheck(["a.txt", "missing.txt", "sub/gone/deeper"], { "sub/b.bin": wrong, "not-there.bin": sha(B), sub: sha(B) }), context()));
    expect([error.code, error.kind]).toEqual(["CHECK_FAILED", "verification"]);
    expect(error.message).toBe(
      [
        'files check on scratch "files" found 5 problems:',
        "  missing: missing.txt",
        "  missing: sub/gone/deeper",
        `  sub/b.bin: sha256 is ${sha(B)}; expected ${wrong}`,
        `  missing: not-there.bin (expected sha256 ${sha(B)})`,
        `  sub: not a regular file, so it has no sha256 (expected ${sha(B)})`,
      ].join("\n"),
    );
  });

  it.each([
    ["an absolute path", ["/etc/passwd"], '"/etc/passwd" is absolute; paths are relative to the folder'],
    ["a path that climbs out with ..", ["sub/../../outside.txt"], '"sub/../../outside.txt" leads outside the folder'],
    ["a symbolic link to a file outside", ["link-outside"], '"link-outside" leads outside the folder through a symbolic link'],
    ["a path through a linked folder outside", ["dir-outside/secret.txt"], '"dir-outside/secret.txt" leads outside the folder through a symbolic link'],
    ["a missing path under a linked folder outside", ["dir-outside/nothing/here"], '"dir-outside/nothing/here" leads outside the folder through a symbolic link'],
  ])("refuses %s as a usage error naming it, before reading anything", async (_name, exist, message) => {
    const error = await failure(runFilesCheck(filesCheck(["missing.txt", ...exist]), context()));
    expect([error.code, error.kind]).toEqual(["CHECK_PATH_INVALID", "usage"]);
    expect(error.message).toBe(`files check on scratch "files": ${message}`);
  });

  it("refuses an escaping path among the hashes too", async () => {
    const error = await failure(runFilesCheck(filesCheck([], { "../x": sha(A) }), context()));
    expect(error.message).toContain('"../x" leads outside the folder');
  });

  it("needs a scratch folder", async () => {
    const error = await failure(runFilesCheck(filesCheck(["a.txt"], {}, "pg"), context()));
    expect([error.code, error.kind]).toEqual(["CHECK_SCRATCH_KIND", "usage"]);
  });
});
