import { createHash, randomBytes } from "node:crypto";
import { PassThrough, Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutObjectCommand,
  PutObjectRetentionCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  type CompletedPart,
} from "@aws-sdk/client-s3";
import { LifeboatError } from "../model/errors.js";
import type { Logger } from "../log/logger.js";
import { silentLogger } from "../log/logger.js";
import {
  assertValidKey,
  assertValidPrefix,
  type ImmutabilityProof,
  type ObjectInfo,
  type ObjectLockSettings,
  type ObjectStore,
  type PendingUpload,
  type PutOptions,
  type StoreCapabilities,
  type WriteCondition,
} from "./store.js";

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
 *
 * With `objectLock`, puts asked to be `immutable` carry an Object Lock mode and
 * a retention date of now + `retainMs` (the bucket must have Object Lock
 * enabled). Locked single-part puts and parts always send Content-MD5, which
 * S3 requires for lock parameters whatever the SDK checksum mode. Every locked
 * put is checked for its retention date; where a store dropped the lock headers
 * of a multipart upload (radosgw does), the completed version is locked with
 * PutObjectRetention, and a store that still shows no date fails the put with
 * STORAGE_NO_OBJECT_LOCK.
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
  /** Lock backup objects (`PutOptions.immutable`) with S3 Object Lock. */
  objectLock?: ObjectLockSettings | undefined;
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
    const lock = options.immutable ? this.lockParameters() : undefined;
    let versionId: string | undefined;
    if (second.done) {
      await this.lockedCall(lock, `writing "${key}"`, options.signal, (o) => this.client.send(new PutObjectCommand({
          Bucket: this.options.bucket,
          Key: key,
          Body: firstPart,
          ContentLength: firstPart.length,
          ContentType: options.contentType ?? "application/octet-stream",
          ...(lock ? { ...lock, ContentMD5: md5Base64(firstPart) } : {}),
        }), o));
      sizeBytes = firstPart.length;
    } else {
      ({ sizeBytes, versionId } = await this.putMultipart(key, first.value!, second.value, parts, pool, options, lock));
    }
    let stored = await this.head(key);
    if (lock && stored && !stored.retainUntil && versionId) {
      // radosgw ignores lock headers on CreateMultipartUpload: lock the completed version.
      await this.lockedCall(lock, `locking "${key}"`, options.signal, (o) => this.client.send(new PutObjectRetentionCommand({
          Bucket: this.options.bucket,
          Key: key,
          VersionId: versionId,
          Retention: { Mode: lock.ObjectLockMode, RetainUntilDate: lock.ObjectLockRetainUntilDate },
        }), o));
      stored = await this.head(key);
    }
    if (lock && stored && !stored.retainUntil) throw this.noObjectLock(`writing "${key}"`, undefined);
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
    lock: LockParameters | undefined,
  ): Promise<{ sizeBytes: number; versionId: string | undefined }> {
    const created = await this.lockedCall(lock, `starting upload of "${key}"`, options.signal, (o) => this.client.send(new CreateMultipartUploadCommand({
        Bucket: this.options.bucket,
        Key: key,
        ContentType: options.contentType ?? "application/octet-stream",
        ...lock,
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
        ...(lock ? { ContentMD5: md5Base64(part) } : {}),
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
      const done = await this.call(`completing upload of "${key}"`, options.signal, (o) => this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.options.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: completed } }), o));
      return { sizeBytes, versionId: done.VersionId };
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
      return { key, sizeBytes: result.ContentLength ?? 0, lastModified: result.LastModified, retainUntil: result.ObjectLockRetainUntilDate };
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
    keys.forEach(assertValidKey);
    // With Object Lock the bucket is versioned: a plain delete only adds a delete marker and
    // frees nothing, so every version (and marker) of each key is deleted by its version id.
    // A version still under its retention date is refused (AccessDenied) and stays.
    const objects: Array<{ Key: string; VersionId?: string }> = this.options.objectLock
      ? (await Promise.all(keys.map((key) => this.versionsOf(key)))).flat()
      : keys.map((Key) => ({ Key }));
    for (let i = 0; i < objects.length; i += 1000) {
      const batch = objects.slice(i, i + 1000);
      const result = await this.call(`deleting ${batch.length} objects`, undefined, (o) => this.client.send(new DeleteObjectsCommand({
          Bucket: this.options.bucket,
          Delete: { Objects: batch, Quiet: true },
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

  /** Every version and delete marker of exactly `key`. */
  private async versionsOf(key: string): Promise<Array<{ Key: string; VersionId: string }>> {
    const found: Array<{ Key: string; VersionId: string }> = [];
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    for (;;) {
      const page = await this.call(`listing the versions of "${key}"`, undefined, (o) => this.client.send(new ListObjectVersionsCommand({ Bucket: this.options.bucket, Prefix: key, KeyMarker: keyMarker, VersionIdMarker: versionMarker }), o));
      for (const v of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) if (v.Key === key && v.VersionId) found.push({ Key: key, VersionId: v.VersionId });
      if (!page.IsTruncated) return found;
      keyMarker = page.NextKeyMarker;
      versionMarker = page.NextVersionIdMarker;
    }
  }

  async putConditional(key: string, body: Buffer, condition: WriteCondition): Promise<{ etag: string }> {
    assertValidKey(key);
    const doing = "ifNoneMatch" in condition ? `creating "${key}" if absent` : `replacing "${key}" if unchanged`;
    let etag: string | undefined;
    try {
      const result = await this.client.send(new PutObjectCommand({
        Bucket: this.options.bucket,
        Key: key,
        Body: body,
        ContentLength: body.length,
        ContentType: "application/octet-stream",
        // radosgw compares If-Match on PUT byte for byte with its unquoted stored etag, so a
        // quoted etag never matches there; AWS S3 and MinIO accept it unquoted too.
        ...("ifNoneMatch" in condition ? { IfNoneMatch: condition.ifNoneMatch } : { IfMatch: unquote(condition.ifMatch) }),
      }));
      etag = result.ETag;
    } catch (error) {
      const status = (error as S3ServiceException).$metadata?.httpStatusCode;
      const name = (error as Error).name;
      // 409 ConditionalRequestConflict: another conditional write to the key raced this one.
      if (status === 412 || status === 409 || name === "PreconditionFailed" || name === "ConditionalRequestConflict") {
        throw new LifeboatError("STORAGE_PRECONDITION_FAILED", `the condition did not hold while ${doing}: ${name} (${this.description})`, {
          kind: "run",
          cause: error,
          details: { key, condition },
        });
      }
      throw this.error(error, doing);
    }
    if (etag === undefined) {
      const head = await this.call(`reading the etag of "${key}"`, undefined, (o) => this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: key }), o));
      etag = head.ETag;
    }
    if (etag === undefined) throw new LifeboatError("STORAGE_ERROR", `the store returned no etag for "${key}" (${this.description})`);
    return { etag };
  }

  async getSmall(key: string, maxBytes: number): Promise<{ bytes: Buffer; etag: string } | undefined> {
    assertValidKey(key);
    let result;
    try {
      result = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: key }));
    } catch (error) {
      const status = (error as S3ServiceException).$metadata?.httpStatusCode;
      if (status === 404 && (error as Error).name !== "NoSuchBucket") return undefined;
      throw this.error(error, `reading "${key}"`);
    }
    const body = result.Body;
    if (!(body instanceof Readable)) throw new LifeboatError("STORAGE_ERROR", `the store returned no body for "${key}" (${this.description})`);
    const tooLarge = (sizeBytes: number | undefined) =>
      new LifeboatError("STORAGE_TOO_LARGE", `"${key}" holds ${sizeBytes === undefined ? "more" : `${sizeBytes}`} bytes, more than the ${maxBytes} expected (${this.description})`, {
        kind: "verification",
      });
    if (result.ContentLength !== undefined && result.ContentLength > maxBytes) {
      body.destroy();
      throw tooLarge(result.ContentLength);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > maxBytes) {
          body.destroy();
          throw tooLarge(undefined);
        }
        chunks.push(chunk);
      }
    } catch (error) {
      throw this.error(error, `reading "${key}"`);
    }
    if (result.ETag === undefined) throw new LifeboatError("STORAGE_ERROR", `the store returned no etag for "${key}" (${this.description})`);
    return { bytes: Buffer.concat(chunks), etag: result.ETag };
  }

  async *listPendingUploads(prefix: string): AsyncIterable<PendingUpload> {
    assertValidPrefix(prefix);
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      let page;
      try {
        page = await this.client.send(new ListMultipartUploadsCommand({
          Bucket: this.options.bucket,
          Prefix: prefix,
          ...(keyMarker !== undefined ? { KeyMarker: keyMarker } : {}),
          ...(uploadIdMarker !== undefined ? { UploadIdMarker: uploadIdMarker } : {}),
        }));
      } catch (error) {
        const status = (error as S3ServiceException).$metadata?.httpStatusCode;
        if (status === 501 || status === 405 || (error as Error).name === "NotImplemented") {
          // s3rver and some gateways cannot list uploads: there is nothing we could abort anyway.
          this.log.debug({ prefix, err: describe(error) }, "the store cannot list multipart uploads");
          return;
        }
        throw this.error(error, `listing unfinished uploads under "${prefix}"`);
      }
      for (const upload of page.Uploads ?? []) {
        if (upload.Key === undefined || upload.UploadId === undefined) continue;
        yield { key: upload.Key, uploadId: upload.UploadId, startedAt: upload.Initiated };
      }
      if (!page.IsTruncated) return;
      if (page.NextKeyMarker === keyMarker && page.NextUploadIdMarker === uploadIdMarker) return;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
      if (keyMarker === undefined && uploadIdMarker === undefined) return;
    }
  }

  async abortPendingUpload(upload: PendingUpload): Promise<void> {
    assertValidKey(upload.key);
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.options.bucket, Key: upload.key, UploadId: upload.uploadId }));
      this.log.info({ key: upload.key }, "multipart upload aborted");
    } catch (error) {
      const status = (error as S3ServiceException).$metadata?.httpStatusCode;
      if ((error as Error).name === "NoSuchUpload" || (status === 404 && (error as Error).name !== "NoSuchBucket")) return;
      throw this.error(error, `aborting the unfinished upload of "${upload.key}"`);
    }
  }

  /**
   * Writes a locked canary and tries to delete its version. Canaries that the
   * store refused to delete stay until their retention ends: each is a few
   * dozen bytes, one per proof.
   */
  async proveImmutability(canaryPrefix: string): Promise<ImmutabilityProof> {
    assertValidPrefix(canaryPrefix);
    const lock = this.options.objectLock;
    if (!lock) return { held: false, reason: `no objectLock is configured for storage "${this.options.name}"` };
    const key = `${canaryPrefix}${Date.now()}-${randomBytes(4).toString("hex")}`;
    const body = Buffer.from(`lifeboat immutability canary, written ${new Date().toISOString()}\n`);
    await this.lockedCall(this.lockParameters(), `writing the immutability canary "${key}"`, undefined, (o) => this.client.send(new PutObjectCommand({
        Bucket: this.options.bucket,
        Key: key,
        Body: body,
        ContentLength: body.length,
        ContentType: "text/plain",
        ContentMD5: md5Base64(body),
        ...this.lockParameters(),
      }), o));
    const head = await this.call(`reading the immutability canary "${key}"`, undefined, (o) => this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: key }), o));
    const retainUntil = head.ObjectLockRetainUntilDate;
    const mode = head.ObjectLockMode === "COMPLIANCE" ? "compliance" : head.ObjectLockMode === "GOVERNANCE" ? "governance" : undefined;
    if (!head.VersionId || head.VersionId === "null") {
      return { held: false, mode, retainUntil, reason: `the canary "${key}" has no version id: the bucket is not versioned, so Object Lock cannot hold` };
    }
    if (!retainUntil) {
      return { held: false, mode, retainUntil, reason: `the store accepted the canary "${key}" but reports no retention date for it` };
    }
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: key, VersionId: head.VersionId }));
    } catch (error) {
      const status = (error as S3ServiceException).$metadata?.httpStatusCode;
      const name = (error as Error).name;
      if (status === 403 || name === "AccessDenied") {
        return {
          held: true,
          mode,
          retainUntil,
          reason: `deleting locked version ${head.VersionId} of "${key}" (${mode ?? "unknown"} mode, retained until ${retainUntil.toISOString()}) was refused: ${name}`,
        };
      }
      throw this.error(error, `deleting the immutability canary "${key}"`);
    }
    return {
      held: false,
      mode,
      retainUntil,
      reason: `the store deleted a locked object version (version ${head.VersionId} of "${key}", retained until ${retainUntil.toISOString()}): the lock does not hold`,
    };
  }

  /**
   * `call` for a request that carries Object Lock parameters: a bucket without
   * Object Lock refuses those with 400 InvalidRequest (radosgw sends no more
   * detail than that; AWS says "Bucket is missing ObjectLockConfiguration").
   */
  private async lockedCall<T>(
    lock: LockParameters | undefined,
    doing: string,
    signal: AbortSignal | undefined,
    run: (options: { abortSignal?: AbortSignal }) => Promise<T>,
  ): Promise<T> {
    try {
      return await this.call(doing, signal, run);
    } catch (error) {
      const cause = error instanceof LifeboatError ? error.cause : error;
      const status = (cause as S3ServiceException | undefined)?.$metadata?.httpStatusCode;
      if (lock && status === 400 && ((cause as Error).name === "InvalidRequest" || /ObjectLock|object lock/i.test(describe(cause)))) {
        throw this.noObjectLock(doing, cause);
      }
      throw error;
    }
  }

  private noObjectLock(doing: string, cause: unknown): LifeboatError {
    return new LifeboatError(
      "STORAGE_NO_OBJECT_LOCK",
      `bucket "${this.options.bucket}" does not have Object Lock enabled: the store ${cause === undefined ? "did not lock" : "refused"} a locked write while ${doing} (${this.description})`,
      {
        kind: "usage",
        hint: `create the bucket with Object Lock enabled (e.g. aws s3api create-bucket --object-lock-enabled-for-bucket), or remove objectLock from storage "${this.options.name}"`,
        cause,
      },
    );
  }

  /** Object Lock headers for an immutable write, with the retention date counted from now. */
  private lockParameters(): LockParameters | undefined {
    const lock = this.options.objectLock;
    if (!lock) return undefined;
    return {
      ObjectLockMode: lock.mode === "compliance" ? "COMPLIANCE" : "GOVERNANCE",
      ObjectLockRetainUntilDate: new Date(Date.now() + lock.retainMs),
    };
  }

  async probe(probePrefix: string): Promise<StoreCapabilities> {
    assertValidPrefix(probePrefix);
    const key = `${probePrefix}${Date.now()}-${randomBytes(4).toString("hex")}`;
    const body = Buffer.from("lifeboat capability probe\n");
    let conditionalWrites = false;
    let multipartAbort = false;
    try {
      await this.call("probing conditional writes", undefined, (o) => this.client.send(new PutObjectCommand({ Bucket: this.options.bucket, Key: key, Body: body, IfNoneMatch: "*" }), o));
      // Both conditions the leases rely on: create-if-absent, and replace-if-unchanged with a stale etag.
      const refused = async (condition: { IfNoneMatch: string } | { IfMatch: string }) => {
        try {
          await this.client.send(new PutObjectCommand({ Bucket: this.options.bucket, Key: key, Body: body, ...condition }));
          return false;
        } catch (error) {
          const status = (error as S3ServiceException).$metadata?.httpStatusCode;
          if (status === 412 || status === 409) return true;
          throw this.error(error, "probing conditional writes");
        }
      };
      conditionalWrites = (await refused({ IfNoneMatch: "*" })) && (await refused({ IfMatch: "00000000000000000000000000000000" }));
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

interface LockParameters {
  ObjectLockMode: "GOVERNANCE" | "COMPLIANCE";
  ObjectLockRetainUntilDate: Date;
}

function unquote(etag: string): string {
  return etag.replace(/^(W\/)?"(.*)"$/, "$2");
}

function md5Base64(data: Buffer): string {
  return createHash("md5").update(data).digest("base64");
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
