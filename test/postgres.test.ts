import { execFileSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, statSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createWriteStream } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBackup } from "../src/backup/run-backup.js";
import { parseDatabaseUrl } from "../src/model/connection.js";
import type { BackupJob, PostgresSource } from "../src/model/job.js";
import type { NamedScratch } from "../src/model/scratch.js";
import { generateIdentity, parseIdentities } from "../src/pipeline/age/index.js";
import { restoreIntoScratch } from "../src/restore/restore-into-scratch.js";
import { runRestore } from "../src/restore/run-restore.js";
import { listScratch } from "../src/scratch/environments.js";
import { openFilesystemStore } from "../src/storage/filesystem.js";
import { Layout } from "../src/storage/layout.js";
import type { ObjectStore } from "../src/storage/store.js";
import { lifeboat } from "./support/cli.js";
import { pipeTools } from "./support/pipe-tools.js";
import { psql, startPostgres } from "./support/postgres.js";
import { fingerprint, schemaOf, shopSchema } from "./support/postgres-fixture.js";

const key = generateIdentity();
const identities = parseIdentities(key.identity);

function postgresJob(url: string, overrides: Partial<PostgresSource> = {}, job: Partial<BackupJob> = {}): BackupJob {
  const parsed = parseDatabaseUrl(url, "postgres");
  if ("problem" in parsed) throw new Error(parsed.problem);
  const source: PostgresSource = {
    type: "postgres",
    connection: parsed.connection,
    globals: false,
    noOwner: undefined,
    restoreJobs: 2,
    stageAboveBytes: Number.MAX_SAFE_INTEGER,
    bin: undefined,
    ...overrides,
  };
  return { name: "shop", source, storage: "test", compression: "zstd", encrypt: true, allowEmpty: false, overlap: "skip", catchUp: "one", ...job };
}

/** The pid of a running process whose argv matches, from /proc. */
function findProcess(matches: (argv: string[]) => boolean): string | undefined {
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      if (matches(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean))) return pid;
    } catch {
      // the process ended while we looked
    }
  }
  return undefined;
}

const ephemeral: NamedScratch = { name: "db", spec: { type: "postgres", server: undefined, runAs: "postgres", bin: undefined } };

/** The URL of another database on the same server. */
function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

describe("postgres backups", () => {
  let server: Awaited<ReturnType<typeof startPostgres>>;
  let shopUrl: string;
  let store: ObjectStore;
  let work: string;
  let scratchRoot: string;
  const layout = new Layout("pg/");

  beforeAll(async () => {
    server = await startPostgres();
    await server.sql("CREATE DATABASE shop");
    shopUrl = withDatabase(server.url, "shop");
    await psql(shopUrl, shopSchema());
    work = mkdtempSync(join(tmpdir(), "lifeboat-pg-test-"));
    chmodSync(work, 0o711); // scratch clusters run as the postgres user, who must reach their folder
    scratchRoot = join(work, "scratch");
    store = openFilesystemStore({ path: join(work, "store") });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const backup = (job: BackupJob) => runBackup({ job, store, layout, recipients: [key.recipient] });
  const intoScratch = (job: BackupJob, selector = {}) =>
    restoreIntoScratch({ job, store, layout, identities, selector, scratch: ephemeral, declared: [], keepOnFailure: false, root: scratchRoot });

  it("backs up a database and restores it into an ephemeral cluster with the same rows, sequences, large objects and schema", async () => {
    const job = postgresJob(shopUrl);
    const before = Date.now();
    const { manifest } = await backup(job);
    expect(manifest.codec).toEqual(["pg_dump-custom", "zstd", "age"]);
    expect(manifest.objects.map((o) => o.key)).toEqual(["data.pgdump.zst.age"]);
    expect(manifest.source.tool).toMatch(/^pg_dump \(PostgreSQL\) \d+/);
    expect(manifest.source.serverVersion).toMatch(/^PostgreSQL \d+/);
    const consistentAt = Date.parse(manifest.consistentAt);
    expect(consistentAt).toBeGreaterThanOrEqual(before - 1000);
    expect(consistentAt).toBeLessThanOrEqual(Date.parse(manifest.finishedAt));

    const { environment } = await intoScratch(job);
    try {
      const restored = environment.connection.url!;
      expect(await fingerprint(restored)).toEqual(await fingerprint(shopUrl));
      expect(schemaOf(restored)).toEqual(schemaOf(shopUrl));
    } finally {
      await environment.teardown();
    }
    expect(await listScratch({ root: scratchRoot })).toEqual([]);
  }, 120_000);

  it("takes consistentAt from the dump's snapshot: what was committed before is in, what came after is not", async () => {
    await psql(shopUrl, "CREATE TABLE IF NOT EXISTS marks (at timestamptz NOT NULL DEFAULT clock_timestamp())");
    await psql(shopUrl, "INSERT INTO marks DEFAULT VALUES");
    const { manifest } = await backup(postgresJob(shopUrl));
    await psql(shopUrl, "INSERT INTO marks DEFAULT VALUES");
    const { environment } = await intoScratch(postgresJob(shopUrl), { id: manifest.id });
    try {
      const newest = await psql(environment.connection.url!, "SELECT to_char(max(at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') || ' ' || count(*) FROM marks");
      const [at, count] = newest.split(" ");
      expect(count).toBe("1");
      expect(Date.parse(at!)).toBeLessThanOrEqual(Date.parse(manifest.consistentAt));
    } finally {
      await environment.teardown();
      await psql(shopUrl, "DROP TABLE marks");
    }
  }, 120_000);

  it("backs up roles as a second object with globals: true, and restores ownership into scratch", async () => {
    await server.sql("DO $$ BEGIN CREATE ROLE shop_owner LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
    await psql(shopUrl, "CREATE TABLE owned (id int); ALTER TABLE owned OWNER TO shop_owner");
    try {
      const job = postgresJob(shopUrl, { globals: true });
      const { manifest } = await backup(job);
      expect(manifest.objects.map((o) => [o.role, o.key])).toEqual([
        ["globals", "globals.sql.zst.age"],
        ["data", "data.pgdump.zst.age"],
      ]);
      expect(manifest.objects[0]!.codec).toEqual(["sql", "zstd", "age"]);
      const { environment } = await intoScratch(job, { id: manifest.id });
      try {
        expect(await psql(environment.connection.url!, "SELECT tableowner FROM pg_tables WHERE tablename = 'owned'")).toBe("shop_owner");
      } finally {
        await environment.teardown();
      }
    } finally {
      await psql(shopUrl, "DROP TABLE owned");
    }
  }, 120_000);

  it("writes artifacts that age, zstd and pg_restore restore by hand, without Lifeboat", async () => {
    const { manifest } = await backup(postgresJob(shopUrl));
    const stored = join(work, "by-hand.pgdump.zst.age");
    await pipeline(await store.get(layout.objectKey("shop", manifest.id, "data.pgdump.zst.age")), createWriteStream(stored));
    const keyFile = join(work, "key.txt");
    writeFileSync(keyFile, `${key.identity}\n`, { mode: 0o600 });
    const dump = join(work, "by-hand.pgdump");
    await pipeTools(stored, [["age", "-d", "-i", keyFile], ["zstd", "-d", "-c"]], dump);
    // pg_dump's output never passes through Node (pg_dump | dd | zstd); dd's count is the dump's exact size.
    expect(manifest.objects[0]!.sourceBytes).toBe(statSync(dump).size);
    await server.sql("CREATE DATABASE by_hand");
    const target = withDatabase(server.url, "by_hand");
    execFileSync("pg_restore", ["--no-owner", `--dbname=${target}`, dump]);
    expect(await fingerprint(target)).toEqual(await fingerprint(shopUrl));
  }, 120_000);

  it("restores a dump staged to a file with parallel pg_restore jobs", async () => {
    const job = postgresJob(shopUrl, { stageAboveBytes: 0, restoreJobs: 2 });
    await backup(job);
    const { environment } = await intoScratch(job);
    try {
      expect(await fingerprint(environment.connection.url!)).toEqual(await fingerprint(shopUrl));
      expect(schemaOf(environment.connection.url!)).toEqual(schemaOf(shopUrl));
    } finally {
      await environment.teardown();
    }
  }, 120_000);

  it("restores into a database URL: creates a missing database, refuses a non-empty one without --force, replaces with it", async () => {
    const job = postgresJob(shopUrl);
    await backup(job);
    const target = withDatabase(server.url, "restored_here");
    await runRestore({ job, store, layout, identities, selector: {}, target: { location: target, force: false } });
    expect(await fingerprint(target)).toEqual(await fingerprint(shopUrl));

    await psql(target, "DELETE FROM audit WHERE id % 2 = 0");
    const damaged = await fingerprint(target);
    await expect(runRestore({ job, store, layout, identities, selector: {}, target: { location: target, force: false } })).rejects.toMatchObject({
      code: "RESTORE_TARGET_NOT_EMPTY",
      message: expect.stringContaining("restored_here"),
    });
    expect(await fingerprint(target)).toEqual(damaged);

    await runRestore({ job, store, layout, identities, selector: {}, target: { location: target, force: true } });
    expect(await fingerprint(target)).toEqual(await fingerprint(shopUrl));
  }, 120_000);

  it("leaves the target untouched when a streamed restore fails part-way (one transaction, rolled back)", async () => {
    const job = postgresJob(shopUrl, {}, { name: "shop-plain", encrypt: false });
    const { manifest } = await backup(job);
    // Damage the stored bytes near the end, keeping the size: zstd or the hash check must stop the restore.
    const objectPath = join(work, "store", layout.objectKey("shop-plain", manifest.id, manifest.objects[0]!.key));
    const bytes = readFileSync(objectPath);
    for (let i = bytes.length - 200; i < bytes.length - 100; i++) bytes[i] = bytes[i]! ^ 0xff;
    writeFileSync(objectPath, bytes);
    const target = withDatabase(server.url, "rolled_back");
    await expect(runRestore({ job, store, layout, identities, selector: {}, target: { location: target, force: false } })).rejects.toMatchObject({
      code: expect.stringMatching(/VERIFY_HASH_MISMATCH|TOOL_FAILED/),
    });
    expect(await psql(target, "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")).toBe("0");
  }, 120_000);

  describe("failures", () => {
    it("reports pg_restore's own words when it gives up early (not the echo of its closed input), and removes the scratch cluster", async () => {
      await server.sql("DO $$ BEGIN CREATE ROLE shop_auditor; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
      await psql(shopUrl, "CREATE TABLE audited AS SELECT i, md5(i::text) AS h FROM generate_series(1, 200000) i; ALTER TABLE audited OWNER TO shop_auditor");
      try {
        // Ownership kept, but no globals: the scratch cluster lacks the role, and pg_restore stops at the first statement naming it.
        const job = postgresJob(shopUrl, { noOwner: false }, { name: "owned" });
        await backup(job);
        const error = await intoScratch(job).catch((e: Error) => e);
        expect(error).toMatchObject({ code: "TOOL_FAILED", message: expect.stringMatching(/^pg_restore failed with exit code 1 \(restoring job "owned" into scratch on [^)]+\)[\s\S]*role "shop_auditor" does not exist/) });
        expect(await listScratch({ root: scratchRoot })).toEqual([]);
      } finally {
        await psql(shopUrl, "DROP TABLE audited");
      }
    }, 120_000);

    it("fails with the server's words when the password is wrong, and never shows the password", async () => {
      await server.sql("DO $$ BEGIN CREATE ROLE guarded LOGIN PASSWORD 'right-horse-battery'; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
      await server.sql("GRANT CONNECT ON DATABASE shop TO guarded");
      const hba = await server.sql("SHOW hba_file");
      const original = readFileSync(hba, "utf8");
      writeFileSync(hba, `host all guarded 127.0.0.1/32 scram-sha-256\n${original}`);
      await server.sql("SELECT pg_reload_conf()");
      try {
        const url = new URL(shopUrl);
        url.username = "guarded";
        url.password = "wrong-secret-zebra";
        const error = await backup(postgresJob(url.toString())).catch((e: Error) => e);
        expect(error).toMatchObject({ code: "TOOL_FAILED", message: expect.stringMatching(/psql failed with exit code 2[\s\S]*password authentication failed for user "guarded"/) });
        expect(JSON.stringify(error)).not.toContain("wrong-secret-zebra");
        expect((error as Error).message).not.toContain("wrong-secret-zebra");
      } finally {
        writeFileSync(hba, original);
        await server.sql("SELECT pg_reload_conf()");
      }
    }, 60_000);

    it("fails fast when the server is unreachable", async () => {
      const started = Date.now();
      const error = await backup(postgresJob("postgresql://postgres@127.0.0.1:1/shop")).catch((e: Error) => e);
      expect(error).toMatchObject({ code: "TOOL_FAILED", message: expect.stringMatching(/psql failed[\s\S]*(refused|could not connect)/) });
      expect(Date.now() - started).toBeLessThan(15_000);
    });

    it("names the tool when it cannot be found", async () => {
      const empty = mkdtempSync(join(tmpdir(), "lifeboat-no-tools-"));
      await expect(backup(postgresJob(shopUrl, { bin: empty }))).rejects.toMatchObject({ code: "TOOL_NOT_FOUND", message: expect.stringContaining("psql") });
    });

    it("fails the run when pg_dump is killed mid-dump, and stores no backup", async () => {
      await psql(shopUrl, "CREATE TABLE bulk AS SELECT i, md5(i::text) || repeat('y', 400) AS filler FROM generate_series(1, 400000) i");
      try {
        const job = postgresJob(shopUrl, {}, { name: "killed" });
        const running = backup(job);
        // Wait for pg_dump to appear, then kill it the hard way.
        let pid: string | undefined;
        for (let i = 0; i < 200 && !pid; i++) {
          await new Promise((r) => setTimeout(r, 25));
          pid = findProcess((argv) => argv[0]?.endsWith("pg_dump") === true && argv.includes("--format=custom"));
        }
        expect(pid).toBeDefined();
        process.kill(Number(pid), "SIGKILL");
        await expect(running).rejects.toMatchObject({ code: "TOOL_KILLED", message: expect.stringContaining("pg_dump was killed by SIGKILL") });
        const left: string[] = [];
        for await (const object of store.list(layout.jobFolder("killed"))) left.push(object.key);
        expect(left).toEqual([]);
      } finally {
        await psql(shopUrl, "DROP TABLE bulk");
      }
    }, 60_000);

    it("refuses a database without tables unless the job allows empty backups", async () => {
      await server.sql("CREATE DATABASE empty_db");
      const url = withDatabase(server.url, "empty_db");
      await expect(backup(postgresJob(url, {}, { name: "empty" }))).rejects.toMatchObject({ code: "BACKUP_EMPTY", message: expect.stringContaining("empty_db") });
      const { manifest } = await backup(postgresJob(url, {}, { name: "empty", allowEmpty: true }));
      expect(manifest.objects[0]!.sourceBytes).toBeGreaterThan(0);
    });

    it("refuses a wrong key before any scratch environment is created", async () => {
      const job = postgresJob(shopUrl);
      await backup(job);
      const other = parseIdentities(generateIdentity().identity);
      await expect(
        restoreIntoScratch({ job, store, layout, identities: other, selector: {}, scratch: ephemeral, declared: [], keepOnFailure: false, root: scratchRoot }),
      ).rejects.toMatchObject({ code: "DECRYPT_WRONG_KEY" });
      expect(await listScratch({ root: scratchRoot })).toEqual([]);
    });
  });
});

describe("lifeboat restore --to scratch:postgres (the built CLI)", () => {
  let server: Awaited<ReturnType<typeof startPostgres>>;
  let work: string;
  let env: Record<string, string>;
  let config: string;
  let shopUrl: string;

  beforeAll(async () => {
    server = await startPostgres({ name: "cli-source" });
    await server.sql("CREATE DATABASE shop");
    shopUrl = withDatabase(server.url, "shop");
    await psql(shopUrl, shopSchema(20_000));
    work = mkdtempSync(join(tmpdir(), "lifeboat-pg-cli-"));
    chmodSync(work, 0o711);
    writeFileSync(join(work, "identity.txt"), `${key.identity}\n`, { mode: 0o600 });
    config = join(work, "lifeboat.yaml");
    writeFileSync(
      config,
      [
        "storage:",
        "  local: { type: filesystem, path: ./store }",
        "encryption:",
        '  identity: "${file:./identity.txt}"',
        "jobs:",
        "  shop:",
        '    source: { type: postgres, url: "${env:SHOP_URL}" }',
        "  damaged:",
        '    source: { type: postgres, url: "${env:SHOP_URL}" }',
        "",
      ].join("\n"),
    );
    env = { SHOP_URL: shopUrl, LIFEBOAT_SCRATCH_DIR: join(work, "scratch") };
    expect((await lifeboat(["-c", config, "backup", "shop"], { env })).code).toBe(0);
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const records = () => listScratch({ root: join(work, "scratch") });
  /** Waits until the restore's cluster is up (its record carries the connection), so the restore is under way. */
  const clusterReady = async (): Promise<string> => {
    for (let i = 0; i < 400; i++) {
      const url = (await records())[0]?.connection?.url;
      if (url) return url;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error("the scratch cluster never came up");
  };

  it("restores into a new ephemeral cluster, keeps it, prints how to connect, and `scratch remove` deletes it", async () => {
    const restored = await lifeboat(["-c", config, "--json", "restore", "shop", "--to", "scratch:postgres"], { env });
    expect(restored.stderr).not.toMatch(/"level":(50|60)/);
    expect(restored.code).toBe(0);
    const result = JSON.parse(restored.stdout) as { durationMs: number; scratch: { id: string; connection: { url: string }; provisionMs: number; cleanup: string } };
    expect(result.scratch.cleanup).toBe(`lifeboat scratch remove ${result.scratch.id}`);
    expect(result.scratch.provisionMs).toBeGreaterThan(0);
    expect(result.durationMs).toBeGreaterThan(0);
    expect(await fingerprint(result.scratch.connection.url)).toEqual(await fingerprint(shopUrl));

    const listed = await lifeboat(["-c", config, "--json", "scratch", "list"], { env });
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ id: result.scratch.id, type: "postgres", kept: true, alive: false })]);

    const removed = await lifeboat(["-c", config, "scratch", "remove", result.scratch.id], { env });
    expect(removed.code).toBe(0);
    expect(await records()).toEqual([]);
    await expect(psql(result.scratch.connection.url, "SELECT 1")).rejects.toThrow();
  }, 120_000);

  it("prints the scratch connection on a plain run too", async () => {
    const restored = await lifeboat(["-c", config, "restore", "shop", "--to", "scratch:postgres"], { env });
    expect(restored.code).toBe(0);
    expect(restored.stdout).toMatch(/url: postgresql:\/\/postgres@127\.0\.0\.1:\d+\/scratch/);
    expect(restored.stdout).toMatch(/remove it with: lifeboat scratch remove \S+/);
    const id = /remove it with: lifeboat scratch remove (\S+)/.exec(restored.stdout)![1]!;
    expect((await lifeboat(["-c", config, "scratch", "remove", id], { env })).code).toBe(0);
  }, 120_000);

  it("after SIGKILL during the restore, the next start sweeps the orphaned cluster", async () => {
    let child: ChildProcess | undefined;
    const running = lifeboat(["-c", config, "restore", "shop", "--to", "scratch:postgres"], { env, onSpawn: (c) => (child = c) });
    const url = await clusterReady();
    child!.kill("SIGKILL");
    const killed = await running;
    expect(killed.signal).toBe("SIGKILL");
    // The cluster outlived the CLI: it is an orphan now.
    expect(await psql(url, "SELECT 1")).toBe("1");
    expect(await records()).toEqual([expect.objectContaining({ alive: false, kept: false })]);

    // The next restore starts by sweeping it.
    const next = await lifeboat(["-c", config, "--json", "restore", "shop", "--to", "scratch:postgres"], { env });
    expect(next.code).toBe(0);
    expect(next.stderr).toContain("removed a scratch environment left behind by an interrupted run");
    await expect(psql(url, "SELECT 1")).rejects.toThrow();
    const fresh = (JSON.parse(next.stdout) as { scratch: { id: string } }).scratch.id;
    expect((await records()).map((r) => r.id)).toEqual([fresh]);
    expect((await lifeboat(["-c", config, "scratch", "remove", fresh], { env })).code).toBe(0);
  }, 120_000);

  it("on SIGINT during the restore, exits 130 and tears the cluster down", async () => {
    let child: ChildProcess | undefined;
    const running = lifeboat(["-c", config, "restore", "shop", "--to", "scratch:postgres"], { env, onSpawn: (c) => (child = c) });
    const url = await clusterReady();
    child!.kill("SIGINT");
    const interrupted = await running;
    expect(interrupted.code).toBe(130);
    expect(await records()).toEqual([]);
    await expect(psql(url, "SELECT 1")).rejects.toThrow();
  }, 120_000);

  it("`scratch sweep` removes leftovers on demand and leaves kept environments alone", async () => {
    const kept = await lifeboat(["-c", config, "--json", "restore", "shop", "--to", "scratch:postgres"], { env });
    const id = (JSON.parse(kept.stdout) as { scratch: { id: string } }).scratch.id;
    const swept = await lifeboat(["-c", config, "--json", "scratch", "sweep"], { env });
    expect(JSON.parse(swept.stdout)).toEqual({ ok: true, removed: [] });
    expect((await records()).map((r) => r.id)).toEqual([id]);
    expect((await lifeboat(["-c", config, "scratch", "remove", id], { env })).code).toBe(0);
  }, 120_000);

  it("tears a failed restore's cluster down, or keeps it with --keep-scratch and says how to reach and remove it", async () => {
    expect((await lifeboat(["-c", config, "backup", "damaged"], { env })).code).toBe(0);
    const [id] = readdirSync(join(work, "store", "damaged"));
    const object = join(work, "store", "damaged", id!, "data.pgdump.zst.age");
    const bytes = readFileSync(object);
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = bytes[middle]! ^ 0x01;
    writeFileSync(object, bytes);

    const failed = await lifeboat(["-c", config, "restore", "damaged", "--to", "scratch:postgres"], { env });
    expect(failed.code).toBe(1);
    expect(await records()).toEqual([]);

    const kept = await lifeboat(["-c", config, "restore", "damaged", "--to", "scratch:postgres", "--keep-scratch"], { env });
    expect(kept.code).toBe(1);
    expect(kept.stderr).toMatch(/scratch environment \S+ \(postgres, kept for debugging\):/);
    const scratchId = /remove it with: lifeboat scratch remove (\S+)/.exec(kept.stderr)?.[1];
    expect((await records()).map((r) => [r.id, r.kept])).toEqual([[scratchId, true]]);
    expect((await lifeboat(["-c", config, "scratch", "remove", scratchId!], { env })).code).toBe(0);
  }, 120_000);

  it("refuses a files-only scratch kind for a database job before creating anything", async () => {
    const result = await lifeboat(["-c", config, "restore", "shop", "--to", "scratch:directory"], { env });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('a postgres backup cannot be restored into scratch "directory" (directory)');
    expect(await records()).toEqual([]);
  });
});
