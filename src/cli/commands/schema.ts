import { configJsonSchema } from "../../config/schema.js";
import { planJsonSchema } from "../../config/plan-schema.js";
import { drillReportJsonSchema } from "../../model/drill-report.js";
import { LifeboatError } from "../../model/errors.js";
import { EXIT } from "../output.js";
import type { Command } from "../command.js";

export const schemaCommand: Command = {
  name: "schema",
  summary: "print the JSON Schema of lifeboat.yaml, of restore plans (--plan) or of report.json (--report)",
  usage: "lifeboat schema [--plan | --report]",
  options: { plan: { type: "boolean" }, report: { type: "boolean" } },
  async run(ctx, { values }) {
    if (values.plan && values.report) throw new LifeboatError("USAGE", "--plan and --report cannot be combined", { kind: "usage" });
    const schema = values.plan ? planJsonSchema() : values.report ? drillReportJsonSchema() : configJsonSchema();
    ctx.output.out(JSON.stringify(schema, null, 2));
    return EXIT.ok;
  },
};
