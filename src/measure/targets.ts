import type { Problem, StepStatus, Verdict } from "../model/drill-report.js";

/**
 * RTO and RPO arithmetic and the verdict (DESIGN.md "Measurement"). Pure:
 * readings in, numbers and a verdict out.
 */
export interface StepTiming {
  name: string;
  kind: string;
  critical: boolean;
  status: StepStatus;
  endMs: number | null;
}

export interface RtoReading {
  /** t0 → the end of the last passing step; undefined when recovery was not reached. */
  actualMs: number | undefined;
  reachedAt: string | undefined;
}

/**
 * RTO actual: from t0 to the end of the last step that passed, when every
 * critical step passed (or was skipped by policy). Every step of a plan is
 * part of the recovery — restores, checks, the application smoke test, a
 * manual DNS switch — so the recovery is verified when the last one passes.
 * A critical step that failed or never ran means recovery was not reached.
 */
export function measureRto(steps: readonly StepTiming[]): RtoReading {
  if (steps.some((s) => s.critical && s.status !== "passed" && s.status !== "skipped")) return { actualMs: undefined, reachedAt: undefined };
  let last: StepTiming | undefined;
  for (const step of steps) if (step.status === "passed" && step.endMs !== null && (!last || step.endMs >= last.endMs!)) last = step;
  return last ? { actualMs: last.endMs!, reachedAt: last.name } : { actualMs: undefined, reachedAt: undefined };
}

export interface RpoReading {
  actualMs: number | undefined;
  fromMetadataMs: number | undefined;
  fromProbeMs: number | undefined;
  countedFrom: "metadata" | "probe" | undefined;
}

/**
 * RPO actual = t0 − the recovery point, read two ways: from the backups'
 * metadata (the oldest consistentAt among those restored: the data as a whole
 * is only as new as its oldest part) and from the restored data itself (the
 * oldest of the newest timestamps the probes found). The worse one counts.
 */
export function measureRpo(t0: Date, consistentAt: readonly Date[], probes: readonly Date[]): RpoReading {
  const age = (points: readonly Date[]) => (points.length ? t0.getTime() - Math.min(...points.map((p) => p.getTime())) : undefined);
  const fromMetadataMs = age(consistentAt);
  const fromProbeMs = age(probes);
  if (fromMetadataMs === undefined && fromProbeMs === undefined) return { actualMs: undefined, fromMetadataMs, fromProbeMs, countedFrom: undefined };
  const probeCounts = fromProbeMs !== undefined && (fromMetadataMs === undefined || fromProbeMs > fromMetadataMs);
  return { actualMs: probeCounts ? fromProbeMs : fromMetadataMs, fromMetadataMs, fromProbeMs, countedFrom: probeCounts ? "probe" : "metadata" };
}

export interface TargetCheck {
  targetMs: number | undefined;
  actualMs: number | undefined;
  /** undefined when there is no target; false when there is one and no actual (not reached). */
  met: boolean | undefined;
}

export function evaluateTarget(targetMs: number | undefined, actualMs: number | undefined): TargetCheck {
  if (targetMs === undefined) return { targetMs, actualMs, met: undefined };
  return { targetMs, actualMs, met: actualMs !== undefined && actualMs <= targetMs };
}

export interface VerdictInput {
  steps: ReadonlyArray<StepTiming & { error: Problem | null }>;
  provisioningFailed: boolean;
  interrupted: boolean;
  rto: TargetCheck;
  rpo: TargetCheck;
}

/**
 * The drill's verdict, worst first: `interrupted`, `failed` (a critical step
 * failed or never ran), `missed-targets` (recovery worked, a target was
 * exceeded), `partial` (an optional step failed), `passed`.
 */
export function decideVerdict(input: VerdictInput): { verdict: Verdict; summary: string } {
  const { steps } = input;
  if (input.interrupted) return { verdict: "interrupted", summary: "the drill was interrupted before it finished; the scratch environments were torn down" };
  if (input.provisioningFailed) return { verdict: "failed", summary: "a scratch environment could not be created, so nothing was restored" };
  const failed = steps.find((s) => s.critical && s.status === "failed");
  if (failed) return { verdict: "failed", summary: `critical step "${failed.name}" failed${failed.error ? `: ${firstLine(failed.error.message)}` : ""}` };
  const notRun = steps.find((s) => s.critical && s.status === "not-run");
  if (notRun) return { verdict: "failed", summary: `critical step "${notRun.name}" did not run` };
  const missed = [
    input.rto.met === false ? `RTO ${input.rto.actualMs === undefined ? "not reached" : "exceeded its target"}` : undefined,
    input.rpo.met === false ? `RPO ${input.rpo.actualMs === undefined ? "not measured" : "exceeded its target"}` : undefined,
  ].filter(Boolean);
  if (missed.length) return { verdict: "missed-targets", summary: `every critical step passed, but ${missed.join(" and ")}` };
  const optional = steps.filter((s) => !s.critical && (s.status === "failed" || s.status === "not-run"));
  if (optional.length) return { verdict: "partial", summary: `recovery worked, but optional step${optional.length > 1 ? "s" : ""} ${optional.map((s) => `"${s.name}"`).join(", ")} failed` };
  return { verdict: "passed", summary: "every step passed and both targets were met" };
}

function firstLine(text: string): string {
  const line = text.split("\n")[0] ?? "";
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}
