import { checkConfig, configPath } from "../../config/load.js";
import { checkPlan, listPlanFiles } from "../../config/load-plan.js";
import { relative } from "node:path";
import { EXIT } from "../output.js";
import type { Command } from "../command.js";

export const validateCommand: Command = {
  name: "validate",
  summary: "check the config and the restore plans; every problem as file:line:col: message",
  usage: "lifeboat validate [-c FILE] [PLAN_FILE…]   (default: the plans of the config's drills, else plans/*.yaml next to it)",
  options: {},
  async run(ctx, { positionals }) {
    const file = configPath(ctx.options.config);
    const result = checkConfig(file);
    const errors = result.diagnostics.filter((d) => d.severity === "error");
    const plans: Array<{ file: string; ok: boolean; steps: number; diagnostics: unknown[] }> = [];
    let planErrors = 0;
    if (!ctx.output.json && result.diagnostics.length > 0) ctx.output.err(result.report);
    if (result.config) {
      const files = positionals.length ? positionals : listPlanFiles(result.config).map((f) => relative(process.cwd(), f) || f);
      for (const planFile of files) {
        const checked = checkPlan(planFile, result.config);
        const failed = checked.diagnostics.filter((d) => d.severity === "error").length;
        planErrors += failed;
        plans.push({ file: planFile, ok: failed === 0, steps: checked.plan?.steps.length ?? 0, diagnostics: checked.diagnostics });
        if (!ctx.output.json && checked.diagnostics.length) ctx.output.err(checked.report);
      }
    }
    if (ctx.output.json) {
      ctx.output.printJson({ ok: errors.length === 0 && planErrors === 0, file, diagnostics: result.diagnostics, plans });
    }
    const total = errors.length + planErrors;
    if (total > 0) {
      if (!ctx.output.json) ctx.output.err(`${total} problem${total === 1 ? "" : "s"} in ${[errors.length ? file : undefined, ...plans.filter((p) => !p.ok).map((p) => p.file)].filter(Boolean).join(", ")}`);
      return EXIT.usage;
    }
    if (!ctx.output.json) {
      const jobs = Object.keys(result.config!.jobs).length;
      ctx.output.out(`${file}: ok (${jobs} job${jobs === 1 ? "" : "s"}, ${Object.keys(result.config!.storage).length} storage)`);
      for (const p of plans) ctx.output.out(`${p.file}: ok (${p.steps} step${p.steps === 1 ? "" : "s"})`);
    }
    return EXIT.ok;
  },
};
