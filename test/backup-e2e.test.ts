import { spawnSync } from "node:child_process";
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBackup } from "../src/backup/run-backup.js";
import { listBackups } from "../src/catalog/catalog.js";
import { verifyBackup } from "../src/catalog/verify.js";
import type { BackupJob } from "../src/model/job.js";
import type { Manifest } from "../src/model/manifest.js";
import { generateIdentity, parseIdentities } from "../src/pipeline/age/index.js";
import { runRestore } from "../src/restore/run-restore.js";
import { Layout } from "../src/storage/layout.js";
import type { ObjectStore } from "../src/storage/store.js";
import { rawS3Client } from "./setup/s3-servers.js";
import { commandJob, filesJob, makeTree, tempDir } from "./support/builders.js";
import { storesUnderTest } from "./support/stores.js";
import { snapshot } from "./support/tree.js";
import { pipeTools } from "./support/pipe-tools.js";

const key = generateIdentity();
const otherKey = generateIdentity();
const identities = parseIdentities(key.identity);

async function download(store: ObjectStore, objectKey: string, path: string): Promise<void> {
  await pipeline(await store.get(objectKey), createWriteStream(path)).catch((e: Error) => Promise.reject(new Error(`download: ${e.message}`)));
}

for (const candidate of storesUnderTest()) {
  describe(`backups end to end: ${candidate.name}`, () => {
    let store: ObjectStore;
    let bucket: string | undefined;
    let cleanup: () => void;
    let work: string;
    let tree: string;
    const layout = new Layout("e2e/");

    beforeAll(async () => {
      ({ store, bucket, cleanup } = await candidate.open({ partSizeMiB: 5 }));
      work = tempDir();
      tree = makeTree(work);
      symlinkSync("docs/readme.txt", join(tree, "link-to-readme"));
    });
    afterAll(() => {
      cleanup();
      rmSync(work, { recursive: true, force: true });
    });

    const backup = (job: BackupJob, recipients = [key.recipient]) => runBackup({ job, store, layout, recipients });

    it("backs up a folder, lists it, verifies it and restores it identically", async () => {
      const job = filesJob([tree], { name: "tree", source: { type: "files", paths: [tree], exclude: ["*.tmp"] } });
      const { manifest } = await backup(job);
      expect(manifest.codec).toEqual(["tar", "zstd", "age"]);
      expect(manifest.status).toBe("succeeded");
      expect(manifest.encryption?.recipients).toEqual([key.recipient]);
      expect(manifest.objects[0]!.sourceBytes).toBeGreaterThan(300_000);

      const listed = await listBackups(store, layout, "tree");
      expect(listed.map((e) => e.id)).toEqual([manifest.id]);

      const verified = await verifyBackup(store, layout, manifest, { identities });
      expect(verified).toMatchObject({ ok: true, decrypted: true, problems: [] });

      const target = join(work, "restored");
      await runRestore({ job, store, layout, identities, selector: {}, target: { location: target, force: false } });
      expect(snapshot(join(target, "tree"))).toEqual(snapshot(tree, { exclude: /\.tmp$/ }));
    });

    it("writes artifacts that age, zstd and tar restore by hand, without Lifeboat", async () => {
      const job = filesJob([tree], { name: "by-hand" });
      const { manifest } = await backup(job);
      const stored = join(work, "by-hand.tar.zst.age");
      await download(store, layout.objectKey("by-hand", manifest.id, manifest.objects[0]!.key), stored);
      const keyFile = join(work, "identity.txt");
      writeFileSync(keyFile, `${key.identity}\n`, { mode: 0o600 });
      const tarFile = join(work, "by-hand.tar");
      await pipeTools(stored, [["age", "-d", "-i", keyFile], ["zstd", "-d", "-c"]], tarFile);
      const out = join(work, "by-hand-out");
      mkdirSync(out);
      expect(spawnSync("tar", ["-x", "-f", tarFile, "-C", out]).status).toBe(0);
      expect(snapshot(join(out, "tree"))).toEqual(snapshot(tree));
    });

    it.each([
      ["gzip, not encrypted", { compression: "gzip", encrypt: false }, ["tar", "gzip"]],
      ["no compression, encrypted", { compression: "none", encrypt: true }, ["tar", "age"]],
      ["no compression, not encrypted", { compression: "none", encrypt: false }, ["tar"]],
    ] as const)("round-trips with %s", async (_label, options, codec) => {
      const name = `codec-${codec.join("-")}`;
      const job = filesJob([tree], { name, ...options });
      const { manifest } = await backup(job, options.encrypt ? [key.recipient] : []);
      expect(manifest.codec).toEqual(codec);
      const target = join(work, `restored-${name}`);
      await runRestore({ job, store, layout, identities, selector: { id: manifest.id }, target: { location: target, force: false } });
      expect(snapshot(join(target, "tree"))).toEqual(snapshot(tree));
    });

    it("backs up a command's stdout and restores it into another command", async () => {
      const payload = join(work, "payload.bin");
      writeFileSync(payload, Buffer.concat([Buffer.from("header\n"), readFileSync(join(tree, "docs", "deep", "deeper", "data.bin"))]));
      const output = join(work, "command-restored.bin");
      const job = commandJob(["cat", payload], ["sh", "-c", 'cat > "$LIFEBOAT_RESTORE_TARGET"'], { name: "command" });
      const { manifest } = await backup(job);
      expect(manifest.codec).toEqual(["stream", "zstd", "age"]);
      await runRestore({ job, store, layout, identities, selector: {}, target: { location: output, force: false } });
      expect(readFileSync(output).equals(readFileSync(payload))).toBe(true);
    });

    it("fails a backup whose command exits non-zero, and leaves nothing behind", async () => {
      const job = commandJob(["sh", "-c", "echo partial-data; echo 'dump exploded' >&2; exit 3"], undefined, { name: "failing" });
      await expect(backup(job)).rejects.toMatchObject({ code: "TOOL_FAILED", message: expect.stringMatching(/sh failed with exit code 3[\s\S]*dump exploded/) });
      expect(await listBackups(store, layout, "failing")).toEqual([]);
      const left: string[] = [];
      for await (const o of store.list(layout.jobFolder("failing"))) left.push(o.key);
      expect(left).toEqual([]);
    });

    it("fails an empty dump unless the job allows empty backups", async () => {
      const job = commandJob(["true"], undefined, { name: "empty" });
      await expect(backup(job)).rejects.toMatchObject({ code: "BACKUP_EMPTY" });
      const { manifest } = await backup({ ...job, allowEmpty: true });
      expect(manifest.objects[0]!.sourceBytes).toBe(0);
    });

    it("detects a flipped byte in storage by SHA-256, naming the object and both hashes, and restores nothing", async () => {
      const job = filesJob([tree], { name: "flipped", encrypt: false, compression: "none" });
      const { manifest } = await backup(job, []);
      const object = manifest.objects[0]!;
      const objectKey = layout.objectKey("flipped", manifest.id, object.key);
      const local = join(work, "flipped.bin");
      await download(store, objectKey, local);
      const bytes = readFileSync(local);
      bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
      await store.put(objectKey, Readable.from([bytes]));

      const outcome = await verifyBackup(store, layout, manifest, { identities });
      expect(outcome.ok).toBe(false);
      expect(outcome.problems[0]!.code).toBe("VERIFY_HASH_MISMATCH");
      expect(outcome.problems[0]!.message).toContain(object.key);
      expect(outcome.problems[0]!.message).toContain(object.sha256);

      const target = join(work, "never-created");
      await expect(runRestore({ job, store, layout, identities, selector: {}, target: { location: target, force: false } })).rejects.toMatchObject({
        code: "VERIFY_HASH_MISMATCH",
      });
      expect(existsSync(target)).toBe(false);
    });

    it("verifies an encrypted backup by size and SHA-256 alone when no identity is configured", async () => {
      const job = filesJob([tree], { name: "no-identity" });
      const { manifest } = await backup(job);
      expect(await verifyBackup(store, layout, manifest, { identities: [] })).toMatchObject({ ok: true, decrypted: false });
      const objectKey = layout.objectKey("no-identity", manifest.id, manifest.objects[0]!.key);
      await store.put(objectKey, Readable.from([Buffer.alloc(manifest.objects[0]!.sizeBytes, 7)]));
      const outcome = await verifyBackup(store, layout, manifest, { identities: [] });
      expect(outcome).toMatchObject({ ok: false, decrypted: false });
      expect(outcome.problems[0]!.code).toBe("VERIFY_HASH_MISMATCH");
    });

    it.each([
      ["deleted", "VERIFY_MISSING_OBJECT", "is missing from the store"],
      ["truncated", "VERIFY_SIZE_MISMATCH", "the manifest says"],
    ] as const)("detects a %s object before restoring anything", async (damage, code, words) => {
      const job = filesJob([tree], { name: `damaged-${damage}` });
      const { manifest } = await backup(job);
      const object = manifest.objects[0]!;
      const objectKey = layout.objectKey(job.name, manifest.id, object.key);
      if (damage === "deleted") await store.delete([objectKey]);
      else {
        const local = join(work, `${damage}.bin`);
        await download(store, objectKey, local);
        await store.put(objectKey, Readable.from([readFileSync(local).subarray(0, object.sizeBytes - 100)]));
      }
      const outcome = await verifyBackup(store, layout, manifest, { identities });
      expect(outcome.problems).toEqual([expect.objectContaining({ code, message: expect.stringContaining(words) })]);
      expect(outcome.problems[0]!.message).toContain(`object "${object.key}" of backup ${manifest.id}`);
      const target = join(work, `restore-${damage}`);
      await expect(runRestore({ job, store, layout, identities, selector: {}, target: { location: target, force: false } })).rejects.toMatchObject({ code });
      expect(existsSync(target)).toBe(false);
    });

    it("fails a restore whose command exits non-zero, naming the command", async () => {
      const job = commandJob(["echo", "data"], ["sh", "-c", "cat > /dev/null; echo 'import failed' >&2; exit 4"], { name: "failing-restore" });
      await backup(job);
      await expect(runRestore({ job, store, layout, identities, selector: {}, target: { location: undefined, force: false } })).rejects.toMatchObject({
        code: "TOOL_FAILED",
        message: expect.stringMatching(/sh failed with exit code 4 \(restoring job "failing-restore"\)[\s\S]*import failed/),
      });
    });

    it("refuses a wrong key before anything is downloaded or written", async () => {
      const job = filesJob([tree], { name: "wrong-key" });
      await backup(job, [otherKey.recipient]);
      const target = join(work, "wrong-key-target");
      await expect(runRestore({ job, store, layout, identities, selector: {}, target: { location: target, force: false } })).rejects.toMatchObject({
        code: "DECRYPT_WRONG_KEY",
      });
      await expect(runRestore({ job, store, layout, identities: [], selector: {}, target: { location: target, force: false } })).rejects.toMatchObject({
        code: "DECRYPT_NO_IDENTITY",
      });
      expect(existsSync(target)).toBe(false);
    });

    it("refuses a non-empty target unless forced, then replaces what is there", async () => {
      const job = filesJob([tree], { name: "force" });
      await backup(job);
      const target = join(work, "occupied");
      mkdirSync(join(target, "tree"), { recursive: true });
      writeFileSync(join(target, "keep-me.txt"), "precious");
      writeFileSync(join(target, "tree", "stale.txt"), "stale");
      await expect(runRestore({ job, store, layout, identities, selector: {}, target: { location: target, force: false } })).rejects.toMatchObject({
        code: "RESTORE_TARGET_NOT_EMPTY",
      });
      expect(readFileSync(join(target, "tree", "stale.txt"), "utf8")).toBe("stale");
      await runRestore({ job, store, layout, identities, selector: {}, target: { location: target, force: true } });
      expect(snapshot(join(target, "tree"))).toEqual(snapshot(tree));
      expect(readFileSync(join(target, "keep-me.txt"), "utf8")).toBe("precious");
    });

    it("rejects a tampered manifest before downloading anything", async () => {
      const job = filesJob([tree], { name: "tampered" });
      const { manifest } = await backup(job);
      const evil: Manifest = { ...manifest, objects: [{ ...manifest.objects[0]!, key: "../../other-job/secret" }] };
      await store.put(layout.manifestKey("tampered", manifest.id), Readable.from([Buffer.from(JSON.stringify(evil))]));
      const [entry] = await listBackups(store, layout, "tampered");
      expect(entry!.manifest).toBeUndefined();
      expect(entry!.problems.join(" ")).toMatch(/objects\.0\.key/);
      await expect(
        runRestore({ job, store, layout, identities, selector: { id: manifest.id }, target: { location: join(work, "t"), force: false } }),
      ).rejects.toMatchObject({ code: "MANIFEST_INVALID" });
    });

    it("picks the newest backup at or before --at", async () => {
      const job = commandJob(["echo", "one"], ["sh", "-c", 'cat > "$LIFEBOAT_RESTORE_TARGET"'], { name: "at" });
      const first = await runBackup({ job, store, layout, recipients: [key.recipient], now: () => new Date("2026-01-01T00:00:00Z") });
      await runBackup({ job: { ...job, source: { ...job.source, command: ["echo", "two"] } as BackupJob["source"] }, store, layout, recipients: [key.recipient] });
      const out = join(work, "at.txt");
      const result = await runRestore({ job, store, layout, identities, selector: { at: new Date("2026-06-01T00:00:00Z") }, target: { location: out, force: false } });
      expect(result.manifest.id).toBe(first.manifest.id);
      expect(readFileSync(out, "utf8")).toBe("one\n");
    });

    if (candidate.server && !candidate.strict) {
      it("catches a store that silently corrupts stream uploads (s3rver with aws-chunked bodies)", async () => {
        const job = filesJob([tree], { name: "s3rver-corrupts" });
        const { manifest } = await backup(job);
        const objectKey = layout.objectKey("s3rver-corrupts", manifest.id, manifest.objects[0]!.key);
        const local = join(work, "s3rver.bin");
        await download(store, objectKey, local);
        // Re-upload the same bytes the way a naive client would: a stream body with SDK default checksums.
        const client = rawS3Client(candidate.server!);
        await client.send(new PutObjectCommand({ Bucket: bucket!, Key: objectKey, Body: createReadStream(local), ContentLength: readFileSync(local).length }));
        const outcome = await verifyBackup(store, layout, manifest, { identities });
        expect(outcome.ok).toBe(false);
        expect(outcome.problems[0]!.code).toMatch(/VERIFY_(HASH|SIZE)_MISMATCH/);
      });
    }
  });
}
