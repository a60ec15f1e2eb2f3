import { accessSync, constants, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { LifeboatError } from "../model/errors.js";
import { runTool, type SystemUser } from "./spawn.js";

/**
 * Finding the programs Lifeboat wraps, and the users it runs them as.
 * A tool is looked up in the configured folder (`bin`) when there is one,
 * then on PATH, then in the fallback folders a kind knows about (for
 * PostgreSQL: `pg_config --bindir`, where Debian keeps initdb and pg_ctl).
 */
export interface ToolSearch {
  /** The configured folder; when given, the tool must be there. */
  bin?: string | undefined;
  /** Folders to try after PATH, computed only when needed. */
  fallback?: (() => Promise<string[]>) | undefined;
}

export async function locateTool(names: string | readonly string[], search: ToolSearch = {}): Promise<string> {
  const candidates = typeof names === "string" ? [names] : names;
  if (search.bin) {
    for (const name of candidates) if (isExecutable(join(search.bin, name))) return join(search.bin, name);
    throw notFound(candidates, `in ${search.bin} (bin)`);
  }
  const path = (process.env.PATH ?? "").split(delimiter).filter(Boolean);
  for (const name of candidates) for (const dir of path) if (isExecutable(join(dir, name))) return join(dir, name);
  const more = search.fallback ? await search.fallback().catch(() => [] as string[]) : [];
  for (const name of candidates) for (const dir of more) if (isExecutable(join(dir, name))) return join(dir, name);
  throw notFound(candidates, more.length ? `on PATH or in ${more.join(", ")}` : "on PATH");
}

let pgBindir: Promise<string[]> | undefined;

/** `pg_config --bindir`, where PostgreSQL's server programs live on Debian. */
export function pgConfigBindir(): Promise<string[]> {
  pgBindir ??= runTool({ argv: ["pg_config", "--bindir"], context: "locating PostgreSQL programs" }).then(
    (r) => [r.stdout.trim()].filter(Boolean),
    () => [],
  );
  return pgBindir;
}

export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function notFound(names: readonly string[], where: string): LifeboatError {
  return new LifeboatError("TOOL_NOT_FOUND", `${names.join(" or ")} was not found ${where}`, {
    kind: "run",
    hint: `install it, put it on PATH, or set bin: to the folder that holds it`,
  });
}

/** Whether this process runs as root (servers that refuse root then run as `runAs`). */
export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/** A system user by name, from the passwd database (via `getent`, falling back to /etc/passwd). */
export async function lookupUser(name: string): Promise<SystemUser> {
  const line = await runTool({ argv: ["getent", "passwd", name], context: `looking up user "${name}"` }).then(
    (r) => r.stdout.trim(),
    () => readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith(`${name}:`)) ?? "",
  );
  const fields = line.split(":");
  if (fields.length < 7 || fields[0] !== name) {
    throw new LifeboatError("USER_NOT_FOUND", `user "${name}" does not exist`, {
      kind: "run",
      hint: `create it (useradd --system ${name}) or set runAs: to an existing unprivileged user`,
    });
  }
  return { name, uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5] || "/" };
}
