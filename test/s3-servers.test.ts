// Proves the S3 test servers from test/setup/global-setup.ts are up and behave
// as the suites expect.
import { GetObjectCommand, PutObjectCommand, S3ServiceException } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { createTestBucket, rawS3Client, s3Servers, type S3ServerInfo } from "./setup/s3-servers.js";

const servers = s3Servers();

describe("S3 test servers", () => {
  it("provides radosgw (strict) and s3rver (lenient)", () => {
    expect(servers.map((s) => [s.name, s.strict])).toEqual([
      ["radosgw", true],
      ["s3rver", false],
    ]);
  });

  describe.each(servers.map((s) => [s.name, s] as [string, S3ServerInfo]))("%s", (_name, server) => {
    it("round-trips an object", async () => {
      const bucket = await createTestBucket(server, "roundtrip");
      const client = rawS3Client(server);
      try {
        const body = Buffer.from(`hello from ${server.name} ${Date.now()}\n`.repeat(100));
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: "dir/obj.bin", Body: body }));
        const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "dir/obj.bin" }));
        const bytes = Buffer.from(await got.Body!.transformToByteArray());
        expect(bytes.equals(body)).toBe(true);
      } finally {
        client.destroy();
      }
    });
  });
});

describe("radosgw strictness", () => {
  const server = servers.find((s) => s.name === "radosgw")!;

  it("rejects a wrong secret", async () => {
    const client = rawS3Client({ ...server, secretAccessKey: `${server.secretAccessKey}x` });
    try {
      const err = await client
        .send(new PutObjectCommand({ Bucket: "lb-no-such-bucket-sig", Key: "k", Body: Buffer.from("x") }))
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(S3ServiceException);
      const e = err as S3ServiceException;
      expect(e.$metadata.httpStatusCode).toBe(403);
      expect(e.name).toBe("SignatureDoesNotMatch");
    } finally {
      client.destroy();
    }
  });

  it("answers If-None-Match: * on an existing key with 412", async () => {
    const bucket = await createTestBucket(server, "conditional");
    const client = rawS3Client(server);
    try {
      await client.send(
        new PutObjectCommand({ Bucket: bucket, Key: "once", Body: Buffer.from("first"), IfNoneMatch: "*" }),
      );
      const err = await client
        .send(new PutObjectCommand({ Bucket: bucket, Key: "once", Body: Buffer.from("second"), IfNoneMatch: "*" }))
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(S3ServiceException);
      expect((err as S3ServiceException).$metadata.httpStatusCode).toBe(412);
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "once" }));
      expect(await got.Body!.transformToString()).toBe("first");
    } finally {
      client.destroy();
    }
  });
});
