import { scratchNamed } from "../../config/load.js";
import { formatDuration } from "../../model/duration.js";
import { LifeboatError } from "../../model/errors.js";
import type { BackupJob } from "../../model/job.js";
import { restoreIntoScratch } from "../../restore/restore-into-scratch.js";
import { runRestore, type RestoreResult } from "../../restore/run-restore.js";
import type { ScratchEnvironment } from "../../scratch/environments.js";
import type { CommandContext } from "../context.js";
import { EXIT } from "../output.js";
import { ProgressBar } from "../progress.js";
import type { Command } from "../command.js";

const SCRATCH_PREFIX = "scratch:";

export const restoreCommand: Command = {
  name: "restore",
  summary: "restore a backup into a folder, a database URL or a new scratch environment; refuses a non-empty target without --force",
  usage: "lifeboat restore JOB --to TARGET|scratch:NAME [--id ID | --at TIME] [--force] [--keep-scratch]",
  options: { to: { type: "string" }, id: { type: "string" }, at: { type: "string" }, force: { type: "boolean" }, "keep-scratch": { type: "boolean" } },
  async run(ctx, { values, positionals }) {
    if (positionals.length !== 1) throw new LifeboatError("USAGE", "restore takes exactly one job", { kind: "usage" });
    if (values.id && values.at) throw new LifeboatError("USAGE", "--id and --at cannot be combined", { kind: "usage" });
    let at: Date | undefined;
    if (typeof values.at === "string") {
      at = new Date(values.at);
      if (Number.isNaN(at.getTime())) throw new LifeboatError("USAGE", `--at "${values.at}" is not a time; use ISO 8601, e.g. 2026-11-21T19:00:00Z`, { kind: "usage" });
    }
    const to = values.to as string | undefined;
    const job = ctx.job(positionals[0]!);
    const { store, layout } = await ctx.storeFor(job);
    const bar = new ProgressBar(`restore ${job.name}`);
    const request = {
      job,
      store,
      layout,
      identities: ctx.identities(),
      selector: { id: values.id as string | undefined, at },
      signal: ctx.signal,
      log: ctx.log,
      events: { progress: ({ storedBytes, totalBytes }: { storedBytes: number; totalBytes: number }) => bar.update(storedBytes, totalBytes) },
    };
    try {
      if (to?.startsWith(SCRATCH_PREFIX)) {
        if (values.force) throw new LifeboatError("USAGE", "--force has no use with a scratch target (it is always new)", { kind: "usage" });
        const config = ctx.loadConfig();
        const result = await restoreIntoScratch({
          ...request,
          scratch: scratchNamed(config, to.slice(SCRATCH_PREFIX.length)),
          declared: Object.entries(config.scratch).map(([name, spec]) => ({ name, spec })),
          keepOnFailure: values["keep-scratch"] === true,
          onKeptAfterFailure: (environment) => {
            bar.done();
            for (const line of describeScratch(environment, "kept for debugging")) ctx.output.err(line);
          },
        });
        bar.done();
        report(ctx, job, result, { environment: result.environment, provisionMs: result.provisionMs });
      } else {
        if (values["keep-scratch"]) throw new LifeboatError("USAGE", "--keep-scratch only applies to --to scratch:NAME", { kind: "usage" });
        const result = await runRestore({ ...request, target: { location: to, force: values.force === true } });
        bar.done();
        report(ctx, job, result, undefined);
      }
      return EXIT.ok;
    } finally {
      bar.done();
    }
  },
};

function report(ctx: CommandContext, job: BackupJob, result: RestoreResult, created: { environment: ScratchEnvironment; provisionMs: number } | undefined): void {
  const scratch = created?.environment;
  const cleanup = scratch ? `lifeboat scratch remove ${scratch.id}` : undefined;
  if (ctx.output.json) {
    ctx.output.printJson({
      ok: true,
      job: job.name,
      id: result.manifest.id,
      consistentAt: result.manifest.consistentAt,
      target: result.target,
      durationMs: Math.round(result.durationMs),
      ...(scratch ? { scratch: { id: scratch.id, type: scratch.type, connection: scratch.connection, provisionMs: Math.round(created.provisionMs), cleanup } } : {}),
    });
    return;
  }
  ctx.output.out(`${job.name}: restored backup ${result.manifest.id} (consistent at ${result.manifest.consistentAt}) into ${result.target} in ${formatDuration(result.durationMs)}`);
  if (scratch) for (const line of describeScratch(scratch, `ready in ${formatDuration(created.provisionMs)}, kept for you`)) ctx.output.out(line);
}

/** How to reach a kept scratch environment and how to remove it (never its secrets). */
function describeScratch(scratch: ScratchEnvironment, state: string): string[] {
  const lines = [`scratch environment ${scratch.id} (${scratch.type}, ${state}):`];
  for (const [key, value] of Object.entries(scratch.connection)) if (!/pass|secret|token/i.test(key)) lines.push(`  ${key}: ${value}`);
  if (scratch.connectHint) lines.push(`  connect: ${scratch.connectHint}`);
  lines.push(`  remove it with: lifeboat scratch remove ${scratch.id}`);
  return lines;
}
