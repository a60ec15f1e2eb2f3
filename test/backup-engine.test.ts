import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runBackup } from "../src/backup/run-backup.js";
import { runRestore } from "../src/restore/run-restore.js";
import { listBackups } from "../src/catalog/catalog.js";
import { Layout } from "../src/storage/layout.js";
import { openFilesystemStore } from "../src/storage/filesystem.js";
import { commandJob, filesJob, tempDir } from "./support/builders.js";

describe("the backup engine", () => {
  const dir = tempDir();
  const store = openFilesystemStore({ path: join(dir, "store") });
  const layout = new Layout("");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps going when a progress reporter throws", async () => {
    const job = commandJob(["head", "-c", "3000000", "/dev/urandom"], undefined, { name: "reporter", encrypt: false });
    let calls = 0;
    const { manifest } = await runBackup({
      job,
      store,
      layout,
      recipients: [],
      events: {
        progress: () => {
          calls++;
          throw new Error("terminal went away");
        },
      },
    });
    expect(calls).toBeGreaterThan(0);
    expect(manifest.objects[0]!.sourceBytes).toBe(3_000_000);
    expect((await listBackups(store, layout, "reporter")).map((e) => e.id)).toEqual([manifest.id]);
  });

  it("records the time the dump started as consistentAt, from the injected clock", async () => {
    const clock = new Date("2026-03-01T12:00:00Z");
    const job = commandJob(["echo", "x"], undefined, { name: "clock", encrypt: false });
    const { manifest } = await runBackup({ job, store, layout, recipients: [], now: () => clock });
    expect(manifest.consistentAt).toBe("2026-03-01T12:00:00.000Z");
    expect(manifest.id).toMatch(/^20260301T120000Z-[0-9a-f]{4}$/);
  });
});

describe("files backups piped straight into zstd", () => {
  const dir = tempDir();
  const store = openFilesystemStore({ path: join(dir, "store") });
  const layout = new Layout("");
  const tree = join(dir, "big-tree");
  mkdirSync(tree);
  for (let i = 0; i < 24; i++) writeFileSync(join(tree, `blob-${i}.bin`), randomBytes(4 * 1024 * 1024));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("records tar's own byte count as the source size", async () => {
    const { manifest } = await runBackup({ job: filesJob([tree], { name: "piped", encrypt: false }), store, layout, recipients: [] });
    expect(manifest.codec).toEqual(["tar", "zstd"]);
    const { sourceBytes } = manifest.objects[0]!;
    expect(sourceBytes % 512).toBe(0);
    expect(sourceBytes).toBeGreaterThan(24 * 4 * 1024 * 1024);
    expect(sourceBytes).toBeLessThan(24 * 4 * 1024 * 1024 + 64 * 1024);
  });

  it("removes the staging folder and creates no target when a restore is interrupted", async () => {
    const job = filesJob([tree], { name: "restore-interrupted", encrypt: false });
    await runBackup({ job, store, layout, recipients: [] });
    const parent = join(dir, "restores");
    mkdirSync(parent);
    const controller = new AbortController();
    const restoring = runRestore({
      job,
      store,
      layout,
      identities: [],
      selector: {},
      target: { location: join(parent, "target"), force: false },
      signal: controller.signal,
      events: { progress: ({ storedBytes }) => storedBytes > 8 * 1024 * 1024 && controller.abort() },
    });
    await expect(restoring).rejects.toMatchObject({ code: "INTERRUPTED", message: expect.stringContaining("nothing was committed") });
    expect(readdirSync(parent)).toEqual([]);
  });

  it("stops tar and zstd and leaves nothing behind when interrupted", async () => {
    const controller = new AbortController();
    const running = runBackup({
      job: filesJob([tree], { name: "interrupted", encrypt: false }),
      store,
      layout,
      recipients: [],
      signal: controller.signal,
      events: { progress: ({ storedBytes }) => storedBytes > 1024 * 1024 && controller.abort() },
    });
    await expect(running).rejects.toMatchObject({ code: "INTERRUPTED", kind: "interrupted" });
    const left: string[] = [];
    for await (const o of store.list("interrupted/")) left.push(o.key);
    expect(left).toEqual([]);
    // No tar reading this tree is still running.
    expect(spawnSync("pgrep", ["-f", tree]).stdout.toString().trim()).toBe("");
  });
});

describe("tools that cannot run", () => {
  const dir = tempDir();
  const store = openFilesystemStore({ path: join(dir, "store") });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("fails with the missing program's name and a hint, and leaves nothing behind", async () => {
    const job = commandJob(["lifeboat-test-no-such-dump-tool", "--all"], undefined, { name: "missing-tool", encrypt: false });
    await expect(runBackup({ job, store, layout: new Layout(""), recipients: [] })).rejects.toMatchObject({
      code: "TOOL_NOT_FOUND",
      message: 'lifeboat-test-no-such-dump-tool was not found (backing up job "missing-tool")',
      hint: "install lifeboat-test-no-such-dump-tool or put it on PATH",
    });
    const left: string[] = [];
    for await (const o of store.list("")) left.push(o.key);
    expect(left).toEqual([]);
  });
});
