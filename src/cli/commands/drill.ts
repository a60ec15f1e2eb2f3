import { mkdirSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { checkPlan, resolvePlanFile } from "../../config/load-plan.js";
import { storeDrillReport } from "../../catalog/drill-reports.js";
import { acknowledge, drillStateRoot } from "../../drill/acks.js";
import { runDrill } from "../../drill/run-drill.js";
import { LifeboatError } from "../../model/errors.js";
import type { DrillReport } from "../../model/drill-report.js";
import { renderReportFiles } from "../../report/files.js";
import { renderVerdictBlock } from "../../report/verdict.js";
import { defaultScratchRoot } from "../../scratch/environments.js";
import { REPORT_FILES } from "../../storage/layout.js";
import type { Command } from "../command.js";
import type { CommandContext } from "../context.js";
import { consoleReporter, terminalConfirmation } from "../drill-console.js";
import { EXIT } from "../output.js";

export const drillCommand: Command = {
  name: "drill",
  summary: "run a restore plan in scratch, measure RTO and RPO against its targets, write the reports",
  usage: "lifeboat drill PLAN [--at TIME] [--out DIR] | lifeboat drill --ack STEP [--drill ID]",
  options: { at: { type: "string" }, out: { type: "string" }, ack: { type: "string" }, drill: { type: "string" } },
  async run(ctx, { values, positionals }) {
    if (typeof values.ack === "string") return acknowledgeStep(ctx, values.ack, values.drill as string | undefined, positionals);
    if (values.drill !== undefined) throw new LifeboatError("USAGE", "--drill only goes with --ack", { kind: "usage" });
    if (positionals.length !== 1) throw new LifeboatError("USAGE", "drill takes exactly one plan: a drill name from the config, a plan file, or a name in plans/", { kind: "usage" });
    let at: Date | undefined;
    if (typeof values.at === "string") {
      at = new Date(values.at);
      if (Number.isNaN(at.getTime())) throw new LifeboatError("USAGE", `--at "${values.at}" is not a time; use ISO 8601, e.g. 2026-11-21T19:00:00Z`, { kind: "usage" });
    }

    const config = ctx.loadConfig();
    const file = resolvePlanFile(positionals[0]!, config);
    const checked = checkPlan(file, config);
    if (!checked.plan) throw new LifeboatError("PLAN_INVALID", checked.report, { kind: "usage", details: { diagnostics: checked.diagnostics } });
    if (checked.diagnostics.length && !ctx.output.json) ctx.output.err(checked.report);
    const plan = checked.plan;

    const reporter = ctx.output.json ? undefined : consoleReporter(ctx.output);
    let report: DrillReport;
    try {
      report = await runDrill({
        plan,
        config,
        stores: (storage) => ctx.storeNamed(storage),
        identities: ctx.identities(),
        at,
        signal: ctx.signal,
        log: ctx.log,
        events: reporter,
        manual: ctx.output.json ? { interactive: false } : terminalConfirmation(),
      });
    } finally {
      reporter?.close();
    }

    // Reports: a local folder first (it works even when storage does not), then storage.
    const files = renderReportFiles(report);
    const dir = resolve(typeof values.out === "string" ? values.out : join(config.baseDir, ".lifeboat", "drills", plan.name, report.drillId));
    mkdirSync(dir, { recursive: true });
    for (const name of REPORT_FILES) writeFileSync(join(dir, name), files[name]!);
    let stored: string[] | undefined;
    let storeError: unknown;
    try {
      const { store, layout } = await ctx.storeNamed(plan.storage);
      stored = await storeDrillReport(store, layout, report, files);
    } catch (error) {
      storeError = error;
    }

    if (ctx.output.json) {
      ctx.output.printJson({ ok: report.verdict === "passed" && !storeError, report, files: { dir, stored: stored ?? null } });
    } else {
      ctx.output.out("");
      ctx.output.out(renderVerdictBlock(report));
      ctx.output.out("");
      const shown = relative(process.cwd(), dir) || ".";
      ctx.output.out(`reports: ${join(shown, "report.html")} (also report.json, report.md, junit.xml)`);
      if (stored) ctx.output.out(`stored in "${plan.storage}": ${stored[stored.length - 1]!.replace(/report\.json$/, "")}`);
    }
    if (storeError) {
      throw new LifeboatError("REPORT_NOT_STORED", `the drill's report could not be stored in "${plan.storage}": ${(storeError as Error).message}; it is kept in ${dir}`, {
        kind: "run",
        cause: storeError,
      });
    }
    if (report.verdict === "interrupted") return EXIT.interrupted;
    return report.verdict === "passed" ? EXIT.ok : EXIT.failed;
  },
};

async function acknowledgeStep(ctx: CommandContext, step: string, drillId: string | undefined, positionals: string[]): Promise<number> {
  if (positionals.length > 0) throw new LifeboatError("USAGE", "--ack takes a step name, not a plan", { kind: "usage" });
  const record = await acknowledge(drillStateRoot(defaultScratchRoot()), step, drillId);
  if (ctx.output.json) ctx.output.printJson({ ok: true, drillId: record.drillId, step: record.step });
  else ctx.output.out(`acknowledged step "${record.step}" of drill ${record.drillId}`);
  return EXIT.ok;
}
