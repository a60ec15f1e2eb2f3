import { createInterface } from "node:readline";
import type { DrillListener } from "../drill/events.js";
import type { ManualConfirmation } from "../drill/steps/step.js";
import { formatDuration } from "../model/duration.js";
import type { StepReport } from "../model/drill-report.js";
import type { Output } from "./output.js";

/**
 * The drill as it happens, in the terminal: one line per scratch environment,
 * step and teardown as each finishes, with its duration; on a TTY the running
 * step ticks on stderr. The final verdict block is printed by the command.
 */
const MARK: Record<StepReport["status"], string> = { passed: "✓", failed: "✗", skipped: "-", "not-run": "·", interrupted: "!" };

export function consoleReporter(output: Output, live = process.stderr.isTTY === true): DrillListener & { close(): void } {
  let ticker: NodeJS.Timeout | undefined;
  const startTicking = (label: string) => {
    stopTicking();
    if (!live) return;
    const started = performance.now();
    const draw = () => process.stderr.write(`\r\x1b[2K  … ${label} ${formatDuration(performance.now() - started)}`);
    draw();
    ticker = setInterval(draw, 500);
    ticker.unref();
  };
  const stopTicking = () => {
    if (ticker) clearInterval(ticker);
    if (ticker && live) process.stderr.write("\r\x1b[2K");
    ticker = undefined;
  };
  const line = (text: string) => {
    stopTicking();
    output.out(text);
  };
  return {
    "drill:start": ({ drillId, plan, t0, steps }) => line(`drill ${plan} ${drillId}: t0 ${t0.toISOString()}, ${steps.length} step${steps.length === 1 ? "" : "s"}`),
    "provision:start": ({ scratch, type }) => startTicking(`creating scratch "${scratch}" (${type})`),
    "provision:end": ({ scratch, type, ok, durationMs, error }) =>
      line(`  ${ok ? "✓" : "✗"} scratch "${scratch}" (${type}) ${ok ? "ready" : "failed"} in ${formatDuration(durationMs)}${error ? `: ${error}` : ""}`),
    "step:start": ({ step }) => startTicking(step.name),
    "step:retry": ({ step, attempt, error, delayMs }) => line(`  ↻ ${step.name}: attempt ${attempt} failed (${firstLine(error)}); again in ${formatDuration(delayMs)}`),
    "step:end": ({ report }) => {
      const took = report.durationMs === null ? "" : ` ${formatDuration(report.durationMs)}`;
      const detail = report.status === "passed" || report.status === "skipped" ? report.note : (report.error?.message ?? report.note);
      line(`  ${MARK[report.status]} ${report.name}${took}${detail ? `  ${firstLine(detail)}` : ""}`);
    },
    "manual:waiting": ({ step, instructions, drillId, interactive }) => {
      line(`  ? ${step.name}: ${instructions}`);
      line(`    ${interactive ? "press Enter when it is done, or run" : "waiting; confirm with"}: lifeboat drill --ack ${JSON.stringify(step.name)} --drill ${drillId}`);
    },
    "teardown:end": (record) => line(`  ${record.status === "removed" ? "⌫" : "✗"} removed ${record.name} in ${formatDuration(record.endMs - record.startMs)}${record.error ? `: FAILED ${record.error.message}` : ""}`),
    "drill:end": () => stopTicking(),
    close: stopTicking,
  };
}

/** Manual steps at a terminal: the person presses Enter when the step is done. */
export function terminalConfirmation(): ManualConfirmation {
  const interactive = process.stdin.isTTY === true;
  if (!interactive) return { interactive: false };
  return {
    interactive: true,
    confirm: (_step, _instructions, signal) =>
      new Promise<void>((resolve, reject) => {
        const rl = createInterface({ input: process.stdin });
        const finish = (error?: unknown) => {
          signal.removeEventListener("abort", onAbort);
          rl.close();
          if (error) reject(error);
          else resolve();
        };
        const onAbort = () => finish(signal.reason ?? new Error("aborted"));
        signal.addEventListener("abort", onAbort, { once: true });
        rl.once("line", () => finish());
      }),
  };
}

function firstLine(text: string): string {
  const first = text.split("\n")[0] ?? "";
  return first.length > 160 ? `${first.slice(0, 160)}…` : first;
}
