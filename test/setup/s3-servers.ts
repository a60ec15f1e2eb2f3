// Access to the S3-compatible servers started once per run by global-setup.ts.
//
//   for (const server of s3Servers()) { const bucket = await createTestBucket(server); ... }
//
// radosgw (Ceph) is strict: SigV4 verified, conditional writes, versioning,
// Object Lock. s3rver is lenient (accepts any credentials, ignores If-None-Match,
// no versioning/Object Lock): use it to prove that capability probing notices
// what a store lacks, never to prove a strict behaviour.
import { randomBytes } from "node:crypto";
import { CreateBucketCommand, S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { inject } from "vitest";

export interface S3ServerInfo {
  name: "radosgw" | "s3rver";
  /** e.g. http://127.0.0.1:40123 (path-style addressing only). */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** true when the server verifies signatures and honours S3 semantics strictly. */
  strict: boolean;
}

declare module "vitest" {
  export interface ProvidedContext {
    s3Servers: S3ServerInfo[];
  }
}

/** The servers provided by the global setup (radosgw first). */
export function s3Servers(): S3ServerInfo[] {
  const servers = inject("s3Servers");
  if (!servers || servers.length === 0) {
    throw new Error("no S3 servers were provided: is test/setup/global-setup.ts the vitest globalSetup?");
  }
  return servers;
}

/**
 * An S3Client talking straight to the server (path-style, explicit credentials
 * and region; nothing read from the environment or ~/.aws), for tests that
 * need to poke the store directly, e.g. tamper with an object.
 */
export function rawS3Client(server: S3ServerInfo, overrides: Partial<S3ClientConfig> = {}): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: {
      accessKeyId: server.accessKeyId,
      secretAccessKey: server.secretAccessKey,
    },
    ...overrides,
  });
}

/** A valid, unique bucket name: lowercase DNS label, 3-63 chars. */
export function uniqueBucketName(prefix = "lb-test"): string {
  let clean = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/-+/g, "-")
    .replace(/^-+|-+$/g, "");
  if (clean.length === 0) clean = "lb-test";
  const suffix = `${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
  clean = clean.slice(0, 63 - suffix.length - 1).replace(/-+$/g, "");
  const name = `${clean}-${suffix}`;
  return /^[a-z0-9]/.test(name) ? name : `b${name}`.slice(0, 63);
}

/**
 * Creates a uniquely named bucket on `server` and returns its name. `name` is
 * used as a prefix. With `objectLock`, the bucket is created with Object Lock
 * enabled (implies versioning; radosgw only).
 */
export async function createTestBucket(
  server: S3ServerInfo,
  name?: string,
  opts: { objectLock?: boolean } = {},
): Promise<string> {
  const bucket = uniqueBucketName(name);
  const client = rawS3Client(server);
  try {
    await client.send(
      new CreateBucketCommand({
        Bucket: bucket,
        ...(opts.objectLock ? { ObjectLockEnabledForBucket: true } : {}),
      }),
    );
  } finally {
    client.destroy();
  }
  return bucket;
}
