import { runBackup } from "../../backup/run-backup.js";
import { verifyBackup } from "../../catalog/verify.js";
import { LifeboatError } from "../../model/errors.js";
import { formatBytes } from "../../model/size.js";
import { formatDuration } from "../../model/duration.js";
import { EXIT, exitCodeFor, reportError } from "../output.js";
import { ProgressBar } from "../progress.js";
import type { Command } from "../command.js";

export const backupCommand: Command = {
  name: "backup",
  summary: "run backups now",
  usage: "lifeboat backup JOB… | --all [--verify]",
  options: { all: { type: "boolean" }, verify: { type: "boolean" } },
  async run(ctx, { values, positionals }) {
    const config = ctx.loadConfig();
    const names = values.all ? Object.keys(config.jobs) : positionals;
    if (names.length === 0) {
      throw new LifeboatError("USAGE", values.all ? "the config has no jobs" : "name the jobs to back up, or pass --all", { kind: "usage" });
    }
    const jobs = names.map((n) => ctx.job(n));
    const results: unknown[] = [];
    let exitCode: number = EXIT.ok;
    for (const job of jobs) {
      const { store, layout } = await ctx.storeFor(job);
      const bar = new ProgressBar(`${job.name} stored`);
      try {
        const { manifest, durationMs } = await runBackup({
          job,
          store,
          layout,
          recipients: config.encryption.recipients,
          signal: ctx.signal,
          log: ctx.log,
          events: { progress: ({ storedBytes }) => bar.update(storedBytes) },
        });
        bar.done();
        // Like restic: a partial backup is stored and listed, but scripts must notice it.
        if (manifest.status === "partial") exitCode = Math.max(exitCode, EXIT.run);
        const object = manifest.objects[0]!;
        let verified: boolean | undefined;
        if (values.verify) {
          const outcome = await verifyBackup(store, layout, manifest, { identities: ctx.identities(), signal: ctx.signal, log: ctx.log });
          verified = outcome.ok;
          if (!outcome.ok) {
            exitCode = Math.max(exitCode, EXIT.failed);
            for (const p of outcome.problems) ctx.output.err(`error: ${p.message}`);
          }
        }
        results.push({ ok: true, job: job.name, id: manifest.id, status: manifest.status, sizeBytes: object.sizeBytes, sourceBytes: object.sourceBytes, sha256: object.sha256, durationMs: Math.round(durationMs), warnings: manifest.warnings, ...(verified === undefined ? {} : { verified }) });
        if (!ctx.output.json) {
          const ratio = object.sourceBytes > 0 ? ` (${((object.sizeBytes / object.sourceBytes) * 100).toFixed(0)}% of ${formatBytes(object.sourceBytes)})` : "";
          ctx.output.out(`${job.name}: backup ${manifest.id} ${manifest.status}, ${formatBytes(object.sizeBytes)} stored${ratio} in ${formatDuration(durationMs)}${verified ? ", verified" : ""}`);
          for (const w of manifest.warnings) ctx.output.err(`warning: ${w}`);
        }
      } catch (error) {
        bar.done();
        const code = exitCodeFor(error);
        exitCode = exitCode === EXIT.ok ? code : Math.max(exitCode, code);
        if (ctx.output.json) results.push({ ok: false, job: job.name, error: { code: (error as LifeboatError).code ?? "INTERNAL", message: (error as Error).message } });
        else reportError(ctx.output, error);
        if (code === EXIT.interrupted) break;
      }
    }
    if (ctx.output.json) ctx.output.printJson(results);
    return exitCode;
  },
};
