import { LifeboatError } from "../model/errors.js";
import type { ObjectStore } from "../storage/store.js";

/**
 * Reads a small object (a manifest, a verification record, a drill report)
 * whole, refusing one larger than `maxBytes` before it fills memory.
 */
export async function readSmallObject(store: ObjectStore, key: string, maxBytes: number): Promise<Buffer> {
  const stream = await store.get(key);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      stream.destroy();
      throw new LifeboatError("CATALOG_JSON_INVALID", `"${key}" is larger than ${Math.round(maxBytes / 1024 / 1024)} MiB`, { kind: "verification" });
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** A small object parsed as JSON; malformed JSON is a CATALOG_JSON_INVALID verification error. */
export async function readJsonObject(store: ObjectStore, key: string, maxBytes: number): Promise<unknown> {
  const body = await readSmallObject(store, key, maxBytes);
  try {
    return JSON.parse(body.toString("utf8")) as unknown;
  } catch {
    throw new LifeboatError("CATALOG_JSON_INVALID", `"${key}" is not valid JSON`, { kind: "verification" });
  }
}
