import { LifeboatError } from "../model/errors.js";
import type { DrillReport } from "../model/drill-report.js";

/**
 * Checks the measurements of a finished drill before anyone reads them:
 * every duration is ≥ 0, every end follows its start, steps follow each
 * other, and teardown comes after the last step. A violation is a bug in
 * Lifeboat's measuring, and a report with it must not be believed.
 */
export function assertTimeline(report: Pick<DrillReport, "provisioning" | "steps" | "teardown" | "durationMs">): void {
  const problems: string[] = [];
  const span = (what: string, startMs: number | null, endMs: number | null) => {
    if (startMs === null || endMs === null) return;
    if (!(startMs >= 0)) problems.push(`${what} starts before t0 (${startMs} ms)`);
    if (!(endMs >= startMs)) problems.push(`${what} ends before it starts (${startMs} → ${endMs} ms)`);
  };
  for (const p of report.provisioning) span(`provisioning of "${p.scratch}"`, p.startMs, p.endMs);
  let previousEnd = 0;
  for (const step of report.steps) {
    span(`step "${step.name}"`, step.startMs, step.endMs);
    if (step.startMs !== null) {
      if (step.startMs < previousEnd) problems.push(`step "${step.name}" starts before the previous step ended`);
      previousEnd = step.endMs ?? previousEnd;
    }
    if (step.durationMs !== null && step.durationMs < 0) problems.push(`step "${step.name}" has a negative duration`);
    for (const a of step.attempts) span(`an attempt of step "${step.name}"`, a.startMs, a.endMs);
    for (const p of step.phases) span(`the ${p.phase} phase of step "${step.name}"`, p.startMs, p.endMs);
  }
  for (const t of report.teardown) {
    span(`teardown of "${t.name}"`, t.startMs, t.endMs);
    if (t.startMs < previousEnd) problems.push(`teardown of "${t.name}" starts before the last step ended`);
  }
  if (report.durationMs < previousEnd) problems.push("the drill's duration is shorter than its steps");
  if (problems.length) {
    throw new LifeboatError("MEASUREMENT_INVALID", `the drill's measurements are inconsistent: ${problems.join("; ")}`, {
      kind: "run",
      hint: "this is a bug in Lifeboat; please report it with the report.json",
    });
  }
}
