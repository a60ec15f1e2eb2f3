import type { RpoProbeAction } from "../../model/plan.js";
import { formatDuration } from "../../model/duration.js";
import { readProbeCommand } from "../checks/command.js";
import { readProbeSql } from "../checks/sql.js";
import type { StepRunner } from "./step.js";

/** Reads the newest timestamp in the restored data: the RPO measured from the data itself. */
export const rpoProbeStep: StepRunner<RpoProbeAction> = {
  async run(action, context) {
    const newest = action.probe.type === "sql" ? await readProbeSql(action.probe, context) : await readProbeCommand(action.probe, context);
    const ageMs = context.drill.timeline.t0.getTime() - newest.getTime();
    const note =
      ageMs >= 0
        ? `newest data from ${newest.toISOString()}, ${formatDuration(ageMs)} before t0`
        : `newest data from ${newest.toISOString()}, after t0 (future-dated rows or clock skew)`;
    return { note, output: null, probe: newest };
  },
};
