import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";

/**
 * A pass-through that counts bytes and (unless told not to) hashes them with SHA-256 on the way.
 * `onProgress` is called with the running byte count (at most every 64 KiB chunk).
 *
 * With `expect`, the tap fails the stream instead of ending it when the bytes
 * are not the expected ones (too many, too few, another hash): everything
 * downstream then sees an error, never a clean end, so a consumer that acts
 * on end-of-stream (a restore tool committing its transaction) never does.
 */
export interface ExpectedBytes {
  sizeBytes: number;
  sha256: string;
  /** The error to fail with, given what was actually read. */
  mismatch(actual: { sizeBytes: number; sha256: string | undefined }): Error;
}

export class HashTap extends Transform {
  private readonly hash: Hash | undefined;
  sizeBytes = 0;
  private digest: string | undefined;

  constructor(
    private readonly onProgress?: (sizeBytes: number) => void,
    private readonly options: { hash?: boolean; expect?: ExpectedBytes | undefined } = {},
  ) {
    super({ highWaterMark: 1024 * 1024 });
    this.hash = options.hash === false && !options.expect ? undefined : createHash("sha256");
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash?.update(chunk);
    this.sizeBytes += chunk.length;
    this.onProgress?.(this.sizeBytes);
    const expect = this.options.expect;
    if (expect && this.sizeBytes > expect.sizeBytes) return callback(expect.mismatch({ sizeBytes: this.sizeBytes, sha256: undefined }));
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const expect = this.options.expect;
    if (expect && (this.sizeBytes !== expect.sizeBytes || this.sha256() !== expect.sha256)) {
      return callback(expect.mismatch({ sizeBytes: this.sizeBytes, sha256: this.sha256() }));
    }
    callback();
  }

  /** The SHA-256 of everything that passed, in hex; only after the stream ended. */
  sha256(): string {
    if (!this.hash) throw new Error("this tap only counts bytes");
    this.digest ??= this.hash.digest("hex");
    return this.digest;
  }
}
