import { applyPrune, planPrune, type PrunePlan, type PruneResult } from "../../catalog/prune.js";
import { formatDuration } from "../../model/duration.js";
import type { BackupJob, RetentionPolicy } from "../../model/job.js";
import { formatBytes } from "../../model/size.js";
import { renderTable } from "../../report/text-table.js";
import { RUN_RECORDS_KEPT_MS, RunLedger } from "../../schedule/run-ledger.js";
import type { Command } from "../command.js";
import type { Output } from "../output.js";
import { EXIT } from "../output.js";

export const pruneCommand: Command = {
  name: "prune",
  summary: "apply retention policies: forget old backups (manifest first), remove orphans and stale uploads",
  usage: "lifeboat prune [JOB…] [--dry-run] [--json]",
  options: { "dry-run": { type: "boolean" } },
  async run(ctx, { values, positionals }) {
    const config = ctx.loadConfig();
    const dryRun = values["dry-run"] === true;
    const jobs: BackupJob[] = positionals.length ? positionals.map((n) => ctx.job(n)) : Object.values(config.jobs);
    // Without job names every storage is cleaned, including storages no job writes to.
    const storages = positionals.length ? [...new Set(jobs.map((j) => j.storage))] : Object.keys(config.storage);
    const now = new Date();
    const plans: Array<{ name: string; plan: PrunePlan }> = [];
    for (const name of storages) {
      const { store, layout } = await ctx.storeNamed(name);
      const plan = await planPrune({
        store,
        layout,
        jobs: jobs.filter((j) => j.storage === name),
        now,
        orphanGraceMs: config.orphanGraceMs,
        // Backups being written right now (by a daemon or `lifeboat run`, on any host) are left alone.
        activeBackupFolders: await new RunLedger({ store, layout, leaseMs: config.daemon.leaseMs, log: ctx.log }).activeBackupFolders(),
        wholeStorage: positionals.length === 0,
      });
      plans.push({ name, plan });
    }

    if (dryRun) {
      if (ctx.output.json) ctx.output.printJson({ dryRun: true, storages: plans.map(({ name, plan }) => ({ name, ...plan })) });
      else for (const { name, plan } of plans) printPlan(ctx.output, name, plan);
      return EXIT.ok;
    }

    const results: Array<{ name: string; result: PruneResult }> = [];
    for (const { name, plan } of plans) {
      const { store, layout } = await ctx.storeNamed(name);
      results.push({ name, result: await applyPrune(plan, { store, log: ctx.log, now: new Date() }) });
      // The idempotency records of long-past slots go too (nothing can still be running there).
      const ledger = new RunLedger({ store, layout, leaseMs: config.daemon.leaseMs, log: ctx.log });
      for (const job of plan.jobs) {
        const forgotten = await ledger.forgetRunRecords("backup", job.job, new Date(now.getTime() - RUN_RECORDS_KEPT_MS));
        if (forgotten > 0) ctx.log.info({ job: job.job, runRecords: forgotten }, "old run records removed");
      }
    }
    if (ctx.output.json) ctx.output.printJson({ dryRun: false, storages: results.map(({ name, result }) => ({ name, ...result })) });
    else for (const { name, result } of results) printResult(ctx.output, name, plans.find((p) => p.name === name)!.plan, result);
    return results.some((r) => r.result.failed > 0) ? EXIT.run : EXIT.ok;
  },
};

function describePolicy(policy: RetentionPolicy | undefined): string {
  const parts = Object.entries(policy ?? {}).filter(([, v]) => v !== undefined && v !== 0).map(([k, v]) => `${k} ${v}`);
  return parts.length ? parts.join(", ") : "no retention policy: every backup is kept";
}

function time(iso: string | undefined): string {
  return iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z") : "-";
}

function printPlan(out: Output, name: string, plan: PrunePlan): void {
  out.out(`storage "${name}" (${plan.storage}), dry run: nothing is changed`);
  let forget = 0;
  let forgetBytes = 0;
  for (const job of plan.jobs) {
    out.out("");
    out.out(`job "${job.job}": ${describePolicy(job.policy)}`);
    if (job.backups.length === 0) out.out("  no backups");
    else {
      out.out(
        indent(
          renderTable(
            ["ID", "CONSISTENT AT (UTC)", "ACTION", "WHY KEPT"],
            job.backups.map((b) => [b.id, time(b.consistentAt), b.decision, b.reasons.join(", ")]),
          ),
        ),
      );
    }
    for (const b of job.backups.filter((b) => b.decision === "forget")) {
      forget++;
      forgetBytes += b.sizeBytes;
    }
    for (const o of job.orphans) {
      out.out(o.decision === "remove"
        ? `  orphan ${o.folder} would be removed: ${plural(o.objects.length, "object")}, ${formatBytes(o.sizeBytes)}, newest ${time(o.newestAt)}`
        : `  orphan ${o.folder} kept: ${o.reason} (${plural(o.objects.length, "object")}, newest ${time(o.newestAt)})`);
    }
  }
  for (const u of plan.uploads) {
    out.out(u.decision === "abort"
      ? `stale upload of ${u.key} would be aborted (started ${time(u.startedAt?.toISOString())})`
      : `upload of ${u.key} kept: ${u.reason} (started ${time(u.startedAt?.toISOString())})`);
  }
  const orphans = plan.jobs.flatMap((j) => j.orphans).filter((o) => o.decision === "remove").length;
  const uploads = plan.uploads.filter((u) => u.decision === "abort").length;
  out.out("");
  out.out(`would forget ${plural(forget, "backup")} (${formatBytes(forgetBytes)}), remove ${plural(orphans, "orphan folder")} and abort ${plural(uploads, "stale upload")} (orphan grace ${formatDuration(plan.orphanGraceMs)})`);
}

function printResult(out: Output, name: string, plan: PrunePlan, result: PruneResult): void {
  out.out(`storage "${name}" (${result.storage})`);
  for (const job of plan.jobs) {
    const rows = result.backups.filter((b) => b.job === job.job);
    out.out("");
    out.out(`job "${job.job}": ${describePolicy(job.policy)}`);
    if (rows.length === 0) out.out("  no backups");
    else {
      out.out(
        indent(
          renderTable(
            ["ID", "CONSISTENT AT (UTC)", "ACTION", "REASONS"],
            rows.map((b) => [b.id, time(b.consistentAt), b.action, [...b.reasons, ...(b.error ? [b.error.message] : [])].join(", ")]),
          ),
        ),
      );
    }
    for (const o of result.orphans.filter((o) => o.job === job.job)) {
      out.out(`  orphan ${o.folder}: ${o.action}${o.reason ? ` (${o.reason})` : ""}${o.error ? `: ${o.error.message}` : ""}`);
    }
  }
  for (const u of result.uploads) out.out(`upload of ${u.key}: ${u.action}${u.reason ? ` (${u.reason})` : ""}${u.error ? `: ${u.error.message}` : ""}`);
  const count = (action: string) => result.backups.filter((b) => b.action === action).length;
  out.out("");
  out.out(
    `forgot ${plural(count("forgotten"), "backup")}, ${count("retained-by-lock")} retained by object lock, removed ${plural(result.orphans.filter((o) => o.action === "removed").length, "orphan folder")}, aborted ${plural(result.uploads.filter((u) => u.action === "aborted").length, "stale upload")}, freed ${formatBytes(result.bytesFreed)}`,
  );
  if (result.failed > 0) out.err(`error: ${result.failed} deletions failed in storage "${name}"; see above`);
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function indent(text: string): string {
  return text.split("\n").map((l) => `  ${l}`).join("\n");
}
