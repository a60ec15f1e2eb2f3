/**
 * Drills end to end, through the built CLI as a user runs them: backups on the
 * real Ceph RGW, ephemeral PostgreSQL clusters as sources and scratch, the
 * real pg_restore, psql, age and zstd, and reports read back from storage.
 */
import { spawn } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DrillReportSchema, drillReportJsonSchema, type DrillReport } from "../src/model/drill-report.js";
import { generateIdentity } from "../src/pipeline/age/index.js";
import { listScratch } from "../src/scratch/environments.js";
import { lifeboat, CLI, type Run } from "./support/cli.js";
import { psql, startPostgres, withDatabase, type TestPostgres } from "./support/postgres.js";
import { shopSchema } from "./support/postgres-fixture.js";
import { makeTree, tempDir } from "./support/builders.js";
import { createTestBucket, rawS3Client, s3Servers } from "./setup/s3-servers.js";

const key = generateIdentity();
const server = s3Servers()[0]!; // radosgw: the strict one

let source: TestPostgres;
let work: string;
let bucket: string;
let config: string;
let env: Record<string, string>;

beforeAll(async () => {
  source = await startPostgres({ name: "drill-source" });
  await source.sql("CREATE DATABASE shop");
  const shopUrl = withDatabase(source.url, "shop");
  await psql(shopUrl, shopSchema(500));
  // The newest order is three hours old: the data is older than any backup taken now.
  await psql(shopUrl, "UPDATE sales.orders SET created_at = now() - interval '3 hours'");
  bucket = await createTestBucket(server, "drill");
  work = tempDir("lifeboat-drill-");
  chmodSync(work, 0o711);
  makeTree(work);
  mkdirSync(join(work, "plans"));
  writeFileSync(join(work, "identity.txt"), `${key.identity}\n`, { mode: 0o600 });
  config = join(work, "lifeboat.yaml");
  writeFileSync(
    config,
    `storage:
  offsite:
    type: s3
    endpoint: ${server.endpoint}
    region: ${server.region}
    bucket: ${bucket}
    prefix: dr/
    forcePathStyle: true
    credentials:
      accessKeyId: \${env:TEST_S3_KEY}
      secretAccessKey: \${env:TEST_S3_SECRET}
encryption:
  identity: \${file:./identity.txt}
jobs:
  shop:
    source: { type: postgres, url: "\${env:SHOP_URL}" }
    rpo: 1h
  tree:
    source: { type: files, paths: [./tree], exclude: ["*.tmp"] }
`,
  );
  env = { TEST_S3_KEY: server.accessKeyId, TEST_S3_SECRET: server.secretAccessKey, SHOP_URL: shopUrl, LIFEBOAT_SCRATCH_DIR: join(work, "scratch"), LIFEBOAT_LOG_LEVEL: "warn" };
  for (const job of ["shop", "tree"]) expect((await run(["backup", job])).code).toBe(0);
}, 180_000);

afterAll(async () => {
  await source?.stop();
});

function run(args: string[], extra: Parameters<typeof lifeboat>[1] = {}): Promise<Run> {
  return lifeboat(["-c", config, ...args], { env, cwd: work, ...extra });
}

function writePlan(name: string, yaml: string): string {
  const file = join(work, "plans", `${name}.yaml`);
  writeFileSync(file, yaml);
  return file;
}

/** Runs `lifeboat drill` on a plan and returns the report it wrote to its --out folder. */
async function drill(name: string, yaml: string, args: string[] = []): Promise<{ run: Run; report: DrillReport; dir: string }> {
  const file = writePlan(name, yaml);
  const dir = join(work, "reports", `${name}-${Date.now()}`);
  const result = await run(["drill", file, "--out", dir, ...args]);
  if (!existsSync(join(dir, "report.json"))) throw new Error(`no report was written (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  return { run: result, report: DrillReportSchema.parse(JSON.parse(readFileSync(join(dir, "report.json"), "utf8"))), dir };
}

async function storedKeys(prefix: string): Promise<string[]> {
  const page = await rawS3Client(server).send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (page.Contents ?? []).map((o) => o.Key!).sort();
}

async function leftoverScratch(): Promise<unknown[]> {
  return listScratch({ root: join(work, "scratch") });
}

const status = (report: DrillReport) => Object.fromEntries(report.steps.map((s) => [s.name, s.status]));

describe("lifeboat drill", () => {
  it("passes a PostgreSQL drill: restores the newest backup into scratch, verifies it, measures RTO and RPO, tears down and stores the reports", async () => {
    const { run: result, report, dir } = await drill(
      "pg-pass",
      `name: pg-pass
targets: { rto: 5m, rpo: 1d }
scratch:
  db: { type: postgres }
steps:
  - name: restore shop database
    restore: { job: shop, into: db }
  - name: orders are there
    verify: { sql: "select count(*) = 500 from sales.orders", on: db }
  - name: some customers
    verify: { sql: "select id from customers limit 10", on: db, rows: { min: 10, max: 10 } }
  - name: big orders view
    verify: { sql: "select count(*) > 0 from sales.big_orders", on: db }
  - name: newest order
    rpo-probe: { sql: "select max(created_at) from sales.orders", on: db }
  - name: application smoke test
    run: { command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(join(process.cwd(), "examples", "smoke-test.mjs"))}], env: { DATABASE_URL: "\${scratch.db.url}" } }
`,
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(report.verdict).toBe("passed");
    expect(Object.values(status(report))).toEqual(["passed", "passed", "passed", "passed", "passed", "passed"]);

    // Console: a line per step with its duration, then the verdict block and where the reports are.
    expect(result.stdout).toMatch(/✓ restore shop database \d/);
    expect(result.stdout).toMatch(/^PASSED/m);
    expect(result.stdout).toContain(`reports: `);

    // Measurements: RTO ends with the last step; phases of the streamed restore were timed.
    const last = report.steps[report.steps.length - 1]!;
    expect(report.rto).toEqual({ targetMs: 300_000, actualMs: last.endMs, met: true, reachedAt: "application smoke test" });
    const restore = report.steps[0]!;
    expect(restore.phases.map((p) => p.phase).sort()).toEqual(["decode", "fetch", "restore"]);
    for (const p of restore.phases) expect(p.startMs).toBeGreaterThanOrEqual(restore.startMs!);
    expect(report.phases.restoreMs).toBeGreaterThan(0);
    expect(report.phases.provisionMs).toBeGreaterThan(0);
    expect(report.provisioning).toEqual([expect.objectContaining({ scratch: "db", type: "postgres", status: "ready", versions: expect.objectContaining({ server: expect.stringMatching(/PostgreSQL 1\d/) }) })]);
    expect(restore.startMs!).toBeGreaterThanOrEqual(report.provisioning[0]!.endMs!);

    // RPO: the orders are three hours older than the backup, so the probe's reading counts.
    expect(report.rpo.countedFrom).toBe("probe");
    expect(report.rpo.fromProbeMs!).toBeGreaterThan(3 * 3_600_000 - 60_000);
    expect(report.rpo.fromMetadataMs!).toBeLessThan(report.rpo.fromProbeMs!);
    expect(report.backups).toEqual([expect.objectContaining({ step: "restore shop database", job: "shop", codec: ["pg_dump-custom", "zstd", "age"], fallbackFrom: [] })]);

    // Teardown ran, is reported apart from the RTO, and left nothing behind.
    expect(report.teardown).toEqual([expect.objectContaining({ name: 'scratch "db" (postgres)', what: "scratch", status: "removed" })]);
    expect(report.teardown[0]!.startMs).toBeGreaterThanOrEqual(report.rto.actualMs!);
    expect(await leftoverScratch()).toEqual([]);

    // The report validates against its published JSON Schema, locally and in storage.
    const ajv = new Ajv2020({ strict: false });
    ajv.addFormat("date-time", (s: string) => !Number.isNaN(Date.parse(s)));
    expect(ajv.validate(drillReportJsonSchema() as object, report), JSON.stringify(ajv.errors)).toBe(true);
    for (const name of ["report.json", "report.md", "report.html", "junit.xml"]) expect(existsSync(join(dir, name))).toBe(true);
    expect(await storedKeys(`dr/drills/pg-pass/${report.drillId}/`)).toEqual(
      ["junit.xml", "report.html", "report.json", "report.md"].map((n) => `dr/drills/pg-pass/${report.drillId}/${n}`),
    );
    const stored = await rawS3Client(server).send(new GetObjectCommand({ Bucket: bucket, Key: `dr/drills/pg-pass/${report.drillId}/report.json` }));
    expect(JSON.parse(await stored.Body!.transformToString())).toEqual(report);
    // No secret reached the reports.
    for (const name of ["report.json", "report.md", "report.html", "junit.xml"]) expect(readFileSync(join(dir, name), "utf8")).not.toContain(server.secretAccessKey);
  }, 120_000);

  it("fails when a verification fails: later steps do not run, teardown still does, exit 1", async () => {
    const { run: result, report } = await drill(
      "pg-fail",
      `name: pg-fail
targets: { rto: 5m, rpo: 1d }
scratch:
  db: { type: postgres }
steps:
  - name: restore shop database
    restore: { job: shop, into: db }
  - name: no orders at all
    verify: { sql: "select count(*) = 0 from sales.orders", on: db }
  - name: never reached
    verify: { sql: "select true", on: db }
`,
    );
    expect(result.code).toBe(1);
    expect(report.verdict).toBe("failed");
    expect(report.summary).toMatch(/critical step "no orders at all" failed: query on scratch "db" returned f/);
    expect(status(report)).toEqual({ "restore shop database": "passed", "no orders at all": "failed", "never reached": "not-run" });
    expect(report.steps[2]!.note).toMatch(/stops the drill/);
    expect(report.rto.actualMs).toBeNull();
    expect(report.teardown.map((t) => t.status)).toEqual(["removed"]);
    expect(result.stdout).toMatch(/^FAILED/m);
    expect(await leftoverScratch()).toEqual([]);
  }, 120_000);

  it("falls back to the previous good backup when the newest fails its integrity check, and reports the larger RPO", async () => {
    const list = JSON.parse((await run(["--json", "list", "shop"])).stdout) as Array<{ id: string; consistentAt: string }>;
    const older = list[list.length - 1]!;
    await new Promise((r) => setTimeout(r, 1_100)); // a distinct backup id second
    expect((await run(["backup", "shop"])).code).toBe(0);
    const newest = (JSON.parse((await run(["--json", "list", "shop"])).stdout) as Array<{ id: string }>).at(-1)!;
    // Flip one byte in the middle of the newest backup's dump, keeping its size.
    const keys = await storedKeys(`dr/shop/${newest.id}/`);
    const dataKey = keys.find((k) => !/\/(manifest|verification)\.json$/.test(k))!;
    const object = await rawS3Client(server).send(new GetObjectCommand({ Bucket: bucket, Key: dataKey }));
    const bytes = Buffer.from(await object.Body!.transformToByteArray());
    bytes[bytes.length >> 1]! ^= 0xff;
    await rawS3Client(server).send(new PutObjectCommand({ Bucket: bucket, Key: dataKey, Body: bytes }));

    const { run: result, report } = await drill(
      "pg-fallback",
      `name: pg-fallback
targets: { rto: 5m, rpo: 1d }
scratch:
  db: { type: postgres }
steps:
  - name: restore shop database
    restore: { job: shop, into: db }
  - name: orders are there
    verify: { sql: "select count(*) = 500 from sales.orders", on: db }
`,
    );
    expect(result.code).toBe(0);
    expect(report.verdict).toBe("passed");
    expect(report.backups).toEqual([
      expect.objectContaining({
        id: older.id,
        fallbackFrom: [expect.objectContaining({ id: newest.id, code: "VERIFY_HASH_MISMATCH", message: expect.stringMatching(/is corrupt/) })],
      }),
    ]);
    expect(report.steps[0]!.note).toMatch(/after 1 newer backup failed the integrity check/);
    // The RPO is the older backup's age, not the newest one's.
    expect(report.rpo.fromMetadataMs!).toBeGreaterThanOrEqual(Date.parse(report.t0) - Date.parse(older.consistentAt));
    expect(result.stdout).toContain(`fell back from ${newest.id}`);
  }, 120_000);

  it("misses its targets when a step is too slow: missed-targets, exit 1", async () => {
    const { run: result, report } = await drill(
      "slow",
      `name: slow
targets: { rto: 1s, rpo: 1d }
scratch:
  files: { type: directory }
steps:
  - name: restore tree
    restore: { job: tree, into: files }
  - name: a slow warm-up
    run: { command: [sleep, "1.2"] }
`,
    );
    expect(result.code).toBe(1);
    expect(report.verdict).toBe("missed-targets");
    expect(report.rto.met).toBe(false);
    expect(report.rto.actualMs!).toBeGreaterThan(1_200);
    expect(report.steps[1]!.durationMs!).toBeGreaterThanOrEqual(1_150);
    expect(result.stdout).toMatch(/^MISSED-TARGETS/m);
  }, 60_000);

  it("retries a readiness check until the application answers, stops the application at teardown, and a timed-out optional step makes the drill partial", async () => {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const app = join(work, "app.mjs");
    // An "application" that needs a moment before it listens.
    writeFileSync(app, `import http from "node:http";\nsetTimeout(() => http.createServer((q, s) => s.end("ok " + process.env.DATA)).listen(${port}, "127.0.0.1"), 800);\n`);
    const { run: result, report } = await drill(
      "ready",
      `name: ready
targets: { rto: 1m, rpo: 1d }
scratch:
  files: { type: directory }
steps:
  - name: restore tree
    restore: { job: tree, into: files }
  - name: start the application
    run: { command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(app)}], env: { DATA: "\${scratch.files.directory}" }, background: true }
  - name: application answers
    verify: { http: "http://127.0.0.1:${port}/", bodyContains: "ok /", retries: 20, retryDelay: 200ms, timeout: 2s }
  - name: optional report export
    run: { command: [sleep, "10"], timeout: 500ms }
    critical: false
`,
    );
    expect(report.verdict).toBe("partial");
    expect(result.code).toBe(1);
    const check = report.steps[2]!;
    expect(check.status).toBe("passed");
    expect(check.attempts.length).toBeGreaterThan(1);
    expect(check.attempts.slice(0, -1).every((a) => !a.ok)).toBe(true);
    const slow = report.steps[3]!;
    expect(slow).toMatchObject({ status: "failed", error: { code: "STEP_TIMEOUT" } });
    expect(slow.durationMs!).toBeLessThan(5_000);
    // Teardown stops the application first (last in, first out), then removes the folder.
    expect(report.teardown.map((t) => t.what)).toEqual(["process", "scratch"]);
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  }, 60_000);

  it("records a manual step as skipped by policy without a terminal; with nonInteractive: wait, `drill --ack` confirms it and the wait counts toward the RTO", async () => {
    const skipped = await drill(
      "manual-skip",
      `name: manual-skip
targets: { rto: 1m, rpo: 1d }
scratch:
  files: { type: directory }
steps:
  - name: restore tree
    restore: { job: tree, into: files }
  - name: switch dns
    manual: "point files.example.com at the restored copy"
`,
    );
    expect(skipped.report.verdict).toBe("passed");
    expect(skipped.report.steps[1]).toMatchObject({ status: "skipped", note: expect.stringMatching(/skipped by policy/) });

    const file = writePlan(
      "manual-wait",
      `name: manual-wait
targets: { rto: 1m, rpo: 1d }
scratch:
  files: { type: directory }
steps:
  - name: restore tree
    restore: { job: tree, into: files }
  - name: switch dns
    manual: { instructions: "point files.example.com at the restored copy", nonInteractive: wait }
`,
    );
    const dir = join(work, "reports", "manual-wait");
    const running = run(["drill", file, "--out", dir]);
    let ack: Run | undefined;
    const waitStarted = Date.now();
    for (let i = 0; i < 100; i++) {
      await new Promise((r) => setTimeout(r, 300));
      ack = await run(["drill", "--ack", "switch dns"]);
      if (ack.code === 0) break;
    }
    expect(ack!.code, ack!.stderr).toBe(0);
    expect(ack!.stdout).toMatch(/acknowledged step "switch dns" of drill \d{8}T\d{6}Z-[0-9a-f]{4}/);
    const finished = await running;
    expect(finished.code).toBe(0);
    expect(finished.stdout).toContain('lifeboat drill --ack "switch dns"');
    const report = DrillReportSchema.parse(JSON.parse(readFileSync(join(dir, "report.json"), "utf8")));
    expect(report.steps[1]).toMatchObject({ status: "passed", note: "confirmed with lifeboat drill --ack" });
    expect(report.rto.reachedAt).toBe("switch dns");
    expect(report.rto.actualMs!).toBeGreaterThan(report.steps[0]!.endMs!);
    expect(Date.now() - waitStarted).toBeGreaterThan(report.steps[1]!.durationMs!);
    // Nothing waits any more.
    expect((await run(["drill", "--ack", "switch dns"])).code).toBe(2);
  }, 90_000);

  it("on SIGINT stops the running step, tears down, writes the report as interrupted and exits 130", async () => {
    const marker = join(work, "long-step-started");
    const file = writePlan(
      "interrupted",
      `name: interrupted
targets: { rto: 1m, rpo: 1d }
scratch:
  db: { type: postgres }
steps:
  - name: restore shop database
    restore: { job: shop, into: db }
  - name: a long check
    run: { command: [sh, -c, "touch ${marker}; exec sleep 60"] }
  - name: never reached
    verify: { sql: "select true", on: db }
`,
    );
    const dir = join(work, "reports", "interrupted");
    const child = spawn(process.execPath, [CLI, "-c", config, "drill", file, "--out", dir], { cwd: work, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    for (let i = 0; i < 600 && !existsSync(marker); i++) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(marker)).toBe(true);
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    const report = DrillReportSchema.parse(JSON.parse(readFileSync(join(dir, "report.json"), "utf8")));
    expect(report.verdict).toBe("interrupted");
    expect(status(report)).toEqual({ "restore shop database": "passed", "a long check": "interrupted", "never reached": "not-run" });
    expect(report.teardown).toEqual([expect.objectContaining({ name: 'scratch "db" (postgres)', status: "removed" })]);
    expect(await leftoverScratch()).toEqual([]);
    expect(stdout).toMatch(/^INTERRUPTED/m);
    expect(await storedKeys(`dr/drills/interrupted/${report.drillId}/report.json`)).toHaveLength(1);
  }, 120_000);

  it("leaves nothing behind after SIGKILL: the next drill removes the killed drill's scratch environment first", async () => {
    const marker = join(work, "killed-step-started");
    const file = writePlan(
      "killed",
      `name: killed
targets: { rto: 1m }
scratch:
  files: { type: directory }
steps:
  - name: restore tree
    restore: { job: tree, into: files }
  - name: a long step
    run: { command: [sh, -c, "touch ${marker}; exec sleep 60"] }
`,
    );
    const child = spawn(process.execPath, [CLI, "-c", config, "drill", file, "--out", join(work, "reports", "killed")], { cwd: work, env: { ...process.env, ...env }, stdio: "ignore" });
    const exited = new Promise((resolve) => child.on("close", resolve));
    for (let i = 0; i < 600 && !existsSync(marker); i++) await new Promise((r) => setTimeout(r, 50));
    child.kill("SIGKILL");
    await exited;
    const left = await listScratch({ root: join(work, "scratch") });
    expect(left).toEqual([expect.objectContaining({ name: "files", alive: false })]);
    expect(existsSync(join(work, "scratch", left[0]!.id))).toBe(true);

    const next = await drill("after-kill", "name: after-kill\ntargets: { rto: 1m }\nscratch:\n  files: { type: directory }\nsteps:\n  - name: restore tree\n    restore: { job: tree, into: files }\n");
    expect(next.report.verdict).toBe("passed");
    expect(await leftoverScratch()).toEqual([]);
    expect(existsSync(join(work, "scratch", left[0]!.id))).toBe(false);
  }, 60_000);

  it("fails with a report when a scratch environment cannot be created", async () => {
    const { run: result, report } = await drill(
      "no-scratch",
      `name: no-scratch
targets: { rto: 1m }
scratch:
  broken: { type: command, up: [sh, -c, "echo no capacity >&2; exit 3"], down: ["true"] }
steps:
  - name: restore tree
    restore: { job: tree, into: broken }
`,
    );
    expect(result.code).toBe(1);
    expect(report.verdict).toBe("failed");
    expect(report.provisioning[0]).toMatchObject({ status: "failed", error: { message: expect.stringMatching(/no capacity/) } });
    expect(report.steps[0]).toMatchObject({ status: "not-run", note: "not run: a scratch environment could not be created" });
  }, 60_000);

  it("restores the backup consistent at a shared recovery point (`at` in the plan, or --at)", async () => {
    const list = JSON.parse((await run(["--json", "list", "tree"])).stdout) as Array<{ id: string; consistentAt: string }>;
    const first = list[0]!;
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await run(["backup", "tree"])).code).toBe(0);
    const plan = `name: pinned
targets: { rto: 1m, rpo: 30d }
at: "${new Date(Date.parse(first.consistentAt) + 500).toISOString()}"
scratch:
  files: { type: directory }
steps:
  - name: restore tree
    restore: { job: tree, into: files }
`;
    const pinned = await drill("pinned", plan);
    expect(pinned.report.recoveryPoint).toMatchObject({ mode: "at" });
    expect(pinned.report.backups[0]!.id).toBe(first.id);
    const latest = (JSON.parse((await run(["--json", "list", "tree"])).stdout) as Array<{ id: string }>).at(-1)!;
    const overridden = await drill("pinned", plan, ["--at", new Date().toISOString()]);
    expect(overridden.report.backups[0]!.id).toBe(latest.id);
  }, 60_000);
});

describe("a random recovery point (pick: random-within)", () => {
  it("lets the first restore draw a real backup from the window, and pins later restores to its point", async () => {
    const { report } = await drill(
      "random",
      `name: random
targets: { rto: 1m, rpo: 30d }
pick: { random-within: 1h }
scratch:
  first: { type: directory }
  second: { type: directory }
steps:
  - name: restore tree
    restore: { job: tree, into: first }
  - name: restore tree again
    restore: { job: tree, into: second }
`,
    );
    expect(report.verdict).toBe("passed");
    expect(report.recoveryPoint).toEqual({ mode: "random-within", at: report.backups[0]!.consistentAt, withinMs: 3_600_000 });
    expect(Date.parse(report.backups[0]!.consistentAt)).toBeGreaterThanOrEqual(Date.parse(report.t0) - 3_600_000);
    // The second restore uses the newest backup at or before that point: the same one.
    expect(report.backups[1]!.id).toBe(report.backups[0]!.id);
  }, 60_000);
});

describe("the example plan plans/postgres-drill.yaml", () => {
  it("runs as shipped, with examples/postgres.yaml, against a real database: restore, queries, rpo-probe, the smoke test", async () => {
    await source.sql("CREATE DATABASE orders");
    const ordersUrl = withDatabase(source.url, "orders");
    await psql(ordersUrl, shopSchema(300));
    const dir = tempDir("lifeboat-example-drill-");
    chmodSync(dir, 0o711);
    cpSync("examples", join(dir, "examples"), { recursive: true });
    cpSync("plans", join(dir, "plans"), { recursive: true });
    mkdirSync(join(dir, ".lifeboat"));
    writeFileSync(join(dir, ".lifeboat", "demo-identity.txt"), `${key.identity}\n`, { mode: 0o600 });
    const exampleEnv = { ORDERS_DB_URL: ordersUrl, LIFEBOAT_SCRATCH_DIR: join(dir, "scratch"), LIFEBOAT_LOG_LEVEL: "warn" };
    const cli = (args: string[]) => lifeboat(["-c", "examples/postgres.yaml", ...args], { env: exampleEnv, cwd: dir });
    expect((await cli(["validate"])).code).toBe(0);
    expect((await cli(["backup", "orders-db"])).code).toBe(0);
    const result = await cli(["--json", "drill", "postgres-drill"]);
    const { report } = JSON.parse(result.stdout) as { report: DrillReport };
    expect(report.verdict, report.summary).toBe("passed");
    expect(result.code).toBe(0);
    expect(status(report)).toEqual({
      "restore orders database": "passed",
      "orders are there": "passed",
      "every order has its items": "passed",
      "newest order (measured RPO)": "passed",
      "application smoke test": "passed",
      "tell the stakeholders": "skipped",
    });
    expect(report.steps[4]!.output).toContain("ok new orders can be written");
    expect(report.rpo.fromProbeMs).not.toBeNull();
    // Local reports live next to the config, like every relative path in it.
    expect(existsSync(join(dir, "examples", ".lifeboat", "drills", "postgres-drill", report.drillId, "report.html"))).toBe(true);
  }, 120_000);
});

describe("lifeboat report", () => {
  it("lists past drills from storage with the RTO/RPO trend and writes the trend page", async () => {
    const before = (JSON.parse((await run(["--json", "report"])).stdout) as Array<{ plan: string; drills: number }>).find((p) => p.plan === "slow");
    await drill("slow", readFileSync(join(work, "plans", "slow.yaml"), "utf8"));
    const history = await run(["report", "slow", "--history", "--html", join(work, "history.html")]);
    expect(history.code).toBe(0);
    const rows = history.stdout.split("\n").filter((l) => /^\d{8}T\d{6}Z-/.test(l));
    expect(rows).toHaveLength((before?.drills ?? 0) + 1);
    expect(rows.every((r) => r.includes("missed-targets"))).toBe(true);
    expect(history.stdout).toMatch(/^trend: /m);
    const page = readFileSync(join(work, "history.html"), "utf8");
    expect(page).toContain("<svg");
    const latest = await run(["report", "slow"]);
    expect(latest.stdout).toMatch(/^MISSED-TARGETS/m);
    const all = await run(["report"]);
    expect(all.stdout).toMatch(/^PLAN +LAST DRILL/m);
    expect(all.stdout).toMatch(/^pg-pass +\d{8}T/m);
  }, 60_000);
});
