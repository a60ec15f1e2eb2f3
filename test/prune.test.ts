import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, ListObjectVersionsCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBackup } from "../src/backup/run-backup.js";
import { listBackups, writeVerification } from "../src/catalog/catalog.js";
import { applyPrune, planPrune, type PruneJob } from "../src/catalog/prune.js";
import { loadConfig } from "../src/config/load.js";
import { Layout } from "../src/storage/layout.js";
import { openFilesystemStore } from "../src/storage/filesystem.js";
import { openS3Store } from "../src/storage/s3.js";
import type { ObjectStore } from "../src/storage/store.js";
import { createTestBucket, rawS3Client, s3Servers } from "./setup/s3-servers.js";
import { commandJob, tempDir } from "./support/builders.js";
import { CLI, lifeboat } from "./support/cli.js";
import { storesUnderTest } from "./support/stores.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Real backups of a tiny command source, one per time given (consistentAt = that time). */
async function makeBackups(store: ObjectStore, layout: Layout, job: string, times: Date[]): Promise<string[]> {
  const ids: string[] = [];
  for (const time of times) {
    const { manifest } = await runBackup({ job: commandJob(["echo", `backup at ${time.toISOString()}`], undefined, { name: job, encrypt: false }), store, layout, recipients: [], now: () => time });
    ids.push(manifest.id);
  }
  return ids;
}

async function keysUnder(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of store.list(prefix)) keys.push(o.key);
  return keys;
}

async function prune(store: ObjectStore, layout: Layout, jobs: PruneJob[], options: { graceMs?: number; active?: Set<string> } = {}) {
  const now = new Date();
  const plan = await planPrune({ store, layout, jobs, now, orphanGraceMs: options.graceMs ?? DAY, activeBackupFolders: options.active ?? new Set() });
  return { plan, result: await applyPrune(plan, { store, now }) };
}

/** Forwards everything to the real store and records the keys of every delete call, in order. */
function recordingDeletes(store: ObjectStore): { store: ObjectStore; deletes: string[][] } {
  const deletes: string[][] = [];
  const wrapper = Object.create(store) as ObjectStore;
  wrapper.delete = async (keys) => {
    deletes.push([...keys]);
    return store.delete(keys);
  };
  return { store: wrapper, deletes };
}

const base = Date.parse("2026-11-01T08:00:00.000Z");
const selected = storesUnderTest().filter((s, i, all) => s.name === "filesystem" || all.findIndex((t) => t.server?.name === "radosgw") === i);

describe.each(selected)("prune on $name", (target) => {
  let store: ObjectStore;
  let cleanup: () => void;
  const layout = new Layout("pfx/");
  beforeAll(async () => {
    ({ store, cleanup } = await target.open());
  });
  afterAll(() => cleanup());

  it("keepLast 2 forgets the older backups, empties their folders, and leaves the two newest listed", async () => {
    const ids = await makeBackups(store, layout, "last", [0, 1, 2, 3].map((d) => new Date(base + d * DAY)));
    const forgottenWithVerification = (await listBackups(store, layout, "last"))[0]!.manifest!;
    await writeVerification(store, layout, forgottenWithVerification, { version: 1, verifiedAt: new Date().toISOString(), ok: true, decrypted: false, problems: [] });

    const { plan, result } = await prune(store, layout, [{ name: "last", retention: { keepLast: 2 } }]);
    expect(plan.jobs[0]!.backups.map((b) => [b.id, b.decision, b.reasons])).toEqual([
      [ids[3], "keep", ["last 1 of 2"]],
      [ids[2], "keep", ["last 2 of 2"]],
      [ids[1], "forget", []],
      [ids[0], "forget", []],
    ]);
    expect(plan.jobs[0]!.backups[3]!.dataObjects.map((o) => o.key)).toContain(layout.verificationKey("last", ids[0]!));
    expect(result.failed).toBe(0);
    expect(result.backups.map((b) => b.action)).toEqual(["kept", "kept", "forgotten", "forgotten"]);
    expect(result.backups[3]!.objectsDeleted).toBe(3); // manifest, data, verification.json
    expect(result.bytesFreed).toBeGreaterThan(0);
    expect((await listBackups(store, layout, "last")).map((e) => e.id)).toEqual([ids[2], ids[3]]);
    for (const id of [ids[0]!, ids[1]!]) expect(await keysUnder(store, layout.backupFolder("last", id))).toEqual([]);
  });

  it("keepDaily 2 keeps the newest backup of each of the two newest days", async () => {
    const times = [base, base + 12 * HOUR, base + DAY, base + DAY + 2 * HOUR, base + 2 * DAY].map((t) => new Date(t));
    const ids = await makeBackups(store, layout, "daily", times);
    const { result } = await prune(store, layout, [{ name: "daily", retention: { keepDaily: 2 } }]);
    expect(result.backups.filter((b) => b.action === "kept").map((b) => [b.id, b.reasons])).toEqual([
      [ids[4], ["daily 2026-11-03"]],
      [ids[3], ["daily 2026-11-02"]],
    ]);
    expect((await listBackups(store, layout, "daily")).map((e) => e.id)).toEqual([ids[3], ids[4]]);
    for (const id of ids.slice(0, 3)) expect(await keysUnder(store, layout.backupFolder("daily", id))).toEqual([]);
  });

  it("deletes every forgotten backup's manifest before any of its data", async () => {
    const ids = await makeBackups(store, layout, "order", [0, 1, 2].map((h) => new Date(base + h * HOUR)));
    const recording = recordingDeletes(store);
    const { result } = await prune(recording.store, layout, [{ name: "order", retention: { keepLast: 1 } }]);
    expect(result.backups.map((b) => b.action)).toEqual(["kept", "forgotten", "forgotten"]);
    for (const id of [ids[0]!, ids[1]!]) {
      const manifestAt = recording.deletes.findIndex((keys) => keys.includes(layout.manifestKey("order", id)));
      const dataAt = recording.deletes.findIndex((keys) => keys.some((k) => k.startsWith(layout.backupFolder("order", id)) && !k.endsWith("/manifest.json")));
      expect(manifestAt).toBeGreaterThanOrEqual(0);
      expect(dataAt).toBeGreaterThan(manifestAt);
      expect(recording.deletes[manifestAt]).toEqual([layout.manifestKey("order", id)]);
    }
  });

  it("never touches the folder of a run in progress, forgotten or orphaned", async () => {
    const ids = await makeBackups(store, layout, "active", [0, 1, 2].map((h) => new Date(base + h * HOUR)));
    const running = "20261101T120000Z-abcd";
    await store.put(layout.objectKey("active", running, "data.zst"), Readable.from([Buffer.from("half a backup")]));
    await sleep(1_200);
    const active = new Set([layout.backupFolder("active", ids[0]!), layout.backupFolder("active", running)]);
    const before = await keysUnder(store, layout.backupFolder("active", ids[0]!));
    const { plan, result } = await prune(store, layout, [{ name: "active", retention: { keepLast: 1 } }], { graceMs: 500, active });
    expect(plan.jobs[0]!.backups.find((b) => b.id === ids[0])).toMatchObject({ decision: "keep", reasons: ["run in progress"] });
    expect(plan.jobs[0]!.orphans).toMatchObject([{ folder: layout.backupFolder("active", running), decision: "keep", reason: "run in progress" }]);
    expect(result.backups.map((b) => [b.id, b.action])).toEqual([[ids[2], "kept"], [ids[1], "forgotten"], [ids[0], "kept"]]);
    expect(await keysUnder(store, layout.backupFolder("active", ids[0]!))).toEqual(before);
    expect(await keysUnder(store, layout.backupFolder("active", running))).toEqual([layout.objectKey("active", running, "data.zst")]);
  });

  it("removes an orphan older than the grace period and keeps a young one", async () => {
    const [kept] = await makeBackups(store, layout, "orphans", [new Date(base)]);
    const old = "20261101T090000Z-0001";
    const young = "20261101T100000Z-0002";
    await store.put(layout.objectKey("orphans", old, "data.zst"), Readable.from([Buffer.from("left by a crash")]));
    await store.put(layout.objectKey("orphans", old, "data.zst.part2"), Readable.from([Buffer.from("more")]));
    await sleep(2_500);
    await store.put(layout.objectKey("orphans", young, "data.zst"), Readable.from([Buffer.from("still being written")]));
    const { plan, result } = await prune(store, layout, [{ name: "orphans", retention: { keepLast: 1 } }], { graceMs: 1_500 });
    expect(plan.jobs[0]!.orphans.map((o) => [o.folder, o.decision, o.reason])).toEqual([
      [layout.backupFolder("orphans", old), "remove", undefined],
      [layout.backupFolder("orphans", young), "keep", "orphan within grace"],
    ]);
    expect(result.orphans.map((o) => [o.action, o.objectsDeleted])).toEqual([["removed", 2], ["kept", 0]]);
    expect(await keysUnder(store, layout.backupFolder("orphans", old))).toEqual([]);
    expect(await keysUnder(store, layout.backupFolder("orphans", young))).toHaveLength(1);
    expect((await listBackups(store, layout, "orphans")).map((e) => e.id)).toEqual([kept]);
  });

  it("never forgets a backup whose manifest is unreadable", async () => {
    const ids = await makeBackups(store, layout, "broken", [0, 1].map((d) => new Date(base + d * DAY)));
    await store.put(layout.manifestKey("broken", ids[0]!), Readable.from([Buffer.from("{ not json")]));
    const { result } = await prune(store, layout, [{ name: "broken", retention: { keepLast: 1 } }]);
    const broken = result.backups.find((b) => b.id === ids[0])!;
    expect(broken.action).toBe("kept");
    expect(broken.reasons[0]).toMatch(/^manifest unreadable: /);
    expect(await keysUnder(store, layout.backupFolder("broken", ids[0]!))).toHaveLength(2);
  });

  it("keeps everything of a job without a retention policy", async () => {
    const ids = await makeBackups(store, layout, "forever", [0, 1, 2].map((d) => new Date(base + d * DAY)));
    const { result } = await prune(store, layout, [{ name: "forever", retention: undefined }]);
    expect(result.backups.map((b) => [b.action, b.reasons])).toEqual(ids.map(() => ["kept", ["no retention policy"]]));
    expect((await listBackups(store, layout, "forever")).map((e) => e.id)).toEqual(ids);
  });
});

describe("prune on radosgw", () => {
  const server = () => s3Servers().find((s) => s.name === "radosgw")!;
  const layout = new Layout("");

  function open(bucket: string, objectLock?: { mode: "governance"; retainMs: number }): ObjectStore {
    const s = server();
    return openS3Store({
      name: "test",
      endpoint: s.endpoint,
      region: s.region,
      bucket,
      forcePathStyle: true,
      credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
      checksum: "when-required",
      partSizeMiB: 5,
      concurrency: 2,
      maxAttempts: 3,
      objectLock,
    });
  }

  it("aborts a multipart upload older than the grace period and keeps a young one", async () => {
    const bucket = await createTestBucket(server(), "prune-uploads");
    const store = open(bucket);
    const client = rawS3Client(server());
    try {
      const staleKey = layout.objectKey("uploads", "20261101T080000Z-0001", "data.zst");
      const youngKey = layout.objectKey("uploads", "20261101T090000Z-0002", "data.zst");
      await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: staleKey }));
      await sleep(2_500);
      await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: youngKey }));
      const { plan, result } = await prune(store, layout, [{ name: "uploads", retention: { keepLast: 1 } }], { graceMs: 1_500 });
      expect(plan.uploads.map((u) => [u.key, u.decision])).toEqual([[staleKey, "abort"], [youngKey, "keep"]]);
      expect(result.uploads.map((u) => u.action)).toEqual(["aborted", "kept"]);
      const left = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      expect((left.Uploads ?? []).map((u) => u.Key)).toEqual([youngKey]);
    } finally {
      client.destroy();
    }
  });

  it("reports forgotten backups under Object Lock as retained-by-lock, and they stay listed", async () => {
    const bucket = await createTestBucket(server(), "prune-lock", { objectLock: true });
    const store = open(bucket, { mode: "governance", retainMs: 10 * 60_000 });
    const ids = await makeBackups(store, layout, "locked", [0, 1, 2].map((d) => new Date(base + d * DAY)));
    const recording = recordingDeletes(store);
    const { result } = await prune(recording.store, layout, [{ name: "locked", retention: { keepLast: 1 } }]);
    expect(result.failed).toBe(0);
    expect(result.backups.map((b) => [b.id, b.action])).toEqual([[ids[2], "kept"], [ids[1], "retained-by-lock"], [ids[0], "retained-by-lock"]]);
    const retainUntil = Date.parse(result.backups[1]!.retainUntil!);
    expect(retainUntil).toBeGreaterThan(Date.now() + 5 * 60_000);
    expect(result.backups[1]!.reasons[0]).toMatch(/^object lock until 20\d\d-/);
    expect(recording.deletes).toEqual([]); // not even a delete marker was written
    expect((await listBackups(store, layout, "locked")).map((e) => e.id)).toEqual(ids);
    const client = rawS3Client(server());
    try {
      const versions = await client.send(new ListObjectVersionsCommand({ Bucket: bucket }));
      expect(versions.DeleteMarkers ?? []).toEqual([]);
    } finally {
      client.destroy();
    }
  });
});

describe("lifeboat prune (the built CLI)", () => {
  const work = tempDir("lifeboat-prune-cli-");
  const config = join(work, "lifeboat.yaml");
  let ids: string[] = [];
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  beforeAll(async () => {
    expect(existsSync(CLI), "run `npm run build` first (npm test does)").toBe(true);
    writeFileSync(
      config,
      `storage:
  local:
    type: filesystem
    path: ./store
jobs:
  nightly:
    source: { type: command, command: [echo, hello] }
    encrypt: false
    retention: { keepLast: 1, keepDaily: 2 }
  forever:
    source: { type: command, command: [echo, hello] }
    encrypt: false
`,
    );
    const loaded = loadConfig(config).config;
    const store = openFilesystemStore({ path: join(work, "store") });
    const layout = new Layout("");
    const times = [base, base + 6 * HOUR, base + DAY, base + DAY + 6 * HOUR].map((t) => new Date(t));
    for (const time of times) ids.push((await runBackup({ job: loaded.jobs.nightly!, store, layout, recipients: [], now: () => time })).manifest.id);
    await runBackup({ job: loaded.jobs.forever!, store, layout, recipients: [], now: () => new Date(base) });
  });

  const run = (args: string[]) => lifeboat(["-c", config, ...args], { cwd: work });
  const storeKeys = async () => keysUnder(openFilesystemStore({ path: join(work, "store") }), "");

  it("--dry-run changes nothing and says why each survivor is kept", async () => {
    const before = await storeKeys();
    const result = await run(["prune", "--dry-run"]);
    expect(result.stderr).not.toMatch(/error/);
    expect(result.code).toBe(0);
    expect(await storeKeys()).toEqual(before);
    const line = (id: string) => result.stdout.split("\n").find((l) => l.includes(id)) ?? "";
    expect(line(ids[3]!)).toMatch(/keep\s+last 1 of 1, daily 2026-11-02$/);
    expect(line(ids[2]!)).toMatch(/forget$/);
    expect(line(ids[1]!)).toMatch(/keep\s+daily 2026-11-01$/);
    expect(line(ids[0]!)).toMatch(/forget$/);
    expect(result.stdout).toContain('job "forever": no retention policy: every backup is kept');
    expect(result.stdout).toContain("would forget 2 backups");
    expect(result.stdout).toContain("dry run: nothing is changed");
  });

  it("--dry-run --json prints the plan for scripts", async () => {
    const result = await run(["prune", "--dry-run", "--json", "nightly"]);
    expect(result.code).toBe(0);
    const doc = JSON.parse(result.stdout) as { dryRun: boolean; storages: Array<{ jobs: Array<{ job: string; backups: Array<{ id: string; decision: string }> }> }> };
    expect(doc.dryRun).toBe(true);
    expect(doc.storages[0]!.jobs.map((j) => j.job)).toEqual(["nightly"]);
    expect(doc.storages[0]!.jobs[0]!.backups.map((b) => b.decision)).toEqual(["keep", "forget", "keep", "forget"]);
  });

  it("an unknown job is a usage error", async () => {
    const result = await run(["prune", "nightlyy"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown job "nightlyy"');
  });

  it("without --dry-run forgets what the plan said and prints what was done", async () => {
    const result = await run(["prune"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`${ids[0]}\\s+\\S+ \\S+\\s+forgotten`));
    expect(result.stdout).toContain("forgot 2 backups, 0 retained by object lock");
    const list = await run(["list", "--json", "nightly"]);
    expect((JSON.parse(list.stdout) as Array<{ id: string }>).map((r) => r.id)).toEqual([ids[1], ids[3]]);
  });
});
