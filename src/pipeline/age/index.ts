/** age v1 (X25519) encryption and decryption on node:crypto, as Node streams. */
export { createAgeEncryptStream } from "./encrypt.js";
export { createAgeDecryptStream, type AgeDecryptOptions } from "./decrypt.js";
export { generateIdentity, parseIdentities, parseRecipient, recipientOf, type AgeIdentity } from "./keys.js";
