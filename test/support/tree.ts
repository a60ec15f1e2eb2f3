import { createHash } from "node:crypto";
import { lstatSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { join, relative } from "node:path";

/** A comparable snapshot of a folder: relative path → type and content hash. */
export function snapshot(root: string, options: { exclude?: RegExp } = {}): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const rel = relative(root, path);
      if (options.exclude?.test(rel)) continue;
      const stat = lstatSync(path);
      if (stat.isSymbolicLink()) out[rel] = `link ${readlinkSync(path)}`;
      else if (stat.isDirectory()) {
        out[rel] = "dir";
        walk(path);
      } else out[rel] = `file ${createHash("sha256").update(readFileSync(path)).digest("hex")} ${(stat.mode & 0o777).toString(8)}`;
    }
  };
  walk(root);
  return out;
}
