import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { openFilesystemStore } from "../src/storage/filesystem.js";
import type { ObjectStore } from "../src/storage/store.js";
import { rawS3Client } from "./setup/s3-servers.js";
import { storesUnderTest } from "./support/stores.js";

const MiB = 1024 * 1024;

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** A stream that delivers `data` in uneven chunks, like a pipe would. */
function streamOf(data: Buffer): Readable {
  const chunks: Buffer[] = [];
  for (let offset = 0, i = 0; offset < data.length; i++) {
    const size = [1, 7_000, 65_536, 300_001][i % 4]!;
    chunks.push(data.subarray(offset, offset + size));
    offset += size;
  }
  return Readable.from(chunks);
}

/** A stream that delivers `bytesBefore` bytes, then fails. */
function failingStream(bytesBefore: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytesBefore) {
        this.destroy(new Error("source broke mid-stream"));
        return;
      }
      const chunk = randomBytes(Math.min(MiB, bytesBefore - sent));
      sent += chunk.length;
      this.push(chunk);
    },
  });
}

async function readAll(store: ObjectStore, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.get(key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function keys(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

for (const candidate of storesUnderTest()) {
  describe(`storage contract: ${candidate.name}`, () => {
    let store: ObjectStore;
    let bucket: string | undefined;
    let cleanup: () => void;

    beforeAll(async () => {
      ({ store, bucket, cleanup } = await candidate.open({ partSizeMiB: 5 }));
    });
    afterAll(() => cleanup());

    it.each([
      ["an empty object", 0],
      ["a 1-byte object", 1],
      ["exactly one part", 5 * MiB],
      ["one part and a byte", 5 * MiB + 1],
      ["many parts", 17 * MiB + 12_345],
    ])("stores and returns %s byte for byte", async (_label, size) => {
      const data = randomBytes(size);
      const key = `roundtrip/${size}.bin`;
      const { sizeBytes } = await store.put(key, streamOf(data));
      expect(sizeBytes).toBe(size);
      expect((await store.head(key))?.sizeBytes).toBe(size);
      const back = await readAll(store, key);
      expect(back.length).toBe(size);
      expect(sha256(back)).toBe(sha256(data));
    });

    it("replaces an existing object on put", async () => {
      await store.put("replace/a", Readable.from([Buffer.from("first version")]));
      await store.put("replace/a", Readable.from([Buffer.from("second")]));
      expect((await readAll(store, "replace/a")).toString()).toBe("second");
    });

    it("reports a missing object as undefined on head and STORAGE_NOT_FOUND on get", async () => {
      expect(await store.head("missing/nothing-here")).toBeUndefined();
      await expect(
        store.get("missing/nothing-here").then(async (s) => {
          for await (const _ of s);
        }),
      ).rejects.toMatchObject({ code: "STORAGE_NOT_FOUND" });
    });

    it("lists keys under a prefix in ascending order, and only those", async () => {
      for (const k of ["list/b/2", "list/a/1", "list/a/0", "list/c", "listing/other", "lis"]) {
        await store.put(k, Readable.from([Buffer.from(k)]));
      }
      expect(await keys(store, "list/")).toEqual(["list/a/0", "list/a/1", "list/b/2", "list/c"]);
      expect(await keys(store, "list/a/")).toEqual(["list/a/0", "list/a/1"]);
      expect(await keys(store, "nothing/")).toEqual([]);
      const objects: number[] = [];
      for await (const o of store.list("list/c")) objects.push(o.sizeBytes);
      expect(objects).toEqual([6]);
    });

    it("lists more than one page of keys (over 1,000)", async () => {
      const names = Array.from({ length: 1_003 }, (_, i) => `many/${String(i).padStart(5, "0")}`);
      for (let i = 0; i < names.length; i += 50) {
        await Promise.all(names.slice(i, i + 50).map((k) => store.put(k, Readable.from([Buffer.from("x")]))));
      }
      expect(await keys(store, "many/")).toEqual(names);
    }, 180_000);

    it("deletes keys, and deleting a missing key is not an error", async () => {
      await store.put("delete/a", Readable.from([Buffer.from("a")]));
      await store.put("delete/b", Readable.from([Buffer.from("b")]));
      await store.delete(["delete/a", "delete/b", "delete/never-existed"]);
      expect(await keys(store, "delete/")).toEqual([]);
      await store.delete(["delete/a"]);
    });

    it("leaves nothing visible when the source stream fails mid-upload", async () => {
      await expect(store.put("broken/object", failingStream(12 * MiB))).rejects.toThrow();
      expect(await store.head("broken/object")).toBeUndefined();
      expect(await keys(store, "broken/")).toEqual([]);
      if (candidate.server && candidate.strict) {
        const uploads = await rawS3Client(candidate.server).send(new ListMultipartUploadsCommand({ Bucket: bucket!, Prefix: "broken/" }));
        expect(uploads.Uploads ?? []).toEqual([]);
      }
    });

    it("leaves nothing visible when the upload is aborted", async () => {
      const controller = new AbortController();
      const slow = new Readable({
        read() {
          this.push(randomBytes(MiB));
        },
      });
      setTimeout(() => controller.abort(), 300);
      await expect(store.put("aborted/object", slow, { signal: controller.signal })).rejects.toThrow();
      slow.destroy();
      expect(await store.head("aborted/object")).toBeUndefined();
      if (candidate.server && candidate.strict) {
        const uploads = await rawS3Client(candidate.server).send(new ListMultipartUploadsCommand({ Bucket: bucket!, Prefix: "aborted/" }));
        expect(uploads.Uploads ?? []).toEqual([]);
      }
    });

    it.each([["../escape"], ["/absolute"], ["a/../b"], ["a//b"], [""], ["a/./b"]])("refuses the key %j", async (key) => {
      await expect(store.put(key, Readable.from([Buffer.from("x")]))).rejects.toMatchObject({ code: "STORAGE_INVALID_KEY" });
    });

    // Conditional writes are a strict store's promise. A lenient store (s3rver) does not keep it,
    // and the probe must say so: that is what the daemon's multi-instance check relies on.
    const strictly = (name: string, test: () => Promise<void>) => {
      if (candidate.strict) it(name, test);
    };
    if (!candidate.strict) {
      it("ignores conditional writes, and its probe reports that it does", async () => {
        await store.putConditional("cond/lenient", Buffer.from("one"), { ifNoneMatch: "*" });
        await store.putConditional("cond/lenient", Buffer.from("two"), { ifNoneMatch: "*" });
        expect((await readAll(store, "cond/lenient")).toString()).toBe("two");
        expect((await store.probe("probe/")).conditionalWrites).toBe(false);
      });
    }

    strictly("creates an object only if absent: the second create is refused", async () => {
      const first = await store.putConditional("cond/create", Buffer.from("one"), { ifNoneMatch: "*" });
      expect(first.etag).toMatch(/\S/);
      await expect(store.putConditional("cond/create", Buffer.from("two"), { ifNoneMatch: "*" })).rejects.toMatchObject({
        code: "STORAGE_PRECONDITION_FAILED",
        kind: "run",
      });
      expect((await readAll(store, "cond/create")).toString()).toBe("one");
    });

    strictly("replaces an object only while its etag is current", async () => {
      const created = await store.putConditional("cond/swap", Buffer.from("v1"), { ifNoneMatch: "*" });
      const swapped = await store.putConditional("cond/swap", Buffer.from("v2"), { ifMatch: created.etag });
      expect(swapped.etag).not.toBe(created.etag);
      expect((await store.getSmall("cond/swap", 1024))?.etag).toBe(swapped.etag);
      await expect(store.putConditional("cond/swap", Buffer.from("v3"), { ifMatch: created.etag })).rejects.toMatchObject({
        code: "STORAGE_PRECONDITION_FAILED",
      });
      expect((await readAll(store, "cond/swap")).toString()).toBe("v2");
    });

    strictly("refuses to replace a missing object with ifMatch", async () => {
      const { etag } = await store.putConditional("cond/gone", Buffer.from("x"), { ifNoneMatch: "*" });
      await store.delete(["cond/gone"]);
      await expect(store.putConditional("cond/gone", Buffer.from("y"), { ifMatch: etag })).rejects.toMatchObject({ code: "STORAGE_PRECONDITION_FAILED" });
    });

    strictly("lets exactly one of several concurrent creates win", async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => store.putConditional("cond/race", Buffer.from(`writer ${i}`), { ifNoneMatch: "*" })),
      );
      const won = results.filter((r) => r.status === "fulfilled");
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      expect(won).toHaveLength(1);
      for (const r of lost) expect(r.reason).toMatchObject({ code: "STORAGE_PRECONDITION_FAILED" });
      const stored = await store.getSmall("cond/race", 1024);
      expect(stored?.etag).toBe((won[0] as PromiseFulfilledResult<{ etag: string }>).value.etag);
    });

    strictly("lets exactly one of several concurrent swaps from the same etag win", async () => {
      const { etag } = await store.putConditional("cond/cas", Buffer.from("start"), { ifNoneMatch: "*" });
      const results = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) => store.putConditional("cond/cas", Buffer.from(`swap ${i}`), { ifMatch: etag })),
      );
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      expect((await readAll(store, "cond/cas")).toString()).toMatch(/^swap \d$/);
    });

    it("returns a small object with its etag, and undefined when it is missing", async () => {
      const data = randomBytes(3_000);
      const { etag } = await store.putConditional("small/one", data, { ifNoneMatch: "*" });
      const back = await store.getSmall("small/one", 3_000);
      expect(back && sha256(back.bytes)).toBe(sha256(data));
      expect(back?.etag).toBe(etag);
      expect(await store.getSmall("small/missing", 1024)).toBeUndefined();
      await expect(store.getSmall("small/one", 2_999)).rejects.toMatchObject({ code: "STORAGE_TOO_LARGE", kind: "verification" });
      expect(await keys(store, "small/")).toEqual(["small/one"]);
    });

    if (candidate.server?.strict) {
      it("lists an unfinished multipart upload and aborts it", async () => {
        const client = rawS3Client(candidate.server!);
        const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket!, Key: "pending/half.bin" }));
        client.destroy();
        const pending = [];
        for await (const u of store.listPendingUploads("pending/")) pending.push(u);
        expect(pending).toEqual([{ key: "pending/half.bin", uploadId: created.UploadId, startedAt: expect.any(Date) }]);
        expect(Math.abs(pending[0]!.startedAt!.getTime() - Date.now())).toBeLessThan(5 * 60_000);
        await store.abortPendingUpload(pending[0]!);
        await store.abortPendingUpload(pending[0]!);
        const after = [];
        for await (const u of store.listPendingUploads("pending/")) after.push(u);
        expect(after).toEqual([]);
      });
    }

    if (candidate.name === "filesystem") {
      it("lists a leftover temp file as an unfinished upload and aborts it", async () => {
        // The temp file is planted by hand, so this test opens a store on a folder it knows.
        const root = mkdtempSync(join(tmpdir(), "lifeboat-fs-pending-"));
        onTestFinished(() => rmSync(root, { recursive: true, force: true }));
        const store = openFilesystemStore({ path: root });
        await store.put("pending/kept.bin", Readable.from([Buffer.from("complete")]));
        writeFileSync(join(root, "pending", ".lifeboat-tmp-0123456789ab-half.bin"), "half");
        const pending = [];
        for await (const u of store.listPendingUploads("pending/")) pending.push(u);
        expect(pending).toEqual([{ key: "pending/half.bin", uploadId: ".lifeboat-tmp-0123456789ab-half.bin", startedAt: expect.any(Date) }]);
        expect(await keys(store, "pending/")).toEqual(["pending/kept.bin"]);
        await store.abortPendingUpload(pending[0]!);
        await store.abortPendingUpload(pending[0]!);
        const after = [];
        for await (const u of store.listPendingUploads("")) after.push(u);
        expect(after).toEqual([]);
        expect(await keys(store, "pending/")).toEqual(["pending/kept.bin"]);
      });
    }

    if (!candidate.strict) {
      it("accepts a second create-if-absent silently, which is why probe must say conditionalWrites: false", async () => {
        await store.putConditional("cond/lenient", Buffer.from("one"), { ifNoneMatch: "*" });
        await store.putConditional("cond/lenient", Buffer.from("two"), { ifNoneMatch: "*" });
        expect((await store.probe(".lifeboat/probe/")).conditionalWrites).toBe(false);
      });

      it("yields no unfinished uploads where the store cannot list them", async () => {
        const pending = [];
        for await (const u of store.listPendingUploads("")) pending.push(u);
        expect(pending).toEqual([]);
      });
    }

    it("has no Object Lock to prove without one configured", async () => {
      const proof = await store.proveImmutability(".lifeboat/immutability/");
      expect(proof.held).toBe(false);
      expect(proof.reason).toMatch(/object lock|objectLock/i);
      expect(await keys(store, ".lifeboat/immutability/")).toEqual([]);
    });

    it("probes what it enforces", async () => {
      const capabilities = await store.probe(".lifeboat/probe/");
      if (candidate.strict) {
        expect(capabilities).toEqual({ conditionalWrites: true, multipartAbort: true });
      } else {
        // s3rver ignores If-None-Match and cannot abort multipart uploads: the probe must notice.
        expect(capabilities).toEqual({ conditionalWrites: false, multipartAbort: false });
      }
      expect(await keys(store, ".lifeboat/probe/")).toEqual([]);
    });
  });
}
