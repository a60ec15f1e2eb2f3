/**
 * age v1 decryption (https://age-encryption.org/v1, c2sp.org/age) with X25519
 * identities, as a Node Transform stream: age file in, plaintext out.
 *
 * The header is parsed strictly and its MAC verified before a single byte of
 * plaintext is pushed; the payload is then authenticated and emitted one
 * 64 KiB chunk at a time. Input may arrive in chunks of any size.
 */
import { createDecipheriv, timingSafeEqual } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { LifeboatError } from "../../model/errors.js";
import {
  AGE_VERSION_LINE,
  CHUNK_SIZE,
  COLUMNS_PER_LINE,
  FILE_KEY_SIZE,
  PAYLOAD_NONCE_SIZE,
  TAG_SIZE,
  encodeBase64Raw,
  headerMac,
  hkdfSha256,
  incrementChunkCounter,
  payloadKey,
  toBuffer,
  type AgeStanza,
} from "./encrypt.js";
import { parseIdentities, x25519, type AgeIdentity } from "./keys.js";

const X25519_LABEL = "age-encryption.org/v1/X25519";
const ENCRYPTED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE;
/** Upper bound on the textual header; real headers are a few hundred bytes per recipient. */
const MAX_HEADER_SIZE = 4 * 1024 * 1024;
const ARMOR_BEGIN = "-----BEGIN AGE ENCRYPTED FILE-----";
const VERSION_LINE_BYTES = Buffer.from(AGE_VERSION_LINE + "\n", "latin1");
const ZERO_NONCE = Buffer.alloc(12);
const BASE64_RE = /^[A-Za-z0-9+/]*$/;

export interface AgeDecryptOptions {
  /**
   * The recipients the file is believed to be encrypted to (for example from
   * a catalog). age headers do not name their recipients, so this is used
   * only to word the `AGE_NO_IDENTITY_MATCH` error.
   */
  encryptedTo?: readonly string[];
}

/** Strict raw base64: standard alphabet, no padding, canonical trailing bits. `null` when invalid. */
export function decodeBase64Raw(s: string): Buffer | null {
  if (s.length % 4 === 1 || !BASE64_RE.test(s)) return null;
  const bytes = Buffer.from(s, "base64");
  return encodeBase64Raw(bytes) === s ? bytes : null;
}

function headerInvalid(message: string, details?: Record<string, unknown>): LifeboatError {
  return new LifeboatError("AGE_HEADER_INVALID", `invalid age header: ${message}`, {
    kind: "verification",
    hint: "the file is not a valid age v1 file, or its header is corrupt",
    ...(details ? { details } : {}),
  });
}

function truncated(message: string, details?: Record<string, unknown>): LifeboatError {
  return new LifeboatError("AGE_TRUNCATED", `age file is truncated: ${message}`, {
    kind: "verification",
    hint: "the encrypted backup is incomplete; it was cut off during upload, download or storage",
    ...(details ? { details } : {}),
  });
}

function payloadCorrupt(message: string, details?: Record<string, unknown>, maybeTruncated = false): LifeboatError {
  return new LifeboatError("AGE_PAYLOAD_CORRUPT", `age payload is corrupt: ${message}`, {
    kind: "verification",
    hint: maybeTruncated
      ? "the encrypted backup was modified, damaged or cut short after it was written"
      : "the encrypted backup was modified or damaged after it was written",
    ...(details ? { details } : {}),
  });
}

/** ChaCha20-Poly1305 open of `ciphertext || tag`; `null` when authentication fails. */
function open(key: Uint8Array, nonce: Uint8Array, sealed: Buffer): Buffer | null {
  const decipher = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG_SIZE });
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
  const plaintext = decipher.update(sealed.subarray(0, sealed.length - TAG_SIZE));
  try {
    decipher.final();
  } catch {
    return null;
  }
  return plaintext;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function describeStanzas(stanzas: readonly AgeStanza[]): string {
  const counts = new Map<string, number>();
  for (const s of stanzas) counts.set(s.type, (counts.get(s.type) ?? 0) + 1);
  const parts: string[] = [];
  for (const [type, n] of counts) {
    if (type === "X25519") parts.push(plural(n, "X25519 recipient"));
    else if (type === "scrypt") parts.push("a passphrase (scrypt), which is not supported");
    else if (type === "mlkem768x25519") parts.push(`${plural(n, "post-quantum recipient")}, not supported`);
    else parts.push(`${plural(n, "recipient")} of unsupported type ${JSON.stringify(type.slice(0, 40))}`);
  }
  return parts.join(", ");
}

type Phase = "header" | "nonce" | "payload";

interface StanzaInProgress {
  type: string;
  args: string[];
  body: Buffer[];
}

class AgeDecryptStream extends Transform {
  private readonly identities: readonly AgeIdentity[];
  private readonly encryptedTo: readonly string[] | undefined;
  private phase: Phase = "header";

  // Header state.
  private header = Buffer.allocUnsafe(512);
  private headerLength = 0;
  private lineStart = 0;
  private lineNumber = 0;
  private stanzas: AgeStanza[] = [];
  private stanza: StanzaInProgress | null = null;
  private fileKey: Buffer | null = null;

  // Payload nonce state.
  private readonly payloadNonce = Buffer.alloc(PAYLOAD_NONCE_SIZE);
  private payloadNonceLength = 0;

  // Payload state.
  private key: Buffer | null = null;
  private readonly nonce = Buffer.alloc(12);
  private chunkIndex = 0;
  private pending: Buffer | null = null;
  private pendingLength = 0;

  constructor(identities: readonly AgeIdentity[], options: AgeDecryptOptions) {
    super();
    this.identities = identities;
    this.encryptedTo = options.encryptedTo;
  }

  override _transform(chunk: unknown, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      const input = toBuffer(chunk);
      let offset = 0;
      if (this.phase === "header") offset = this.consumeHeader(input, offset);
      if (this.phase === "nonce") offset = this.consumeNonce(input, offset);
      if (this.phase === "payload") this.consumePayload(input, offset);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (this.phase === "header") {
        if (this.headerLength === 0) throw truncated("the input is empty");
        if (this.lineNumber === 0) {
          const seen = this.header.subarray(0, this.headerLength);
          if (!VERSION_LINE_BYTES.subarray(0, seen.length).equals(seen)) this.rejectVersionLine(seen);
        }
        throw truncated("the input ended inside the age header");
      }
      if (this.phase === "nonce") throw truncated("the input ended inside the payload nonce");
      const pending = this.pending as Buffer;
      this.openFinal(pending.subarray(0, this.pendingLength));
      this.pendingLength = 0;
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  // ---------------------------------------------------------------- header

  private appendHeader(input: Buffer, start: number, end: number): void {
    const n = end - start;
    if (this.headerLength + n > MAX_HEADER_SIZE) {
      throw headerInvalid(`the header is larger than ${MAX_HEADER_SIZE} bytes`);
    }
    if (this.headerLength + n > this.header.length) {
      let size = this.header.length * 2;
      while (size < this.headerLength + n) size *= 2;
      const grown = Buffer.allocUnsafe(Math.min(size, MAX_HEADER_SIZE));
      this.header.copy(grown, 0, 0, this.headerLength);
      this.header = grown;
    }
    input.copy(this.header, this.headerLength, start, end);
    this.headerLength += n;
  }

  /** Consumes header bytes; returns the offset just past the header, or `input.length`. */
  private consumeHeader(input: Buffer, offset: number): number {
    while (offset < input.length) {
      const newline = input.indexOf(10, offset);
      const end = newline === -1 ? input.length : newline + 1;
      this.appendHeader(input, offset, end);
      offset = end;
      if (newline === -1) {
        // The version line is 22 bytes; anything longer without a newline is not age v1.
        if (this.lineNumber === 0 && this.headerLength >= ARMOR_BEGIN.length) {
          this.rejectVersionLine(this.header.subarray(0, this.headerLength));
        }
        return offset;
      }
      const line = this.header.subarray(this.lineStart, this.headerLength - 1);
      const lineStart = this.lineStart;
      this.lineStart = this.headerLength;
      if (this.processHeaderLine(line, lineStart)) {
        this.finishHeader();
        return offset;
      }
    }
    return offset;
  }

  private rejectVersionLine(seen: Buffer): never {
    const text = seen.toString("latin1");
    if (text.startsWith("-----BEGIN")) {
      throw headerInvalid("ASCII-armored (PEM) age files are not supported, decode the armor first");
    }
    if (text.startsWith("age-encryption.org/")) throw headerInvalid("unsupported age format version");
    throw headerInvalid("not an age encrypted file (it does not start with age-encryption.org/v1)");
  }

  /** Validates one header line (without its LF). Returns true for the MAC line. */
  private processHeaderLine(line: Buffer, lineStart: number): boolean {
    const lineNumber = ++this.lineNumber;
    if (lineNumber === 1) {
      if (!line.equals(VERSION_LINE_BYTES.subarray(0, VERSION_LINE_BYTES.length - 1))) {
        this.rejectVersionLine(this.header.subarray(0, this.headerLength));
      }
      return false;
    }
    const text = line.toString("latin1");
    if (this.stanza !== null) {
      if (text.length > COLUMNS_PER_LINE) throw headerInvalid(`stanza body line ${lineNumber} is too long`);
      const bytes = decodeBase64Raw(text);
      if (bytes === null) {
        if (text.startsWith("-")) {
          throw headerInvalid(`stanza ending at line ${lineNumber} has no final short body line`);
        }
        throw headerInvalid(`stanza body line ${lineNumber} is not canonical unpadded base64`);
      }
      this.stanza.body.push(bytes);
      if (text.length < COLUMNS_PER_LINE) {
        const { type, args, body } = this.stanza;
        this.stanzas.push({ type, args, body: Buffer.concat(body) });
        this.stanza = null;
      }
      return false;
    }
    if (text.startsWith("-> ")) {
      const args = text.slice(3).split(" ");
      for (const arg of args) {
        if (arg.length === 0) throw headerInvalid(`stanza line ${lineNumber} has an empty argument`);
        for (let i = 0; i < arg.length; i++) {
          const c = arg.charCodeAt(i);
          if (c < 0x21 || c > 0x7e) throw headerInvalid(`stanza line ${lineNumber} has an invalid character`);
        }
      }
      this.stanza = { type: args[0] as string, args: args.slice(1), body: [] };
      return false;
    }
    if (text.startsWith("---")) {
      if (this.stanzas.length === 0) throw headerInvalid("the header has no recipient stanzas");
      if (!text.startsWith("--- ") || text.length !== 4 + 43) throw headerInvalid("malformed MAC line");
      const mac = decodeBase64Raw(text.slice(4));
      if (mac === null || mac.length !== 32) throw headerInvalid("malformed MAC line");
      this.unwrapAndVerify(mac, lineStart);
      return true;
    }
    throw headerInvalid(`unexpected line ${lineNumber}`);
  }

  private unwrapAndVerify(mac: Buffer, macLineStart: number): void {
    const stanzas = this.stanzas;
    if (stanzas.length > 1 && stanzas.some((s) => s.type === "scrypt")) {
      throw headerInvalid("a passphrase (scrypt) stanza is mixed with other stanzas");
    }
    const x25519Stanzas: { share: Buffer; body: Uint8Array }[] = [];
    for (const s of stanzas) {
      if (s.type !== "X25519") continue;
      const share = s.args.length === 1 ? decodeBase64Raw(s.args[0] as string) : null;
      if (share === null || share.length !== 32) throw headerInvalid("malformed X25519 stanza arguments");
      if (s.body.length !== FILE_KEY_SIZE + TAG_SIZE) throw headerInvalid("malformed X25519 stanza body");
      x25519Stanzas.push({ share, body: s.body });
    }
    let fileKey: Buffer | null = null;
    search: for (const identity of this.identities) {
      for (const { share, body } of x25519Stanzas) {
        const shared = x25519(identity.privateKey, share);
        if (shared === null) throw headerInvalid("X25519 stanza has a low-order ephemeral share");
        const salt = Buffer.concat([share, identity.publicKey]);
        const wrapKey = hkdfSha256(shared, salt, X25519_LABEL);
        fileKey = open(wrapKey, ZERO_NONCE, Buffer.from(body.buffer, body.byteOffset, body.byteLength));
        if (fileKey !== null) break search;
      }
    }
    if (fileKey === null) throw this.noIdentityMatch();
    const expected = headerMac(fileKey, this.header.subarray(0, macLineStart + 3));
    if (!timingSafeEqual(expected, mac)) {
      throw new LifeboatError("AGE_HEADER_MAC_MISMATCH", "age header MAC mismatch: the header was modified or is corrupt", {
        kind: "verification",
        hint: "the encrypted backup was modified or damaged after it was written",
      });
    }
    this.fileKey = fileKey;
  }

  private noIdentityMatch(): LifeboatError {
    const to =
      this.encryptedTo !== undefined && this.encryptedTo.length > 0
        ? this.encryptedTo.join(", ")
        : describeStanzas(this.stanzas);
    const tried =
      this.identities.length === 0
        ? "no identities were given"
        : `tried the identities of: ${this.identities.map((i) => i.recipient).join(", ")}`;
    return new LifeboatError(
      "AGE_NO_IDENTITY_MATCH",
      `no identity matches any recipient of this backup (it was encrypted to: ${to}; ${tried})`,
      {
        kind: "verification",
        hint: "decrypt with the age secret key whose public key (age1…) this backup was encrypted to",
        details: {
          stanzaTypes: this.stanzas.map((s) => s.type),
          triedRecipients: this.identities.map((i) => i.recipient),
        },
      },
    );
  }

  private finishHeader(): void {
    this.phase = "nonce";
    // Release the header; only the file key is needed from here on.
    this.header = Buffer.alloc(0);
    this.stanzas = [];
  }

  // ----------------------------------------------------------------- nonce

  private consumeNonce(input: Buffer, offset: number): number {
    const n = Math.min(PAYLOAD_NONCE_SIZE - this.payloadNonceLength, input.length - offset);
    input.copy(this.payloadNonce, this.payloadNonceLength, offset, offset + n);
    this.payloadNonceLength += n;
    if (this.payloadNonceLength === PAYLOAD_NONCE_SIZE) {
      const fileKey = this.fileKey as Buffer;
      this.key = payloadKey(fileKey, this.payloadNonce);
      fileKey.fill(0);
      this.fileKey = null;
      this.pending = Buffer.allocUnsafe(ENCRYPTED_CHUNK_SIZE);
      this.phase = "payload";
    }
    return offset + n;
  }

  // --------------------------------------------------------------- payload

  private consumePayload(input: Buffer, offset: number): void {
    const pending = this.pending as Buffer;
    while (offset < input.length) {
      if (this.pendingLength === ENCRYPTED_CHUNK_SIZE) {
        // More input follows, so the held chunk is not the final one.
        this.openNonFinal(pending);
        this.pendingLength = 0;
      }
      const remaining = input.length - offset;
      if (this.pendingLength === 0 && remaining > ENCRYPTED_CHUNK_SIZE) {
        this.openNonFinal(input.subarray(offset, offset + ENCRYPTED_CHUNK_SIZE));
        offset += ENCRYPTED_CHUNK_SIZE;
        continue;
      }
      const n = Math.min(ENCRYPTED_CHUNK_SIZE - this.pendingLength, remaining);
      input.copy(pending, this.pendingLength, offset, offset + n);
      this.pendingLength += n;
      offset += n;
    }
  }

  private chunkDetails(): Record<string, unknown> {
    return { chunk: this.chunkIndex, plaintextOffset: this.chunkIndex * CHUNK_SIZE };
  }

  /** A full chunk followed by more input. */
  private openNonFinal(sealed: Buffer): void {
    const key = this.key as Buffer;
    const plaintext = open(key, this.nonce, sealed);
    if (plaintext === null) {
      this.nonce[11] = 1;
      const asFinal = open(key, this.nonce, sealed);
      this.nonce[11] = 0;
      if (asFinal !== null) throw payloadCorrupt("unexpected data after the final chunk", this.chunkDetails());
      throw payloadCorrupt(`chunk ${this.chunkIndex} failed authentication`, this.chunkDetails());
    }
    this.push(plaintext);
    incrementChunkCounter(this.nonce);
    this.chunkIndex++;
  }

  /** The last bytes of the input, which must be the final chunk. */
  private openFinal(sealed: Buffer): void {
    if (sealed.length < TAG_SIZE) {
      throw truncated(
        this.chunkIndex === 0 && sealed.length === 0
          ? "the input ended right after the header"
          : `the input ended inside chunk ${this.chunkIndex}`,
        this.chunkDetails(),
      );
    }
    const key = this.key as Buffer;
    this.nonce[11] = 1;
    const plaintext = open(key, this.nonce, sealed);
    this.nonce[11] = 0;
    if (plaintext === null) {
      const asNonFinal = sealed.length === ENCRYPTED_CHUNK_SIZE ? open(key, this.nonce, sealed) : null;
      if (asNonFinal !== null) {
        // A valid non-final chunk: emit it like any other verified chunk, then report the missing rest.
        this.push(asNonFinal);
        this.chunkIndex++;
        throw truncated(`the input ended after chunk ${this.chunkIndex - 1}, before the final chunk`, this.chunkDetails());
      }
      throw payloadCorrupt(
        `chunk ${this.chunkIndex} (the last one in the input) failed authentication; the backup is corrupt or truncated`,
        this.chunkDetails(),
        true,
      );
    }
    if (plaintext.length === 0 && this.chunkIndex > 0) {
      throw payloadCorrupt("the final chunk is empty, which age forbids", this.chunkDetails());
    }
    if (plaintext.length > 0) this.push(plaintext);
    this.chunkIndex++;
  }
}

function toIdentities(identities: readonly AgeIdentity[] | readonly string[]): AgeIdentity[] {
  const out: AgeIdentity[] = [];
  for (const identity of identities) {
    if (typeof identity === "string") out.push(...parseIdentities(identity));
    else out.push(identity);
  }
  return out;
}

/**
 * Creates a Transform that decrypts an age file. `identities` are parsed
 * identities or identity texts (`AGE-SECRET-KEY-1…` lines, identity files);
 * invalid ones throw `AGE_KEY_INVALID` immediately.
 *
 * Stream errors (all `LifeboatError`, kind "verification"):
 * `AGE_HEADER_INVALID`, `AGE_NO_IDENTITY_MATCH`, `AGE_HEADER_MAC_MISMATCH`
 * (all before any plaintext is pushed), `AGE_PAYLOAD_CORRUPT`, `AGE_TRUNCATED`.
 */
export function createAgeDecryptStream(
  identities: readonly AgeIdentity[] | readonly string[],
  options: AgeDecryptOptions = {},
): Transform {
  return new AgeDecryptStream(toIdentities(identities), options);
}
