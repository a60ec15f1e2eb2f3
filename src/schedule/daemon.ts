import type { LifeboatConfig } from "../config/load.js";
import { checkPlan } from "../config/load-plan.js";
import { applyPrune, planPrune, type PruneResult } from "../catalog/prune.js";
import { ManifestCache } from "../catalog/catalog.js";
import { listDrillReports } from "../catalog/drill-reports.js";
import type { Logger } from "../log/logger.js";
import { LifeboatError } from "../model/errors.js";
import type { BackupJob } from "../model/job.js";
import type { RestorePlan } from "../model/plan.js";
import type { AgeIdentity } from "../pipeline/age/index.js";
import type { Layout } from "../storage/layout.js";
import type { ObjectStore } from "../storage/store.js";
import { CronSchedule } from "./cron.js";
import { readFreshness, type JobFreshness } from "./freshness.js";
import { checkStorage, startHealthServer } from "./http-server.js";
import { DaemonMetrics } from "./metrics.js";
import { createNotifier, type LifeboatEvent, type Notifier } from "./notifications.js";
import { readHeartbeat, startHeartbeat } from "./heartbeat.js";
import { RUN_RECORDS_KEPT_MS, RunLedger, newOwner, type Owner, type Trigger } from "./run-ledger.js";
import { runScheduledBackup, runScheduledDrill, type UnitOutcome } from "./run-unit.js";
import { Scheduler, realTimers, type ScheduledUnit, type SchedulerEvent, type Timers } from "./scheduler.js";

/**
 * `lifeboat daemon`: every scheduled job and drill on its cron schedule, with
 * claims in storage (one run per scheduled time, whatever the number of
 * daemons), catch-up after downtime, pruning after each backup, RPO exposure
 * watched from storage, notifications, and /metrics and /healthz.
 *
 * Shutdown (the `shutdown` signal, i.e. SIGTERM/SIGINT): no new runs start;
 * running ones get `gracePeriodMs` to finish; then they are aborted (uploads
 * aborted, scratch torn down, run records `interrupted`) and the daemon returns.
 */
export interface DaemonRequest {
  config: LifeboatConfig;
  stores(storage: string): Promise<{ store: ObjectStore; layout: Layout }>;
  identities: readonly AgeIdentity[];
  log: Logger;
  /** Fires once to stop the daemon gracefully. */
  shutdown: AbortSignal;
  timers?: Timers;
  /** Called once the daemon is up (schedules loaded, server listening). */
  ready?(info: DaemonInfo): void;
}

export interface DaemonInfo {
  url: string;
  instance: string;
  jobs: number;
  drills: number;
  multiInstance: boolean;
  abandoned: number;
  catchUp: number;
  startMs: number;
}

export interface DaemonSummary {
  runs: number;
  /** Runs that were still going when the grace period ended and were aborted. */
  aborted: number;
}

const HEARTBEAT_MS = 60_000;
/** After the grace period, how long aborted runs get to wind down (abort uploads, tear down scratch). */
const WIND_DOWN_MS = 60_000;
/** At shutdown, how long notifications still on their way may take. */
const NOTIFY_FLUSH_MS = 10_000;

export async function runDaemon(request: DaemonRequest): Promise<DaemonSummary> {
  const started = performance.now();
  const { config, log } = request;
  const timers = request.timers ?? realTimers;
  const owner: Owner = newOwner();
  const metrics = new DaemonMetrics();
  // Notifications go out in the background; at shutdown their back-off waits are cut short and
  // the daemon gives them a few seconds to finish, so a dead receiver never holds the exit.
  const stopped = new AbortController();
  const notifier: Notifier = createNotifier(config.notifications, { log, sleep: (ms) => sleep(ms, stopped.signal) });
  const deliveries = new Set<Promise<unknown>>();
  const notify = (event: LifeboatEvent): void => {
    const delivery: Promise<unknown> = notifier.notify(event).finally(() => deliveries.delete(delivery));
    deliveries.add(delivery);
  };

  // What runs, and where its records live.
  const jobs = Object.values(config.jobs).filter((j): j is BackupJob & { schedule: string } => j.schedule !== undefined);
  const drills = loadScheduledDrills(config);
  const units: ScheduledUnit[] = [
    ...jobs.map((job) => ({ id: `backup:${job.name}`, kind: "backup" as const, name: job.name, schedule: CronSchedule.of(job.schedule, job.timezone), overlap: job.overlap, catchUp: job.catchUp })),
    ...drills.map(({ plan, schedule, timezone }) => ({ id: `drill:${plan.name}`, kind: "drill" as const, name: plan.name, schedule: CronSchedule.of(schedule, timezone), overlap: "skip" as const, catchUp: "none" as const })),
  ];
  const storageOf = (unit: ScheduledUnit) => (unit.kind === "backup" ? config.jobs[unit.name]!.storage : drills.find((d) => d.plan.name === unit.name)!.plan.storage);
  const storageNames = [...new Set(units.map(storageOf))].sort();

  const ledgers = new Map<string, RunLedger>();
  const opened = new Map<string, { store: ObjectStore; layout: Layout }>();
  for (const name of storageNames) {
    const { store, layout } = await request.stores(name);
    opened.set(name, { store, layout });
    if (config.daemon.multiInstance) {
      const capabilities = await store.probe(layout.probePrefix());
      if (!capabilities.conditionalWrites) {
        throw new LifeboatError("DAEMON_MULTI_INSTANCE_UNSAFE", `storage "${name}" (${store.description}) does not enforce conditional writes (If-None-Match and If-Match), so several daemons could run the same job twice`, {
          kind: "usage",
          hint: "run a single daemon (daemon.multiInstance: false), or use a store that enforces conditional writes (AWS S3, Ceph RGW, MinIO, the filesystem store)",
        });
      }
    }
    ledgers.set(name, new RunLedger({ store, layout, leaseMs: config.daemon.leaseMs, owner, log }));
  }

  // Runs a crash left `running` are abandoned (the ledger logs each); their leases are freed.
  let abandoned = 0;
  for (const ledger of ledgers.values()) abandoned += (await ledger.sweepAbandoned()).length;

  // Freshness from storage: metrics, catch-up, and downtime.
  const now = timers.now();
  // Manifests never change once written: the daemon reads each one once, however often it looks.
  const manifests = new ManifestCache();
  let freshness: JobFreshness[] = await readFreshness(config, (job) => request.stores(job.storage), now, { cache: manifests });
  metrics.setFreshness(freshness);
  for (const plan of drills.map((d) => d.plan)) {
    const { store, layout } = await request.stores(plan.storage);
    const { reports } = await listDrillReports(store, layout, plan.name).catch(() => ({ reports: [] }));
    const newest = reports[reports.length - 1];
    if (newest) metrics.recordDrill(plan.name, newest);
  }
  const catchUp = catchUpSlots(units, freshness, now);

  const primary = storageNames[0];
  if (primary !== undefined) {
    const { store, layout } = await request.stores(primary);
    const previous = await readHeartbeat(store, layout).catch(() => undefined);
    if (previous) {
      const downSince = new Date(previous.lastSeenAt);
      const downtimeMs = now.getTime() - downSince.getTime();
      const missed = units.flatMap((u) => {
        const slots = u.schedule.between(downSince, now, 100_000).length;
        return slots > 0 ? [{ unit: u, slots }] : [];
      });
      for (const { unit, slots } of missed) metrics.countMissed(unit.name, slots);
      if (downtimeMs > 2 * HEARTBEAT_MS && missed.length > 0) {
        notify({
          type: "daemon-downtime",
          downSince: downSince.toISOString(),
          startedAt: now.toISOString(),
          downtimeSeconds: Math.round(downtimeMs / 1000),
          missed: missed.map(({ unit, slots }) => ({ job: unit.name, slots })),
        });
      }
    }
  }
  const heartbeat = primary === undefined ? undefined : startHeartbeat(opened.get(primary)!.store, opened.get(primary)!.layout, owner, HEARTBEAT_MS, log);

  // Runs in flight, to abort after the grace period.
  const aborts = new Set<AbortController>();
  let runs = 0;
  const runUnit = async (unit: ScheduledUnit, slot: Date, trigger: Trigger): Promise<void> => {
    const storage = storageOf(unit);
    const ledger = ledgers.get(storage)!;
    const controller = new AbortController();
    aborts.add(controller);
    const unitLog = log.child({ kind: unit.kind, name: unit.name, scheduledAt: slot.toISOString(), trigger });
    // A catch-up is for a job that is behind: its slot is retried even if an earlier attempt failed or was abandoned.
    const retry = trigger === "catch-up";
    try {
      let outcome: UnitOutcome;
      if (unit.kind === "backup") {
        const job = config.jobs[unit.name]!;
        const { store, layout } = await request.stores(storage);
        outcome = await runScheduledBackup({ job, store, layout, recipients: config.encryption.recipients, ledger, slot, trigger, retry, leaseMs: config.daemon.leaseMs, signal: controller.signal, log: unitLog });
      } else {
        const plan = drills.find((d) => d.plan.name === unit.name)!.plan;
        outcome = await runScheduledDrill({ plan, config, stores: request.stores, identities: request.identities, ledger, slot, trigger, retry, leaseMs: config.daemon.leaseMs, signal: controller.signal, log: unitLog });
      }
      if (!outcome.ran) {
        const why = outcome.notClaimed;
        metrics.countSkipped(unit.name, why.reason === "busy" ? "overlap" : "claimed-elsewhere");
        unitLog.info({ reason: why.reason, holder: "holder" in why ? why.holder?.instance : undefined }, "scheduled run skipped");
        return;
      }
      runs++;
      await afterRun(unit, slot, outcome, unitLog);
    } catch (error) {
      // The ledger itself failed (storage unreachable): the slot did not run.
      unitLog.error({ err: (error as Error).message }, "scheduled run could not start");
      if (unit.kind === "backup") {
        metrics.recordBackupFailed(unit.name);
        notify({ type: "backup-failed", job: unit.name, scheduledAt: slot.toISOString(), error: errorFacts(error) });
      }
    } finally {
      aborts.delete(controller);
    }
  };

  const afterRun = async (unit: ScheduledUnit, slot: Date, outcome: Extract<UnitOutcome, { ran: true }>, unitLog: Logger) => {
    const status = outcome.record.status;
    if (unit.kind === "backup") {
      if (outcome.manifest) {
        const m = outcome.manifest;
        metrics.recordBackupSucceeded(unit.name, {
          consistentAt: new Date(m.consistentAt),
          finishedAt: new Date(m.finishedAt),
          durationMs: outcome.durationMs,
          sizeBytes: m.objects.reduce((sum, o) => sum + o.sizeBytes, 0),
        });
        unitLog.info({ backupId: m.id, status, durationMs: Math.round(outcome.durationMs) }, "scheduled backup finished");
        await pruneJob(config.jobs[unit.name]!, unitLog);
      } else {
        metrics.recordBackupFailed(unit.name);
        unitLog.error({ status, err: outcome.record.error?.message }, "scheduled backup failed");
        if (status !== "interrupted") notify({ type: "backup-failed", job: unit.name, scheduledAt: slot.toISOString(), error: outcome.record.error ?? errorFacts(outcome.error) });
      }
    } else {
      const report = outcome.report;
      if (report) {
        metrics.recordDrill(unit.name, report);
        unitLog.info({ drillId: report.drillId, verdict: report.verdict }, "scheduled drill finished");
      }
      if (status !== "succeeded" && status !== "interrupted") {
        notify({
          type: "drill-failed",
          plan: unit.name,
          drillId: report?.drillId ?? outcome.record.resultId ?? "",
          verdict: report?.verdict ?? "failed",
          summary: report?.summary ?? outcome.record.error?.message ?? "the drill failed",
        });
      }
    }
  };

  const pruneJob = async (job: BackupJob, unitLog: Logger) => {
    if (!job.retention || Object.values(job.retention).every((v) => v === undefined)) return;
    try {
      const { store, layout } = await request.stores(job.storage);
      const ledger = ledgers.get(job.storage)!;
      const activeBackupFolders = await ledger.activeBackupFolders(job.name);
      const plan = await planPrune({ store, layout, jobs: [job], now: timers.now(), orphanGraceMs: config.orphanGraceMs, activeBackupFolders, manifests });
      const result = await applyPrune(plan, { store, log: unitLog, now: timers.now() });
      const runRecords = await ledger.forgetRunRecords("backup", job.name, new Date(timers.now().getTime() - RUN_RECORDS_KEPT_MS));
      unitLog.info({ result: pruneSummary(result), runRecords }, "pruned");
    } catch (error) {
      unitLog.warn({ err: (error as Error).message }, "prune failed; the next backup tries again");
    }
  };

  const onEvent = (event: SchedulerEvent) => {
    const at = "slot" in event ? event.slot.toISOString() : undefined;
    switch (event.type) {
      case "skipped":
        metrics.countSkipped(event.unit.name, event.reason);
        log.warn({ kind: event.unit.kind, name: event.unit.name, scheduledAt: at, reason: event.reason }, "scheduled run skipped");
        break;
      case "queued":
        metrics.countQueued(event.unit.name);
        log.info({ kind: event.unit.kind, name: event.unit.name, scheduledAt: at, reason: event.reason }, "scheduled run queued");
        break;
      case "missed":
        metrics.countMissed(event.unit.name, event.slots.length);
        log.warn({ kind: event.unit.kind, name: event.unit.name, slots: event.slots.length, first: event.slots[0]?.toISOString() }, "scheduled runs missed while the process was paused; the newest runs");
        break;
      case "started":
        metrics.setRunning(scheduler.running);
        log.info({ kind: event.unit.kind, name: event.unit.name, scheduledAt: at, trigger: event.trigger, latenessMs: event.latenessMs }, "scheduled run started");
        break;
      case "finished":
        metrics.setRunning(scheduler.running);
        break;
    }
  };

  const scheduler = new Scheduler(units, { concurrency: config.daemon.concurrency, run: runUnit, timers, onEvent });

  // On a timer: runs whose daemon vanished elsewhere are marked abandoned, and RPO exposure is
  // re-read from storage, with a notification when a job goes over its target.
  const over = new Set<string>(freshness.filter((f) => f.overTarget).map((f) => f.job));
  for (const f of freshness.filter((f) => f.overTarget)) notify(rpoEvent(f));
  let checking = false;
  const checkFreshness = async () => {
    if (checking) return;
    checking = true;
    try {
      for (const ledger of ledgers.values()) await ledger.sweepAbandoned({ quick: true });
      freshness = await readFreshness(config, (job) => request.stores(job.storage), timers.now(), { cache: manifests });
      metrics.setFreshness(freshness);
      for (const f of freshness) {
        if (f.overTarget && !over.has(f.job)) {
          over.add(f.job);
          notify(rpoEvent(f));
        } else if (!f.overTarget) over.delete(f.job);
      }
    } catch (error) {
      log.warn({ err: (error as Error).message }, "could not read RPO exposure from storage");
    } finally {
      checking = false;
    }
  };
  const freshnessTimer = setInterval(() => void checkFreshness(), config.daemon.freshnessCheckMs);
  freshnessTimer.unref();

  const server = await startHealthServer({
    host: config.daemon.listen.host,
    port: config.daemon.listen.port,
    metrics,
    log,
    health: async () => {
      const storage = await checkStorage(Object.fromEntries(opened));
      const reachable = Object.values(storage).every((s) => s.reachable);
      return { ok: reachable && !request.shutdown.aborted, storage, schedules: { loaded: true, jobs: jobs.length, drills: drills.length }, startedAt: now.toISOString() };
    },
  });

  // A signal during start-up: come up for nothing, go straight to the orderly stop below.
  if (!request.shutdown.aborted) scheduler.start(catchUp);
  request.ready?.({
    url: server.url,
    instance: owner.instance,
    jobs: jobs.length,
    drills: drills.length,
    multiInstance: config.daemon.multiInstance,
    abandoned,
    catchUp: catchUp.length,
    startMs: performance.now() - started,
  });
  log.info({ url: server.url, instance: owner.instance, jobs: jobs.length, drills: drills.length, catchUp: catchUp.length, abandoned }, "daemon started");

  // Until shutdown: then stop taking runs, wait out the grace period, abort what is left.
  await new Promise<void>((resolve) => {
    if (request.shutdown.aborted) resolve();
    else request.shutdown.addEventListener("abort", () => resolve(), { once: true });
  });
  scheduler.stop();
  log.info({ running: scheduler.running, gracePeriodMs: config.daemon.gracePeriodMs }, "daemon stopping: no new runs; waiting for running ones");
  let aborted = 0;
  const graceOver = await Promise.race([scheduler.idle().then(() => false), sleep(config.daemon.gracePeriodMs).then(() => true)]);
  if (graceOver && aborts.size > 0) {
    aborted = aborts.size;
    log.warn({ running: aborted }, "grace period over: aborting running runs");
    for (const controller of aborts) controller.abort(new LifeboatError("INTERRUPTED", "the daemon is stopping and the grace period is over", { kind: "interrupted" }));
    const wound = await Promise.race([scheduler.idle().then(() => true), sleep(WIND_DOWN_MS).then(() => false)]);
    if (!wound) log.error({ running: scheduler.running, waitedMs: WIND_DOWN_MS }, "runs did not wind down after they were aborted; stopping anyway (their records are swept as abandoned)");
  }
  clearInterval(freshnessTimer);
  stopped.abort();
  await Promise.race([Promise.allSettled([...deliveries]), sleep(NOTIFY_FLUSH_MS)]);
  await heartbeat?.stop();
  await server.close();
  log.info({ runs, aborted }, "daemon stopped");
  return { runs, aborted };
}

/** The scheduled drills with their plans, checked now: a broken plan stops the daemon from starting. */
function loadScheduledDrills(config: LifeboatConfig): Array<{ plan: RestorePlan; schedule: string; timezone: string | undefined }> {
  return Object.values(config.scheduledDrills).map((drill) => {
    const checked = checkPlan(drill.plan, config);
    if (!checked.plan) throw new LifeboatError("PLAN_INVALID", checked.report, { kind: "usage", details: { diagnostics: checked.diagnostics } });
    return { plan: checked.plan, schedule: drill.schedule, timezone: drill.timezone };
  });
}

/**
 * Catch-up on start: a unit with `catchUp: one` whose newest complete backup
 * is older than its newest slot (a slot passed with no backup after it) runs
 * once, for that newest slot — never once per missed slot.
 */
export function catchUpSlots(units: readonly ScheduledUnit[], freshness: readonly JobFreshness[], now: Date): Array<{ unitId: string; slot: Date }> {
  const slots: Array<{ unitId: string; slot: Date }> = [];
  for (const unit of units) {
    if (unit.catchUp !== "one" || unit.kind !== "backup") continue;
    const newest = freshness.find((f) => f.job === unit.name)?.newest;
    const lastSlot = unit.schedule.previous(now);
    if (!lastSlot) continue;
    if (newest === undefined || Date.parse(newest.consistentAt) < lastSlot.getTime()) slots.push({ unitId: unit.id, slot: lastSlot });
  }
  return slots;
}

function rpoEvent(f: JobFreshness) {
  return {
    type: "rpo-exceeded" as const,
    job: f.job,
    rpoSeconds: Math.round((f.rpoMs ?? 0) / 1000),
    exposureSeconds: f.exposureMs === null ? null : Math.round(f.exposureMs / 1000),
    newestConsistentAt: f.newest?.consistentAt ?? null,
  };
}

function errorFacts(error: unknown): { code: string; message: string } {
  return { code: error instanceof LifeboatError ? error.code : "INTERNAL", message: (error as Error)?.message ?? String(error) };
}

function pruneSummary(result: PruneResult): Record<string, number> {
  const count = (action: string) => result.backups.filter((b) => b.action === action).length;
  return { forgotten: count("forgotten"), retainedByLock: count("retained-by-lock"), failed: result.failed, orphans: result.orphans.length, uploads: result.uploads.length, bytesFreed: result.bytesFreed };
}

/** Resolves after `ms`, or at once when `signal` fires; never keeps the process alive by itself. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    timer.unref();
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
