import { createServer, type IncomingMessage } from "node:http";
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { GetObjectCommand, ListMultipartUploadsCommand } from "@aws-sdk/client-s3";
import { afterAll, describe, expect, it } from "vitest";
import { CLI, lifeboat, type Run } from "./support/cli.js";
import { tempDir } from "./support/builders.js";
import { createTestBucket, rawS3Client, s3Servers, type S3ServerInfo } from "./setup/s3-servers.js";
import { spawn, type ChildProcess } from "node:child_process";

/**
 * The daemon as users run it: the built CLI as a child process, a real
 * lifeboat.yaml, real stores (the filesystem store, Ceph RGW, s3rver), signals.
 */
const dirs: string[] = [];
/** Every daemon a test started: a failed test must not leave one running. */
const daemons: ChildProcess[] = [];
afterAll(() => {
  for (const child of daemons) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function workDir(): string {
  const dir = tempDir("lifeboat-daemon-");
  dirs.push(dir);
  return dir;
}

function s3Storage(server: S3ServerInfo, bucket: string): string {
  return `storage:
  offsite:
    type: s3
    endpoint: ${server.endpoint}
    region: ${server.region}
    bucket: ${bucket}
    forcePathStyle: true
    partSizeMiB: 5
    credentials: { accessKeyId: "\${env:TEST_S3_KEY}", secretAccessKey: "\${env:TEST_S3_SECRET}" }
`;
}

function s3Env(server: S3ServerInfo): Record<string, string> {
  return { TEST_S3_KEY: server.accessKeyId, TEST_S3_SECRET: server.secretAccessKey };
}

interface DaemonProcess {
  child: ChildProcess;
  /** The http://host:port of /metrics, once the daemon is up. */
  ready: Promise<string>;
  stderr(): string;
  exited: Promise<Run>;
}

function startDaemon(dir: string, env: Record<string, string> = {}): DaemonProcess {
  // Its own process group, so a SIGKILL test can take its children down with it.
  const child = spawn(process.execPath, [CLI, "-c", join(dir, "lifeboat.yaml"), "daemon"], {
    cwd: dir,
    env: { ...process.env, LIFEBOAT_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  daemons.push(child);
  let stdout = "";
  let stderr = "";
  let onReady: (url: string) => void = () => {};
  const ready = new Promise<string>((resolve) => (onReady = resolve));
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
    const url = /(http:\/\/127\.0\.0\.1:\d+)\/metrics and \/healthz/.exec(stderr)?.[1];
    if (url) onReady(url);
  });
  const exited = new Promise<Run>((resolve) => child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })));
  void exited.then((run) => onReady(`exited early (${run.code}): ${run.stderr}`));
  return { child, ready, stderr: () => stderr, exited };
}

/** Log lines of the daemon (pino JSON on stderr) with a given message. */
function logLines(stderr: string, msg: string): Array<Record<string, unknown>> {
  return stderr
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === msg);
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function listJson(dir: string, env: Record<string, string> = {}): Promise<Array<{ id: string; job: string; status: string }>> {
  const run = await lifeboat(["-c", join(dir, "lifeboat.yaml"), "--json", "list"], { cwd: dir, env });
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as Array<{ id: string; job: string; status: string }>;
}

/** The manifests of a filesystem store, parsed. */
function manifests(store: string, job: string): Array<{ id: string; run?: { scheduledAt: string; fencingToken: number; trigger: string; instance: string } }> {
  const folder = join(store, job);
  if (!existsSync(folder)) return [];
  return readdirSync(folder)
    .filter((id) => existsSync(join(folder, id, "manifest.json")))
    .map((id) => JSON.parse(readFileSync(join(folder, id, "manifest.json"), "utf8")));
}

function runRecord(store: string, job: string, slot: string): Record<string, unknown> | undefined {
  const file = join(store, ".lifeboat", "runs", "backup", job, `${slot.replace(/[-:]/g, "").replace(/\.\d{3}Z$/, "Z")}.json`);
  return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : undefined;
}

/** A local webhook receiver that keeps every JSON body it gets. */
async function receiver(): Promise<{ url: string; events: Array<{ event: string; data: Record<string, unknown> }>; close(): Promise<void> }> {
  const events: Array<{ event: string; data: Record<string, unknown> }> = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      events.push(JSON.parse(body));
      res.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, events, close: () => new Promise((r) => server.close(() => r())) };
}

describe("lifeboat run JOB --scheduled-at T (external schedulers)", () => {
  it("runs a scheduled time once however often it is started, and records the slot and fencing token in the manifest", async () => {
    const dir = workDir();
    writeFileSync(join(dir, "lifeboat.yaml"), `jobs:\n  orders:\n    source: { type: command, command: [bash, -c, "echo orders"] }\n    schedule: "30 2 * * *"\n`);
    const run = (at: string) => lifeboat(["-c", join(dir, "lifeboat.yaml"), "run", "orders", "--scheduled-at", at], { cwd: dir });
    const first = await run("2026-12-06T02:30:00Z");
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^orders 2026-12-06T02:30:00.000Z: backup \S+ succeeded/);
    const again = await run("2026-12-06T02:30:00Z");
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/already succeeded \(backup \S+\); nothing to do/);
    const next = await run("2026-12-07T02:30:00Z");
    expect(next.code, next.stderr).toBe(0);

    const stored = manifests(join(dir, ".lifeboat", "store"), "orders");
    expect(stored.map((m) => m.run?.scheduledAt).sort()).toEqual(["2026-12-06T02:30:00.000Z", "2026-12-07T02:30:00.000Z"]);
    expect(stored.map((m) => [m.run?.trigger, m.run?.fencingToken]).sort()).toEqual([["external", 1], ["external", 2]]);

    const auto = await run("auto");
    expect(auto.code, auto.stderr).toBe(0);
    const bad = await run("yesterday");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--scheduled-at "yesterday" is not a time');
  });
});

describe("lifeboat run while the same slot runs elsewhere", () => {
  it("waits for the other attempt and reports its real outcome, never a success it did not see", async () => {
    const dir = workDir();
    writeFileSync(join(dir, "lifeboat.yaml"), `jobs:\n  slow:\n    source: { type: command, command: [bash, -c, "sleep 3; echo done"] }\n`);
    const run = () => lifeboat(["-c", join(dir, "lifeboat.yaml"), "run", "slow", "--scheduled-at", "2026-12-06T03:00:00Z"], { cwd: dir });
    const first = run();
    await until("the first attempt's run record", () => runRecord(join(dir, ".lifeboat", "store"), "slow", "2026-12-06T03:00:00.000Z"));
    const second = await run();
    expect(second.stderr).toMatch(/running on \S+; waiting for it to finish/);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/already succeeded \(backup \S+\); nothing to do/);
    expect((await first).code).toBe(0);
    expect(manifests(join(dir, ".lifeboat", "store"), "slow")).toHaveLength(1);
  });
});

describe("lifeboat daemon", () => {
  it("runs catch-up once after downtime, notifies about the downtime and a failed backup, serves /metrics and /healthz, and exits 0 on SIGTERM", async () => {
    const dir = workDir();
    const hook = await receiver();
    try {
      writeFileSync(
        join(dir, "lifeboat.yaml"),
        `jobs:
  hourly:
    source: { type: command, command: [bash, -c, "echo data"] }
    schedule: "0 * * * *"
    rpo: 2h
  broken:
    source: { type: command, command: [bash, -c, "echo oops >&2; exit 3"] }
    schedule: "0 * * * *"
daemon:
  listen: "127.0.0.1:0"
notifications:
  ops: { type: webhook, url: "${hook.url}", attempts: 2 }
`,
      );
      // A daemon last seen 3 hours ago: three hourly slots passed without it.
      const heartbeat = join(dir, ".lifeboat", "store", ".lifeboat", "daemon");
      const seen = new Date(Date.now() - 3 * 3_600_000 - 60_000);
      await import("node:fs/promises").then((fs) => fs.mkdir(heartbeat, { recursive: true }));
      writeFileSync(join(heartbeat, "heartbeat.json"), JSON.stringify({ version: 1, lastSeenAt: seen.toISOString(), instance: "old", host: "old", stoppedCleanly: false }));

      const daemon = startDaemon(dir);
      const url = await daemon.ready;
      expect(url, daemon.stderr()).toMatch(/^http:/);
      await until("the catch-up runs to finish", () => logLines(daemon.stderr(), "scheduled backup finished").length === 1 && logLines(daemon.stderr(), "scheduled backup failed").length === 1);
      await until("the notifications", () => hook.events.length >= 2);

      // One catch-up run each, never one per missed slot.
      const started = logLines(daemon.stderr(), "scheduled run started");
      expect(started.map((l) => [l.name, l.trigger]).sort()).toEqual([["broken", "catch-up"], ["hourly", "catch-up"]]);
      expect(manifests(join(dir, ".lifeboat", "store"), "hourly")).toHaveLength(1);

      const downtime = hook.events.find((e) => e.event === "daemon-downtime");
      expect(downtime?.data.missed).toEqual(expect.arrayContaining([{ job: "hourly", slots: 3 }, { job: "broken", slots: 3 }]));
      const failed = hook.events.find((e) => e.event === "backup-failed");
      expect(failed?.data).toMatchObject({ job: "broken" });

      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(/^lifeboat_backup_successes_total\{job="hourly"\} 1$/m);
      expect(metrics).toMatch(/^lifeboat_backup_failures_total\{job="broken"\} 1$/m);
      expect(metrics).toMatch(/^lifeboat_rpo_target_seconds\{job="hourly"\} 7200$/m);
      expect(metrics).toMatch(/^lifeboat_scheduler_missed_total\{job="hourly"\} 3$/m);
      const health = await fetch(`${url}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ ok: true, schedules: { loaded: true, jobs: 2, drills: 0 } });

      daemon.child.kill("SIGTERM");
      const exit = await daemon.exited;
      expect(exit.code, exit.stderr).toBe(0);
      expect(exit.stderr).toContain("lifeboat daemon stopped: 2 runs");
    } finally {
      await hook.close();
    }
  });

  it("runs a scheduled drill, stores its report, exports its verdict and notifies when it does not pass", async () => {
    const dir = workDir();
    const hook = await receiver();
    try {
      await import("node:fs/promises").then((fs) => fs.mkdir(join(dir, "docs")));
      writeFileSync(join(dir, "docs", "runbook.md"), "# runbook\n");
      writeFileSync(
        join(dir, "drill.yaml"),
        `name: nightly
targets: { rto: 1m, rpo: 1d }
scratch:
  files: { type: directory }
steps:
  - name: restore docs
    restore: { job: docs, into: files }
  - name: the runbook is there
    verify: { on: files, files: { exist: [docs/runbook.md] } }
  - name: the changelog is there
    verify: { on: files, files: { exist: [docs/CHANGELOG.md] } }
`,
      );
      writeFileSync(
        join(dir, "lifeboat.yaml"),
        `jobs:
  docs:
    source: { type: files, paths: [./docs] }
drills:
  nightly: { plan: drill.yaml, schedule: "*/3 * * * * *" }
daemon:
  listen: "127.0.0.1:0"
notifications:
  ops: { type: webhook, url: "${hook.url}", on: [drill-failed] }
`,
      );
      const backup = await lifeboat(["-c", join(dir, "lifeboat.yaml"), "backup", "docs"], { cwd: dir });
      expect(backup.code, backup.stderr).toBe(0);
      const daemon = startDaemon(dir);
      expect(await daemon.ready).toMatch(/^http:/);
      await until("the drill's notification", () => hook.events.find((e) => e.event === "drill-failed"), 20_000);
      daemon.child.kill("SIGTERM");
      const exit = await daemon.exited;
      expect(exit.code, exit.stderr).toBe(0);

      const finished = logLines(exit.stderr, "scheduled drill finished");
      expect(finished[0]).toMatchObject({ name: "nightly", verdict: "failed" });
      expect(hook.events.find((e) => e.event === "drill-failed")?.data).toMatchObject({ plan: "nightly", verdict: "failed", drillId: finished[0]!.drillId });
      const report = await lifeboat(["-c", join(dir, "lifeboat.yaml"), "--json", "report", "nightly"], { cwd: dir });
      expect(JSON.parse(report.stdout)).toMatchObject({ verdict: "failed" });
      // The metrics were scraped before the stop: ask a second daemon, which seeds them from the stored report.
      const again = startDaemon(dir);
      const url2 = await again.ready;
      const metrics = await (await fetch(`${url2}/metrics`)).text();
      expect(metrics).toMatch(/^lifeboat_drill_last_verdict\{plan="nightly",verdict="failed"\} 1$/m);
      expect(metrics).toMatch(/^lifeboat_drill_rto_target_seconds\{plan="nightly"\} 60$/m);
      again.child.kill("SIGTERM");
      expect((await again.exited).code).toBe(0);
    } finally {
      await hook.close();
    }
  });

  it("on SIGTERM during a backup aborts it after the grace period: the multipart upload is aborted, no manifest, the run is recorded interrupted, exit 0", async () => {
    const server = s3Servers().find((s) => s.name === "radosgw")!;
    const bucket = await createTestBucket(server, "daemon-term");
    const dir = workDir();
    writeFileSync(join(dir, "slow.mjs"), `import { randomBytes } from "node:crypto";\nsetInterval(() => process.stdout.write(randomBytes(1 << 20)), 20);\n`);
    writeFileSync(
      join(dir, "lifeboat.yaml"),
      `${s3Storage(server, bucket)}jobs:
  slow:
    source: { type: command, command: [${JSON.stringify(process.execPath)}, ./slow.mjs] }
    compression: none
    schedule: "0 0 1 1 *"
daemon:
  listen: "127.0.0.1:0"
  gracePeriod: 1s
`,
    );
    const client = rawS3Client(server);
    const uploads = async () => (await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
    const daemon = startDaemon(dir, s3Env(server));
    await daemon.ready;
    // The yearly job has never run: catch-up starts it at once; wait until its upload is under way.
    await until("a multipart upload in progress", async () => (await uploads()).length > 0);
    const stopAt = Date.now();
    daemon.child.kill("SIGTERM");
    const exit = await daemon.exited;
    const stopMs = Date.now() - stopAt;
    expect(exit.code, exit.stderr).toBe(0);
    expect(stopMs).toBeLessThan(15_000);
    expect(logLines(exit.stderr, "grace period over: aborting running runs")).toHaveLength(1);
    expect(await uploads()).toEqual([]);
    expect(await listJson(dir, s3Env(server))).toEqual([]);
    const slot = logLines(exit.stderr, "scheduled run started")[0]!.scheduledAt as string;
    const compact = slot.replace(/[-:]/g, "").replace(/\.\d{3}Z$/, "Z");
    const record = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `.lifeboat/runs/backup/slow/${compact}.json` }));
    expect(JSON.parse(await record.Body!.transformToString())).toMatchObject({ status: "interrupted", error: { code: "INTERRUPTED" } });
    const lease = await client.send(new GetObjectCommand({ Bucket: bucket, Key: ".lifeboat/leases/backup/slow.json" }));
    expect(JSON.parse(await lease.Body!.transformToString())).toMatchObject({ holder: null, fencingToken: 1 });
    client.destroy();
  });

  it("after SIGKILL, the next start marks the killed run abandoned and catches up", async () => {
    const dir = workDir();
    const store = join(dir, ".lifeboat", "store");
    writeFileSync(
      join(dir, "lifeboat.yaml"),
      `jobs:
  stuck:
    source: { type: command, command: [bash, -c, "if [ -e first-done ]; then echo second; else touch first-done; sleep 60; fi"] }
    schedule: "0 0 1 1 *"
daemon:
  listen: "127.0.0.1:0"
`,
    );
    const first = startDaemon(dir);
    await first.ready;
    const started = await until("the catch-up run to start", () => logLines(first.stderr(), "scheduled run started")[0]);
    const slot = started.scheduledAt as string;
    await until("the run record", () => runRecord(store, "stuck", slot)?.status === "running");
    process.kill(-first.child.pid!, "SIGKILL");
    await first.exited;
    expect(manifests(store, "stuck")).toEqual([]);

    const second = startDaemon(dir);
    await second.ready;
    expect(second.stderr()).toContain("1 abandoned run marked");
    await until("the retried catch-up", () => logLines(second.stderr(), "scheduled backup finished")[0]);
    second.child.kill("SIGTERM");
    expect((await second.exited).code).toBe(0);
    // The abandoned attempt is recorded, then the slot's second attempt succeeded.
    const record = runRecord(store, "stuck", slot)!;
    expect(record).toMatchObject({ status: "succeeded", attempt: 2, fencingToken: 2 });
    expect(manifests(store, "stuck")).toHaveLength(1);
    expect(logLines(second.stderr(), "run marked abandoned")).toHaveLength(1);
  });

  for (const storeKind of ["filesystem", "radosgw"] as const) {
    it(`two daemons against one ${storeKind} store run each scheduled time once`, async () => {
      const dir = workDir();
      const server = s3Servers().find((s) => s.name === "radosgw")!;
      const storage = storeKind === "radosgw" ? s3Storage(server, await createTestBucket(server, "daemon-two")) : "";
      writeFileSync(
        join(dir, "lifeboat.yaml"),
        `${storage}jobs:
  every2s:
    source: { type: command, command: [bash, -c, "sleep 0.3; echo tick"] }
    schedule: "*/2 * * * * *"
    catchUp: none
daemon:
  listen: "127.0.0.1:0"
  multiInstance: true
`,
      );
      const env = storeKind === "radosgw" ? s3Env(server) : {};
      const a = startDaemon(dir, env);
      const b = startDaemon(dir, env);
      expect(await a.ready).toMatch(/^http:/);
      expect(await b.ready).toMatch(/^http:/);
      await new Promise((r) => setTimeout(r, 9_000));
      a.child.kill("SIGTERM");
      b.child.kill("SIGTERM");
      const [ea, eb] = await Promise.all([a.exited, b.exited]);
      expect([ea.code, eb.code]).toEqual([0, 0]);

      const finished = [...logLines(ea.stderr, "scheduled backup finished"), ...logLines(eb.stderr, "scheduled backup finished")];
      const slots = finished.map((l) => l.scheduledAt as string);
      expect(slots.length).toBeGreaterThanOrEqual(3);
      expect(new Set(slots).size).toBe(slots.length);
      // Both daemons saw every slot; each slot the other took is a skip, never a second run.
      const skipped = [...logLines(ea.stderr, "scheduled run skipped"), ...logLines(eb.stderr, "scheduled run skipped")];
      expect(skipped.length).toBeGreaterThan(0);
      const backups = await listJson(dir, env);
      expect(backups).toHaveLength(slots.length);
    });
  }

  it("refuses multi-instance mode on a store that ignores conditional writes, and runs single-instance there", async () => {
    const server = s3Servers().find((s) => s.name === "s3rver")!;
    const bucket = await createTestBucket(server, "daemon-lenient");
    const dir = workDir();
    const config = (multi: boolean) => `${s3Storage(server, bucket)}jobs:
  j:
    source: { type: command, command: [bash, -c, "echo x"] }
    schedule: "0 0 1 1 *"
    catchUp: none
daemon:
  listen: "127.0.0.1:0"
  multiInstance: ${multi}
`;
    writeFileSync(join(dir, "lifeboat.yaml"), config(true));
    const refused = await lifeboat(["-c", join(dir, "lifeboat.yaml"), "daemon"], { cwd: dir, env: s3Env(server) });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("does not enforce conditional writes (If-None-Match and If-Match), so several daemons could run the same job twice");
    expect(refused.stderr).toContain("hint: run a single daemon (daemon.multiInstance: false)");

    writeFileSync(join(dir, "lifeboat.yaml"), config(false));
    const single = startDaemon(dir, s3Env(server));
    expect(await single.ready).toMatch(/^http:/);
    single.child.kill("SIGTERM");
    expect((await single.exited).code).toBe(0);
  });
});
