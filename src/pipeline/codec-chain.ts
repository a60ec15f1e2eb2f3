import type { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Codec } from "../model/manifest.js";
import { settleAll } from "../model/settle.js";
import type { CompressionKind } from "../model/job.js";
import { createAgeDecryptStream, createAgeEncryptStream, type AgeIdentity } from "./age/index.js";
import { COMPRESSION_EXTENSION, compressStage, decompressStage, type Stage } from "./compression.js";
import { HashTap, type ExpectedBytes } from "./hash-tap.js";

/**
 * The two directions of the codec chain, with backpressure end to end:
 *
 *   encode: source → count → compress → encrypt (age) → SHA-256 + count → (store)
 *   decode: (store) → SHA-256 + count → decrypt (age) → decompress → (restore)
 *
 * `done` settles when every stage and tool finished; it rejects with the first
 * failure. The caller consumes `output` and destroys it on its own failure.
 */
export interface EncodeOptions {
  compression: CompressionKind;
  /**
   * The source stream is already compressed this way (the source piped itself
   * through the compressor): record it in the codec, add no stage.
   */
  precompressed?: Exclude<CompressionKind, "none"> | undefined;
  compressionLevel?: number | undefined;
  /** age recipients; empty means no encryption. */
  recipients: readonly string[];
  /** For errors: `backing up job "uploads"`. */
  context: string;
  signal?: AbortSignal | undefined;
  onSourceBytes?: ((sizeBytes: number) => void) | undefined;
  onStoredBytes?: ((sizeBytes: number) => void) | undefined;
}

export interface EncodeChain {
  output: Readable;
  /** Counts the source bytes (before compression); does not hash them. Not in the chain (0) when precompressed. */
  sourceTap: HashTap;
  /** Counts and hashes the stored bytes. */
  storedTap: HashTap;
  /** Codec steps this chain applies after the source's own format. */
  codec: Codec[];
  /** File name extension for the stored object, e.g. "zst.age". */
  extension: string;
  done: Promise<void>;
}

export function encodeChain(source: Readable, options: EncodeOptions): EncodeChain {
  const sourceTap = new HashTap(options.onSourceBytes, { hash: false });
  const storedTap = new HashTap(options.onStoredBytes);
  // A precompressed source counted its own bytes; counting its output would be wasted work.
  const stages: Array<Readable | Transform | Stage["stream"]> = options.precompressed ? [source] : [source, sourceTap];
  const tools: Promise<unknown>[] = [];
  const codec: Codec[] = [];
  const extension: string[] = [];
  if (options.precompressed) {
    codec.push(options.precompressed);
    extension.push(COMPRESSION_EXTENSION[options.precompressed]);
  } else if (options.compression !== "none") {
    const stage = compressStage(options.compression, options.compressionLevel, options.context, options.signal);
    stages.push(stage.stream);
    tools.push(stage.done);
    codec.push(options.compression);
    extension.push(COMPRESSION_EXTENSION[options.compression]);
  }
  if (options.recipients.length > 0) {
    stages.push(createAgeEncryptStream(options.recipients));
    codec.push("age");
    extension.push("age");
  }
  stages.push(storedTap);
  const done = settleAll(pipeline(stages as unknown as [Readable, ...Transform[]], options.signal ? { signal: options.signal } : {}), tools);
  return { output: storedTap, sourceTap, storedTap, codec, extension: extension.join("."), done };
}

export interface DecodeOptions {
  /** The codec steps to undo, as recorded in the manifest (source format first). */
  codec: readonly Codec[];
  identities: readonly AgeIdentity[];
  context: string;
  signal?: AbortSignal | undefined;
  onStoredBytes?: ((sizeBytes: number) => void) | undefined;
  /** The stored bytes' size and hash: a mismatch fails the chain before its output ends. */
  expect?: ExpectedBytes | undefined;
}

export interface DecodeChain {
  output: Readable;
  storedTap: HashTap;
  done: Promise<void>;
}

export function decodeChain(stored: Readable, options: DecodeOptions): DecodeChain {
  const storedTap = new HashTap(options.onStoredBytes, { expect: options.expect });
  const stages: Array<Readable | Transform | Stage["stream"]> = [stored, storedTap];
  const tools: Promise<unknown>[] = [];
  for (const step of [...options.codec].reverse()) {
    if (step === "age") stages.push(createAgeDecryptStream([...options.identities]));
    else if (step === "zstd" || step === "gzip") {
      const stage = decompressStage(step, options.context, options.signal);
      stages.push(stage.stream);
      tools.push(stage.done);
    }
  }
  const output = stages[stages.length - 1] as Readable;
  const done = settleAll(pipeline(stages as unknown as [Readable, ...Transform[]], options.signal ? { signal: options.signal } : {}), tools);
  return { output, storedTap, done };
}
