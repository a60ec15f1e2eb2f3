import { Duplex } from "node:stream";
import { createGunzip, createGzip } from "node:zlib";
import type { CompressionKind } from "../model/job.js";
import { startTool, type ToolExit, type ToolSpec } from "../exec/spawn.js";
import { LifeboatError } from "../model/errors.js";

/**
 * Compression stages. zstd runs as the real `zstd` binary (one process, one
 * core, the same stream `zstd -d` reads by hand); gzip uses node:zlib.
 * Each stage is a Duplex plus a promise that settles when its tool exits.
 */
export interface Stage {
  stream: Duplex;
  /** Resolves when the stage finished cleanly; rejects with the tool's error. */
  done: Promise<unknown>;
}

export const COMPRESSION_EXTENSION: Record<Exclude<CompressionKind, "none">, string> = { zstd: "zst", gzip: "gz" };

export function compressStage(kind: Exclude<CompressionKind, "none">, level: number | undefined, context: string, signal?: AbortSignal): Stage {
  if (kind === "gzip") {
    const stream = createGzip({ level: level ?? 6, chunkSize: 256 * 1024 });
    return { stream, done: Promise.resolve() };
  }
  const tool = zstdCompressTool(level, context, signal);
  return toolStage([...tool.argv], tool.context, signal);
}

/**
 * The zstd compressor as a tool, for sources that can pipe straight into it
 * (`-T0`: one worker per core; the output is a standard zstd stream).
 */
export function zstdCompressTool(level: number | undefined, context: string, signal?: AbortSignal): ToolSpec {
  return { argv: ["zstd", `-${level ?? 3}`, "-T0", "-q", "-c", "-"], context: `compressing (${context})`, ...(signal ? { signal } : {}) };
}

export function decompressStage(kind: Exclude<CompressionKind, "none">, context: string, signal?: AbortSignal): Stage {
  if (kind === "gzip") {
    const stream = createGunzip({ chunkSize: 256 * 1024 });
    return { stream, done: Promise.resolve() };
  }
  return toolStage(["zstd", "-d", "-q", "-c", "-"], `decompressing (${context})`, signal);
}

function toolStage(argv: string[], context: string, signal?: AbortSignal): Stage {
  const tool = startTool({ argv, context, stdin: "pipe", stdout: "pipe", ...(signal ? { signal } : {}) });
  const stream = Duplex.from({ writable: tool.stdin!, readable: tool.stdout! });
  // Destroying the wrapper does not close the child's pipes: without this a
  // tool whose reader went away blocks forever on a full pipe.
  let abandoned = false;
  stream.on("close", () => {
    // Closed before the tool's output was read to its end: whoever reads (or
    // feeds) the stage gave up, and the tool's failure that follows is its echo.
    abandoned = !tool.stdout!.readableEnded;
    tool.stdin!.destroy();
    tool.stdout!.destroy();
  });
  // Node's Duplex.from() emits an AbortError even on a plain destroy(). Failures
  // reach callers through the pipeline and `done`; an unheard event must not crash.
  stream.on("error", () => {});
  const done: Promise<ToolExit> = tool.done.catch((error: unknown) => {
    throw abandoned && error instanceof LifeboatError ? error.asEcho() : error;
  });
  done.catch(() => {});
  return { stream, done };
}
