import { execFileSync } from "node:child_process";
import { createCipheriv, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, type Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  Decrypter,
  Encrypter,
  generateHybridIdentity as typageGenerateHybridIdentity,
  generateX25519Identity as typageGenerateIdentity,
  identityToRecipient as typageIdentityToRecipient,
} from "age-encryption";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LifeboatError } from "../src/model/errors.js";
import {
  createAgeDecryptStream,
  createAgeEncryptStream,
  generateIdentity,
  parseIdentities,
  parseRecipient,
  recipientOf,
  type AgeIdentity,
} from "../src/pipeline/age/index.js";
import { bech32Decode, bech32Encode } from "../src/pipeline/age/bech32.js";
import {
  encodeBase64Raw,
  encodeHeader,
  encodeStanza,
  incrementChunkCounter,
  payloadKey,
  wrapX25519,
  type AgeStanza,
} from "../src/pipeline/age/encrypt.js";
import { decodeBase64Raw } from "../src/pipeline/age/decrypt.js";

const CHUNK = 65536;
const SEALED = CHUNK + 16;

// ------------------------------------------------------------------ helpers

/** Splits `data` into pieces cycling through `sizes` (whole buffer when empty). */
function split(data: Buffer, sizes: readonly number[] = []): Buffer[] {
  if (sizes.length === 0) return [data];
  const out: Buffer[] = [];
  for (let off = 0, i = 0; off < data.length; i++) {
    const n = sizes[i % sizes.length] as number;
    out.push(data.subarray(off, off + n));
    off += n;
  }
  return out;
}

async function collect(source: Buffer[], transform: Transform): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from(source), transform, async (chunks: AsyncIterable<Buffer>) => {
    for await (const c of chunks) out.push(c);
  });
  return Buffer.concat(out);
}

function encrypt(data: Buffer, recipients: string[], sizes?: number[]): Promise<Buffer> {
  return collect(split(data, sizes), createAgeEncryptStream(recipients));
}

interface DecryptResult {
  plaintext: Buffer;
  emitted: number;
  error: LifeboatError | undefined;
}

async function decrypt(
  data: Buffer,
  identities: AgeIdentity[] | string[],
  sizes?: number[],
  options?: { encryptedTo?: string[] },
): Promise<DecryptResult> {
  const out: Buffer[] = [];
  let emitted = 0;
  let error: LifeboatError | undefined;
  try {
    await pipeline(
      Readable.from(split(data, sizes)),
      createAgeDecryptStream(identities, options),
      async (chunks: AsyncIterable<Buffer>) => {
        for await (const c of chunks) {
          out.push(c);
          emitted += c.length;
        }
      },
    );
  } catch (e) {
    if (!(e instanceof LifeboatError)) throw e;
    error = e;
  }
  return { plaintext: Buffer.concat(out), emitted, error };
}

async function decryptOk(data: Buffer, identities: AgeIdentity[] | string[], sizes?: number[]): Promise<Buffer> {
  const r = await decrypt(data, identities, sizes);
  if (r.error) throw r.error;
  return r.plaintext;
}

/** Buffer equality without vitest's slow element-by-element diffing of large buffers. */
function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.length).toBe(expected.length);
  expect(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(expected)).toBe(true);
}

/** Every secret key string used anywhere in these tests, to check error texts against. */
const secrets = new Set<string>();
function key(): { identity: string; recipient: string } {
  const k = generateIdentity();
  secrets.add(k.identity);
  return k;
}
function expectNoSecret(error: unknown): void {
  const e = error as LifeboatError;
  const text = [e.message, e.hint ?? "", JSON.stringify(e.details ?? {}), String(e.cause ?? "")].join("\n");
  for (const s of secrets) {
    expect(text).not.toContain(s);
    expect(text.toLowerCase()).not.toContain(s.toLowerCase());
    // Nor the data part alone.
    expect(text.toLowerCase()).not.toContain(s.toLowerCase().slice("age-secret-key-1".length, -6));
  }
}
async function expectCode(
  p: Promise<DecryptResult>,
  codes: string | string[],
  maxEmitted = 0,
  plaintext?: Buffer,
): Promise<LifeboatError> {
  const r = await p;
  expect(r.error, "expected an error").toBeInstanceOf(LifeboatError);
  const err = r.error as LifeboatError;
  expect(typeof codes === "string" ? [codes] : codes).toContain(err.code);
  expect(err.kind).toBe("verification");
  // Only authenticated chunks are ever pushed; data pushed just before the error may be dropped by destroy().
  expect(r.emitted).toBeLessThanOrEqual(maxEmitted);
  expect(r.emitted % CHUNK).toBe(0);
  if (plaintext) expectBytes(r.plaintext, plaintext.subarray(0, r.emitted));
  expectNoSecret(err);
  return err;
}
function expectKeyInvalid(fn: () => unknown): LifeboatError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(LifeboatError);
  const err = caught as LifeboatError;
  expect(err.code).toBe("AGE_KEY_INVALID");
  expect(err.kind).toBe("usage");
  expectNoSecret(err);
  return err;
}

/** Header length (through the MAC line's LF) of an age file. */
function headerLength(file: Buffer): number {
  const mac = file.indexOf("\n--- ");
  return file.indexOf(10, mac + 1) + 1;
}

/**
 * Builds an age file by hand with full control over stanzas and chunk layout,
 * to produce files our encryptor never would.
 */
function buildAgeFile(opts: {
  recipient: string;
  extraStanzas?: AgeStanza[];
  chunks: { plaintext: Buffer; last: boolean }[];
  rawHeaderEdit?: (header: string) => string;
}): Buffer {
  const fileKey = randomBytes(16);
  const stanzas = [...(opts.extraStanzas ?? []), wrapX25519(fileKey, parseRecipient(opts.recipient))];
  const header = encodeHeader(stanzas, fileKey);
  const nonce = randomBytes(16);
  const key = payloadKey(fileKey, nonce);
  const counter = Buffer.alloc(12);
  const parts: Buffer[] = [header, nonce];
  for (const c of opts.chunks) {
    counter[11] = c.last ? 1 : 0;
    const cipher = createCipheriv("chacha20-poly1305", key, counter, { authTagLength: 16 });
    parts.push(cipher.update(c.plaintext));
    cipher.final();
    parts.push(cipher.getAuthTag());
    counter[11] = 0;
    incrementChunkCounter(counter);
  }
  return Buffer.concat(parts);
}

let tmp: string;
function tmpFile(name: string, content?: string | Buffer): string {
  const p = join(tmp, name);
  if (content !== undefined) writeFileSync(p, content, { mode: 0o600 });
  return p;
}


beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "lifeboat-age-test-"));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/** The base64 character with the lowest bit flipped (non-canonical as the last char of 32 bytes). */
function flipLowBit(c: string): string {
  return B64[B64.indexOf(c) ^ 1] as string;
}

const SIZES = [0, 1, 65535, 65536, 65537, 3 * 65536, 5 * 1024 * 1024 + 12345];

// -------------------------------------------------------------------- tests

describe("bech32", () => {
  it("accepts the BIP-173 valid vectors and round-trips them", () => {
    for (const s of [
      "A12UEL5L",
      "a12uel5l",
      "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
      "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
      "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
    ]) {
      const { hrp } = bech32Decode(s);
      expect(hrp.toLowerCase()).toBe(s.slice(0, s.lastIndexOf("1")).toLowerCase());
    }
    const data = randomBytes(200); // longer than BIP-173's 90-character limit
    const encoded = bech32Encode("age", data);
    expect(encoded.length).toBeGreaterThan(90);
    expect(Buffer.from(bech32Decode(encoded).data)).toEqual(data);
    const upper = bech32Encode("AGE-SECRET-KEY-", data, true);
    expect(upper).toBe(upper.toUpperCase());
    expect(bech32Decode(upper).hrp).toBe("AGE-SECRET-KEY-");
  });

  it("rejects the BIP-173 invalid vectors, mixed case and bech32m", () => {
    for (const s of [
      "\x201nwldj5",
      "\x7f1axkwrx",
      "pzry9x0s0muk",
      "1pzry9x0s0muk",
      "x1b4n0q5v",
      "li1dgmt3",
      "de1lg7wt\xff",
      "A1G7SGD8",
      "10a06t8",
      "1qzzfhee",
      "A12uEL5L",
      "a1lqfn3a", // bech32m checksum of an empty payload
    ]) {
      expect(() => bech32Decode(s), JSON.stringify(s)).toThrow();
    }
  });
});

describe("keys", () => {
  it("derives the recipient of the spec's example identity", () => {
    expect(recipientOf("AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX")).toBe(
      "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj",
    );
  });

  it("generates identities whose recipient round-trips", () => {
    const k = key();
    expect(k.identity).toMatch(/^AGE-SECRET-KEY-1[0-9A-Z]{58}$/);
    expect(k.recipient).toMatch(/^age1[0-9a-z]{58}$/);
    expect(recipientOf(k.identity)).toBe(k.recipient);
    expect(parseRecipient(k.recipient)).toHaveLength(32);
    const [id] = parseIdentities(k.identity);
    expect(id?.recipient).toBe(k.recipient);
    // Inspecting an identity never shows the secret.
    expect(JSON.stringify(id)).not.toContain(k.identity.slice(16, 40));
  });

  it("parses identity files with comments, blank lines, CRLF and several keys", () => {
    const a = key();
    const b = key();
    const text = `# created: today\r\n# public key: ${a.recipient}\r\n${a.identity}\r\n\r\n# second\n  ${b.identity}  \n`;
    expect(parseIdentities(text).map((i) => i.recipient)).toEqual([a.recipient, b.recipient]);
  });

  it("rejects bad keys with AGE_KEY_INVALID and never echoes secrets", () => {
    const k = key();
    const flipped = k.identity.slice(0, 30) + (k.identity[30] === "Q" ? "P" : "Q") + k.identity.slice(31);
    secrets.add(flipped);
    expectKeyInvalid(() => parseIdentities(flipped));
    expectKeyInvalid(() => parseIdentities(k.identity.toLowerCase())); // secret keys are upper case
    expectKeyInvalid(() => parseIdentities(`# comment\n${k.identity}\nAGE-SECRET-KEY-1XYZ\n`));
    expectKeyInvalid(() => parseIdentities("# only comments\n\n"));
    expectKeyInvalid(() => parseIdentities(k.recipient)); // a recipient is not an identity
    expect(expectKeyInvalid(() => parseRecipient(k.identity)).message).toMatch(/secret key/);
    expectKeyInvalid(() => parseRecipient(k.recipient.toUpperCase())); // recipients are lower case
    expectKeyInvalid(() => parseRecipient(k.recipient.slice(0, -1) + (k.recipient.endsWith("q") ? "p" : "q")));
    expectKeyInvalid(() => parseRecipient("age1"));
    expectKeyInvalid(() => parseRecipient(bech32Encode("age", randomBytes(31))));
    expectKeyInvalid(() => recipientOf(flipped));
    expectKeyInvalid(() => createAgeEncryptStream([]));
    expectKeyInvalid(() => createAgeEncryptStream([k.recipient, k.identity]));
    expectKeyInvalid(() => createAgeDecryptStream([flipped]));
  });
});

describe("round trips", () => {
  const a = key();
  const b = key();
  const c = key();

  it.each(SIZES)("round-trips %i bytes", async (size) => {
    const data = randomBytes(size);
    const enc = await encrypt(data, [a.recipient]);
    const chunks = Math.max(1, Math.ceil(size / CHUNK));
    expect(enc.length - headerLength(enc)).toBe(16 + size + 16 * chunks);
    expectBytes(await decryptOk(enc, [a.identity]), data);
  });

  it.each(SIZES.filter((s) => s < 1 << 20))("round-trips %i bytes delivered in odd pieces", async (size) => {
    const data = randomBytes(size);
    const enc = await encrypt(data, [a.recipient], [1, 7, 65535, 3, 65537, 131073, 100]);
    expectBytes(await decryptOk(enc, [a.identity], [1, 13, 65551, 2, 65553, 131105, 5]), data);
  });

  it("decrypts with one-byte writes", async () => {
    const data = randomBytes(2 * CHUNK + 99);
    const enc = await encrypt(data, [a.recipient]);
    expectBytes(await decryptOk(enc, [a.identity], [1]), data);
  });

  it("handles large writes spanning many chunks", async () => {
    const data = randomBytes(5 * 1024 * 1024 + 7);
    const enc = await encrypt(data, [a.recipient], [3 * 1024 * 1024]);
    expectBytes(await decryptOk(enc, [a.identity], [2 * 1024 * 1024 + 1]), data);
  });

  it("encrypts to several recipients, each identity decrypts", async () => {
    const data = randomBytes(100_000);
    const enc = await encrypt(data, [a.recipient, b.recipient, c.recipient]);
    expect((enc.subarray(0, headerLength(enc)).toString().match(/^-> X25519 /gm) ?? []).length).toBe(3);
    for (const k of [a, b, c]) expectBytes(await decryptOk(enc, [k.identity]), data);
    const other = key();
    // Non-matching identities before the right one, as strings and parsed, and as one identity file.
    expectBytes(await decryptOk(enc, [other.identity, c.identity]), data);
    expectBytes(await decryptOk(enc, [...parseIdentities(other.identity), ...parseIdentities(b.identity)]), data);
    expectBytes(await decryptOk(enc, [`# keys\n${other.identity}\n${a.identity}\n`]), data);
  });

  it("streams files through fs streams", async () => {
    const data = randomBytes(3 * 1024 * 1024 + 5);
    const plain = tmpFile("stream.bin", data);
    const enc = tmpFile("stream.bin.age");
    const dec = tmpFile("stream.bin.out");
    await pipeline(createReadStream(plain), createAgeEncryptStream([a.recipient]), createWriteStream(enc));
    await pipeline(createReadStream(enc), createAgeDecryptStream([a.identity]), createWriteStream(dec));
    expect(readFileSync(dec).equals(data)).toBe(true);
  });

  it("uses a fresh file key and nonce every time", async () => {
    const data = Buffer.from("same plaintext");
    const x = await encrypt(data, [a.recipient]);
    const y = await encrypt(data, [a.recipient]);
    expect(x.equals(y)).toBe(false);
  });
});

describe("header format", () => {
  const k = key();

  it("writes the header exactly as the spec describes", async () => {
    const enc = await encrypt(Buffer.from("hi"), [k.recipient]);
    const header = enc.subarray(0, headerLength(enc)).toString("latin1");
    expect(header).toMatch(/^age-encryption\.org\/v1\n-> X25519 [A-Za-z0-9+/]{43}\n[A-Za-z0-9+/]{43}\n--- [A-Za-z0-9+/]{43}\n$/);
  });

  it("wraps stanza bodies at 64 columns, ending with a short or empty line", () => {
    const s = (n: number) => encodeStanza({ type: "t", args: ["a", "b"], body: Buffer.alloc(n, 0xff) });
    expect(s(0)).toBe("-> t a b\n\n");
    expect(s(48)).toBe(`-> t a b\n${"/".repeat(64)}\n\n`);
    expect(s(49)).toBe(`-> t a b\n${"/".repeat(64)}\n/w\n`);
    expect(s(32).split("\n")[1]).toHaveLength(43);
  });

  it("encodes and strictly decodes raw base64", () => {
    for (let n = 0; n < 10; n++) {
      const b = randomBytes(n);
      expect(decodeBase64Raw(encodeBase64Raw(b))).toEqual(b);
    }
    expect(decodeBase64Raw("AA==")).toBeNull(); // padding
    expect(decodeBase64Raw("AB")).toBeNull(); // non-canonical trailing bits
    expect(decodeBase64Raw("A")).toBeNull();
    expect(decodeBase64Raw("A-_B")).toBeNull(); // url alphabet
    expect(decodeBase64Raw("AA A")).toBeNull();
    expect(decodeBase64Raw("AA\nA")).toBeNull();
  });

  it("ignores unknown stanzas, including 64-column bodies ending with an empty line", async () => {
    const extra: AgeStanza[] = [
      { type: "example.com/enigma", args: ["x", "y"], body: randomBytes(48) },
      { type: "grease-!#", args: [], body: Buffer.alloc(0) },
      { type: "other", args: ["z"], body: randomBytes(200) },
    ];
    const data = randomBytes(1000);
    const file = buildAgeFile({ recipient: k.recipient, extraStanzas: extra, chunks: [{ plaintext: data, last: true }] });
    expect(file.toString("latin1")).toContain("\n\n-> grease-!#\n\n-> other z\n");
    expectBytes(await decryptOk(file, [k.identity], [5]), data);
  });

  it("accepts a full-size final chunk and a single empty chunk for empty files", async () => {
    const full = randomBytes(CHUNK);
    const f1 = buildAgeFile({ recipient: k.recipient, chunks: [{ plaintext: full, last: true }] });
    expectBytes(await decryptOk(f1, [k.identity]), full);
    const f2 = buildAgeFile({ recipient: k.recipient, chunks: [{ plaintext: Buffer.alloc(0), last: true }] });
    expectBytes(await decryptOk(f2, [k.identity]), Buffer.alloc(0));
  });

  const valid = () =>
    buildAgeFile({ recipient: k.recipient, chunks: [{ plaintext: Buffer.from("payload"), last: true }] });
  /** Applies `edit` to the header text and re-attaches the original payload. */
  const editHeader = (edit: (h: string) => string): Buffer => {
    const f = valid();
    const h = headerLength(f);
    return Buffer.concat([Buffer.from(edit(f.subarray(0, h).toString("latin1")), "latin1"), f.subarray(h)]);
  };

  it.each<[string, () => Buffer]>([
    ["another version", () => editHeader((h) => h.replace("/v1", "/v2"))],
    ["CRLF line endings", () => editHeader((h) => h.replace(/\n/g, "\r\n"))],
    ["no stanzas", () => editHeader((h) => h.replace(/-> [^]*?\n---/, "---"))],
    ["padded stanza base64", () => editHeader((h) => h.replace(/^(-> X25519 \S+)$/m, "$1="))],
    ["non-canonical share", () => editHeader((h) => h.replace(/^(-> X25519 \S{42})(\S)$/m, (_, p: string, c: string) => p + flipLowBit(c)))],
    ["body line too long", () => editHeader((h) => h.replace(/^(-> X25519 \S+\n)/m, `$1${"A".repeat(68)}\n`))],
    ["stanza without final short line", () => editHeader((h) => h.replace(/^(-> X25519 \S+\n)\S+\n/m, `$1${"A".repeat(64)}\n`))],
    ["X25519 stanza with extra argument", () => editHeader((h) => h.replace(/^(-> X25519 \S+)$/m, "$1 extra"))],
    ["X25519 stanza with wrong body length", () => editHeader((h) => h.replace(/^(-> X25519 \S+\n)\S+\n/m, `$1${"A".repeat(44)}\n`))],
    ["low-order X25519 share", () => editHeader((h) => h.replace(/^-> X25519 \S+$/m, `-> X25519 ${encodeBase64Raw(Buffer.alloc(32))}`))],
    ["empty stanza argument", () => editHeader((h) => h.replace("-> X25519 ", "-> X25519  "))],
    ["unknown line", () => editHeader((h) => h.replace("\n---", "\nhello\n---"))],
    ["short MAC", () => editHeader((h) => h.replace(/^--- (\S+)$/m, (_, m: string) => `--- ${m.slice(0, 42)}`))],
    ["MAC without space", () => editHeader((h) => h.replace("--- ", "---"))],
    ["garbage", () => randomBytes(5000)],
    ["plain text", () => Buffer.from("hello world\n".repeat(100))],
    [
      "scrypt stanza mixed with X25519",
      () =>
        buildAgeFile({
          recipient: k.recipient,
          extraStanzas: [{ type: "scrypt", args: [encodeBase64Raw(randomBytes(16)), "10"], body: randomBytes(32) }],
          chunks: [{ plaintext: Buffer.from("x"), last: true }],
        }),
    ],
  ])("rejects a header with %s", async (_name, make) => {
    await expectCode(decrypt(make(), [k.identity]), "AGE_HEADER_INVALID");
  });

  it("says so when given an armored file", async () => {
    const body = (await encrypt(Buffer.from("x"), [k.recipient])).toString("base64");
    const armored = Buffer.from(`-----BEGIN AGE ENCRYPTED FILE-----\n${body}\n-----END AGE ENCRYPTED FILE-----\n`);
    const err = await expectCode(decrypt(armored, [k.identity], [1]), "AGE_HEADER_INVALID");
    expect(err.message).toMatch(/armor/);
  });
});

describe("failures", () => {
  const a = key();
  const b = key();

  it("fails with AGE_NO_IDENTITY_MATCH before emitting plaintext for a wrong key", async () => {
    const enc = await encrypt(randomBytes(3 * CHUNK), [a.recipient]);
    for (const sizes of [undefined, [1], [100]]) {
      const err = await expectCode(decrypt(enc, [b.identity], sizes), "AGE_NO_IDENTITY_MATCH");
      expect(err.message).toMatch(/^no identity matches any recipient of this backup \(it was encrypted to: 1 X25519 recipient;/);
      expect(err.message).toContain(b.recipient);
    }
    const err = await expectCode(decrypt(enc, [b.identity], undefined, { encryptedTo: [a.recipient] }), "AGE_NO_IDENTITY_MATCH");
    expect(err.message).toContain(`(it was encrypted to: ${a.recipient};`);
    // Missing key: no identities at all.
    const none = await expectCode(decrypt(enc, []), "AGE_NO_IDENTITY_MATCH");
    expect(none.message).toMatch(/no identities were given/);
  });

  it("detects header tampering at every byte before emitting plaintext", async () => {
    const enc = await encrypt(randomBytes(1000), [a.recipient, b.recipient]);
    const h = headerLength(enc);
    for (let i = 0; i < h; i++) {
      const bad = Buffer.from(enc);
      bad[i] = (bad[i] as number) ^ 0x01;
      // Flipping the MAC line's newline makes the header run on into the binary payload.
      const codes = ["AGE_HEADER_INVALID", "AGE_HEADER_MAC_MISMATCH", "AGE_NO_IDENTITY_MATCH"];
      if (i === h - 1) codes.push("AGE_TRUNCATED");
      await expectCode(decrypt(bad, [a.identity]), codes);
    }
  });

  it("reports AGE_HEADER_MAC_MISMATCH when a header change still unwraps", async () => {
    const enc = await encrypt(randomBytes(1000), [a.recipient, b.recipient]);
    const text = enc.toString("latin1");
    // Change a character in the middle of the second stanza's body: still valid base64, a still unwraps.
    const secondBody = text.indexOf("\n", text.indexOf("-> X25519", text.indexOf("-> X25519") + 1)) + 1 + 10;
    const bad = Buffer.from(enc);
    bad[secondBody] = bad[secondBody] === 0x41 ? 0x42 : 0x41;
    await expectCode(decrypt(bad, [a.identity]), "AGE_HEADER_MAC_MISMATCH");
    // And in the MAC itself.
    const macChar = text.indexOf("\n--- ") + 10;
    const bad2 = Buffer.from(enc);
    bad2[macChar] = bad2[macChar] === 0x41 ? 0x42 : 0x41;
    await expectCode(decrypt(bad2, [b.identity]), "AGE_HEADER_MAC_MISMATCH");
  });

  it("reports AGE_PAYLOAD_CORRUPT for a flipped payload byte, after emitting only verified chunks", async () => {
    const data = randomBytes(3 * CHUNK + 10);
    const enc = await encrypt(data, [a.recipient]);
    const start = headerLength(enc) + 16;
    for (const [chunk, emitted] of [
      [0, 0],
      [1, CHUNK],
      [3, 3 * CHUNK],
    ] as const) {
      for (const where of [0, 5000, SEALED - 1]) {
        const pos = start + chunk * SEALED + where;
        if (pos >= enc.length) continue;
        const bad = Buffer.from(enc);
        bad[pos] = (bad[pos] as number) ^ 0x80;
        const err = await expectCode(decrypt(bad, [a.identity], [4096]), "AGE_PAYLOAD_CORRUPT", emitted, data);
        expect(err.details?.chunk).toBe(chunk);
      }
    }
    // A flipped byte in the payload nonce breaks the first chunk.
    const bad = Buffer.from(enc);
    bad[start - 3] = (bad[start - 3] as number) ^ 1;
    await expectCode(decrypt(bad, [a.identity]), "AGE_PAYLOAD_CORRUPT");
    // Single-chunk file.
    const small = await encrypt(Buffer.from("small backup"), [a.recipient]);
    small[small.length - 20] = (small[small.length - 20] as number) ^ 1;
    await expectCode(decrypt(small, [a.identity]), "AGE_PAYLOAD_CORRUPT");
  });

  it("reports AGE_TRUNCATED when the input stops before the final chunk", async () => {
    const data = randomBytes(2 * CHUNK + 100);
    const enc = await encrypt(data, [a.recipient]);
    const h = headerLength(enc);
    const cut = async (n: number, emitted: number, sizes?: number[]) =>
      expectCode(decrypt(enc.subarray(0, n), [a.identity], sizes), "AGE_TRUNCATED", emitted, data);
    await cut(0, 0);
    await cut(10, 0);
    await cut(h - 5, 0);
    await cut(h, 0);
    await cut(h + 7, 0);
    await cut(h + 16, 0);
    await cut(h + 16 + SEALED, CHUNK);
    await cut(h + 16 + 2 * SEALED, 2 * CHUNK, [1000]);
    await cut(h + 16 + 2 * SEALED + 15, 2 * CHUNK);
    // A chunk cut in the middle cannot be told apart from a corrupt one.
    const err = await expectCode(decrypt(enc.subarray(0, enc.length - 10), [a.identity]), "AGE_PAYLOAD_CORRUPT", 2 * CHUNK);
    expect(err.message).toMatch(/truncated/);
  });

  it("rejects data after the final chunk and an empty final chunk", async () => {
    const full = await encrypt(randomBytes(CHUNK), [a.recipient]);
    const err = await expectCode(decrypt(Buffer.concat([full, Buffer.from("x")]), [a.identity]), "AGE_PAYLOAD_CORRUPT");
    expect(err.message).toMatch(/after the final chunk/);
    const short = await encrypt(randomBytes(10), [a.recipient]);
    await expectCode(decrypt(Buffer.concat([short, Buffer.from("trailing")]), [a.identity]), "AGE_PAYLOAD_CORRUPT");
    const emptyLast = buildAgeFile({
      recipient: a.recipient,
      chunks: [
        { plaintext: randomBytes(CHUNK), last: false },
        { plaintext: Buffer.alloc(0), last: true },
      ],
    });
    await expectCode(decrypt(emptyLast, [a.identity]), "AGE_PAYLOAD_CORRUPT", CHUNK);
    const shortMiddle = buildAgeFile({
      recipient: a.recipient,
      chunks: [
        { plaintext: randomBytes(100), last: false },
        { plaintext: randomBytes(100), last: true },
      ],
    });
    await expectCode(decrypt(shortMiddle, [a.identity]), "AGE_PAYLOAD_CORRUPT");
  });
});

describe("typage interop", () => {
  const k = key();

  it.each([0, 1, 65536, 65537, 200_000])("typage decrypts our %i-byte files", async (size) => {
    const data = randomBytes(size);
    const d = new Decrypter();
    d.addIdentity(k.identity);
    expectBytes(Buffer.from(await d.decrypt(await encrypt(data, [k.recipient]))), data);
  });

  it.each([0, 1, 65536, 65537, 200_000])("we decrypt typage's %i-byte files", async (size) => {
    const data = randomBytes(size);
    const e = new Encrypter();
    e.addRecipient(k.recipient);
    expectBytes(await decryptOk(Buffer.from(await e.encrypt(data)), [k.identity], [777]), data);
  });

  it("exchanges keys with typage", async () => {
    const theirs = await typageGenerateIdentity();
    secrets.add(theirs);
    expect(recipientOf(theirs)).toBe(await typageIdentityToRecipient(theirs));
    expect(await typageIdentityToRecipient(k.identity)).toBe(k.recipient);
  });

  it("reports passphrase and post-quantum files as not matching", async () => {
    const e = new Encrypter();
    e.setPassphrase("correct horse battery staple");
    e.setScryptWorkFactor(4);
    const err = await expectCode(decrypt(Buffer.from(await e.encrypt("secret")), [k.identity]), "AGE_NO_IDENTITY_MATCH");
    expect(err.message).toMatch(/passphrase/);

    const pq = await typageGenerateHybridIdentity();
    secrets.add(pq);
    const e2 = new Encrypter();
    e2.addRecipient(await typageIdentityToRecipient(pq));
    const err2 = await expectCode(decrypt(Buffer.from(await e2.encrypt("secret")), [k.identity]), "AGE_NO_IDENTITY_MATCH");
    expect(err2.message).toMatch(/post-quantum/);
    expectKeyInvalid(() => parseIdentities(pq));
  });
});

describe("age CLI interop (the age and age-keygen CLIs are required)", () => {
  const k = key();
  let keyFile: string;
  beforeAll(() => {
    keyFile = tmpFile("ours.key", `# generated by lifeboat\n${k.identity}\n`);
  });

  it.each(SIZES)("age -d decrypts our %i-byte files", async (size) => {
    const data = randomBytes(size);
    const enc = tmpFile(`ours-${size}.age`, await encrypt(data, [k.recipient], [65536]));
    const out = execFileSync("age", ["-d", "-i", keyFile, enc], { maxBuffer: 64 << 20 });
    expect(out.equals(data)).toBe(true);
  });

  it.each(SIZES)("we decrypt age -r %i-byte files", async (size) => {
    const data = randomBytes(size);
    const plain = tmpFile(`plain-${size}`, data);
    const enc = tmpFile(`theirs-${size}.age`);
    execFileSync("age", ["-r", k.recipient, "-o", enc, plain]);
    expectBytes(await decryptOk(readFileSync(enc), [readFileSync(keyFile, "utf8")], [65536]), data);
  });

  it("interoperates with several recipients and age-keygen keys", async () => {
    const keygenFile = tmpFile("keygen.key");
    execFileSync("age-keygen", ["-o", keygenFile], { stdio: ["ignore", "ignore", "pipe"] });
    const keygenText = readFileSync(keygenFile, "utf8");
    for (const line of keygenText.split("\n")) if (line.startsWith("AGE-SECRET-KEY-")) secrets.add(line);
    const theirRecipient = execFileSync("age-keygen", ["-y", keygenFile], { encoding: "utf8" }).trim();
    const [theirs] = parseIdentities(keygenText);
    expect(theirs?.recipient).toBe(theirRecipient);
    expect(execFileSync("age-keygen", ["-y", keyFile], { encoding: "utf8" }).trim()).toBe(k.recipient);

    const data = randomBytes(150_000);
    // Ours → age, to both an age-keygen key and one of ours.
    const enc = tmpFile("multi.age", await encrypt(data, [theirRecipient, k.recipient]));
    expect(execFileSync("age", ["-d", "-i", keygenFile, enc], { maxBuffer: 1 << 24 }).equals(data)).toBe(true);
    expect(execFileSync("age", ["-d", "-i", keyFile, enc], { maxBuffer: 1 << 24 }).equals(data)).toBe(true);
    // age → ours.
    const plain = tmpFile("multi.plain", data);
    const enc2 = tmpFile("multi2.age");
    execFileSync("age", ["-r", k.recipient, "-r", theirRecipient, "-o", enc2, plain]);
    expectBytes(await decryptOk(readFileSync(enc2), [keygenText]), data);
    expectBytes(await decryptOk(readFileSync(enc2), [k.identity]), data);
  });

  it("age rejects what we reject: wrong key and tampered payload", async () => {
    const other = key();
    const enc = await encrypt(randomBytes(1000), [other.recipient]);
    const file = tmpFile("wrong.age", enc);
    expect(() => execFileSync("age", ["-d", "-i", keyFile, file], { stdio: "pipe" })).toThrow();
    await expectCode(decrypt(enc, [k.identity]), "AGE_NO_IDENTITY_MATCH");
  });
});
