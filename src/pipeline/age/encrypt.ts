/**
 * age v1 encryption (https://age-encryption.org/v1, c2sp.org/age) to X25519
 * recipients, as a Node Transform stream: plaintext in, age file out.
 *
 * Also holds the format primitives shared with decrypt.ts (raw base64, HKDF,
 * stanza and header encoding, STREAM nonces).
 */
import { createCipheriv, createHmac, generateKeyPairSync, hkdfSync, randomBytes } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { LifeboatError } from "../../model/errors.js";
import { parseRecipient, x25519, x25519RawPublicKey } from "./keys.js";

export const AGE_VERSION_LINE = "age-encryption.org/v1";
/** Plaintext bytes per payload chunk. */
export const CHUNK_SIZE = 64 * 1024;
/** ChaCha20-Poly1305 tag length. */
export const TAG_SIZE = 16;
export const FILE_KEY_SIZE = 16;
export const PAYLOAD_NONCE_SIZE = 16;
/** Base64 characters per stanza body line. */
export const COLUMNS_PER_LINE = 64;

const X25519_LABEL = "age-encryption.org/v1/X25519";
const ZERO_NONCE = Buffer.alloc(12);

/** A recipient stanza of an age header; `args` excludes the type. */
export interface AgeStanza {
  type: string;
  args: string[];
  body: Uint8Array;
}

/** Canonical base64 without `=` padding. */
export function encodeBase64Raw(bytes: Uint8Array): string {
  const s = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 61 /* = */) end--;
  return s.slice(0, end);
}

/** HKDF-SHA-256 with 32 bytes of output. */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: string): Buffer {
  return Buffer.from(hkdfSync("sha256", ikm, salt, info, 32));
}

/** ChaCha20-Poly1305 seal with an all-zero nonce, used to wrap file keys. */
export function sealWithZeroNonce(key: Uint8Array, plaintext: Uint8Array): Buffer {
  const cipher = createCipheriv("chacha20-poly1305", key, ZERO_NONCE, { authTagLength: TAG_SIZE });
  const ct = cipher.update(plaintext);
  cipher.final();
  return Buffer.concat([ct, cipher.getAuthTag()]);
}

/** One stanza: arg line, then the body wrapped at 64 columns ending with a short (possibly empty) line. */
export function encodeStanza(stanza: AgeStanza): string {
  let out = "-> " + [stanza.type, ...stanza.args].join(" ") + "\n";
  const b64 = encodeBase64Raw(stanza.body);
  let i = 0;
  for (; i + COLUMNS_PER_LINE <= b64.length; i += COLUMNS_PER_LINE) out += b64.slice(i, i + COLUMNS_PER_LINE) + "\n";
  return out + b64.slice(i) + "\n";
}

/** HMAC-SHA-256 of the header up to and including `---`, keyed by HKDF(file key, "header"). */
export function headerMac(fileKey: Uint8Array, headerUpToDashes: Uint8Array): Buffer {
  const key = hkdfSha256(fileKey, Buffer.alloc(0), "header");
  return createHmac("sha256", key).update(headerUpToDashes).digest();
}

/** The complete header, MAC line included. */
export function encodeHeader(stanzas: readonly AgeStanza[], fileKey: Uint8Array): Buffer {
  const noMac = Buffer.from(AGE_VERSION_LINE + "\n" + stanzas.map(encodeStanza).join("") + "---", "latin1");
  const mac = headerMac(fileKey, noMac);
  return Buffer.concat([noMac, Buffer.from(" " + encodeBase64Raw(mac) + "\n", "latin1")]);
}

/** Wraps `fileKey` for one X25519 recipient (raw 32-byte public key). */
export function wrapX25519(fileKey: Uint8Array, recipient: Uint8Array): AgeStanza {
  const ephemeral = generateKeyPairSync("x25519").privateKey;
  const share = x25519RawPublicKey(ephemeral);
  const shared = x25519(ephemeral, recipient);
  if (shared === null) {
    throw new LifeboatError("AGE_KEY_INVALID", "invalid age recipient (low-order X25519 point)", { kind: "usage" });
  }
  const wrapKey = hkdfSha256(shared, Buffer.concat([share, recipient]), X25519_LABEL);
  return { type: "X25519", args: [encodeBase64Raw(share)], body: sealWithZeroNonce(wrapKey, fileKey) };
}

/** Payload key = HKDF(file key, salt = payload nonce, "payload"). */
export function payloadKey(fileKey: Uint8Array, nonce: Uint8Array): Buffer {
  return hkdfSha256(fileKey, nonce, "payload");
}

/** Increments the 11-byte big-endian chunk counter of a STREAM nonce in place. */
export function incrementChunkCounter(nonce: Buffer): void {
  for (let i = 10; i >= 0; i--) {
    const v = ((nonce[i] as number) + 1) & 0xff;
    nonce[i] = v;
    if (v !== 0) return;
  }
  throw new LifeboatError("AGE_PAYLOAD_CORRUPT", "age payload chunk counter overflow", { kind: "verification" });
}

/**
 * Plaintext → age file. Buffers at most one 64 KiB chunk: a full chunk is
 * only sealed once more input arrives (it is sealed as the final chunk at the
 * end otherwise). Input larger than a chunk is encrypted in place without
 * copying; ciphertext and tag are pushed as separate buffers.
 */
class AgeEncryptStream extends Transform {
  private prefix: Buffer | null;
  private readonly key: Buffer;
  private readonly nonce = Buffer.alloc(12);
  private readonly pending = Buffer.allocUnsafe(CHUNK_SIZE);
  private pendingLength = 0;

  constructor(recipients: readonly Uint8Array[]) {
    super();
    const fileKey = randomBytes(FILE_KEY_SIZE);
    const stanzas = recipients.map((r) => wrapX25519(fileKey, r));
    const payloadNonce = randomBytes(PAYLOAD_NONCE_SIZE);
    this.prefix = Buffer.concat([encodeHeader(stanzas, fileKey), payloadNonce]);
    this.key = payloadKey(fileKey, payloadNonce);
    fileKey.fill(0);
  }

  private pushPrefix(): void {
    if (this.prefix !== null) {
      this.push(this.prefix);
      this.prefix = null;
    }
  }

  private seal(plaintext: Buffer, last: boolean): void {
    if (last) this.nonce[11] = 1;
    const cipher = createCipheriv("chacha20-poly1305", this.key, this.nonce, { authTagLength: TAG_SIZE });
    const ct = cipher.update(plaintext);
    cipher.final();
    if (ct.length > 0) this.push(ct);
    this.push(cipher.getAuthTag());
    if (!last) incrementChunkCounter(this.nonce);
  }

  override _transform(chunk: unknown, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      const input = toBuffer(chunk);
      this.pushPrefix();
      let offset = 0;
      while (offset < input.length) {
        if (this.pendingLength === CHUNK_SIZE) {
          // More plaintext follows, so the held chunk is not the last one.
          this.seal(this.pending, false);
          this.pendingLength = 0;
        }
        const remaining = input.length - offset;
        if (this.pendingLength === 0 && remaining > CHUNK_SIZE) {
          this.seal(input.subarray(offset, offset + CHUNK_SIZE), false);
          offset += CHUNK_SIZE;
          continue;
        }
        const n = Math.min(CHUNK_SIZE - this.pendingLength, remaining);
        input.copy(this.pending, this.pendingLength, offset, offset + n);
        this.pendingLength += n;
        offset += n;
      }
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.pushPrefix();
      this.seal(this.pending.subarray(0, this.pendingLength), true);
      this.pendingLength = 0;
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }
}

export function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === "string") return Buffer.from(chunk, "utf8");
  throw new TypeError("age streams accept only Buffer, Uint8Array or string chunks");
}

/**
 * Creates a Transform that encrypts its input to the given `age1…`
 * recipients. Recipients are validated immediately (throws `AGE_KEY_INVALID`).
 */
export function createAgeEncryptStream(recipients: readonly string[]): Transform {
  if (recipients.length === 0) {
    throw new LifeboatError("AGE_KEY_INVALID", "at least one age recipient is required to encrypt", {
      kind: "usage",
    });
  }
  const parsed = recipients.map((r, i) => {
    try {
      return parseRecipient(r);
    } catch (error) {
      if (error instanceof LifeboatError && recipients.length > 1) {
        const which = `invalid age recipient ${i + 1} of ${recipients.length}`;
        throw new LifeboatError(error.code, error.message.replace(/^invalid age recipient/, which), {
          kind: error.kind,
          hint: error.hint,
        });
      }
      throw error;
    }
  });
  return new AgeEncryptStream(parsed);
}
