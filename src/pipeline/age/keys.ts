/**
 * age X25519 keys: parsing recipients (`age1…`) and identity files
 * (`AGE-SECRET-KEY-1…`), generating identities, and the raw X25519 operations
 * on node:crypto KeyObjects shared by encryption and decryption.
 *
 * Secret key text never appears in error messages, `cause`s or `details`.
 */
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from "node:crypto";
import { LifeboatError } from "../../model/errors.js";
import { bech32Decode, bech32Encode } from "./bech32.js";

const RECIPIENT_HRP = "age";
const IDENTITY_HRP = "AGE-SECRET-KEY-";

/** DER prefixes that turn 32 raw X25519 bytes into PKCS#8 / SPKI documents. */
const PKCS8_X25519_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI_X25519_PREFIX = Buffer.from("302a300506032b656e032100", "hex");

/**
 * A parsed X25519 identity. The secret lives only inside a node:crypto
 * `KeyObject`, so logging or inspecting an identity never prints it.
 */
export interface AgeIdentity {
  /** The matching public recipient, `age1…`. */
  readonly recipient: string;
  /** Raw 32-byte X25519 public key. */
  readonly publicKey: Uint8Array;
  /** X25519 private key. */
  readonly privateKey: KeyObject;
}

function keyInvalid(message: string, hint?: string): LifeboatError {
  return new LifeboatError("AGE_KEY_INVALID", message, { kind: "usage", ...(hint ? { hint } : {}) });
}

/**
 * A short, secret-free note on what a rejected string looks like when it is
 * some other kind of key than `expected`, or `undefined`.
 */
function describeOtherKey(s: string, expected: "recipient" | "identity"): string | undefined {
  const t = s.trim();
  if (/^AGE-SECRET-KEY-PQ-1/i.test(t)) return "it looks like a post-quantum secret key, which is not supported";
  if (/^AGE-PLUGIN-/i.test(t)) return "it looks like an age plugin identity, which is not supported";
  if (/^age1pq1/i.test(t)) return "it looks like a post-quantum recipient, which is not supported";
  if (/^(ssh-|ecdsa-)/.test(t)) return "it looks like an ssh key, which is not supported";
  if (expected === "recipient" && /^AGE-SECRET-KEY-1/i.test(t)) {
    return "it looks like a secret key; use its public key (age1…) as the recipient";
  }
  if (expected === "identity" && /^age1/i.test(t)) return "it looks like a public recipient, not a secret key";
  return undefined;
}

export function x25519PrivateKeyFromRaw(secret: Uint8Array): KeyObject {
  return createPrivateKey({
    key: Buffer.concat([PKCS8_X25519_PREFIX, secret]),
    format: "der",
    type: "pkcs8",
  });
}

export function x25519PublicKeyFromRaw(publicKey: Uint8Array): KeyObject {
  return createPublicKey({
    key: Buffer.concat([SPKI_X25519_PREFIX, publicKey]),
    format: "der",
    type: "spki",
  });
}

/** Raw 32-byte public key of an X25519 private or public KeyObject. */
export function x25519RawPublicKey(key: KeyObject): Buffer {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  return pub.export({ type: "spki", format: "der" }).subarray(SPKI_X25519_PREFIX.length);
}

/**
 * X25519(privateKey, publicKey). Returns `null` when the shared secret would
 * be all zeros (a low-order point), which age requires rejecting.
 */
export function x25519(privateKey: KeyObject, publicKey: Uint8Array): Buffer | null {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey, publicKey: x25519PublicKeyFromRaw(publicKey) });
  } catch {
    // OpenSSL refuses to derive an all-zero shared secret.
    return null;
  }
  let acc = 0;
  for (let i = 0; i < shared.length; i++) acc |= shared[i] as number;
  return acc === 0 ? null : shared;
}

/** Parses an `age1…` X25519 recipient into its 32 raw bytes. */
export function parseRecipient(s: string): Uint8Array {
  const what = describeOtherKey(s, "recipient");
  let decoded;
  try {
    decoded = bech32Decode(s.trim());
  } catch (error) {
    throw keyInvalid(
      `invalid age recipient (${what ?? (error as Error).message})`,
      "an age recipient is the public key printed by age-keygen, starting with age1",
    );
  }
  if (decoded.hrp !== RECIPIENT_HRP || decoded.data.length !== 32) {
    throw keyInvalid(
      `invalid age recipient (${what ?? "not an age1… X25519 recipient"})`,
      "an age recipient is the public key printed by age-keygen, starting with age1",
    );
  }
  return decoded.data;
}

function parseIdentityLine(line: string, lineNumber: number): AgeIdentity {
  const what = describeOtherKey(line, "identity");
  const hint = "an age identity file holds secret keys starting with AGE-SECRET-KEY-1, as written by age-keygen";
  let decoded;
  try {
    decoded = bech32Decode(line);
  } catch (error) {
    throw keyInvalid(
      `invalid age identity at line ${lineNumber} (${what ?? (error as Error).message})`,
      hint,
    );
  }
  if (decoded.hrp !== IDENTITY_HRP || decoded.data.length !== 32) {
    throw keyInvalid(
      `invalid age identity at line ${lineNumber} (${what ?? "not an AGE-SECRET-KEY-1… X25519 secret key"})`,
      hint,
    );
  }
  return identityFromSecret(decoded.data);
}

function identityFromSecret(secret: Uint8Array): AgeIdentity {
  const privateKey = x25519PrivateKeyFromRaw(secret);
  const publicKey = new Uint8Array(x25519RawPublicKey(privateKey));
  return Object.freeze({ recipient: bech32Encode(RECIPIENT_HRP, publicKey), publicKey, privateKey });
}

/**
 * Parses an age identity file: one secret key per line, `#` comments and
 * blank lines ignored, CRLF tolerated. At least one key is required.
 */
export function parseIdentities(text: string): AgeIdentity[] {
  const identities: AgeIdentity[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === "" || line.startsWith("#")) continue;
    identities.push(parseIdentityLine(line, i + 1));
  }
  if (identities.length === 0) {
    throw keyInvalid(
      "no age secret keys found in the identity",
      "an age identity file holds secret keys starting with AGE-SECRET-KEY-1, as written by age-keygen",
    );
  }
  return identities;
}

/** Generates a new X25519 identity and its recipient. */
export function generateIdentity(): { identity: string; recipient: string } {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  const jwk = privateKey.export({ format: "jwk" });
  if (typeof jwk.d !== "string") throw new Error("x25519 key export returned no private key");
  const secret = Buffer.from(jwk.d, "base64url");
  const pub = x25519RawPublicKey(publicKey);
  const identity = bech32Encode(IDENTITY_HRP, secret, true);
  secret.fill(0);
  return { identity, recipient: bech32Encode(RECIPIENT_HRP, pub) };
}

/** The `age1…` recipient of an `AGE-SECRET-KEY-1…` identity. */
export function recipientOf(identity: string): string {
  const parsed = parseIdentities(identity);
  if (parsed.length !== 1) throw keyInvalid("expected exactly one age secret key");
  return (parsed[0] as AgeIdentity).recipient;
}
