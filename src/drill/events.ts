import type { DrillReport, StepReport } from "../model/drill-report.js";
import type { Step } from "../model/plan.js";
import type { TeardownRecord } from "./teardown.js";

/**
 * What a running drill tells its reporters (the console, logs). Engines never
 * print; a reporter that throws never breaks the drill.
 */
export interface DrillEvents {
  "drill:start"(info: { drillId: string; plan: string; t0: Date; steps: readonly Step[] }): void;
  "provision:start"(info: { scratch: string; type: string }): void;
  "provision:end"(info: { scratch: string; type: string; ok: boolean; durationMs: number; error?: string }): void;
  "step:start"(info: { index: number; step: Step }): void;
  /** An attempt failed and another one follows after `delayMs`. */
  "step:retry"(info: { index: number; step: Step; attempt: number; error: string; delayMs: number }): void;
  "step:end"(info: { index: number; step: Step; report: StepReport }): void;
  /** A manual step waits for a person. */
  "manual:waiting"(info: { step: Step; instructions: string; drillId: string; interactive: boolean }): void;
  "teardown:end"(info: TeardownRecord): void;
  "target:missed"(info: { target: "rto" | "rpo"; actualMs: number | null; targetMs: number }): void;
  "drill:end"(info: { report: DrillReport }): void;
}

export type DrillListener = Partial<DrillEvents>;

export function emitter(listener: DrillListener | undefined, onError: (error: unknown) => void): <K extends keyof DrillEvents>(event: K, info: Parameters<DrillEvents[K]>[0]) => void {
  return (event, info) => {
    const handler = listener?.[event] as ((i: typeof info) => void) | undefined;
    if (!handler) return;
    try {
      handler(info);
    } catch (error) {
      onError(error);
    }
  };
}
