import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBackup } from "../src/backup/run-backup.js";
import { listBackups } from "../src/catalog/catalog.js";
import { loadConfig } from "../src/config/load.js";
import type { JobStatus } from "../src/cli/commands/status.js";
import { offsetMinutes, CronSchedule } from "../src/schedule/cron.js";
import { openFilesystemStore } from "../src/storage/filesystem.js";
import { Layout } from "../src/storage/layout.js";
import { makeTree, tempDir } from "./support/builders.js";
import { CLI, lifeboat, type Run } from "./support/cli.js";

const MINUTE = 60_000;

describe("lifeboat status", () => {
  const work = tempDir("lifeboat-status-");
  const config = join(work, "lifeboat.yaml");
  const env = { LIFEBOAT_SCRATCH_DIR: join(work, "scratch"), LIFEBOAT_LOG_LEVEL: "warn" };
  const run = (args: string[]): Promise<Run> => lifeboat(["-c", config, ...args], { env, cwd: work });
  let staleId: string;
  let treeId: string;

  beforeAll(async () => {
    expect(existsSync(CLI), "run `npm run build` first (npm test does)").toBe(true);
    makeTree(work);
    mkdirSync(join(work, "plans"));
    writeFileSync(
      config,
      `storage:
  local: { type: filesystem, path: ./store }
jobs:
  tree:
    source: { type: files, paths: [./tree], exclude: ["*.tmp"] }
    encrypt: false
    rpo: 1h
    schedule: "30 2 * * *"
    timezone: Europe/Berlin
  stale:
    source: { type: command, command: [echo, yesterday] }
    encrypt: false
    rpo: 1h
  never:
    source: { type: command, command: [echo, never ran] }
    encrypt: false
    rpo: 1h
  notes:
    source: { type: command, command: [echo, notes] }
    encrypt: false
drills:
  tree-drill: { plan: plans/tree-drill.yaml }
`,
    );
    writeFileSync(
      join(work, "plans", "tree-drill.yaml"),
      `name: tree-drill
targets: { rto: 5m, rpo: 1d }
scratch:
  files: { type: directory }
steps:
  - name: restore the tree
    restore: { job: tree, into: files }
  - name: the files are back
    verify: { on: files, files: { exist: [tree/docs/readme.txt] } }
`,
    );
    for (const job of ["tree", "notes"]) {
      const made = await run(["backup", job]);
      expect(made.code, made.stderr).toBe(0);
    }
    // A backup from 2h 10m ago, placed in time with the engine's clock.
    const loaded = loadConfig(config).config;
    const store = openFilesystemStore({ path: join(work, "store") });
    const at = new Date(Date.now() - 130 * MINUTE);
    staleId = (await runBackup({ job: loaded.jobs.stale!, store, layout: new Layout(""), recipients: [], now: () => at })).manifest.id;
    treeId = (await listBackups(store, new Layout(""), "tree"))[0]!.id;
    const drill = await run(["drill", "tree-drill"]);
    expect(drill.code, `${drill.stdout}\n${drill.stderr}`).toBe(0);
  }, 120_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("shows every job's last good backup, exposure against its target, next run and last drill, and exits 1 when a job is over its target", async () => {
    const result = await run(["status"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(1);
    const [header, ...lines] = result.stdout.trimEnd().split("\n");
    expect(header).toMatch(/^JOB\s+LAST GOOD BACKUP\s+RPO EXPOSURE \/ TARGET\s+NEXT RUN\s+LAST DRILL$/);
    const row = (job: string) => {
      const line = lines.find((l) => l.startsWith(`${job} `));
      if (!line) throw new Error(`no row for ${job} in:\n${result.stdout}`);
      return line.split(/ {2,}/);
    };
    expect(lines).toHaveLength(4);
    const tree = row("tree");
    expect(tree[1]).toMatch(new RegExp(`^${treeId} \\(\\d+(\\.\\d)?m?s ago\\)$`));
    expect(tree[2]).toMatch(/^\d+(\.\d)?m?s \/ 1h$/);
    expect(tree[3]).toBe("ok");
    expect(tree[4]).toMatch(/^\d{4}-\d\d-\d\d 02:30:00\+0[12]:00 Europe\/Berlin$/);
    expect(tree[5]).toMatch(/^tree-drill passed \d{4}-\d\d-\d\d \d\d:\d\dZ$/);
    expect(row("stale")).toEqual(["stale", expect.stringMatching(new RegExp(`^${staleId} \\(2h 10m ago\\)$`)), "2h 10m / 1h", "OVER", "not scheduled", "none"]);
    expect(row("never")).toEqual(["never", "none", "never / 1h", "OVER", "not scheduled", "none"]);
    const notes = row("notes");
    expect(notes[2]).toMatch(/^\d+(\.\d)?m?s \/ —$/);
    expect(notes.slice(3)).toEqual(["not scheduled", "none"]);
  });

  it("prints the same facts as JSON, in seconds and ISO times", async () => {
    const before = Date.now();
    const result = await run(["--json", "status"]);
    expect(result.code).toBe(1);
    const rows = JSON.parse(result.stdout) as JobStatus[];
    const byJob = Object.fromEntries(rows.map((r) => [r.job, r]));
    expect(rows.map((r) => r.job)).toEqual(["tree", "stale", "never", "notes"]);

    expect(byJob.never).toEqual({
      job: "never",
      storage: "local",
      lastBackup: null,
      exposureSeconds: null,
      rpoTargetSeconds: 3600,
      overTarget: true,
      nextRun: null,
      timezone: null,
      lastDrill: null,
    });
    const stale = byJob.stale!;
    expect(stale).toMatchObject({ overTarget: true, rpoTargetSeconds: 3600, lastDrill: null, nextRun: null });
    expect(stale.lastBackup).toMatchObject({ id: staleId, status: "succeeded" });
    expect(stale.exposureSeconds).toBeGreaterThanOrEqual(130 * 60);
    expect(stale.exposureSeconds).toBeLessThan(131 * 60);
    expect(stale.lastBackup!.ageSeconds).toBe(stale.exposureSeconds);

    const tree = byJob.tree!;
    expect(tree).toMatchObject({ storage: "local", rpoTargetSeconds: 3600, overTarget: false, timezone: "Europe/Berlin" });
    expect(tree.lastBackup!.id).toBe(treeId);
    expect(tree.lastBackup!.sizeBytes).toBeGreaterThan(0);
    expect(tree.exposureSeconds).toBeCloseTo((Date.now() - Date.parse(tree.lastBackup!.consistentAt)) / 1000, -1);
    // nextRun is the cron slot, as local ISO with the zone's offset at that instant.
    const next = new CronSchedule("30 2 * * *", "Europe/Berlin").next(new Date(before));
    expect(Date.parse(tree.nextRun!)).toBe(next.getTime());
    const offset = offsetMinutes("Europe/Berlin", next.getTime());
    expect(tree.nextRun).toMatch(new RegExp(`T02:30:00\\+0${offset / 60}:00$`));
    expect(tree.lastDrill).toMatchObject({ plan: "tree-drill", verdict: "passed" });
    expect(tree.lastDrill!.t0).toMatch(/^\d{4}-\d\d-\d\dT/);

    expect(byJob.notes).toMatchObject({ rpoTargetSeconds: null, overTarget: null, lastDrill: null });
  });

  it("exits 0 when every job it shows is within its target", async () => {
    const result = await run(["status", "tree", "notes"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trimEnd().split("\n").slice(1).map((l) => l.split(" ")[0])).toEqual(["tree", "notes"]);
  });

  it("refuses an unknown job with exit 2", async () => {
    const result = await run(["status", "nope"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown job "nope"; expected one of: tree, stale, never, notes');
  });
});
