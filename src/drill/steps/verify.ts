import type { Check, VerifyAction } from "../../model/plan.js";
import type { CheckContext, CheckResult } from "../checks/check.js";
import { runCommandCheck } from "../checks/command.js";
import { runFilesCheck } from "../checks/files.js";
import { runHttpCheck } from "../checks/http.js";
import { runSqlCheck } from "../checks/sql.js";
import type { StepRunner } from "./step.js";

/** The checks a verify step can run, one file each under `checks/`. */
const CHECKS: { [T in Check["type"]]: (check: Extract<Check, { type: T }>, context: CheckContext) => Promise<CheckResult> } = {
  sql: runSqlCheck,
  command: runCommandCheck,
  http: runHttpCheck,
  files: runFilesCheck,
};

export const verifyStep: StepRunner<VerifyAction> = {
  async run(action, context) {
    const run = CHECKS[action.check.type] as (check: Check, context: CheckContext) => Promise<CheckResult>;
    const result = await run(action.check, context);
    return { note: result.note, output: result.output };
  },
};
