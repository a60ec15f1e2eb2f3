/**
 * Bech32 (BIP-173, not bech32m) as used by age: no 90-character length limit,
 * and strings are either all lower case or all upper case, with the checksum
 * always computed over the lower-case form. age recipients are lower case
 * (`age1…`), secret keys upper case (`AGE-SECRET-KEY-1…`).
 *
 * Errors thrown here are plain `Error`s whose messages never repeat the input
 * (it may be a secret key); callers wrap them into user-facing errors.
 */

const CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3] as const;

/** Lookup from a lower-case character code to its 5-bit value, -1 when not in the charset. */
const CHARSET_REV: Int8Array = (() => {
  const rev = new Int8Array(128).fill(-1);
  for (let i = 0; i < CHARSET.length; i++) rev[CHARSET.charCodeAt(i)] = i;
  return rev;
})();

function polymod(values: ArrayLike<number>): number {
  let chk = 1;
  for (let i = 0; i < values.length; i++) {
    const top = chk >>> 25;
    chk = (((chk & 0x1ffffff) << 5) ^ (values[i] as number)) >>> 0;
    for (let j = 0; j < 5; j++) {
      if ((top >>> j) & 1) chk = (chk ^ (GENERATOR[j] as number)) >>> 0;
    }
  }
  return chk;
}

function hrpExpand(hrp: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) >>> 5);
  out.push(0);
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) & 31);
  return out;
}

function createChecksum(hrp: string, data: number[]): number[] {
  const mod = polymod([...hrpExpand(hrp), ...data, 0, 0, 0, 0, 0, 0]) ^ 1;
  const out: number[] = [];
  for (let i = 0; i < 6; i++) out.push((mod >>> (5 * (5 - i))) & 31);
  return out;
}

function convertBits(data: ArrayLike<number>, from: number, to: number, pad: boolean): number[] {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  const maxv = (1 << to) - 1;
  for (let i = 0; i < data.length; i++) {
    const value = data[i] as number;
    if (value < 0 || value >> from !== 0) throw new Error("invalid data value");
    acc = ((acc << from) | value) & 0xffffff;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((acc >>> bits) & maxv);
    }
  }
  if (pad) {
    if (bits > 0) out.push((acc << (to - bits)) & maxv);
  } else if (bits >= from) {
    throw new Error("illegal zero padding");
  } else if (((acc << (to - bits)) & maxv) !== 0) {
    throw new Error("non-zero padding");
  }
  return out;
}

function checkHrp(hrp: string): void {
  if (hrp.length === 0) throw new Error("empty human-readable part");
  for (let i = 0; i < hrp.length; i++) {
    const c = hrp.charCodeAt(i);
    if (c < 33 || c > 126) throw new Error("invalid character in human-readable part");
  }
}

/**
 * Encodes `data` with the human-readable part `hrp`. The result is lower case
 * unless `upper` is set (age secret keys are upper case). `hrp` must not mix
 * cases.
 */
export function bech32Encode(hrp: string, data: Uint8Array, upper = false): string {
  checkHrp(hrp);
  const lowerHrp = hrp.toLowerCase();
  if (hrp !== lowerHrp && hrp !== hrp.toUpperCase()) throw new Error("mixed-case human-readable part");
  const values = convertBits(data, 8, 5, true);
  const checksum = createChecksum(lowerHrp, values);
  let out = lowerHrp + "1";
  for (const v of values) out += CHARSET[v];
  for (const v of checksum) out += CHARSET[v];
  return upper ? out.toUpperCase() : out;
}

export interface Bech32Decoded {
  /** The human-readable part in the case it was written in. */
  hrp: string;
  data: Uint8Array;
}

/**
 * Decodes a bech32 string. Rejects mixed case, characters outside the
 * charset, a bad checksum and invalid padding. The returned `hrp` keeps the
 * case of the input so callers can enforce age's case rules.
 */
export function bech32Decode(s: string): Bech32Decoded {
  const lower = s.toLowerCase();
  if (s !== lower && s !== s.toUpperCase()) throw new Error("mixed case");
  const pos = s.lastIndexOf("1");
  if (pos < 1 || pos + 7 > s.length) throw new Error("separator '1' at invalid position");
  const hrp = s.slice(0, pos);
  checkHrp(hrp);
  const values: number[] = [];
  for (let i = pos + 1; i < lower.length; i++) {
    const c = lower.charCodeAt(i);
    const v = c < 128 ? (CHARSET_REV[c] as number) : -1;
    if (v === -1) throw new Error("invalid character in data part");
    values.push(v);
  }
  if (polymod([...hrpExpand(lower.slice(0, pos)), ...values]) !== 1) throw new Error("invalid checksum");
  const data = convertBits(values.slice(0, values.length - 6), 5, 8, false);
  return { hrp, data: Uint8Array.from(data) };
}
