import type { DrillReport } from "../model/drill-report.js";
import { backupLine, describeProblem, failedSteps, metWord, rpoFacts, rtoFacts, type TargetFacts } from "./format.js";
import { oneLine } from "./text.js";

/**
 * The lines printed at the end of a drill in the terminal: the verdict and
 * why, the measured RTO and RPO against their targets, the backups restored,
 * and what failed. Plain text without colours; the CLI decides where it goes.
 */
export function renderVerdictBlock(report: DrillReport): string {
  const lines = [
    `${report.verdict.toUpperCase()}  drill ${report.drillId} of plan "${report.plan.name}"`,
    oneLine(report.summary),
    `RTO   ${targetText(rtoFacts(report))}`,
    `RPO   ${targetText(rpoFacts(report))}`,
    ...labelled("data", report.backups.map(backupLine)),
    ...problemLines(report),
  ];
  return lines.join("\n");
}

function targetText(facts: TargetFacts): string {
  const target = facts.target === "none" ? "no target" : `target ${facts.target}`;
  const result = facts.met === null ? "" : `: ${metWord(facts.met)}`;
  return `${facts.actual}, ${target}${result} (${facts.detail})`;
}

/** The first line carries the label, the others are indented under it. */
function labelled(label: string, items: string[]): string[] {
  return items.map((item, i) => `${(i === 0 ? label : "").padEnd(6)}${item}`);
}

function problemLines(report: DrillReport): string[] {
  const lines: string[] = [];
  for (const scratch of report.provisioning) {
    if (scratch.status === "failed" && scratch.error) {
      lines.push(`failed to provision scratch "${scratch.scratch}" (${scratch.type}): ${describeProblem(scratch.error)}`, ...hint(scratch.error.hint));
    }
  }
  for (const step of failedSteps(report)) {
    const what = step.status === "interrupted" ? "interrupted" : step.critical ? "failed" : "failed (optional)";
    const error = step.error ? describeProblem(step.error) : "no error recorded";
    lines.push(`${what} step "${step.name}": ${error}`, ...hint(step.error?.hint));
  }
  for (const item of report.teardown) {
    if (item.status === "failed") {
      const error = item.error ? describeProblem(item.error) : "no error recorded";
      lines.push(`teardown of ${item.what} "${item.name}" failed, it may still exist: ${error}`, ...hint(item.error?.hint));
    }
  }
  return lines;
}

function hint(text: string | undefined): string[] {
  return text === undefined ? [] : [`  hint: ${oneLine(text)}`];
}
