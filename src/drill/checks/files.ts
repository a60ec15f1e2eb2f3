import { createHash } from "node:crypto";
import { createReadStream, promises as fs } from "node:fs";
import { dirname, isAbsolute, relative, resolve, sep } from "node:path";
import { LifeboatError } from "../../model/errors.js";
import type { FilesCheck } from "../../model/plan.js";
import type { CheckContext, CheckResult } from "./check.js";

/**
 * `verify: { files }`: paths that must exist, and files whose SHA-256 must
 * match, in a scratch folder (`directory`). Paths are relative to it and
 * must stay inside it, also through symbolic links (each path is resolved
 * with realpath and checked to be in the folder's realpath): an absolute
 * path, or one that leads outside, is a usage error naming it, before any
 * file is read. Symbolic links inside the folder are followed.
 *
 * Every missing file and every wrong hash is collected and reported in one
 * CHECK_FAILED (kind "verification"), each with its path and, for hashes,
 * the expected and the actual value. Files are hashed as streams.
 */
export async function runFilesCheck(check: FilesCheck, ctx: CheckContext): Promise<CheckResult> {
  const where = `files check on scratch "${check.on}"`;
  const handle = ctx.scratch(check.on);
  const directory = handle.connection.directory;
  if (!directory) {
    throw new LifeboatError("CHECK_SCRATCH_KIND", `scratch "${check.on}" is not a folder (it has no directory among its connection details); ${where} needs one`, {
      kind: "usage",
    });
  }
  const root = await fs.realpath(directory).catch((error: unknown) => {
    throw new LifeboatError("CHECK_FAILED", `the folder of scratch "${check.on}" (${directory}) cannot be read: ${(error as Error).message}`, { kind: "run", cause: error });
  });

  const expected = Object.entries(check.sha256);
  const invalid: string[] = [];
  for (const path of [...check.exist, ...expected.map(([p]) => p)]) {
    const problem = lexicalProblem(root, path);
    if (problem) invalid.push(problem);
  }
  for (const [path, hash] of expected) if (!/^[0-9a-f]{64}$/i.test(hash)) invalid.push(`the expected sha256 of "${path}" is not 64 hex digits`);
  // Through symbolic links: where each path really leads.
  const located = new Map<string, Located>();
  if (invalid.length === 0) {
    for (const path of new Set([...check.exist, ...expected.map(([p]) => p)])) {
      const found = await locate(root, path);
      if (found.kind === "outside") invalid.push(`"${path}" leads outside the folder through a symbolic link`);
      located.set(path, found);
    }
  }
  if (invalid.length > 0) {
    throw new LifeboatError("CHECK_PATH_INVALID", `${where}: ${unique(invalid).join("; ")}`, {
      kind: "usage",
      hint: "paths in a files check are relative to the scratch folder and must stay inside it",
    });
  }

  const problems: string[] = [];
  for (const path of check.exist) if (located.get(path)?.kind === "missing") problems.push(`missing: ${path}`);
  let matched = 0;
  for (const [path, hash] of expected) {
    const found = located.get(path)!;
    const want = hash.toLowerCase();
    if (found.kind !== "found") {
      if (!check.exist.includes(path)) problems.push(`missing: ${path} (expected sha256 ${want})`);
      continue;
    }
    const stat = await fs.stat(found.real);
    if (!stat.isFile()) {
      problems.push(`${path}: not a regular file, so it has no sha256 (expected ${want})`);
      continue;
    }
    const actual = await sha256File(found.real);
    if (actual === want) matched++;
    else problems.push(`${path}: sha256 is ${actual}; expected ${want}`);
  }
  if (problems.length > 0) {
    const count = problems.length === 1 ? "a problem" : `${problems.length} problems`;
    throw new LifeboatError("CHECK_FAILED", `${where} found ${count}:\n${problems.map((p) => `  ${p}`).join("\n")}`, {
      kind: "verification",
      details: { problems },
    });
  }
  const parts = [...(check.exist.length ? [`${check.exist.length} ${check.exist.length === 1 ? "path exists" : "paths exist"}`] : []), ...(expected.length ? [`${matched} sha256 ${matched === 1 ? "matches" : "match"}`] : [])];
  return { note: parts.join(", ") || "nothing to check", output: null };
}

type Located = { kind: "found"; real: string } | { kind: "missing" } | { kind: "outside" };

function lexicalProblem(root: string, path: string): string | undefined {
  if (path === "") return "an empty path";
  if (isAbsolute(path)) return `"${path}" is absolute; paths are relative to the folder`;
  if (!inside(root, resolve(root, path))) return `"${path}" leads outside the folder`;
  return undefined;
}

/** Where a relative path really leads: its realpath, or for a missing one, whether the part that exists stays inside. */
async function locate(root: string, path: string): Promise<Located> {
  const full = resolve(root, path);
  try {
    const real = await fs.realpath(full);
    return inside(root, real) ? { kind: "found", real } : { kind: "outside" };
  } catch (error) {
    if (!isMissing(error)) throw error;
  }
  for (let parent = dirname(full); inside(root, parent); parent = dirname(parent)) {
    try {
      return inside(root, await fs.realpath(parent)) ? { kind: "missing" } : { kind: "outside" };
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
  }
  return { kind: "missing" };
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

function isMissing(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR" || code === "ELOOP";
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

function unique(items: string[]): string[] {
  return [...new Set(items)];
}
