import { readFileSync, statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type { Path } from "./yaml-document.js";

/**
 * `${env:NAME}` and `${file:PATH}` references, the only way secrets enter a
 * config. A reference may be the whole value or part of it
 * (`postgres://app:${env:PGPASSWORD}@db/orders`). `${file:…}` paths are relative
 * to the config file's folder; the file's trailing newline is dropped.
 *
 * Other `${…}` forms without a scheme (`${scratch.db.url}`) belong to plans and
 * are left alone; an unknown scheme (`${vault:…}`) is an error.
 */
const REFERENCE = /\$\{([a-z]+):([^}]*)\}/g;
const MAX_REFERENCED_FILE_BYTES = 64 * 1024;

export interface ReferenceProblem {
  path: Path;
  message: string;
}

export interface ResolvedReferences {
  data: unknown;
  /** Paths (joined with ".") whose value contained at least one reference. */
  referencedPaths: Set<string>;
  /** Every value a reference produced, with where and how, so callers can register secrets. */
  values: Array<{ path: Path; scheme: string; value: string }>;
  problems: ReferenceProblem[];
}

export interface ReferenceContext {
  baseDir: string;
  env: NodeJS.ProcessEnv;
}

export function resolveReferences(data: unknown, context: ReferenceContext): ResolvedReferences {
  const referencedPaths = new Set<string>();
  const values: ResolvedReferences["values"] = [];
  const problems: ReferenceProblem[] = [];

  const visit = (value: unknown, path: Path): unknown => {
    if (typeof value === "string") {
      if (!value.includes("${")) return value;
      let hit = false;
      const out = value.replace(REFERENCE, (whole, scheme: string, arg: string) => {
        hit = true;
        const resolved = resolveOne(scheme, arg.trim(), context);
        if ("problem" in resolved) {
          problems.push({ path, message: resolved.problem });
          return whole;
        }
        values.push({ path, scheme, value: resolved.value });
        return resolved.value;
      });
      if (hit) referencedPaths.add(path.join("."));
      return out;
    }
    if (Array.isArray(value)) return value.map((v, i) => visit(v, [...path, i]));
    if (value && typeof value === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = visit(v, [...path, k]);
      return out;
    }
    return value;
  };

  return { data: visit(data, []), referencedPaths, values, problems };
}

function resolveOne(scheme: string, arg: string, context: ReferenceContext): { value: string } | { problem: string } {
  switch (scheme) {
    case "env": {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(arg)) return { problem: `"${arg}" is not a valid environment variable name` };
      const value = context.env[arg];
      if (value === undefined) return { problem: `environment variable "${arg}" is not set` };
      return { value };
    }
    case "file": {
      if (arg === "") return { problem: "${file:…} needs a path" };
      const path = isAbsolute(arg) ? arg : resolve(context.baseDir, arg);
      try {
        const stat = statSync(path);
        if (!stat.isFile()) return { problem: `${arg} is not a regular file` };
        if (stat.size > MAX_REFERENCED_FILE_BYTES) return { problem: `${arg} is larger than 64 KiB` };
        return { value: readFileSync(path, "utf8").replace(/\r?\n$/, "") };
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        return { problem: code === "ENOENT" ? `file "${arg}" does not exist (relative paths start at the config file's folder)` : `cannot read file "${arg}" (${code ?? "error"})` };
      }
    }
    default:
      return { problem: `unknown reference "\${${scheme}:…}"; expected \${env:NAME} or \${file:PATH}` };
  }
}
