import type { RunAction } from "../../model/plan.js";
import { runPlanCommand, startBackgroundCommand } from "../checks/command.js";
import type { StepRunner } from "./step.js";

/**
 * Runs a command, e.g. the application's smoke test against the restored
 * database. With `background: true` the command keeps running (the
 * application itself) until teardown, which stops it before the scratch
 * environments it uses are removed.
 */
export const runStep: StepRunner<RunAction> = {
  async run(action, context) {
    if (!action.background) {
      const result = await runPlanCommand(action.command, context, { context: `running step "${context.step.name}"` });
      return { note: "exited with code 0", output: result.output };
    }
    const process = await startBackgroundCommand(action.command, context, context.step.name);
    context.drill.teardown.push(`step "${context.step.name}" (pid ${process.pid ?? "?"})`, "process", () => process.stop());
    return { note: `started in the background (pid ${process.pid ?? "?"}); stopped at teardown`, output: null };
  },
};
