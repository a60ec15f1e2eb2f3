import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTool } from "../src/exec/spawn.js";
import { isRoot, locateTool, lookupUser, pgConfigBindir } from "../src/exec/tools.js";
import { silentLogger as log } from "../src/log/logger.js";
import { parseDatabaseUrl } from "../src/model/connection.js";
import type { DatabaseConnection } from "../src/model/job.js";
import type { PostgresScratch, ScratchSpec } from "../src/model/scratch.js";
import { listScratch, newRunId, provisionScratch, removeScratch, sweepScratch, type ScratchEnvironment, type ScratchRecord } from "../src/scratch/environments.js";
import { postgresScratch, scratchDatabaseName } from "../src/scratch/postgres.js";
import { psql, withDatabase } from "./support/postgres.js";

// One scratch root for this file, traversable (0711) like the default one, so
// the cluster's user can reach its folder when the tests run as root.
const root = mkdtempSync(join(tmpdir(), "lifeboat-scratch-test-"));
chmodSync(root, 0o711);
const fixtures = mkdtempSync(join(tmpdir(), "lifeboat-scratch-fixtures-"));
chmodSync(fixtures, 0o755);

const provisioned: ScratchEnvironment[] = [];

afterAll(async () => {
  // Whatever a failed test left behind: ours by teardown, a killed child's by the sweep.
  for (const environment of provisioned) await environment.teardown().catch(() => {});
  await sweepScratch({ root, log });
  rmSync(root, { recursive: true, force: true });
  rmSync(fixtures, { recursive: true, force: true });
});

async function provision(name: string, spec: ScratchSpec, runId = newRunId(), signal?: AbortSignal): Promise<ScratchEnvironment> {
  const environment = await provisionScratch({ name, spec }, runId, { root, log, signal });
  provisioned.push(environment);
  return environment;
}

function postgresSpec(overrides: Partial<PostgresScratch> = {}): PostgresScratch {
  return { type: "postgres", server: undefined, runAs: "postgres", bin: undefined, ...overrides };
}

/** What is left in the scratch root for one run: folders and records. */
function leftovers(runId: string): string[] {
  return readdirSync(root).filter((name) => name.startsWith(runId));
}

function recordOf(id: string): ScratchRecord {
  return JSON.parse(readFileSync(join(root, `${id}.json`), "utf8")) as ScratchRecord;
}

/** Whether a process exists and is not a zombie (a killed postmaster may stay one when nothing reaps it). */
function processRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(")") + 2));
  } catch {
    return false;
  }
}

/** Addresses listening on a TCP port, from /proc/net/tcp and tcp6 ("127.0.0.1", or "ipv6" for any IPv6 listener). */
function listeningAddresses(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const out: string[] = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(file, "utf8").split("\n").slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state !== "0A" || !local?.endsWith(`:${hexPort}`)) continue;
      const hex = local.split(":")[0]!;
      out.push(hex.length === 8 ? (hex.match(/../g) ?? []).reverse().map((b) => Number.parseInt(b, 16)).join(".") : "ipv6");
    }
  }
  return out.sort();
}

describe("scratch: directory", () => {
  it("is a fresh empty folder, listed while alive and removed with its record on teardown", async () => {
    const environment = await provision("files", { type: "directory" });
    const directory = environment.connection.directory!;
    expect(directory).toBe(join(root, environment.id, "files"));
    expect(readdirSync(directory)).toEqual([]);
    const listed = (await listScratch({ root })).find((r) => r.id === environment.id);
    expect(listed).toMatchObject({ type: "directory", alive: true, kept: false, connection: { directory } });

    writeFileSync(join(directory, "restored.txt"), "data");
    await environment.teardown();
    expect(existsSync(join(root, environment.id))).toBe(false);
    expect(leftovers(environment.runId)).toEqual([]);
  });
});

describe("scratch: command", () => {
  const up = join(fixtures, "up.mjs");
  const badUp = join(fixtures, "bad-up.mjs");
  const down = join(fixtures, "down.mjs");
  writeFileSync(
    up,
    'console.log(JSON.stringify({ url: "fake://" + process.env.LIFEBOAT_SCRATCH_ID, directory: process.env.LIFEBOAT_SCRATCH_DIR, password: "hunter2-not-on-disk" }));\n',
  );
  writeFileSync(badUp, 'console.log("server is up!");\n');
  // down writes the LIFEBOAT_SCRATCH_* variables it received into the file named by its argument.
  writeFileSync(
    down,
    'import { writeFileSync } from "node:fs";\nwriteFileSync(process.argv[2], JSON.stringify(Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("LIFEBOAT_SCRATCH_")))));\n',
  );
  const node = process.execPath;

  it("parses up's details, keeps secrets off disk, and gives them to down as LIFEBOAT_SCRATCH_* variables", async () => {
    const marker = join(fixtures, "down-ran.json");
    const environment = await provision("env", { type: "command", up: [node, up], down: [node, down, marker], env: {} });
    const dir = join(root, environment.id);
    expect(environment.connection).toEqual({ url: `fake://${environment.id}`, directory: dir, password: "hunter2-not-on-disk" });
    expect(readFileSync(join(root, `${environment.id}.json`), "utf8")).not.toContain("hunter2");
    expect(existsSync(marker)).toBe(false);

    await environment.teardown();
    expect(JSON.parse(readFileSync(marker, "utf8"))).toEqual({
      LIFEBOAT_SCRATCH_ID: environment.id,
      LIFEBOAT_SCRATCH_DIR: dir,
      LIFEBOAT_SCRATCH_URL: `fake://${environment.id}`,
      LIFEBOAT_SCRATCH_DIRECTORY: dir,
    });
    expect(leftovers(environment.runId)).toEqual([]);
  });

  it("fails clearly when up does not print JSON, runs down anyway and leaves nothing behind", async () => {
    const marker = join(fixtures, "down-after-bad-up.json");
    const runId = newRunId();
    const failure = provision("bad", { type: "command", up: [node, badUp], down: [node, down, marker], env: {} }, runId);
    await expect(failure).rejects.toMatchObject({ code: "SCRATCH_UP_OUTPUT", message: expect.stringContaining("did not print JSON on stdout") });
    expect(existsSync(marker)).toBe(true); // up may have created something before printing nonsense
    expect(leftovers(runId)).toEqual([]);
  });
});

describe("scratch: postgres", () => {
  let db: ScratchEnvironment;

  beforeAll(async () => {
    // Lifeboat's own environment holds storage credentials; the scratch server must not inherit them.
    process.env.LIFEBOAT_TEST_SECRET = "s3-secret-in-lifeboat-env";
    try {
      db = await provision("db", postgresSpec());
    } finally {
      delete process.env.LIFEBOAT_TEST_SECRET;
    }
  });

  it("starts an ephemeral cluster on a loopback port and connects with the returned url", async () => {
    const port = db.connection.port!;
    expect(db.connection).toEqual({
      url: `postgresql://postgres@127.0.0.1:${port}/scratch`,
      host: "127.0.0.1",
      port: expect.stringMatching(/^\d+$/),
      user: "postgres",
      database: "scratch",
      socket: join(root, db.id, "socket"),
    });
    expect(db.connectHint).toBe(`psql 'postgresql://postgres@127.0.0.1:${port}/scratch'`);
    expect(db.versions.server).toMatch(/^PostgreSQL \d+\.\d+/);
    expect(await psql(db.connection.url!, "select 1")).toBe("1");
    expect(await psql(`postgresql://postgres@/scratch?host=${db.connection.socket}&port=${port}`, "select current_user")).toBe("postgres");
  });

  it("is tuned for restore speed and trusts only its own socket and 127.0.0.1", async () => {
    const settings = await psql(db.connection.url!, "select string_agg(name || '=' || setting, ',' order by name) from pg_settings where name in ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_level', 'autovacuum', 'listen_addresses', 'max_wal_senders')");
    expect(settings).toBe("autovacuum=off,fsync=off,full_page_writes=off,listen_addresses=127.0.0.1,max_wal_senders=0,synchronous_commit=off,wal_level=minimal");
    const rules = await psql(db.connection.url!, "select type, database, user_name, address, auth_method from pg_hba_file_rules order by line_number");
    expect(rules.split("\n")).toEqual(["local|{all}|{all}||trust", "host|{all}|{all}|127.0.0.1|trust"]);
    expect(listeningAddresses(Number(db.connection.port))).toEqual(["127.0.0.1"]);
  });

  it("starts the server without Lifeboat's environment (no credentials a superuser could read)", async () => {
    const pid = recordOf(db.id).resource.pid as number;
    const environ = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    expect(environ.some((e) => e.startsWith("PATH="))).toBe(true);
    expect(environ.join("\n")).not.toContain("s3-secret-in-lifeboat-env");
  });

  it("copies every cluster from one template initdb made for this machine, instead of running initdb each time", async () => {
    const templates = readdirSync(join(root, ".templates"));
    expect(templates).toHaveLength(1);
    expect(existsSync(join(root, ".templates", templates[0]!, "PG_VERSION"))).toBe(true);
    const second = await provision("db2", postgresSpec());
    try {
      const identity = (url: string) => psql(url, "select system_identifier from pg_control_system()");
      expect(await identity(second.connection.url!)).toBe(await identity(db.connection.url!));
      expect(second.connection.port).not.toBe(db.connection.port);
      expect(readdirSync(join(root, ".templates"))).toEqual(templates);
    } finally {
      await second.teardown();
    }
  });

  it("stores UTF-8 text with byte-order collation and Unicode-aware case mapping", async () => {
    const facts = await psql(db.connection.url!, "select current_setting('server_encoding') || ' ' || current_setting('lc_collate') || ' ' || upper('zoë ñúñez 名前')");
    expect(facts).toBe("UTF8 C ZOË ÑÚÑEZ 名前");
  });

  it.runIf(isRoot())("runs the server as the runAs user when lifeboat runs as root", async () => {
    const postgres = await lookupUser("postgres");
    const pid = recordOf(db.id).resource.pid as number;
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    expect(Number(uid)).toBe(postgres.uid);
    expect(statSync(join(root, db.id, "data")).uid).toBe(postgres.uid);
    expect(recordOf(db.id).resource).toMatchObject({ runAs: "postgres", port: Number(db.connection.port) });
  });

  describe("on an existing server", () => {
    let server: DatabaseConnection;

    beforeAll(() => {
      const parsed = parseDatabaseUrl(withDatabase(db.connection.url!, "postgres"), "postgres");
      if (!("connection" in parsed)) throw new Error(parsed.problem);
      // Trust auth ignores the password; it is here to check where it goes (and where not).
      server = { ...parsed.connection, password: "pw-never-on-disk" };
    });

    it("creates a database named after the run and drops it on teardown, even with a session open", async () => {
      const runId = newRunId();
      const environment = await provision("restore-target", postgresSpec({ server }), runId);
      const database = `lifeboat_scratch_${runId.replace(/-/g, "_")}_restore_target`;
      expect(environment.connection).toEqual({
        url: `postgresql://postgres@127.0.0.1:${db.connection.port}/${database}`,
        database,
        host: "127.0.0.1",
        port: db.connection.port,
        user: "postgres",
        password: "pw-never-on-disk",
      });
      expect(readFileSync(join(root, `${environment.id}.json`), "utf8")).not.toContain("pw-never-on-disk");
      expect(await psql(environment.connection.url!, "select current_database()")).toBe(database);

      const session = startTool({ argv: [await locateTool("psql", { fallback: pgConfigBindir }), "-X", `--dbname=${environment.connection.url}`, "-c", "select pg_sleep(60)"], context: "holding a session" });
      await waitFor(async () => (await psql(db.connection.url!, `select count(*) from pg_stat_activity where datname = '${database}'`)) === "1");
      await environment.teardown();
      expect(await psql(db.connection.url!, `select count(*) from pg_database where datname = '${database}'`)).toBe("0");
      await expect(session.done).rejects.toMatchObject({ code: "TOOL_FAILED" });
      expect(leftovers(runId)).toEqual([]);
    });

    it("removes a kept scratch database from its record alone (no config, no password)", async () => {
      const environment = await provision("kept", postgresSpec({ server }));
      await environment.keep();
      expect((await listScratch({ root })).find((r) => r.id === environment.id)).toMatchObject({ kept: true, alive: true });
      expect(await sweepScratch({ root, log })).toEqual([]);

      await removeScratch(environment.id, { root, log });
      expect(await psql(db.connection.url!, `select count(*) from pg_database where datname = '${environment.connection.database}'`)).toBe("0");
      expect(leftovers(environment.runId)).toEqual([]);
    });

    it("names databases within PostgreSQL's 63 characters, distinctly", () => {
      expect(scratchDatabaseName("20250101t000000-abcd", "Orders.DB-eu")).toBe("lifeboat_scratch_20250101t000000_abcd_orders_db_eu");
      const a = scratchDatabaseName("20250101t000000-abcd", `${"x".repeat(60)}-a`);
      const b = scratchDatabaseName("20250101t000000-abcd", `${"x".repeat(60)}-b`);
      expect(a.length).toBeLessThanOrEqual(63);
      expect(b.length).toBeLessThanOrEqual(63);
      expect(a).not.toBe(b);
      expect(a).toMatch(/^lifeboat_scratch_20250101t000000_abcd_x+_[0-9a-f]{6}$/);
    });
  });

  it("teardown stops the server and removes its folder and record; a second removal is a no-op", async () => {
    const record = recordOf(db.id);
    const pid = record.resource.pid as number;
    expect(processRunning(pid)).toBe(true);

    await db.teardown();
    expect(processRunning(pid)).toBe(false);
    expect(listeningAddresses(Number(db.connection.port))).toEqual([]);
    expect(leftovers(db.runId)).toEqual([]);
    await db.teardown();
    // The kind itself, given the same record again: the cluster and its folder are gone.
    await postgresScratch.remove(record.resource, { dir: join(root, db.id), spec: undefined, log });
  });
});

describe("scratch: postgres provisioning failures", () => {
  it("a bin folder without initdb fails with TOOL_NOT_FOUND and leaves nothing behind", async () => {
    const bin = mkdtempSync(join(fixtures, "empty-bin-"));
    const runId = newRunId();
    await expect(provision("nobin", postgresSpec({ bin }), runId)).rejects.toMatchObject({
      code: "TOOL_NOT_FOUND",
      message: `initdb was not found in ${bin} (bin)`,
    });
    expect(leftovers(runId)).toEqual([]);
  });

  it("a server that does not start fails naming pg_ctl, with the server log's last lines, and leaves nothing behind", async () => {
    // Real initdb, psql and pg_ctl; pg_ctl (a copy, so it looks for `postgres` next to itself)
    // finds a `postgres` that reports the right version but refuses to start.
    const bin = mkdtempSync(join(fixtures, "broken-bin-"));
    chmodSync(bin, 0o755);
    const realBin = (await pgConfigBindir())[0]!;
    const version = execFileSync(join(realBin, "postgres"), ["-V"], { encoding: "utf8" }).trim();
    symlinkSync(join(realBin, "initdb"), join(bin, "initdb"));
    symlinkSync(await locateTool("psql", { fallback: pgConfigBindir }), join(bin, "psql"));
    copyFileSync(join(realBin, "pg_ctl"), join(bin, "pg_ctl"));
    chmodSync(join(bin, "pg_ctl"), 0o755);
    writeFileSync(join(bin, "postgres"), `#!/bin/sh\nif [ "$1" = "-V" ]; then echo '${version}'; exit 0; fi\necho 'FATAL:  simulated startup failure' >&2\nexit 1\n`, { mode: 0o755 });

    const runId = newRunId();
    const failure = provision("broken", postgresSpec({ bin }), runId);
    await expect(failure).rejects.toMatchObject({ code: "TOOL_FAILED" });
    const message = ((await failure.catch((e: Error) => e)) as Error).message;
    expect(message).toMatch(/^pg_ctl failed with exit code 1 \(starting scratch environment "broken"\)\n/);
    expect(message).toContain("FATAL:  simulated startup failure");
    expect(leftovers(runId)).toEqual([]);
  });

  it("an interrupted start stops what it started and leaves nothing behind", async () => {
    const runId = newRunId();
    const controller = new AbortController();
    const failure = provision("interrupted", postgresSpec(), runId, controller.signal);
    // Abort once the cluster is recorded, i.e. while initdb or the server is starting.
    await waitFor(() => existsSync(join(root, `${runId}-interrupted.json`)) && "dataDir" in recordOf(`${runId}-interrupted`).resource);
    controller.abort();
    await expect(failure).rejects.toMatchObject({ kind: "interrupted" });
    expect(leftovers(runId)).toEqual([]);
    expect(execFileSync("ps", ["-eo", "args"], { encoding: "utf8" })).not.toContain(join(root, `${runId}-interrupted`));
  });
});

describe("scratch: sweeping what a killed run left behind", () => {
  const script = join(fixtures, "provision-and-hang.mjs");
  writeFileSync(
    script,
    `const [environmentsUrl, loggerUrl, root, runId] = process.argv.slice(2);
const { provisionScratch } = await import(environmentsUrl);
const { silentLogger: log } = await import(loggerUrl);
const pg = await provisionScratch({ name: "orphan", spec: { type: "postgres", server: undefined, runAs: "postgres", bin: undefined } }, runId, { root, log });
const kept = await provisionScratch({ name: "kept", spec: { type: "directory" } }, runId, { root, log });
await kept.keep();
console.log(JSON.stringify({ pg: pg.id, kept: kept.id }));
setInterval(() => {}, 60_000);
`,
  );
  // The built module, as the CLI runs it (npm test builds dist first).
  const environmentsJs = new URL("../dist/scratch/environments.js", import.meta.url);
  const loggerJs = new URL("../dist/log/logger.js", import.meta.url);

  it("stops the postmaster of a SIGKILLed run and removes its folder and record, but leaves a kept environment until removed", async () => {
    expect(existsSync(fileURLToPath(environmentsJs)), "dist/ is missing: run npm run build").toBe(true);
    const runId = newRunId();
    const child = spawn(process.execPath, [script, environmentsJs.href, loggerJs.href, root, runId], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const exited = once(child, "exit");
    try {
      const [line] = (await Promise.race([once(createInterface({ input: child.stdout }), "line"), exited.then(() => Promise.reject(new Error(`child exited: ${stderr}`)))])) as [string];
      const ids = JSON.parse(line) as { pg: string; kept: string };
      const pid = recordOf(ids.pg).resource.pid as number;
      expect(processRunning(pid)).toBe(true);
      expect((await listScratch({ root })).filter((r) => r.runId === runId).map((r) => [r.name, r.alive, r.kept])).toEqual([
        ["kept", true, true],
        ["orphan", true, false],
      ]);

      child.kill("SIGKILL");
      await exited;
      expect((await listScratch({ root })).filter((r) => r.runId === runId).map((r) => [r.name, r.alive])).toEqual([
        ["kept", false],
        ["orphan", false],
      ]);
      expect(processRunning(pid)).toBe(true); // nothing stops a server whose owner was killed but the sweep

      const swept = await sweepScratch({ root, log });
      expect(swept.map((r) => r.id)).toEqual([ids.pg]);
      expect(processRunning(pid)).toBe(false);
      expect(existsSync(join(root, ids.pg))).toBe(false);
      expect(existsSync(join(root, `${ids.pg}.json`))).toBe(false);
      expect(existsSync(join(root, ids.kept, "files"))).toBe(true);
      expect(await sweepScratch({ root, log })).toEqual([]);

      await removeScratch(ids.kept, { root, log });
      expect(leftovers(runId)).toEqual([]);
    } finally {
      child.kill("SIGKILL");
    }
  });
});

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("timed out waiting for a condition");
    await sleep(20);
  }
}
