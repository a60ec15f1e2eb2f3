import { randomBytes } from "node:crypto";
import { PassThrough, Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  type CompletedPart,
} from "@aws-sdk/client-s3";
import { LifeboatError } from "../model/errors.js";
import type { Logger } from "../log/logger.js";
import { silentLogger } from "../log/logger.js";
import { assertValidKey, assertValidPrefix, type ObjectInfo, type ObjectStore, type PutOptions, type StoreCapabilities } from "./store.js";

/**
 * Any S3-compatible endpoint (AWS S3, MinIO, Ceph RGW, Garage, R2…). The only
 * `@aws-sdk/*` import in Lifeboat.
 *
 * Uploads are multipart by hand: the stream is cut into parts held as Buffers
 * (never stream bodies, so no aws-chunked encoding, which several stores reject
 * or mangle), up to `concurrency` parts in flight, each retried by the SDK with
 * jittered back-off. A stream shorter than one part is a single PutObject.
 * Memory is bounded by (concurrency + 1) × partSize whatever the object size.
 * On failure or abort the multipart upload is aborted.
 */
export interface S3StoreOptions {
  /** Name of the storage entry, for messages. */
  name: string;
  endpoint?: string | undefined;
  region: string;
  bucket: string;
  forcePathStyle: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined } | undefined;
  /** SDK request checksums: "when-supported" (SDK default) or "when-required". */
  checksum: "when-required" | "when-supported";
  partSizeMiB: number;
  concurrency: number;
  maxAttempts: number;
  /** A socket with no progress for this long is destroyed and the request retried (default 60 s). */
  stallTimeoutMs?: number;
  log?: Logger;
}

export function openS3Store(options: S3StoreOptions): ObjectStore {
  return new S3Store(options);
}

const MAX_PARTS = 10_000;

class S3Store implements ObjectStore {
  readonly kind = "s3";
  readonly description: string;
  private readonly client: S3Client;
  private readonly partSizeBytes: number;
  private readonly log: Logger;

  constructor(private readonly options: S3StoreOptions) {
    this.description = `s3 storage "${options.name}" (bucket "${options.bucket}"${options.endpoint ? ` at ${stripUserInfo(options.endpoint)}` : ""})`;
    this.partSizeBytes = options.partSizeMiB * 1024 * 1024;
    this.log = (options.log ?? silentLogger).child({ storage: options.name });
    // The SDK warns on Node 20 that *future* SDK releases will need Node 22. Lifeboat pins its
    // SDK and supports Node >= 20.19, so the warning would only be noise on every command.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
    const checksum = options.checksum === "when-supported" ? "WHEN_SUPPORTED" : "WHEN_REQUIRED";
    this.client = new S3Client({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      forcePathStyle: options.forcePathStyle,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      maxAttempts: options.maxAttempts,
      retryMode: "standard",
      requestChecksumCalculation: checksum,
      responseChecksumValidation: checksum,
      // socketTimeout is the no-progress watchdog (it also covers a body that stops mid-way);
      // there is deliberately no total request timeout: parts and downloads may take long.
      requestHandler: { connectionTimeout: 10_000, socketTimeout: options.stallTimeoutMs ?? 60_000 },
    });
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<{ sizeBytes: number }> {
    assertValidKey(key);
    // The part being filled, the parts in flight, and one read ahead.
    const pool = new PartPool(this.partSizeBytes, this.options.concurrency + 2);
    const parts = cutIntoParts(body, pool);
    const first = await parts.next();
    const firstPart = first.done ? Buffer.alloc(0) : first.value.bytes;
    const second = first.done ? { done: true as const, value: undefined } : await parts.next();
    let sizeBytes: number;
    if (second.done) {
      await this.call(`writing "${key}"`, options.signal, (o) => this.client.send(new PutObjectCommand({
          Bucket: this.options.bucket,
          Key: key,
          Body: firstPart,
          ContentLength: firstPart.length,
          ContentType: options.contentType ?? "application/octet-stream",
        }), o));
      sizeBytes = firstPart.length;
    } else {
      sizeBytes = await this.putMultipart(key, first.value!, second.value, parts, pool, options);
    }
    const stored = await this.head(key);
    if (!stored || stored.sizeBytes !== sizeBytes) {
      throw new LifeboatError(
        "STORAGE_SIZE_MISMATCH",
        `the store holds ${stored ? `${stored.sizeBytes} bytes` : "nothing"} for "${key}" after ${sizeBytes} bytes were sent (${this.description})`,
        { kind: "verification" },
      );
    }
    return { sizeBytes };
  }

  private async putMultipart(
    key: string,
    firstPart: Part,
    secondPart: Part,
    rest: AsyncGenerator<Part>,
    pool: PartPool,
    options: PutOptions,
  ): Promise<number> {
    const created = await this.call(`starting upload of "${key}"`, options.signal, (o) => this.client.send(new CreateMultipartUploadCommand({
        Bucket: this.options.bucket,
        Key: key,
        ContentType: options.contentType ?? "application/octet-stream",
      }), o));
    const uploadId = created.UploadId;
    if (!uploadId) throw new LifeboatError("STORAGE_ERROR", `the store returned no upload id for "${key}" (${this.description})`);
    const completed: CompletedPart[] = [];
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    let sizeBytes = 0;
    let partNumber = 0;

    const upload = ({ buffer, bytes: part }: Part) => {
      const number = ++partNumber;
      if (number > MAX_PARTS) {
        throw new LifeboatError("STORAGE_TOO_LARGE", `"${key}" needs more than ${MAX_PARTS} parts; raise partSizeMiB in storage "${this.options.name}"`, {
          kind: "usage",
        });
      }
      sizeBytes += part.length;
      const command = new UploadPartCommand({
        Bucket: this.options.bucket,
        Key: key,
        UploadId: uploadId,
        PartNumber: number,
        Body: part,
        ContentLength: part.length,
      });
      const task = this.call(`uploading part ${number} of "${key}"`, options.signal, (o) => this.client.send(command, o)).then(
        (result) => {
          completed.push({ PartNumber: number, ETag: result.ETag });
          pool.release(buffer);
        },
        (error) => {
          failure ??= error;
        },
      );
      const tracked = task.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
    };

    try {
      upload(firstPart);
      upload(secondPart);
      for (;;) {
        while (inFlight.size >= this.options.concurrency && failure === undefined) await Promise.race(inFlight);
        if (failure !== undefined) throw failure;
        const next = await rest.next();
        if (next.done) break;
        upload(next.value);
      }
      await Promise.all(inFlight);
      if (failure !== undefined) throw failure;
      completed.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
      await this.call(`completing upload of "${key}"`, options.signal, (o) => this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.options.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: completed } }), o));
      return sizeBytes;
    } catch (error) {
      await Promise.allSettled(inFlight);
      await this.abortUpload(key, uploadId);
      throw error;
    }
  }

  private async abortUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.options.bucket, Key: key, UploadId: uploadId }));
      this.log.info({ key }, "multipart upload aborted");
    } catch (error) {
      this.log.warn({ key, err: describe(error) }, "multipart upload could not be aborted; prune will clean it up");
    }
  }

  async get(key: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    assertValidKey(key);
    const result = await this.call(`reading "${key}"`, options.signal, (o) => this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: key }), o));
    const body = result.Body;
    if (!(body instanceof Readable)) throw new LifeboatError("STORAGE_ERROR", `the store returned no body for "${key}" (${this.description})`);
    // Errors while the body streams (a stall, a reset) reach the reader as LifeboatErrors too.
    const out = new PassThrough({ highWaterMark: 1024 * 1024 });
    body.on("error", (error) => out.destroy(this.error(error, `reading "${key}"`)));
    out.on("close", () => body.destroy());
    body.pipe(out);
    return out;
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    assertValidKey(key);
    try {
      const result = await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: key }));
      return { key, sizeBytes: result.ContentLength ?? 0, lastModified: result.LastModified };
    } catch (error) {
      const status = (error as S3ServiceException).$metadata?.httpStatusCode;
      if (status === 404) return undefined;
      throw this.error(error, `reading "${key}"`);
    }
  }

  async *list(prefix: string, options: { signal?: AbortSignal } = {}): AsyncIterable<ObjectInfo> {
    assertValidPrefix(prefix);
    let token: string | undefined;
    do {
      const page = await this.call(`listing "${prefix}"`, options.signal, (o) => this.client.send(new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: prefix, ContinuationToken: token }), o));
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue;
        yield { key: object.Key, sizeBytes: object.Size ?? 0, lastModified: object.LastModified };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      batch.forEach(assertValidKey);
      const result = await this.call(`deleting ${batch.length} objects`, undefined, (o) => this.client.send(new DeleteObjectsCommand({
          Bucket: this.options.bucket,
          Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }), o));
      const failed = (result.Errors ?? []).filter((e) => e.Code !== "NoSuchKey");
      if (failed.length > 0) {
        const first = failed[0]!;
        throw new LifeboatError(
          first.Code === "AccessDenied" ? "STORAGE_ACCESS_DENIED" : "STORAGE_ERROR",
          `could not delete ${failed.length} objects, e.g. "${first.Key}": ${first.Code} ${first.Message ?? ""} (${this.description})`.trim(),
          { kind: first.Code === "AccessDenied" ? "usage" : "run", details: { failed: failed.map((e) => ({ key: e.Key, code: e.Code })) } },
        );
      }
    }
  }

  async probe(probePrefix: string): Promise<StoreCapabilities> {
    assertValidPrefix(probePrefix);
    const key = `${probePrefix}${Date.now()}-${randomBytes(4).toString("hex")}`;
    const body = Buffer.from("lifeboat capability probe\n");
    let conditionalWrites = false;
    let multipartAbort = false;
    try {
      await this.call("probing conditional writes", undefined, (o) => this.client.send(new PutObjectCommand({ Bucket: this.options.bucket, Key: key, Body: body, IfNoneMatch: "*" }), o));
      try {
        await this.client.send(new PutObjectCommand({ Bucket: this.options.bucket, Key: key, Body: body, IfNoneMatch: "*" }));
      } catch (error) {
        const status = (error as S3ServiceException).$metadata?.httpStatusCode;
        if (status === 412 || status === 409) conditionalWrites = true;
        else throw this.error(error, "probing conditional writes");
      }
      try {
        const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.options.bucket, Key: `${key}-mpu` }));
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.options.bucket, Key: `${key}-mpu`, UploadId: created.UploadId }));
        multipartAbort = true;
      } catch (error) {
        const status = (error as S3ServiceException).$metadata?.httpStatusCode;
        if (status !== 501 && status !== 405 && status !== 400 && status !== 404) throw this.error(error, "probing multipart abort");
      }
    } finally {
      await this.delete([key]).catch(() => {});
    }
    return { conditionalWrites, multipartAbort };
  }

  /** Runs one SDK call, turning SDK errors into LifeboatErrors that say what was being done. */
  private async call<T>(doing: string, signal: AbortSignal | undefined, run: (options: { abortSignal?: AbortSignal }) => Promise<T>): Promise<T> {
    try {
      return await run(signal ? { abortSignal: signal } : {});
    } catch (error) {
      if (signal?.aborted) throw new LifeboatError("INTERRUPTED", `interrupted while ${doing} (${this.description})`, { kind: "interrupted", cause: error });
      throw this.error(error, doing);
    }
  }

  private error(error: unknown, doing: string): LifeboatError {
    if (error instanceof LifeboatError) return error;
    const where = `(${this.description})`;
    const status = (error as S3ServiceException).$metadata?.httpStatusCode;
    const name = (error as Error).name;
    const text = describe(error);
    if (status === 404 || name === "NoSuchKey" || name === "NotFound") {
      if (name === "NoSuchBucket") {
        return new LifeboatError("STORAGE_NO_BUCKET", `bucket "${this.options.bucket}" does not exist ${where}`, {
          kind: "usage",
          hint: "create the bucket or fix storage.bucket",
          cause: error,
        });
      }
      return new LifeboatError("STORAGE_NOT_FOUND", `object not found while ${doing} ${where}`, { kind: "verification", cause: error });
    }
    if (status === 403 || name === "AccessDenied" || name === "SignatureDoesNotMatch" || name === "InvalidAccessKeyId") {
      return new LifeboatError("STORAGE_ACCESS_DENIED", `access denied while ${doing}: ${name} ${where}`, {
        kind: "usage",
        hint: "check the storage credentials and the bucket policy",
        cause: error,
      });
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (name === "TimeoutError" && /inactivity/.test(text)) {
      return new LifeboatError("STORAGE_STALLED", `the connection made no progress while ${doing} ${where}`, {
        kind: "run",
        hint: "check the network and the store, or raise stallTimeout for a slow link",
        cause: error,
      });
    }
    if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "ECONNRESET" || code === "ETIMEDOUT" || name === "TimeoutError") {
      return new LifeboatError("STORAGE_UNREACHABLE", `cannot reach the store while ${doing}: ${code ?? name} ${where}`, {
        kind: "run",
        hint: "check storage.endpoint and the network",
        cause: error,
      });
    }
    return new LifeboatError("STORAGE_ERROR", `storage error while ${doing}: ${text} ${where}`, { kind: "run", cause: error });
  }
}

/** A part read from the stream: `bytes` is a view into a pooled `buffer`. */
export interface Part {
  buffer: Buffer;
  bytes: Buffer;
}

/**
 * A fixed set of part-sized buffers, reused for the whole upload: memory stays
 * at `count × partSize` whatever the object size, and the garbage collector has
 * nothing to chase. `acquire` waits while every buffer is in use.
 */
export class PartPool {
  private readonly free: Buffer[] = [];
  private readonly waiting: Array<(buffer: Buffer) => void> = [];
  private created = 0;

  constructor(
    readonly partSize: number,
    private readonly count: number,
  ) {}

  async acquire(): Promise<Buffer> {
    const reused = this.free.pop();
    if (reused) return reused;
    if (this.created < this.count) {
      this.created++;
      return Buffer.allocUnsafeSlow(this.partSize);
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(buffer: Buffer): void {
    const next = this.waiting.shift();
    if (next) next(buffer);
    else this.free.push(buffer);
  }
}

/**
 * Cuts a stream into parts of exactly `pool.partSize` bytes (the last one may
 * be shorter), copying each input chunk once into a pooled buffer. The
 * consumer releases each part's buffer when it is done with it.
 */
export async function* cutIntoParts(body: Readable, pool: PartPool): AsyncGenerator<Part> {
  let buffer = await pool.acquire();
  let filled = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    let offset = 0;
    while (offset < chunk.length) {
      const n = Math.min(pool.partSize - filled, chunk.length - offset);
      chunk.copy(buffer, filled, offset, offset + n);
      filled += n;
      offset += n;
      if (filled === pool.partSize) {
        yield { buffer, bytes: buffer };
        buffer = await pool.acquire();
        filled = 0;
      }
    }
  }
  if (filled > 0) yield { buffer, bytes: buffer.subarray(0, filled) };
  else pool.release(buffer);
}

function describe(error: unknown): string {
  const e = error as { name?: string; message?: string; Code?: string };
  return [e.name, e.message].filter(Boolean).join(": ").slice(0, 300);
}

function stripUserInfo(url: string): string {
  return url.replace(/\/\/[^/@]*@/, "//");
}
