#!/usr/bin/env node
// The quick start: back up the sample folder to the embedded default store,
// list the catalog, verify the backup, restore it into ./restored-sample and
// compare it with the original. Every step runs the real CLI.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const cli = join(root, "dist", "cli", "main.js");
const identity = join(root, ".lifeboat", "demo-identity.txt");
const restored = join(root, "restored-sample");

function step(title, args, { allowFail = false } = {}) {
  process.stdout.write(`\n$ lifeboat ${args.join(" ")}    # ${title}\n`);
  const env = { ...process.env, LIFEBOAT_LOG_LEVEL: process.env.LIFEBOAT_LOG_LEVEL ?? "warn" };
  const result = spawnSync(process.execPath, [cli, ...args], { cwd: root, stdio: "inherit", env });
  if (result.status !== 0 && !allowFail) {
    process.stderr.write(`demo failed at: lifeboat ${args.join(" ")} (exit ${result.status})\n`);
    process.exit(result.status ?? 1);
  }
  return result.status;
}

if (!existsSync(identity)) step("create the demo age identity", ["keygen", "--output", ".lifeboat/demo-identity.txt"]);
step("check the config", ["validate"]);
step("back up examples/sample (tar | zstd | age → .lifeboat/store)", ["backup", "sample"]);
step("the catalog, read from the store", ["list"]);
step("read the backup back: size, SHA-256, decryption", ["verify", "sample"]);
rmSync(restored, { recursive: true, force: true });
step("restore into ./restored-sample", ["restore", "sample", "--to", "restored-sample"]);

const original = snapshot(join(root, "examples", "sample"));
const back = snapshot(join(restored, "sample"));
if (JSON.stringify(original) !== JSON.stringify(back)) {
  process.stderr.write("demo failed: the restored folder differs from the original\n");
  process.exit(1);
}
process.stdout.write("\nrestored-sample/sample matches examples/sample (except the excluded *.tmp file). Demo complete.\n");

/** Relative path → content hash of every file, skipping the *.tmp files the job excludes. */
function snapshot(dir, prefix = "") {
  const out = {};
  for (const name of readdirSync(dir).sort()) {
    if (name.endsWith(".tmp")) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) Object.assign(out, snapshot(path, `${prefix}${name}/`));
    else out[`${prefix}${name}`] = createHash("sha256").update(readFileSync(path)).digest("hex");
  }
  return out;
}
