import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { ListMultipartUploadsCommand } from "@aws-sdk/client-s3";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { openS3Store } from "../src/storage/s3.js";
import type { ObjectStore } from "../src/storage/store.js";
import { createTestBucket, rawS3Client, s3Servers, type S3ServerInfo } from "./setup/s3-servers.js";
import { startFaultProxy, type Fault, type FaultProxy, type ProxiedRequest } from "./support/fault-proxy.js";

/**
 * Faults a real server does not produce on demand, injected by a proxy in
 * front of the real radosgw: the store must retry what is transient, fail
 * fast on what is not, and never report a broken upload as stored.
 */
const MiB = 1024 * 1024;
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

describe("the s3 store under injected faults (proxy in front of radosgw)", () => {
  let server: S3ServerInfo;
  let bucket: string;
  let proxy: FaultProxy | undefined;

  beforeAll(async () => {
    server = s3Servers().find((s) => s.name === "radosgw")!;
    bucket = await createTestBucket(server, "faults");
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  async function storeBehind(choose: (request: ProxiedRequest) => Fault, options: { stallTimeoutMs?: number; maxAttempts?: number } = {}): Promise<ObjectStore> {
    proxy = await startFaultProxy(server.endpoint, choose);
    return openS3Store({
      name: "faulty",
      endpoint: proxy.endpoint,
      region: server.region,
      bucket,
      forcePathStyle: true,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
      checksum: "when-required",
      partSizeMiB: 5,
      concurrency: 2,
      maxAttempts: options.maxAttempts ?? 4,
      stallTimeoutMs: options.stallTimeoutMs ?? 60_000,
    });
  }

  async function readAll(store: ObjectStore, key: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of await store.get(key)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async function openUploads(prefix: string): Promise<number> {
    const result = await rawS3Client(server).send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
    return (result.Uploads ?? []).length;
  }

  it("retries SlowDown and connection resets, and stores the object intact", async () => {
    const store = await storeBehind(({ method, url, index }) => {
      if (method === "PUT" && url.includes("partNumber=") && index < 2) return "slow-down";
      if (method === "PUT" && url.includes("partNumber=") && index === 2) return "reset";
      return "pass";
    });
    const data = randomBytes(17 * MiB);
    await store.put("faults/retried", Readable.from([data]));
    expect(proxy!.log.filter((r) => r.fault !== "pass").length).toBe(3);
    expect(sha256(await readAll(store, "faults/retried"))).toBe(sha256(data));
  });

  it("retries a request whose response never comes, once the stall timeout passes", async () => {
    const store = await storeBehind(({ method, url, index }) => (method === "PUT" && url.includes("partNumber=1&") && index === 0 ? "stall-response" : "pass"), {
      stallTimeoutMs: 1_500,
    });
    const data = randomBytes(11 * MiB);
    const started = Date.now();
    await store.put("faults/stalled-part", Readable.from([data]));
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(sha256(await readAll(store, "faults/stalled-part"))).toBe(sha256(data));
  });

  it("treats a 200 whose body is an S3 <Error> as a failure, aborts the upload and stores nothing", async () => {
    const store = await storeBehind(({ method, url }) => (method === "POST" && url.includes("uploadId=") ? "error-200" : "pass"), { maxAttempts: 2 });
    await expect(store.put("faults/error-200", Readable.from([randomBytes(11 * MiB)]))).rejects.toMatchObject({
      code: "STORAGE_ERROR",
      message: expect.stringContaining("InternalError"),
    });
    expect(await store.head("faults/error-200")).toBeUndefined();
    expect(await openUploads("faults/error-200")).toBe(0);
  });

  it("fails fast on 403 without retrying", async () => {
    const store = await storeBehind(({ method }) => (method === "PUT" ? "forbidden" : "pass"), { maxAttempts: 5 });
    await expect(store.put("faults/forbidden", Readable.from([Buffer.from("x")]))).rejects.toMatchObject({ code: "STORAGE_ACCESS_DENIED", kind: "usage" });
    expect(proxy!.log.filter((r) => r.method === "PUT")).toHaveLength(1);
  });

  it("notices a download that stalls after its headers instead of hanging", async () => {
    const seed = await storeBehind(() => "pass");
    await seed.put("faults/stall-download", Readable.from([randomBytes(3 * MiB)]));
    await proxy!.close();
    const store = await storeBehind(({ method }) => (method === "GET" ? "stall-body" : "pass"), { stallTimeoutMs: 1_500, maxAttempts: 2 });
    const started = Date.now();
    await expect(readAll(store, "faults/stall-download")).rejects.toMatchObject({ code: "STORAGE_STALLED", message: expect.stringContaining('reading "faults/stall-download"') });
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});
