import { runBackup } from "../backup/run-backup.js";
import type { LifeboatConfig } from "../config/load.js";
import { storeDrillReport } from "../catalog/drill-reports.js";
import { runDrill } from "../drill/run-drill.js";
import type { Logger } from "../log/logger.js";
import type { DrillReport } from "../model/drill-report.js";
import { LifeboatError, isAbortError } from "../model/errors.js";
import { redactText } from "../log/redact.js";
import type { BackupJob } from "../model/job.js";
import type { Manifest } from "../model/manifest.js";
import type { RestorePlan } from "../model/plan.js";
import type { AgeIdentity } from "../pipeline/age/index.js";
import { renderReportFiles } from "../report/files.js";
import type { Layout } from "../storage/layout.js";
import type { ObjectStore } from "../storage/store.js";
import type { Claim, NotClaimed, RunLedger, RunRecord, Trigger } from "./run-ledger.js";

/**
 * One scheduled run, the same unit for the daemon and for `lifeboat run JOB
 * --scheduled-at T` (external schedulers): claim (job, scheduled time) in the
 * ledger, keep the lease alive, run, record the outcome. Idempotent: a slot
 * that already ran is not run again.
 */
export type UnitOutcome =
  | { ran: false; notClaimed: NotClaimed }
  | { ran: true; record: RunRecord; manifest?: Manifest | undefined; report?: DrillReport | undefined; error?: unknown; durationMs: number };

interface Common {
  ledger: RunLedger;
  slot: Date;
  trigger: Trigger;
  /** Re-run a slot whose earlier attempt failed (external schedulers retry). */
  retry?: boolean;
  leaseMs: number;
  /** Aborts the run (shutdown after the grace period, or the user). */
  signal: AbortSignal;
  log: Logger;
}

export async function runScheduledBackup(request: Common & { job: BackupJob; store: ObjectStore; layout: Layout; recipients: readonly string[] }): Promise<UnitOutcome> {
  const { job, ledger, slot, trigger, log } = request;
  const claimed = await ledger.claim("backup", job.name, slot, trigger, { retry: request.retry ?? false });
  if (!claimed.claimed) return { ran: false, notClaimed: claimed };
  return underClaim(claimed, request, async (signal) => {
    const { manifest, durationMs } = await runBackup({
      job,
      store: request.store,
      layout: request.layout,
      recipients: request.recipients,
      signal,
      log,
      events: { start: ({ id }) => void claimed.setResultId(id).catch((error) => log.warn({ err: (error as Error).message }, "could not record the backup id in the run record")) },
      run: { scheduledAt: slot, trigger, instance: ledger.owner.instance, fence: () => claimed.fence() },
    });
    return { status: manifest.status, resultId: manifest.id, manifest, durationMs };
  });
}

export async function runScheduledDrill(
  request: Common & { plan: RestorePlan; config: LifeboatConfig; stores: (storage: string) => Promise<{ store: ObjectStore; layout: Layout }>; identities: readonly AgeIdentity[] },
): Promise<UnitOutcome> {
  const { plan, ledger, slot, trigger, log } = request;
  const claimed = await ledger.claim("drill", plan.name, slot, trigger, { retry: request.retry ?? false });
  if (!claimed.claimed) return { ran: false, notClaimed: claimed };
  return underClaim(claimed, request, async (signal) => {
    const started = performance.now();
    // Unattended: a manual step is never waited for.
    const report = await runDrill({ plan, config: request.config, stores: request.stores, identities: request.identities, signal, log, manual: { interactive: false } });
    const { store, layout } = await request.stores(plan.storage);
    await storeDrillReport(store, layout, report, renderReportFiles(report));
    const status = report.verdict === "passed" ? "succeeded" : report.verdict === "interrupted" ? "interrupted" : "failed";
    return { status, resultId: report.drillId, report, durationMs: performance.now() - started };
  });
}

/** What a run record keeps of an error: its code and its message, secrets taken out. */
function errorFacts(error: unknown): { code: string; message: string } {
  return { code: error instanceof LifeboatError ? error.code : "INTERNAL", message: redactText((error as Error)?.message ?? String(error)) };
}

type Finished = { status: "succeeded" | "partial" | "failed" | "interrupted"; resultId: string; manifest?: Manifest; report?: DrillReport; durationMs: number };

async function underClaim(claim: Claim, request: Common, work: (signal: AbortSignal) => Promise<Finished>): Promise<UnitOutcome> {
  const started = performance.now();
  // The run stops when the caller aborts it or when the lease is lost to another instance.
  const controller = new AbortController();
  const abort = () => controller.abort(request.signal.reason);
  if (request.signal.aborted) abort();
  request.signal.addEventListener("abort", abort, { once: true });
  claim.onLost((error) => controller.abort(error));
  claim.keepAlive(Math.max(1000, Math.floor(request.leaseMs / 3)));
  let done: Finished | undefined;
  let failure: unknown;
  try {
    done = await work(controller.signal);
  } catch (error) {
    failure = error;
  }
  try {
    const interrupted = failure !== undefined && (isAbortError(failure) || (failure instanceof LifeboatError && failure.kind === "interrupted"));
    const outcome = done
      ? { status: done.status, resultId: done.resultId, finishedAt: new Date() }
      : { status: interrupted ? ("interrupted" as const) : ("failed" as const), error: errorFacts(failure), finishedAt: new Date() };
    // Written once: a failure to record the outcome never turns a stored backup into a failed one.
    const record = await claim.finish(outcome).catch((finishError: unknown) => {
      request.log.warn({ err: redactText((finishError as Error).message) }, "could not record the run's outcome; the next sweep marks it abandoned");
      return { ...claim.record, status: outcome.status } satisfies RunRecord;
    });
    return done
      ? { ran: true, record, manifest: done.manifest, report: done.report, durationMs: done.durationMs }
      : { ran: true, record, error: failure, durationMs: performance.now() - started };
  } finally {
    request.signal.removeEventListener("abort", abort);
  }
}
