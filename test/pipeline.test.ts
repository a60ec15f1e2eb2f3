import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { CompressionKind } from "../src/model/job.js";
import { generateIdentity, parseIdentities } from "../src/pipeline/age/index.js";
import { decodeChain, encodeChain } from "../src/pipeline/codec-chain.js";
import { decompressStage } from "../src/pipeline/compression.js";

const key = generateIdentity();
const identities = parseIdentities(key.identity);

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Half compressible text, half random bytes, like a database dump. */
function dumpLike(size: number): Buffer {
  const text = Buffer.from("INSERT INTO orders VALUES (42, 'customer-0042', 1999, '2026-11-21');\n".repeat(Math.ceil(size / 60) + 1));
  return Buffer.concat([text.subarray(0, Math.floor(size / 2)), randomBytes(size - Math.floor(size / 2))]);
}

describe("the codec chain", () => {
  const codecs: Array<[CompressionKind, boolean]> = [["zstd", true], ["zstd", false], ["gzip", true], ["gzip", false], ["none", true], ["none", false]];
  const sizes = [0, 1, 65_536, 65_537, 5 * 1024 * 1024 + 1];

  for (const [compression, encrypt] of codecs) {
    it.each(sizes)(`round-trips %i bytes with ${compression}${encrypt ? " + age" : ""}`, async (size) => {
      const data = dumpLike(size);
      const encoded = encodeChain(Readable.from(size ? [data] : []), { compression, recipients: encrypt ? [key.recipient] : [], context: "test" });
      const stored = await collect(encoded.output);
      await encoded.done;
      expect(encoded.sourceTap.sizeBytes).toBe(size);
      expect(encoded.storedTap.sizeBytes).toBe(stored.length);
      expect(encoded.storedTap.sha256()).toBe(createHash("sha256").update(stored).digest("hex"));

      const decoded = decodeChain(Readable.from([stored]), { codec: ["stream", ...encoded.codec], identities, context: "test" });
      const back = await collect(decoded.output);
      await decoded.done;
      expect(back.equals(data)).toBe(true);
      expect(decoded.storedTap.sha256()).toBe(encoded.storedTap.sha256());
    });
  }

  it.each([
    ["another hash", (b: Buffer) => Buffer.from(b.map((x, i) => (i === 10 ? x ^ 1 : x)))],
    ["fewer bytes", (b: Buffer) => b.subarray(0, b.length - 1)],
    ["more bytes", (b: Buffer) => Buffer.concat([b, Buffer.from([0])])],
  ] as const)("fails instead of ending when the stored bytes have %s than expected, so no consumer commits them", async (_case, damage) => {
    const stored = await collect(encodeChain(Readable.from([dumpLike(10_000)]), { compression: "none", recipients: [], context: "test" }).output);
    const expected = { sizeBytes: stored.length, sha256: createHash("sha256").update(stored).digest("hex"), mismatch: () => new Error("wrong bytes") };
    const decoded = decodeChain(Readable.from([damage(stored)]), { codec: ["stream"], identities, context: "test", expect: expected });
    let ended = false;
    decoded.output.on("end", () => (ended = true)).resume();
    await expect(decoded.done).rejects.toThrow("wrong bytes");
    expect(ended).toBe(false);
  });

  it("fails when zstd rejects its input, naming the tool", async () => {
    const decoded = decodeChain(Readable.from([Buffer.from("this is not zstd data")]), { codec: ["stream", "zstd"], identities, context: "reading a test object" });
    decoded.output.resume();
    await expect(decoded.done).rejects.toMatchObject({ code: "TOOL_FAILED", message: expect.stringContaining("zstd failed with exit code 1 (decompressing (reading a test object))") });
  });

  it("lets a decompressing tool exit when its reader goes away (no tool is left blocked on a full pipe)", async () => {
    const compressed = await collect(
      encodeChain(Readable.from([randomBytes(3 * 1024 * 1024)]), { compression: "zstd", recipients: [], context: "test" }).output,
    );
    for (let i = 0; i < 10; i++) {
      const stage = decompressStage("zstd", "test");
      Readable.from([compressed]).pipe(stage.stream);
      stage.stream.once("data", () => stage.stream.destroy());
      // Settles (either way) instead of hanging: the tool saw its pipes close.
      await Promise.allSettled([stage.done]);
    }
  });
});
