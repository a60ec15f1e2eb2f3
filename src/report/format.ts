import { formatDuration } from "../model/duration.js";
import type { BackupUsed, DrillReport, Problem, StepReport } from "../model/drill-report.js";
import { oneLine } from "./text.js";

/**
 * The facts every renderer states the same way: durations, times, targets,
 * errors. Plain text; each renderer escapes it for its own format.
 */

/** A duration, or `none` when it was not measured. */
export function formatMs(durationMs: number | null, none = "—"): string {
  return durationMs === null ? none : formatDuration(durationMs);
}

/** `2026-11-21 19:05:12 UTC` */
export function formatUtc(iso: string): string {
  return `${new Date(iso).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** `2026-11-21 19:05` (UTC), for tables. */
export function formatUtcMinute(iso: string): string {
  return new Date(iso).toISOString().slice(0, 16).replace("T", " ");
}

/** A time on the drill's timeline: `+7m 58s` after t0. */
export function formatOffset(offsetMs: number | null, none = "—"): string {
  return offsetMs === null ? none : `+${formatDuration(offsetMs)}`;
}

/** `expected 1200 rows, found 0 [E_VERIFY]`, on one line. */
export function describeProblem(problem: Problem): string {
  return `${oneLine(problem.message)} [${problem.code}]`;
}

export function metWord(met: boolean | null): string {
  return met === null ? "not evaluated" : met ? "met" : "missed";
}

export interface TargetFacts {
  label: "RTO" | "RPO";
  actual: string;
  target: string;
  met: boolean | null;
  /** How the actual was reached or measured, e.g. `at step "check-orders"`. */
  detail: string;
}

export function rtoFacts(report: DrillReport): TargetFacts {
  const { rto } = report;
  return {
    label: "RTO",
    actual: formatMs(rto.actualMs, "not reached"),
    target: formatMs(rto.targetMs, "none"),
    met: rto.met,
    detail: rto.reachedAt === null ? "no step verified the recovery" : `t0 to the end of step "${rto.reachedAt}"`,
  };
}

export function rpoFacts(report: DrillReport): TargetFacts {
  const { rpo } = report;
  return {
    label: "RPO",
    actual: formatMs(rpo.actualMs, "not measured"),
    target: formatMs(rpo.targetMs, "none"),
    met: rpo.met,
    detail: rpoReadings(report),
  };
}

/** `counted from the probe (1h 6m); backup metadata said 1h 5m` */
export function rpoReadings(report: DrillReport): string {
  const { rpo } = report;
  const metadata = `backup metadata ${formatMs(rpo.fromMetadataMs, "n/a")}`;
  const probe = `probe ${formatMs(rpo.fromProbeMs, "n/a")}`;
  if (rpo.countedFrom === null) return `${metadata}, ${probe}`;
  return rpo.countedFrom === "probe" ? `counted from the ${probe}; ${metadata}` : `counted from the ${metadata}; ${probe}`;
}

export function recoveryPointText(report: DrillReport): string {
  const { recoveryPoint: point } = report;
  switch (point.mode) {
    case "latest":
      return "latest backup";
    case "id":
      return "a chosen backup id";
    case "at":
      return point.at === null ? "a point in time" : `newest backup at or before ${formatUtc(point.at)}`;
    case "random-within":
      return `a random point within ${formatMs(point.withinMs, "?")} before t0`;
  }
}

/** `20261121T180000Z-3f9a of orders-db, 1h 5m old at t0` */
export function backupLine(backup: BackupUsed): string {
  const rejected = backup.fallbackFrom.length === 0 ? "" : ` (fell back from ${backup.fallbackFrom.map((f) => `${f.id}: ${f.code}`).join(", ")})`;
  return `${backup.job} ${backup.id}, ${formatDuration(backup.ageMs)} old at t0${rejected}`;
}

export function failedSteps(report: DrillReport): StepReport[] {
  return report.steps.filter((step) => step.status === "failed" || step.status === "interrupted");
}

/** `3 attempts` when a step was retried, else undefined. */
export function attemptsText(step: StepReport): string | undefined {
  return step.attempts.length > 1 ? `${step.attempts.length} attempts` : undefined;
}
