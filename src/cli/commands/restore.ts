import { runRestore } from "../../restore/run-restore.js";
import { LifeboatError } from "../../model/errors.js";
import { formatDuration } from "../../model/duration.js";
import { EXIT } from "../output.js";
import { ProgressBar } from "../progress.js";
import type { Command } from "../command.js";

export const restoreCommand: Command = {
  name: "restore",
  summary: "restore a backup into a target; refuses a non-empty target without --force",
  usage: "lifeboat restore JOB --to TARGET [--id ID | --at TIME] [--force]",
  options: { to: { type: "string" }, id: { type: "string" }, at: { type: "string" }, force: { type: "boolean" } },
  async run(ctx, { values, positionals }) {
    if (positionals.length !== 1) throw new LifeboatError("USAGE", "restore takes exactly one job", { kind: "usage" });
    if (values.id && values.at) throw new LifeboatError("USAGE", "--id and --at cannot be combined", { kind: "usage" });
    let at: Date | undefined;
    if (typeof values.at === "string") {
      at = new Date(values.at);
      if (Number.isNaN(at.getTime())) throw new LifeboatError("USAGE", `--at "${values.at}" is not a time; use ISO 8601, e.g. 2026-11-21T19:00:00Z`, { kind: "usage" });
    }
    const job = ctx.job(positionals[0]!);
    const { store, layout } = await ctx.storeFor(job);
    const bar = new ProgressBar(`restore ${job.name}`);
    try {
      const result = await runRestore({
        job,
        store,
        layout,
        identities: ctx.identities(),
        selector: { id: values.id as string | undefined, at },
        target: { location: values.to as string | undefined, force: values.force === true },
        signal: ctx.signal,
        log: ctx.log,
        events: { progress: ({ storedBytes, totalBytes }) => bar.update(storedBytes, totalBytes) },
      });
      bar.done();
      if (ctx.output.json) {
        ctx.output.printJson({ ok: true, job: job.name, id: result.manifest.id, consistentAt: result.manifest.consistentAt, target: result.target, durationMs: Math.round(result.durationMs) });
      } else {
        ctx.output.out(`${job.name}: restored backup ${result.manifest.id} (consistent at ${result.manifest.consistentAt}) into ${result.target} in ${formatDuration(result.durationMs)}`);
      }
      return EXIT.ok;
    } finally {
      bar.done();
    }
  },
};
