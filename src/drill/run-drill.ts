import { availableParallelism, hostname } from "node:os";
import { dirname, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { LifeboatConfig } from "../config/load.js";
import type { Logger } from "../log/logger.js";
import { silentLogger } from "../log/logger.js";
import { redactText, redactValue } from "../log/redact.js";
import { startTimeline, systemClock, type Clock } from "../measure/clock.js";
import { assertTimeline } from "../measure/assert-timeline.js";
import { coveredMs, type Interval } from "../measure/intervals.js";
import { decideVerdict, evaluateTarget, measureRpo, measureRto } from "../measure/targets.js";
import { newBackupId } from "../model/backup-id.js";
import { DRILL_REPORT_VERSION, type BackupUsed, type DrillReport, type Problem, type StepReport } from "../model/drill-report.js";
import { formatDuration } from "../model/duration.js";
import { LifeboatError } from "../model/errors.js";
import { renderTemplate, type BackupChoice, type RestorePlan, type Step } from "../model/plan.js";
import type { AgeIdentity } from "../pipeline/age/index.js";
import { defaultScratchRoot, provisionScratch, sweepScratch } from "../scratch/environments.js";
import type { Layout } from "../storage/layout.js";
import type { ObjectStore } from "../storage/store.js";
import { LIFEBOAT_VERSION } from "../version.js";
import { clearDrillState, drillStateRoot, sweepDrillState } from "./acks.js";
import { emitter, type DrillListener } from "./events.js";
import { manualStep } from "./steps/manual.js";
import { restoreStep } from "./steps/restore.js";
import { rpoProbeStep } from "./steps/rpo-probe.js";
import { runStep } from "./steps/run.js";
import type { DrillState, ManualConfirmation, StepContext, StepOutcome, StepRunner } from "./steps/step.js";
import { verifyStep } from "./steps/verify.js";
import { TeardownStack } from "./teardown.js";

/**
 * Runs a restore plan: t0, scratch environments created in order, steps in
 * order (each with its timeout, retries and error policy), teardown of
 * everything in reverse order, then the measurements and the verdict.
 *
 * A drill always ends with a report — passed or failed, and also when it is
 * interrupted (SIGINT/SIGTERM fire `signal`): the running step is stopped,
 * teardown still runs, and the verdict is `interrupted`. Only a drill that
 * cannot start (its storage cannot be read, say) throws.
 */
export interface DrillRequest {
  plan: RestorePlan;
  config: LifeboatConfig;
  stores(storage: string): Promise<{ store: ObjectStore; layout: Layout }>;
  identities: readonly AgeIdentity[];
  /** Overrides the plan's recovery point (`lifeboat drill --at`). */
  at?: Date | undefined;
  clock?: Clock;
  signal?: AbortSignal | undefined;
  log?: Logger;
  events?: DrillListener | undefined;
  /** Where scratch environments live (default LIFEBOAT_SCRATCH_DIR or `<tmp>/lifeboat-scratch`). */
  scratchRoot?: string | undefined;
  manual?: ManualConfirmation | undefined;
  random?: () => number;
}

const RUNNERS: { [K in Step["action"]["kind"]]: StepRunner<Extract<Step["action"], { kind: K }>> } = {
  restore: restoreStep,
  verify: verifyStep,
  "rpo-probe": rpoProbeStep,
  run: runStep,
  manual: manualStep,
};

const OUTPUT_EXCERPT_CHARS = 4_000;

export async function runDrill(request: DrillRequest): Promise<DrillReport> {
  const { plan, config } = request;
  const log = (request.log ?? silentLogger).child({ plan: plan.name });
  const signal = request.signal ?? new AbortController().signal;
  const root = request.scratchRoot ?? defaultScratchRoot();
  const random = request.random ?? Math.random;
  const declared = [...plan.scratch, ...Object.entries(config.scratch).map(([name, spec]) => ({ name, spec }))];
  // Housekeeping before t0: the leftovers of drills that were killed.
  await sweepScratch({ root, specs: declared, log });
  await sweepDrillState(drillStateRoot(root));

  const timeline = startTimeline(request.clock ?? systemClock);
  const drillId = newBackupId(timeline.t0);
  const emit = emitter(request.events, (error) => log.warn({ err: (error as Error).message }, "drill reporter failed"));
  const recoveryPoint: BackupChoice = request.at ? { by: "at", at: request.at } : plan.recoveryPoint;
  const state: DrillState = {
    drillId,
    timeline,
    config,
    stores: request.stores,
    identities: request.identities,
    environments: new Map(),
    teardown: new TeardownStack(),
    ackDir: drillStateRoot(root),
    manual: request.manual ?? { interactive: false },
    recoveryPoint,
    random,
    tools: {},
    onManualWaiting: (step, instructions) => emit("manual:waiting", { step, instructions, drillId, interactive: request.manual?.interactive ?? false }),
  };
  log.info({ drillId, t0: timeline.t0.toISOString() }, "drill started");
  emit("drill:start", { drillId, plan: plan.name, t0: timeline.t0, steps: plan.steps });

  // 1. Scratch environments, in the order the plan declares them.
  const runId = drillId.toLowerCase();
  const provisioning: DrillReport["provisioning"] = plan.scratch.map((s) => ({ scratch: s.name, type: s.spec.type, status: "not-run", startMs: null, endMs: null, error: null, versions: {} }));
  let provisioningFailed = false;
  for (const [index, named] of plan.scratch.entries()) {
    if (signal.aborted) break;
    const record = provisioning[index]!;
    record.startMs = timeline.elapsedMs();
    emit("provision:start", { scratch: named.name, type: named.spec.type });
    try {
      const environment = await provisionScratch(named, runId, { root, log, signal });
      state.environments.set(named.name, environment);
      state.teardown.push(`scratch "${named.name}" (${named.spec.type})`, "scratch", () => environment.teardown());
      record.status = "ready";
      record.versions = environment.versions;
      for (const [key, value] of Object.entries(environment.versions)) state.tools[`scratch "${named.name}": ${key}`] = value;
    } catch (error) {
      record.status = "failed";
      record.error = problemOf(error);
      provisioningFailed = !signal.aborted;
    }
    record.endMs = timeline.elapsedMs();
    emit("provision:end", { scratch: named.name, type: named.spec.type, ok: record.status === "ready", durationMs: record.endMs - record.startMs, error: record.error?.message });
    if (record.status === "failed") break;
  }

  // 2. Steps, in order.
  const steps: StepReport[] = plan.steps.map((step, index) => emptyStepReport(step, index));
  const backups: BackupUsed[] = [];
  const probes: Date[] = [];
  let stoppedBy: string | undefined = provisioningFailed ? "a scratch environment could not be created" : undefined;
  for (const [index, step] of plan.steps.entries()) {
    const report = steps[index]!;
    if (signal.aborted || stoppedBy) {
      report.status = "not-run";
      report.note = signal.aborted ? "not run: the drill was interrupted" : `not run: ${stoppedBy}`;
      continue;
    }
    emit("step:start", { index, step });
    const outcome = await attemptStep(step, index, report, { state, plan, signal, log, emit });
    if (outcome?.backup) backups.push({ step: step.name, ...outcome.backup });
    if (outcome?.probe) probes.push(outcome.probe);
    emit("step:end", { index, step, report });
    if (report.status === "failed" && step.onError === "fail") stoppedBy = `step "${step.name}" failed and stops the drill (onError: fail)`;
  }

  // 3. Teardown, newest first; not part of the RTO.
  const teardown = await state.teardown.releaseAll(timeline, (record) => emit("teardown:end", record));
  await clearDrillState(state.ackDir, drillId).catch(() => undefined);
  const durationMs = timeline.elapsedMs();

  // 4. Measurements and verdict.
  const rto = measureRto(steps.map((s) => ({ name: s.name, kind: s.kind, critical: s.critical, status: s.status, endMs: s.endMs })));
  const rpo = measureRpo(
    timeline.t0,
    backups.map((b) => new Date(b.consistentAt)),
    probes,
  );
  const rtoCheck = evaluateTarget(plan.targets.rtoMs, rto.actualMs);
  const rpoCheck = evaluateTarget(plan.targets.rpoMs, rpo.actualMs);
  const { verdict, summary } = decideVerdict({ steps, provisioningFailed, interrupted: signal.aborted, rto: rtoCheck, rpo: rpoCheck });
  const intervals = (list: Array<{ startMs: number | null; endMs: number | null }>): Interval[] =>
    list.flatMap((i) => (i.startMs === null || i.endMs === null ? [] : [{ startMs: i.startMs, endMs: i.endMs }]));
  const phase = (name: string) => coveredMs(steps.flatMap((s) => s.phases.filter((p) => p.phase === name)));

  const report: DrillReport = redactValue({
    version: DRILL_REPORT_VERSION,
    drillId,
    plan: { name: plan.name, file: plan.file, sha256: plan.sha256 },
    verdict,
    summary,
    t0: timeline.t0.toISOString(),
    finishedAt: timeline.wallAt(durationMs).toISOString(),
    durationMs,
    recoveryPoint: describeRecoveryPoint(recoveryPoint, state.recoveryPoint),
    rto: { targetMs: rtoCheck.targetMs ?? null, actualMs: rto.actualMs ?? null, met: rtoCheck.met ?? null, reachedAt: rto.reachedAt ?? null },
    rpo: {
      targetMs: rpoCheck.targetMs ?? null,
      actualMs: rpo.actualMs ?? null,
      met: rpoCheck.met ?? null,
      fromMetadataMs: rpo.fromMetadataMs ?? null,
      fromProbeMs: rpo.fromProbeMs ?? null,
      countedFrom: rpo.countedFrom ?? null,
    },
    phases: {
      provisionMs: coveredMs(intervals(provisioning)),
      fetchMs: phase("fetch"),
      decodeMs: phase("decode"),
      restoreMs: phase("restore"),
      verifyMs: coveredMs(intervals(steps.filter((s) => s.kind === "verify" || s.kind === "rpo-probe"))),
    },
    provisioning,
    steps,
    backups,
    teardown,
    environment: { lifeboat: LIFEBOAT_VERSION, node: process.version, platform: process.platform, arch: process.arch, host: hostname(), cpus: availableParallelism(), tools: state.tools },
  });
  assertTimeline(report);
  for (const [target, check] of [["rto", rtoCheck], ["rpo", rpoCheck]] as const) {
    if (check.met === false && check.targetMs !== undefined) emit("target:missed", { target, actualMs: check.actualMs ?? null, targetMs: check.targetMs });
  }
  log.info({ drillId, verdict, rtoMs: report.rto.actualMs, rpoMs: report.rpo.actualMs }, "drill finished");
  emit("drill:end", { report });
  return report;
}

interface AttemptScope {
  state: DrillState;
  plan: RestorePlan;
  signal: AbortSignal;
  log: Logger;
  emit: ReturnType<typeof emitter>;
}

/** Runs a step's attempts (timeout per attempt, retries with a pause) and fills its report. */
async function attemptStep(step: Step, index: number, report: StepReport, scope: AttemptScope): Promise<StepOutcome | undefined> {
  const { state, signal } = scope;
  const { timeline } = state;
  const runner = RUNNERS[step.action.kind] as StepRunner;
  report.startMs = timeline.elapsedMs();
  let outcome: StepOutcome | undefined;
  for (let attempt = 1; ; attempt++) {
    const timeout = step.timeoutMs === undefined ? undefined : AbortSignal.timeout(step.timeoutMs);
    const attemptSignal = timeout ? AbortSignal.any([signal, timeout]) : signal;
    const startMs = timeline.elapsedMs();
    try {
      outcome = await runner.run(step.action, stepContext(step, scope, attemptSignal));
      if (signal.aborted) throw signal.reason;
      report.attempts.push({ startMs, endMs: timeline.elapsedMs(), ok: true });
      report.status = outcome.skipped ? "skipped" : "passed";
      report.note = outcome.skipped ?? outcome.note;
      report.output = excerpt(outcome.output);
      report.phases = (outcome.phases ?? []).map((p) => ({ phase: p.phase, startMs: Math.max(0, timeline.at(p.startMs)), endMs: Math.max(0, timeline.at(p.endMs)) }));
      if (outcome.probe) report.probe = { value: outcome.probe.toISOString(), rpoMs: timeline.t0.getTime() - outcome.probe.getTime() };
      break;
    } catch (error) {
      outcome = undefined;
      const timedOut = timeout?.aborted === true && !signal.aborted;
      const problem: Problem = timedOut
        ? { code: "STEP_TIMEOUT", message: `step "${step.name}" did not finish within ${formatDuration(step.timeoutMs!)} (its timeout)` }
        : problemOf(error);
      report.attempts.push({ startMs, endMs: timeline.elapsedMs(), ok: false, error: problem });
      report.error = problem;
      if (signal.aborted) {
        report.status = "interrupted";
        break;
      }
      if (attempt > step.retries) {
        report.status = "failed";
        if (step.retries > 0) report.note = `failed after ${attempt} attempts`;
        break;
      }
      scope.log.info({ step: step.name, attempt, err: problem.message }, "step attempt failed; retrying");
      scope.emit("step:retry", { index, step, attempt, error: problem.message, delayMs: step.retryDelayMs });
      try {
        await sleep(step.retryDelayMs, undefined, { signal });
      } catch {
        report.status = "interrupted";
        break;
      }
    }
  }
  if (report.status === "passed") report.error = null;
  report.endMs = timeline.elapsedMs();
  report.durationMs = report.endMs - report.startMs;
  return outcome;
}

function stepContext(step: Step, scope: AttemptScope, signal: AbortSignal): StepContext {
  const { state, plan } = scope;
  const handle = (name: string) => {
    const environment = state.environments.get(name);
    const named = plan.scratch.find((s) => s.name === name);
    if (!environment || !named) throw new LifeboatError("SCRATCH_UNKNOWN", `step "${step.name}" uses scratch "${name}", which this drill did not create`, { kind: "usage" });
    return { name, spec: named.spec, connection: environment.connection };
  };
  return {
    step,
    drill: state,
    scratch: handle,
    render: (template) =>
      renderTemplate(template, (ref) => {
        const value = handle(ref.scratch).connection[ref.key];
        if (value === undefined) {
          const keys = Object.keys(handle(ref.scratch).connection).filter((k) => !/pass|secret|token/i.test(k));
          throw new LifeboatError("TEMPLATE_UNKNOWN_KEY", `step "${step.name}" uses \${scratch.${ref.scratch}.${ref.key}}, but scratch "${ref.scratch}" has no "${ref.key}"; it has: ${keys.join(", ")}`, {
            kind: "usage",
          });
        }
        return value;
      }),
    baseDir: dirname(resolve(plan.file)),
    signal,
    log: scope.log.child({ step: step.name }),
  };
}

function emptyStepReport(step: Step, index: number): StepReport {
  return {
    index,
    name: step.name,
    kind: step.action.kind,
    critical: step.critical,
    onError: step.onError,
    status: "not-run",
    startMs: null,
    endMs: null,
    durationMs: null,
    attempts: [],
    error: null,
    note: null,
    output: null,
    phases: [],
    probe: null,
  };
}

/** The recovery point as the report states it: a random one is the point the first restore drew. */
function describeRecoveryPoint(planned: BackupChoice, used: BackupChoice): DrillReport["recoveryPoint"] {
  switch (planned.by) {
    case "latest":
      return { mode: "latest", at: null, withinMs: null };
    case "id":
      return { mode: "id", at: null, withinMs: null };
    case "at":
      return { mode: "at", at: planned.at.toISOString(), withinMs: null };
    case "random-within":
      return { mode: "random-within", at: used.by === "at" ? used.at.toISOString() : null, withinMs: planned.withinMs };
  }
}

function problemOf(error: unknown): Problem {
  if (error instanceof LifeboatError) return { code: error.code, message: redactText(error.message), ...(error.hint ? { hint: error.hint } : {}) };
  const e = error as Error | undefined;
  if (e?.name === "AbortError" || e?.name === "TimeoutError") return { code: "INTERRUPTED", message: "interrupted" };
  return { code: "INTERNAL", message: redactText(e?.message ?? String(error)) };
}

function excerpt(output: string | null): string | null {
  if (output === null || output === "") return null;
  return output.length > OUTPUT_EXCERPT_CHARS ? `…${output.slice(-OUTPUT_EXCERPT_CHARS)}` : output;
}

