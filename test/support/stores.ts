import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openFilesystemStore } from "../../src/storage/filesystem.js";
import { openS3Store } from "../../src/storage/s3.js";
import type { ObjectStore } from "../../src/storage/store.js";
import { createTestBucket, s3Servers, type S3ServerInfo } from "../setup/s3-servers.js";

/**
 * Every store the contract suites run against: the filesystem store, Ceph RGW
 * with both SDK checksum modes, and s3rver. Each `open()` returns a fresh,
 * empty store.
 */
export interface StoreUnderTest {
  name: string;
  /** Enforces SigV4, conditional writes and multipart abort (not s3rver). */
  strict: boolean;
  server: S3ServerInfo | undefined;
  open(options?: { partSizeMiB?: number }): Promise<{ store: ObjectStore; bucket: string | undefined; cleanup(): void }>;
}

export function storesUnderTest(): StoreUnderTest[] {
  const stores: StoreUnderTest[] = [
    {
      name: "filesystem",
      strict: true,
      server: undefined,
      async open() {
        const dir = mkdtempSync(join(tmpdir(), "lifeboat-fs-store-"));
        return { store: openFilesystemStore({ path: dir }), bucket: undefined, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
      },
    },
  ];
  for (const server of s3Servers()) {
    for (const checksum of ["when-required", "when-supported"] as const) {
      stores.push({
        name: `${server.name} (checksum ${checksum})`,
        strict: server.strict,
        server,
        async open(options = {}) {
          const bucket = await createTestBucket(server);
          const store = openS3Store({
            name: "test",
            endpoint: server.endpoint,
            region: server.region,
            bucket,
            forcePathStyle: true,
            credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
            checksum,
            partSizeMiB: options.partSizeMiB ?? 5,
            concurrency: 3,
            maxAttempts: 3,
          });
          return { store, bucket, cleanup: () => {} };
        },
      });
    }
  }
  return stores;
}
