import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { BackupJob, CommandSource, FilesSource } from "../../src/model/job.js";

/** Builders for jobs and fixture trees, so tests read like the spec. */
export function filesJob(paths: string[], overrides: Partial<BackupJob> = {}): BackupJob {
  const source: FilesSource = { type: "files", paths, exclude: [] };
  return { name: "files-job", source, storage: "test", compression: "zstd", encrypt: true, allowEmpty: false, overlap: "skip", catchUp: "one", ...overrides };
}

export function commandJob(command: string[], restore: string[] | undefined, overrides: Partial<BackupJob> = {}): BackupJob {
  const source: CommandSource = { type: "command", command, restore, env: {} };
  return { name: "command-job", source, storage: "test", compression: "zstd", encrypt: true, allowEmpty: false, overlap: "skip", catchUp: "one", ...overrides };
}

export function tempDir(label = "lifeboat-test-"): string {
  return mkdtempSync(join(tmpdir(), label));
}

/** A small but varied tree: nested folders, text, binary, an empty file, a symlink inside the tree, non-ASCII names. */
export function makeTree(root: string): string {
  const dir = join(root, "tree");
  mkdirSync(join(dir, "docs", "deep", "deeper"), { recursive: true });
  mkdirSync(join(dir, "empty-folder"), { recursive: true });
  writeFileSync(join(dir, "docs", "readme.txt"), "hello lifeboat\n".repeat(100));
  writeFileSync(join(dir, "docs", "deep", "deeper", "data.bin"), randomBytes(300_000));
  writeFileSync(join(dir, "empty.txt"), "");
  writeFileSync(join(dir, "ünïcödé名前.txt"), "non-ascii name\n");
  writeFileSync(join(dir, "cache.tmp"), "excluded\n");
  return dir;
}
