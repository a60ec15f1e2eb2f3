// S3 Object Lock on radosgw: immutable puts carry a retention date, locked
// versions cannot be deleted, and proveImmutability finds out which is true.
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { DeleteObjectCommand, HeadObjectCommand, ListObjectVersionsCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBackup } from "../src/backup/run-backup.js";
import { Layout } from "../src/storage/layout.js";
import { openS3Store } from "../src/storage/s3.js";
import type { ObjectLockSettings, ObjectStore } from "../src/storage/store.js";
import { createTestBucket, rawS3Client, s3Servers, type S3ServerInfo } from "./setup/s3-servers.js";
import { filesJob, makeTree, tempDir } from "./support/builders.js";
import { CLI, lifeboat } from "./support/cli.js";

const DAY_MS = 86_400_000;
const MiB = 1024 * 1024;

function storeOn(server: S3ServerInfo, bucket: string, checksum: "when-required" | "when-supported", objectLock?: ObjectLockSettings): ObjectStore {
  return openS3Store({
    name: "locked",
    endpoint: server.endpoint,
    region: server.region,
    bucket,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    checksum,
    partSizeMiB: 5,
    concurrency: 3,
    maxAttempts: 3,
    objectLock,
  });
}

/** Close to `expected`, allowing for clock skew between us and the server and for seconds precision. */
function expectAbout(actual: Date | undefined, expected: number): void {
  expect(actual).toBeInstanceOf(Date);
  expect(Math.abs(actual!.getTime() - expected)).toBeLessThan(60_000);
}

const radosgw = s3Servers().find((s) => s.name === "radosgw");

describe.runIf(radosgw)("S3 Object Lock on radosgw", () => {
  const server = radosgw!;
  let lockedBucket: string;
  let plainBucket: string;

  beforeAll(async () => {
    lockedBucket = await createTestBucket(server, "lock", { objectLock: true });
    plainBucket = await createTestBucket(server, "nolock");
  });

  for (const checksum of ["when-required", "when-supported"] as const) {
    describe(`checksum ${checksum}`, () => {
      let store: ObjectStore;
      beforeAll(() => {
        store = storeOn(server, lockedBucket, checksum, { mode: "governance", retainMs: DAY_MS });
      });

      it.each([
        ["a single-part", 1_000],
        ["a multipart", 11 * MiB + 7],
      ])("gives %s immutable put a retention date of now + the lock period", async (_label, size) => {
        const key = `immutable/${checksum}/${size}.bin`;
        await store.put(key, Readable.from([randomBytes(size)]), { immutable: true });
        const info = await store.head(key);
        expect(info?.sizeBytes).toBe(size);
        expectAbout(info?.retainUntil, Date.now() + DAY_MS);
      });

      it("leaves a plain put without a retention date", async () => {
        const key = `plain/${checksum}.txt`;
        await store.put(key, Readable.from([Buffer.from("mutable bookkeeping")]));
        const info = await store.head(key);
        expect(info).toBeDefined();
        expect(info?.retainUntil).toBeUndefined();
      });

      it("refuses to delete the locked version, even for the bucket owner", async () => {
        const key = `undeletable/${checksum}.bin`;
        await store.put(key, Readable.from([Buffer.from("keep me")]), { immutable: true });
        const client = rawS3Client(server);
        try {
          const { VersionId } = await client.send(new HeadObjectCommand({ Bucket: lockedBucket, Key: key }));
          expect(VersionId).toBeTruthy();
          await expect(client.send(new DeleteObjectCommand({ Bucket: lockedBucket, Key: key, VersionId }))).rejects.toMatchObject({
            $metadata: { httpStatusCode: 403 },
          });
          const still = await client.send(new HeadObjectCommand({ Bucket: lockedBucket, Key: key, VersionId }));
          expect(still.ContentLength).toBe(7);
        } finally {
          client.destroy();
        }
      });

      it("proves that the lock holds", async () => {
        const proof = await store.proveImmutability(".lifeboat/immutability/");
        expect(proof).toMatchObject({ held: true, mode: "governance" });
        expectAbout(proof.retainUntil, Date.now() + DAY_MS);
        expect(proof.reason).toMatch(/^deleting locked version .* was refused: AccessDenied$/);
        // The canary stays: it is locked.
        const canaries = [];
        for await (const o of store.list(".lifeboat/immutability/")) canaries.push(o);
        expect(canaries.length).toBeGreaterThanOrEqual(1);
        expect(canaries.every((c) => c.sizeBytes < 200)).toBe(true);
      });
    });
  }

  it("deletes every version of a key once its lock has run out, and none while it holds", async () => {
    const store = storeOn(server, lockedBucket, "when-required", { mode: "governance", retainMs: 3_000 });
    const key = "expiring/object.bin";
    await store.put(key, Readable.from([randomBytes(2_000)]), { immutable: true });
    await store.put(key, Readable.from([randomBytes(2_000)]), { immutable: true });
    await expect(store.delete([key])).rejects.toMatchObject({ code: "STORAGE_ACCESS_DENIED" });
    expect(await store.head(key)).toBeDefined();
    await new Promise((r) => setTimeout(r, 4_500));
    await store.delete([key]);
    const versions = await rawS3Client(server).send(new ListObjectVersionsCommand({ Bucket: lockedBucket, Prefix: key }));
    // Nothing left behind: no noncurrent version holding the bytes, no delete marker.
    expect([...(versions.Versions ?? []), ...(versions.DeleteMarkers ?? [])]).toEqual([]);
  });

  it("fails a locked put into a bucket without Object Lock with STORAGE_NO_OBJECT_LOCK", async () => {
    const store = storeOn(server, plainBucket, "when-required", { mode: "governance", retainMs: DAY_MS });
    const failure = await store.put("data/x.bin", Readable.from([Buffer.from("x")]), { immutable: true }).catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: "STORAGE_NO_OBJECT_LOCK", kind: "usage", hint: expect.stringMatching(/Object Lock enabled/) });
    expect((failure as Error).message).toMatch(/^bucket "nolock-.*" does not have Object Lock enabled/);
    await expect(store.proveImmutability(".lifeboat/immutability/")).rejects.toMatchObject({ code: "STORAGE_NO_OBJECT_LOCK" });
    expect(await store.head("data/x.bin")).toBeUndefined();
  });

  it("fails a locked multipart put into a bucket without Object Lock with STORAGE_NO_OBJECT_LOCK", async () => {
    const store = storeOn(server, plainBucket, "when-supported", { mode: "compliance", retainMs: DAY_MS });
    await expect(store.put("data/big.bin", Readable.from([randomBytes(6 * MiB)]), { immutable: true })).rejects.toMatchObject({
      code: "STORAGE_NO_OBJECT_LOCK",
    });
  });

  it("answers held: false without writing when the store has no objectLock", async () => {
    const store = storeOn(server, lockedBucket, "when-required");
    const proof = await store.proveImmutability("unlocked-canaries/");
    expect(proof).toEqual({ held: false, reason: 'no objectLock is configured for storage "locked"' });
    const written = [];
    for await (const o of store.list("unlocked-canaries/")) written.push(o);
    expect(written).toEqual([]);
  });

  describe("a backup into a locked store", () => {
    let work: string;
    beforeAll(() => {
      work = tempDir();
    });
    afterAll(() => rmSync(work, { recursive: true, force: true }));

    it("locks every object of the backup, the manifest included", async () => {
      const store = storeOn(server, lockedBucket, "when-supported", { mode: "governance", retainMs: DAY_MS });
      const layout = new Layout("backups/");
      const tree = makeTree(work);
      const { manifest } = await runBackup({ job: filesJob([tree], { name: "locked-tree", encrypt: false }), store, layout, recipients: [] });
      const keys = [...manifest.objects.map((o) => layout.objectKey("locked-tree", manifest.id, o.key)), layout.manifestKey("locked-tree", manifest.id)];
      const listed = [];
      for await (const o of store.list(layout.backupFolder("locked-tree", manifest.id))) listed.push(o.key);
      expect(listed.sort()).toEqual([...keys].sort());
      for (const key of keys) {
        const info = await store.head(key);
        expectAbout(info?.retainUntil, Date.now() + DAY_MS);
      }
    });
  });

  describe("lifeboat verify --immutability", () => {
    let work: string;
    let env: Record<string, string>;
    const configFile = (name: string, lock: boolean) => {
      const file = join(work, `${name}.yaml`);
      writeFileSync(
        file,
        `storage:
  vault:
    type: s3
    endpoint: ${server.endpoint}
    region: ${server.region}
    bucket: ${lockedBucket}
    prefix: ${name}/
    forcePathStyle: true
    credentials:
      accessKeyId: \${env:TEST_S3_KEY}
      secretAccessKey: \${env:TEST_S3_SECRET}
${lock ? "    objectLock: { mode: governance, retain: 1d }\n" : ""}  plain:
    type: filesystem
    path: ./plain-store
jobs:
  tree:
    source: { type: files, paths: [./tree] }
    storage: vault
    encrypt: false
  local:
    source: { type: files, paths: [./tree] }
    storage: plain
    encrypt: false
`,
      );
      return file;
    };

    beforeAll(() => {
      expect(existsSync(CLI), "build first: npx tsc -p tsconfig.build.json").toBe(true);
      work = tempDir("lifeboat-lock-cli-");
      makeTree(work);
      env = { TEST_S3_KEY: server.accessKeyId, TEST_S3_SECRET: server.secretAccessKey };
    });
    afterAll(() => rmSync(work, { recursive: true, force: true }));

    it("exits 0 when the lock holds and every object of every backup is locked", async () => {
      const config = configFile("held", true);
      const backup = await lifeboat(["-c", config, "backup", "tree"], { env, cwd: work });
      expect(backup.code, backup.stderr).toBe(0);
      const text = await lifeboat(["-c", config, "verify", "tree", "--immutability"], { env, cwd: work });
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toMatch(/^held storage "vault": deleting locked version .* was refused: AccessDenied$/m);
      expect(text.stdout).toMatch(/^locked tree \S+: 2 objects until \d{4}-/m);

      const json = await lifeboat(["-c", config, "--json", "verify", "tree", "--immutability"], { env, cwd: work });
      expect(json.code, json.stderr).toBe(0);
      const result = JSON.parse(json.stdout) as { ok: boolean; storages: Array<{ storage: string; held: boolean; mode: string }>; backups: Array<{ locked: boolean; objects: number }> };
      expect(result.ok).toBe(true);
      expect(result.storages).toMatchObject([{ storage: "vault", held: true, mode: "governance" }]);
      expect(result.backups).toMatchObject([{ locked: true, objects: 2, notLocked: [] }]);
    }, 60_000);

    it("exits 1 and names the objects when a backup was written without the lock", async () => {
      const unlocked = configFile("late", false);
      const backup = await lifeboat(["-c", unlocked, "backup", "tree"], { env, cwd: work });
      expect(backup.code, backup.stderr).toBe(0);
      const locked = configFile("late", true);
      const result = await lifeboat(["-c", locked, "verify", "tree", "--immutability"], { env, cwd: work });
      expect(result.code).toBe(1);
      expect(result.stdout).toMatch(/^held storage "vault"/m);
      expect(result.stderr).toMatch(/^NOT LOCKED tree \S+: 2 of 2 objects$/m);
      expect(result.stderr).toMatch(/^ {2}late\/tree\/\S+\/manifest\.json: no retention date$/m);
    }, 60_000);

    it("exits 1 for a storage without objectLock, without writing a canary", async () => {
      const config = configFile("mixed", true);
      const backup = await lifeboat(["-c", config, "backup", "local"], { env, cwd: work });
      expect(backup.code, backup.stderr).toBe(0);
      const json = await lifeboat(["-c", config, "--json", "verify", "--immutability"], { env, cwd: work });
      expect(json.code).toBe(1);
      const result = JSON.parse(json.stdout) as { ok: boolean; storages: Array<{ storage: string; held: boolean; reason: string }>; backups: Array<{ job: string; locked: boolean; notLocked: Array<{ why: string }> }> };
      expect(result.ok).toBe(false);
      expect(result.storages).toEqual([
        expect.objectContaining({ storage: "vault", held: true }),
        { storage: "plain", held: false, reason: "the filesystem store has no Object Lock" },
      ]);
      expect(result.backups).toEqual([expect.objectContaining({ job: "local", locked: false })]);
      expect(result.backups[0]!.notLocked.every((n) => n.why === "no retention date")).toBe(true);
      expect(existsSync(join(work, "plain-store", ".lifeboat"))).toBe(false);
    }, 60_000);
  });
});
