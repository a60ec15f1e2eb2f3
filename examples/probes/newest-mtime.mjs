#!/usr/bin/env node
// An rpo-probe for restored files: prints the newest modification time of
// any file under the folder given as argument, as an ISO 8601 time.
// Usage: node examples/probes/newest-mtime.mjs DIR
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

function newest(dir) {
  let best = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) best = Math.max(best, newest(path));
    else if (entry.isFile()) best = Math.max(best, statSync(path).mtimeMs);
  }
  return best;
}

const dir = process.argv[2];
if (!dir) {
  process.stderr.write("usage: newest-mtime.mjs DIR\n");
  process.exit(2);
}
const mtime = newest(dir);
if (mtime === 0) {
  process.stderr.write(`no files under ${dir}\n`);
  process.exit(1);
}
process.stdout.write(`${new Date(mtime).toISOString()}\n`);
