import { listDrillReports } from "../../catalog/drill-reports.js";
import { listPlanFiles, loadPlan } from "../../config/load-plan.js";
import type { LifeboatConfig } from "../../config/load.js";
import type { DrillReport } from "../../model/drill-report.js";
import { formatDuration } from "../../model/duration.js";
import { formatUtcMinute } from "../../report/format.js";
import { renderTable } from "../../report/text-table.js";
import { offsetMinutes } from "../../schedule/cron.js";
import { readFreshness, type JobFreshness } from "../../schedule/freshness.js";
import type { Command } from "../command.js";
import type { CommandContext } from "../context.js";
import { EXIT } from "../output.js";

/**
 * `lifeboat status`: per job, the newest good backup, the RPO exposure now
 * against the target, the next scheduled run and the newest drill that
 * restores the job. Everything comes from storage and the config, so it says
 * the same as the daemon's /metrics.
 *
 * Exit 1 when any job is over its RPO target (a job with a target that never
 * succeeded is over it): status is the command to run from a monitor or a
 * cron job, and a missed target is exit 1 in DESIGN.md's codes. `list` stays 0
 * because it lists the catalog; it only marks ages past the target.
 */
export interface JobStatus {
  job: string;
  storage: string;
  lastBackup: { id: string; consistentAt: string; finishedAt: string; sizeBytes: number; status: string; ageSeconds: number } | null;
  /** now − consistentAt of the newest backup; null when the job never succeeded. */
  exposureSeconds: number | null;
  rpoTargetSeconds: number | null;
  /** null when the job has no RPO target. */
  overTarget: boolean | null;
  /** The next slot in the job's time zone, ISO 8601 with its offset; null when not scheduled. */
  nextRun: string | null;
  timezone: string | null;
  lastDrill: { plan: string; drillId: string; verdict: string; t0: string; finishedAt: string } | null;
}

export const statusCommand: Command = {
  name: "status",
  summary: "per job: last good backup, RPO exposure now against the target, next run, last drill; exit 1 when a job is over its RPO target",
  usage: "lifeboat status [JOB…] [--json]",
  options: {},
  async run(ctx, { positionals }) {
    const config = ctx.loadConfig();
    const names = positionals.length ? [...new Set(positionals.map((n) => ctx.job(n).name))] : Object.keys(config.jobs);
    const selected: LifeboatConfig = { ...config, jobs: Object.fromEntries(names.map((n) => [n, config.jobs[n]!])) };
    const now = new Date();
    const freshness = await readFreshness(selected, (job) => ctx.storeFor(job), now);
    const drills = await readDrills(ctx, config);
    const rows = freshness.map((f) => statusOf(f, config, drills, now));

    const code = rows.some((r) => r.overTarget === true) ? EXIT.failed : EXIT.ok;
    if (ctx.output.json) {
      ctx.output.printJson(rows);
      return code;
    }
    if (rows.length === 0) {
      ctx.output.out("no jobs in the config");
      return code;
    }
    ctx.output.out(
      renderTable(
        ["JOB", "LAST GOOD BACKUP", "RPO EXPOSURE / TARGET", "NEXT RUN", "LAST DRILL"],
        rows.map((r) => [
          r.job,
          r.lastBackup ? `${r.lastBackup.id} (${formatDuration(r.lastBackup.ageSeconds * 1_000)} ago${r.lastBackup.status === "succeeded" ? "" : `, ${r.lastBackup.status}`})` : "none",
          exposureText(r),
          r.nextRun ? `${r.nextRun.replace("T", " ")}${r.timezone ? ` ${r.timezone}` : ""}` : "not scheduled",
          r.lastDrill ? `${r.lastDrill.plan} ${r.lastDrill.verdict} ${formatUtcMinute(r.lastDrill.t0)}Z` : "none",
        ]),
      ),
    );
    return code;
  },
};

/** `2h 10m / 1h  OVER`, `never / 1h  OVER`, `5m / 1h  ok`, `5m / —` */
function exposureText(r: JobStatus): string {
  const exposure = r.exposureSeconds === null ? "never" : formatDuration(r.exposureSeconds * 1_000);
  if (r.rpoTargetSeconds === null) return `${exposure} / —`;
  return `${exposure} / ${formatDuration(r.rpoTargetSeconds * 1_000)}  ${r.overTarget ? "OVER" : "ok"}`;
}

interface Drills {
  /** Every stored report, oldest first. */
  reports: DrillReport[];
  /** Plan name → the jobs its restore steps restore, from the config's plan files. */
  planJobs: Map<string, Set<string>>;
}

function statusOf(f: JobFreshness, config: LifeboatConfig, drills: Drills, now: Date): JobStatus {
  const job = config.jobs[f.job]!;
  const drill = drills.reports.filter((r) => r.backups.some((b) => b.job === f.job) || drills.planJobs.get(r.plan.name)?.has(f.job)).at(-1);
  const timezone = job.schedule === undefined ? null : (job.timezone ?? Intl.DateTimeFormat().resolvedOptions().timeZone);
  return {
    job: f.job,
    storage: f.storage,
    lastBackup: f.newest ? { ...f.newest, ageSeconds: (now.getTime() - Date.parse(f.newest.consistentAt)) / 1_000 } : null,
    exposureSeconds: f.exposureMs === null ? null : f.exposureMs / 1_000,
    rpoTargetSeconds: f.rpoMs === undefined ? null : f.rpoMs / 1_000,
    overTarget: f.overTarget ?? null,
    nextRun: f.nextRun ? localIso(f.nextRun, timezone ?? undefined) : null,
    timezone,
    lastDrill: drill ? { plan: drill.plan.name, drillId: drill.drillId, verdict: drill.verdict, t0: drill.t0, finishedAt: drill.finishedAt } : null,
  };
}

/** `2026-03-02T02:30:00+01:00`: the wall-clock time in `timezone` (default: this machine's) with its offset. */
function localIso(at: Date, timezone: string | undefined): string {
  const offset = timezone ? offsetMinutes(timezone, at.getTime()) : -at.getTimezoneOffset();
  const wall = new Date(at.getTime() + offset * 60_000).toISOString().slice(0, 19);
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  return `${wall}${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

/**
 * Drill reports from every configured storage (a plan keeps its reports in
 * its own storage), and which jobs each configured plan restores. A plan
 * file that does not load only loses that mapping (reports still name the
 * backups they restored); `validate` is the command that reports it.
 */
async function readDrills(ctx: CommandContext, config: LifeboatConfig): Promise<Drills> {
  const byId = new Map<string, DrillReport>();
  for (const storage of Object.keys(config.storage)) {
    const { store, layout } = await ctx.storeNamed(storage);
    const { reports, problems } = await listDrillReports(store, layout);
    for (const p of problems) ctx.log.warn({ key: p.key, storage }, `unreadable drill report: ${p.message}`);
    for (const r of reports) byId.set(`${r.plan.name}/${r.drillId}`, r);
  }
  const reports = [...byId.values()].sort((a, b) => Date.parse(a.t0) - Date.parse(b.t0) || a.drillId.localeCompare(b.drillId));
  const planJobs = new Map<string, Set<string>>();
  for (const file of listPlanFiles(config)) {
    try {
      const plan = loadPlan(file, config);
      const jobs = planJobs.get(plan.name) ?? new Set<string>();
      for (const step of plan.steps) if (step.action.kind === "restore") jobs.add(step.action.job);
      planJobs.set(plan.name, jobs);
    } catch (error) {
      ctx.log.debug({ file, err: error }, "plan not loaded for status");
    }
  }
  return { reports, planJobs };
}
