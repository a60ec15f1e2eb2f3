import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { listDrillReports } from "../../catalog/drill-reports.js";
import { formatDuration } from "../../model/duration.js";
import type { DrillReport } from "../../model/drill-report.js";
import { LifeboatError } from "../../model/errors.js";
import { isValidName } from "../../model/names.js";
import { renderHistoryHtml, renderHistoryTable } from "../../report/history.js";
import { renderVerdictBlock } from "../../report/verdict.js";
import type { Command } from "../command.js";
import type { CommandContext } from "../context.js";
import { EXIT } from "../output.js";
import { renderTable } from "../../report/text-table.js";

export const reportCommand: Command = {
  name: "report",
  summary: "past drills from storage: the latest outcome of each plan, one drill, or a plan's RTO/RPO trend (--history)",
  usage: "lifeboat report [PLAN] [--id DRILL] [--history [--html FILE]]",
  options: { history: { type: "boolean" }, html: { type: "string" }, id: { type: "string" } },
  async run(ctx, { values, positionals }) {
    if (positionals.length > 1) throw new LifeboatError("USAGE", "report takes at most one plan", { kind: "usage" });
    const plan = positionals[0];
    if (plan !== undefined && !isValidName(plan)) throw new LifeboatError("USAGE", `"${plan}" is not a plan name (plans are stored by their name: field)`, { kind: "usage" });
    if ((values.history || values.id) && plan === undefined) throw new LifeboatError("USAGE", "--history and --id need a plan", { kind: "usage" });
    if (values.html !== undefined && !values.history) throw new LifeboatError("USAGE", "--html goes with --history", { kind: "usage" });
    const reports = await readReports(ctx, plan);

    if (plan === undefined) return latestPerPlan(ctx, reports);
    if (reports.length === 0) {
      throw new LifeboatError("REPORT_NOT_FOUND", `no drill reports of plan "${plan}" in storage`, { kind: "usage", hint: `run "lifeboat drill ${plan}" first` });
    }
    if (values.history) {
      const file = resolve(typeof values.html === "string" ? values.html : join(ctx.loadConfig().baseDir, ".lifeboat", "drills", plan, "history.html"));
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, renderHistoryHtml(plan, reports));
      if (ctx.output.json) ctx.output.printJson({ plan, html: file, drills: reports.map(summaryOf) });
      else {
        ctx.output.out(renderHistoryTable(reports));
        ctx.output.out(`\ntrend chart: ${relative(process.cwd(), file) || file}`);
      }
      return EXIT.ok;
    }
    const report = typeof values.id === "string" ? reports.find((r) => r.drillId === values.id) : reports[reports.length - 1];
    if (!report) throw new LifeboatError("REPORT_NOT_FOUND", `no drill "${String(values.id)}" of plan "${plan}"`, { kind: "usage", hint: `run "lifeboat report ${plan} --history" to see them` });
    if (ctx.output.json) ctx.output.printJson(report);
    else ctx.output.out(renderVerdictBlock(report));
    return EXIT.ok;
  },
};

/** Reports from every configured storage (a plan's reports live where its restores come from), without duplicates. */
async function readReports(ctx: CommandContext, plan: string | undefined): Promise<DrillReport[]> {
  const byId = new Map<string, DrillReport>();
  for (const storage of Object.keys(ctx.loadConfig().storage)) {
    const { store, layout } = await ctx.storeNamed(storage);
    const { reports, problems } = await listDrillReports(store, layout, plan);
    for (const p of problems) ctx.log.warn({ key: p.key, storage }, `unreadable drill report: ${p.message}`);
    for (const r of reports) byId.set(`${r.plan.name}/${r.drillId}`, r);
  }
  return [...byId.values()].sort((a, b) => a.t0.localeCompare(b.t0));
}

function latestPerPlan(ctx: CommandContext, reports: DrillReport[]): number {
  const plans = new Map<string, { latest: DrillReport; count: number }>();
  for (const r of reports) plans.set(r.plan.name, { latest: r, count: (plans.get(r.plan.name)?.count ?? 0) + 1 });
  if (ctx.output.json) {
    ctx.output.printJson([...plans.values()].map(({ latest, count }) => ({ ...summaryOf(latest), drills: count })));
    return EXIT.ok;
  }
  if (plans.size === 0) {
    ctx.output.out('no drills in storage yet; run "lifeboat drill PLAN"');
    return EXIT.ok;
  }
  const vs = (actual: number | null, target: number | null) => `${actual === null ? "-" : formatDuration(actual)}${target === null ? "" : ` / ${formatDuration(target)}`}`;
  const rows = [...plans.values()].map(({ latest: r, count }) => [
    r.plan.name,
    r.drillId,
    r.t0.replace("T", " ").replace(/\.\d+Z$/, "Z"),
    r.verdict,
    vs(r.rto.actualMs, r.rto.targetMs),
    vs(r.rpo.actualMs, r.rpo.targetMs),
    String(count),
  ]);
  ctx.output.out(renderTable(["PLAN", "LAST DRILL", "T0 (UTC)", "VERDICT", "RTO / TARGET", "RPO / TARGET", "DRILLS"], rows));
  return EXIT.ok;
}

function summaryOf(r: DrillReport) {
  return { plan: r.plan.name, drillId: r.drillId, t0: r.t0, verdict: r.verdict, rtoMs: r.rto.actualMs, rtoTargetMs: r.rto.targetMs, rpoMs: r.rpo.actualMs, rpoTargetMs: r.rpo.targetMs };
}
