import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";

/**
 * A pass-through that counts bytes and (unless told not to) hashes them with SHA-256 on the way.
 * `onProgress` is called with the running byte count (at most every 64 KiB chunk).
 */
export class HashTap extends Transform {
  private readonly hash: Hash | undefined;
  sizeBytes = 0;
  private digest: string | undefined;

  constructor(
    private readonly onProgress?: (sizeBytes: number) => void,
    options: { hash?: boolean } = {},
  ) {
    super({ highWaterMark: 1024 * 1024 });
    this.hash = options.hash === false ? undefined : createHash("sha256");
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash?.update(chunk);
    this.sizeBytes += chunk.length;
    this.onProgress?.(this.sizeBytes);
    callback(null, chunk);
  }

  /** The SHA-256 of everything that passed, in hex; only after the stream ended. */
  sha256(): string {
    if (!this.hash) throw new Error("this tap only counts bytes");
    this.digest ??= this.hash.digest("hex");
    return this.digest;
  }
}
