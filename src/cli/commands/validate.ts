import { checkConfig, configPath } from "../../config/load.js";
import { EXIT } from "../output.js";
import type { Command } from "../command.js";

export const validateCommand: Command = {
  name: "validate",
  summary: "check the config; every problem as file:line:col: message",
  usage: "lifeboat validate [-c FILE]",
  options: {},
  async run(ctx) {
    const file = configPath(ctx.options.config);
    const result = checkConfig(file);
    const errors = result.diagnostics.filter((d) => d.severity === "error");
    if (ctx.output.json) {
      ctx.output.printJson({ ok: errors.length === 0, file, diagnostics: result.diagnostics });
    } else if (result.diagnostics.length > 0) {
      ctx.output.err(result.report);
    }
    if (errors.length > 0) {
      if (!ctx.output.json) ctx.output.err(`${errors.length} problem${errors.length === 1 ? "" : "s"} in ${file}`);
      return EXIT.usage;
    }
    if (!ctx.output.json) {
      const jobs = Object.keys(result.config!.jobs).length;
      ctx.output.out(`${file}: ok (${jobs} job${jobs === 1 ? "" : "s"}, ${Object.keys(result.config!.storage).length} storage)`);
    }
    return EXIT.ok;
  },
};
