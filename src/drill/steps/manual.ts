import { LifeboatError } from "../../model/errors.js";
import type { ManualAction } from "../../model/plan.js";
import { announceWaiting, waitForAck } from "../acks.js";
import type { StepRunner } from "./step.js";

/**
 * A step a person does ("switch DNS", "tell the stakeholders"). It waits for
 * a confirmation at the terminal or from `lifeboat drill --ack STEP`, and the
 * wait counts toward the RTO, as it would in a real recovery. Without a
 * terminal it follows the plan's policy: skip (recorded as skipped by
 * policy), wait for `--ack`, or fail.
 */
export const manualStep: StepRunner<ManualAction> = {
  async run(action, context) {
    const { drill, step } = context;
    const interactive = drill.manual.interactive && drill.manual.confirm !== undefined;
    if (!interactive && action.nonInteractive === "skip") {
      return { note: null, output: null, skipped: "skipped by policy: no terminal to confirm it (manual: skip)" };
    }
    if (!interactive && action.nonInteractive === "fail") {
      throw new LifeboatError("MANUAL_NOT_CONFIRMED", `manual step "${step.name}" needs a person and there is no terminal`, {
        kind: "verification",
        hint: `run the drill at a terminal, or set nonInteractive: wait and confirm with: lifeboat drill --ack "${step.name}"`,
      });
    }
    await announceWaiting(drill.ackDir, {
      drillId: drill.drillId,
      plan: drill.config.file,
      step: step.name,
      instructions: action.instructions,
      pid: process.pid,
      since: new Date().toISOString(),
    });
    drill.onManualWaiting(step, action.instructions);
    // Whichever confirmation comes first wins; the other wait is cancelled.
    const settled = new AbortController();
    const signal = AbortSignal.any([context.signal, settled.signal]);
    const waits: Array<Promise<"ack" | "terminal">> = [waitForAck(drill.ackDir, drill.drillId, step.name, signal).then(() => "ack" as const)];
    if (interactive) waits.push(drill.manual.confirm!(step, action.instructions, signal).then(() => "terminal" as const));
    try {
      const by = await Promise.race(waits);
      return { note: by === "ack" ? "confirmed with lifeboat drill --ack" : "confirmed at the terminal", output: null };
    } finally {
      settled.abort();
      await Promise.allSettled(waits);
    }
  },
};
