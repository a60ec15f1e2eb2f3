import type { LifeboatConfig } from "../../config/load.js";
import type { Timeline } from "../../measure/clock.js";
import type { BackupChoice, Step } from "../../model/plan.js";
import type { AgeIdentity } from "../../pipeline/age/index.js";
import type { RestorePhase } from "../../restore/run-restore.js";
import type { ScratchEnvironment } from "../../scratch/environments.js";
import type { Layout } from "../../storage/layout.js";
import type { ObjectStore } from "../../storage/store.js";
import type { BackupUsed } from "../../model/drill-report.js";
import type { BackgroundProcess } from "../checks/command.js";
import type { CheckContext } from "../checks/check.js";
import type { TeardownStack } from "../teardown.js";

/**
 * One kind of step (restore, verify, rpo-probe, run, manual). The engine
 * (`run-drill.ts`) owns attempts, timeouts, retries and timing; a step runner
 * only does its one attempt and says what it observed. It stops promptly when
 * `context.signal` fires (timeout or interrupt) and throws a `LifeboatError`
 * when the step fails.
 */
export interface StepRunner<A extends Step["action"] = Step["action"]> {
  run(action: A, context: StepContext): Promise<StepOutcome>;
}

export interface StepContext extends CheckContext {
  step: Step;
  drill: DrillState;
}

/** What an attempt observed. */
export interface StepOutcome {
  /** For the report: `returned 1200 rows`, `restored backup … into …`. */
  note: string | null;
  output: string | null;
  /** Restore steps: when each stage was active (`performance.now()` readings). */
  phases?: RestorePhase[] | undefined;
  /** Restore steps: the backup that came back. */
  backup?: Omit<BackupUsed, "step"> | undefined;
  /** rpo-probe steps: the newest timestamp in the restored data. */
  probe?: Date | undefined;
  /** Set when the step did not run on purpose (a manual step without a terminal). */
  skipped?: string | undefined;
}

/** How a manual step reaches a person; supplied by the CLI (engines never read the terminal). */
export interface ManualConfirmation {
  /** Whether a person is at a terminal to confirm. */
  interactive: boolean;
  /** Resolves when the person confirms at the terminal; rejects when the signal fires. */
  confirm?(step: Step, instructions: string, signal: AbortSignal): Promise<void>;
}

/** What the steps of one drill share. */
export interface DrillState {
  drillId: string;
  timeline: Timeline;
  config: LifeboatConfig;
  stores(storage: string): Promise<{ store: ObjectStore; layout: Layout }>;
  identities: readonly AgeIdentity[];
  environments: Map<string, ScratchEnvironment>;
  teardown: TeardownStack;
  /** Where manual steps look for `lifeboat drill --ack` confirmations. */
  ackDir: string;
  manual: ManualConfirmation;
  /**
   * The recovery point restore steps use unless they choose their own. A
   * random one (`pick: random-within`) is drawn by the first restore, among
   * that job's real backups; it then becomes `at` that backup's consistentAt,
   * so every later restore is consistent with it.
   */
  recoveryPoint: BackupChoice;
  random: () => number;
  /** Tool and server versions seen so far, for the report. */
  tools: Record<string, string>;
  /** Emits `manual:waiting`. */
  onManualWaiting(step: Step, instructions: string): void;
}

export type { BackgroundProcess };
