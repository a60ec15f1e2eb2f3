#!/usr/bin/env node
// The quick start: back up the sample folder to the embedded default store,
// list the catalog, verify the backup, then run the demo drill: restore the
// backup into a scratch folder, check it, measure RTO and RPO, write the
// reports, and show the drill history; then one idempotent scheduled run
// (what the daemon and external schedulers do), the status table and a prune
// plan. Every step runs the real CLI.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const cli = join(root, "dist", "cli", "main.js");
const identity = join(root, ".lifeboat", "demo-identity.txt");

function step(title, args) {
  process.stdout.write(`\n$ lifeboat ${args.join(" ")}    # ${title}\n`);
  const env = { ...process.env, LIFEBOAT_LOG_LEVEL: process.env.LIFEBOAT_LOG_LEVEL ?? "warn" };
  const result = spawnSync(process.execPath, [cli, ...args], { cwd: root, stdio: "inherit", env });
  if (result.status !== 0) {
    process.stderr.write(`demo failed at: lifeboat ${args.join(" ")} (exit ${result.status})\n`);
    process.exit(result.status ?? 1);
  }
}

if (!existsSync(identity)) step("create the demo age identity", ["keygen", "--output", ".lifeboat/demo-identity.txt"]);
step("check the config and the demo plan", ["validate"]);
step("back up examples/sample (tar | zstd | age → .lifeboat/store)", ["backup", "sample"]);
step("the catalog, read from the store", ["list"]);
step("read the backup back: size, SHA-256, decryption", ["verify", "sample"]);
step("the drill in plans/demo.yaml: restore into scratch, check, measure RTO and RPO", ["drill", "demo"]);
step("every demo drill so far, from the store", ["report", "demo", "--history"]);
step("one scheduled run, as a Kubernetes CronJob or systemd timer would start it", ["run", "sample", "--scheduled-at", "auto"]);
step("the same slot again: it already ran, so nothing happens", ["run", "sample", "--scheduled-at", "auto"]);
step("per job: last good backup, RPO exposure, next run, last drill", ["status"]);
step("what the retention policy would remove, and why each backup stays", ["prune", "--dry-run"]);
process.stdout.write("\nDemo complete. Open the report.html printed above in a browser to see the drill's timeline.\n");
