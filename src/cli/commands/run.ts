import { LifeboatError } from "../../model/errors.js";
import { formatBytes } from "../../model/size.js";
import { formatDuration } from "../../model/duration.js";
import { CronSchedule } from "../../schedule/cron.js";
import { RunLedger } from "../../schedule/run-ledger.js";
import { runScheduledBackup } from "../../schedule/run-unit.js";
import type { Command } from "../command.js";
import { EXIT, exitCodeFor } from "../output.js";

/**
 * `lifeboat run JOB --scheduled-at T`: one idempotent run for an external
 * scheduler. The same (job, T) runs once, however often it is started: a
 * finished slot is not run again, a slot running elsewhere is left alone, and
 * a failed, interrupted or abandoned one is retried.
 */
export const runCommand: Command = {
  name: "run",
  summary: "one idempotent backup run for an external scheduler (Kubernetes CronJob, systemd timer, Nomad, Temporal)",
  usage: "lifeboat run JOB --scheduled-at TIME|auto",
  options: { "scheduled-at": { type: "string" } },
  async run(ctx, { values, positionals }) {
    if (positionals.length !== 1) throw new LifeboatError("USAGE", "run takes exactly one job", { kind: "usage" });
    const job = ctx.job(positionals[0]!);
    const given = values["scheduled-at"];
    if (typeof given !== "string") {
      throw new LifeboatError("USAGE", "run needs --scheduled-at TIME (the slot this run is for, ISO 8601) or --scheduled-at auto", { kind: "usage" });
    }
    const slot = scheduledAt(given, job.schedule, job.timezone, job.name);
    const config = ctx.loadConfig();
    const { store, layout } = await ctx.storeFor(job);
    const capabilities = await store.probe(layout.probePrefix());
    if (!capabilities.conditionalWrites) {
      ctx.log.warn({ storage: job.storage }, "the store does not enforce conditional writes: runs started at the same moment for the same slot cannot be told apart");
    }
    const ledger = new RunLedger({ store, layout, leaseMs: config.daemon.leaseMs, log: ctx.log });
    const attempt = () => runScheduledBackup({ job, store, layout, recipients: config.encryption.recipients, ledger, slot, trigger: "external", retry: true, leaseMs: config.daemon.leaseMs, signal: ctx.signal, log: ctx.log });
    await ledger.sweepAbandoned();
    let outcome = await attempt();
    // Another instance holds this very slot (an earlier attempt of the same scheduled run, say):
    // wait until it finishes, or until its lease runs out and the slot is ours to retry. Success
    // is only reported for a slot that really succeeded.
    for (let waited = false; !outcome.ran && outcome.notClaimed.reason === "claimed-elsewhere"; ) {
      if (!waited) {
        ctx.output.err(`${job.name} ${slot.toISOString()}: running on ${outcome.notClaimed.holder?.instance ?? "another instance"}; waiting for it to finish`);
        waited = true;
      }
      await sleep(Math.min(5_000, Math.max(500, config.daemon.leaseMs / 4)), ctx.signal);
      if (ctx.signal.aborted) throw new LifeboatError("INTERRUPTED", `interrupted while waiting for the run of ${job.name} at ${slot.toISOString()} elsewhere`, { kind: "interrupted" });
      await ledger.sweepAbandoned();
      outcome = await attempt();
    }

    const at = slot.toISOString();
    if (!outcome.ran) {
      const why = outcome.notClaimed;
      // Done means succeeded or partial here (failed, interrupted and abandoned slots are retried).
      const ok = why.reason === "done" && why.record.status === "succeeded";
      const text =
        why.reason === "done"
          ? `${job.name} ${at}: already ${why.record.status} (backup ${why.record.resultId ?? "?"}); nothing to do`
          : why.reason === "busy"
            ? `${job.name} ${at}: skipped: another run of the job is in progress on ${why.holder.instance} (slot ${why.scheduledAt ?? "?"})`
            : `${job.name} ${at}: claimed elsewhere`;
      if (ctx.output.json) ctx.output.printJson({ ok, ran: false, job: job.name, scheduledAt: at, reason: why.reason, record: "record" in why ? (why.record ?? null) : null });
      else if (ok) ctx.output.out(text);
      else ctx.output.err(text);
      // A skipped slot did not run: the scheduler must see it (exit 3), as it sees a partial backup.
      return ok ? EXIT.ok : EXIT.run;
    }
    const record = outcome.record;
    if (ctx.output.json) {
      ctx.output.printJson({ ok: record.status === "succeeded", ran: true, job: job.name, scheduledAt: at, record, ...(outcome.manifest ? { id: outcome.manifest.id } : {}) });
    } else if (outcome.manifest) {
      const size = outcome.manifest.objects.reduce((sum, o) => sum + o.sizeBytes, 0);
      ctx.output.out(`${job.name} ${at}: backup ${outcome.manifest.id} ${record.status}, ${formatBytes(size)} stored in ${formatDuration(outcome.durationMs)} (attempt ${record.attempt}, lease token ${record.fencingToken})`);
    }
    if (outcome.error !== undefined) throw outcome.error;
    return record.status === "partial" ? EXIT.run : record.status === "succeeded" ? EXIT.ok : exitCodeFor(outcome.error);
  },
};

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

/** The slot: an ISO time, or `auto` = the job's newest scheduled time at or before now. */
function scheduledAt(given: string, schedule: string | undefined, timezone: string | undefined, job: string): Date {
  if (given === "auto") {
    if (!schedule) throw new LifeboatError("USAGE", `--scheduled-at auto needs a schedule on job "${job}"`, { kind: "usage", hint: "give the time instead, e.g. --scheduled-at 2026-12-06T02:30:00Z" });
    const slot = CronSchedule.of(schedule, timezone).previous(new Date());
    if (!slot) throw new LifeboatError("USAGE", `job "${job}" had no scheduled time in the last 400 days`, { kind: "usage" });
    return slot;
  }
  const at = new Date(given);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(given) || Number.isNaN(at.getTime())) {
    throw new LifeboatError("USAGE", `--scheduled-at "${given}" is not a time; use ISO 8601 with a zone, e.g. 2026-12-06T02:30:00Z, or auto`, { kind: "usage" });
  }
  // Slots are kept to the second.
  return new Date(Math.floor(at.getTime() / 1000) * 1000);
}
