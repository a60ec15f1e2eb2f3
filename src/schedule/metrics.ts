import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { VerdictSchema, type DrillReport, type Verdict } from "../model/drill-report.js";
import type { JobFreshness } from "./freshness.js";

/**
 * The daemon's Prometheus metrics. The only `prom-client` import: every metric
 * lives in this object's own registry (never the global one), so two daemons
 * in one process (tests) do not share series. Base units: seconds, bytes.
 *
 * Freshness gauges (`lifeboat_rpo_exposure_seconds`, the last success and
 * consistentAt timestamps) come from storage through `setFreshness`, so they
 * are right after a restart; `recordBackupSucceeded` updates them between two
 * freshness checks. A job that never succeeded has an exposure of +Inf and no
 * timestamp series.
 */
export type SkipReason = "overlap" | "claimed-elsewhere" | "shutting-down" | "concurrency";

/** 1 s to 6 h: backups range from a small folder to a large database. */
const DURATION_BUCKETS_SECONDS = [1, 5, 15, 30, 60, 120, 300, 600, 1_800, 3_600, 7_200, 14_400, 21_600];

const VERDICTS: readonly Verdict[] = VerdictSchema.options;

const seconds = (ms: number) => ms / 1_000;
const epochSeconds = (time: Date | string) => (typeof time === "string" ? Date.parse(time) : time.getTime()) / 1_000;

export class DaemonMetrics {
  readonly registry = new Registry();

  private readonly lastSuccess: Gauge<"job">;
  private readonly lastConsistent: Gauge<"job">;
  private readonly duration: Histogram<"job">;
  private readonly lastSize: Gauge<"job">;
  private readonly failures: Counter<"job">;
  private readonly successes: Counter<"job">;
  private readonly exposure: Gauge<"job">;
  private readonly rpoTarget: Gauge<"job">;
  private readonly drillVerdict: Gauge<"plan" | "verdict">;
  private readonly drillTime: Gauge<"plan">;
  private readonly drillRto: Gauge<"plan">;
  private readonly drillRtoTarget: Gauge<"plan">;
  private readonly drillRpo: Gauge<"plan">;
  private readonly drillRpoTarget: Gauge<"plan">;
  private readonly skipped: Counter<"job" | "reason">;
  private readonly queued: Counter<"job">;
  private readonly missed: Counter<"job">;
  private readonly running: Gauge;

  /** Jobs seen by the last `setFreshness`, to drop series of jobs removed from the config. */
  private freshnessJobs = new Set<string>();
  /** The finishedAt of the drill each plan's gauges show, so an older report never replaces a newer one. */
  private readonly drillShown = new Map<string, number>();

  constructor() {
    const registers = [this.registry];
    // Event-loop lag sampled every 100 ms, not prom-client's 10 ms: an idle daemon should sleep.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 });
    this.lastSuccess = new Gauge({ name: "lifeboat_backup_last_success_timestamp_seconds", help: "When the newest complete backup of the job finished (Unix time)", labelNames: ["job"], registers });
    this.lastConsistent = new Gauge({ name: "lifeboat_backup_last_consistent_timestamp_seconds", help: "The point in time the newest complete backup of the job represents (its consistentAt, Unix time)", labelNames: ["job"], registers });
    this.duration = new Histogram({ name: "lifeboat_backup_duration_seconds", help: "How long successful backups took", labelNames: ["job"], buckets: DURATION_BUCKETS_SECONDS, registers });
    this.lastSize = new Gauge({ name: "lifeboat_backup_last_size_bytes", help: "Stored size of the newest complete backup of the job", labelNames: ["job"], registers });
    this.failures = new Counter({ name: "lifeboat_backup_failures_total", help: "Backups that failed in this daemon", labelNames: ["job"], registers });
    this.successes = new Counter({ name: "lifeboat_backup_successes_total", help: "Backups that succeeded in this daemon", labelNames: ["job"], registers });
    this.exposure = new Gauge({ name: "lifeboat_rpo_exposure_seconds", help: "Data at risk now: now minus the newest complete backup's consistentAt (+Inf: never backed up)", labelNames: ["job"], registers });
    this.rpoTarget = new Gauge({ name: "lifeboat_rpo_target_seconds", help: "The job's RPO target (absent when it has none)", labelNames: ["job"], registers });
    this.drillVerdict = new Gauge({ name: "lifeboat_drill_last_verdict", help: "1 for the verdict of the plan's newest drill, 0 for the other verdicts", labelNames: ["plan", "verdict"], registers });
    this.drillTime = new Gauge({ name: "lifeboat_drill_last_timestamp_seconds", help: "When the plan's newest drill finished (Unix time)", labelNames: ["plan"], registers });
    this.drillRto = new Gauge({ name: "lifeboat_drill_rto_seconds", help: "RTO measured by the plan's newest drill (absent when recovery was not reached)", labelNames: ["plan"], registers });
    this.drillRtoTarget = new Gauge({ name: "lifeboat_drill_rto_target_seconds", help: "The plan's RTO target (absent when it has none)", labelNames: ["plan"], registers });
    this.drillRpo = new Gauge({ name: "lifeboat_drill_rpo_seconds", help: "RPO measured by the plan's newest drill (absent when not measured)", labelNames: ["plan"], registers });
    this.drillRpoTarget = new Gauge({ name: "lifeboat_drill_rpo_target_seconds", help: "The plan's RPO target (absent when it has none)", labelNames: ["plan"], registers });
    this.skipped = new Counter({ name: "lifeboat_scheduler_skipped_total", help: "Scheduled runs not started, by reason", labelNames: ["job", "reason"], registers });
    this.queued = new Counter({ name: "lifeboat_scheduler_queued_total", help: "Scheduled runs queued behind a running one (overlap: queue-one)", labelNames: ["job"], registers });
    this.missed = new Counter({ name: "lifeboat_scheduler_missed_total", help: "Schedule slots that passed without a run (daemon down or asleep)", labelNames: ["job"], registers });
    this.running = new Gauge({ name: "lifeboat_runs_in_progress", help: "Backups and drills running now", registers });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  recordBackupSucceeded(job: string, result: { consistentAt: Date; finishedAt: Date; durationMs: number; sizeBytes: number }): void {
    this.successes.inc({ job });
    this.failures.inc({ job }, 0);
    this.duration.observe({ job }, seconds(result.durationMs));
    this.lastSize.set({ job }, result.sizeBytes);
    this.lastSuccess.set({ job }, epochSeconds(result.finishedAt));
    this.lastConsistent.set({ job }, epochSeconds(result.consistentAt));
    // Exposure right after a success; the next setFreshness recomputes it from storage.
    this.exposure.set({ job }, Math.max(0, seconds(Date.now() - result.consistentAt.getTime())));
  }

  recordBackupFailed(job: string): void {
    this.failures.inc({ job });
    this.successes.inc({ job }, 0);
  }

  /** Exposure, target, last success, consistentAt and size gauges, as read from storage by `readFreshness`. */
  setFreshness(all: JobFreshness[]): void {
    const jobs = new Set(all.map((f) => f.job));
    for (const gone of this.freshnessJobs) {
      if (jobs.has(gone)) continue;
      for (const gauge of [this.exposure, this.rpoTarget, this.lastSuccess, this.lastConsistent, this.lastSize]) gauge.remove({ job: gone });
    }
    this.freshnessJobs = jobs;
    for (const f of all) {
      const job = f.job;
      // Counters start at 0 so that rate() and increase() see the first event.
      this.successes.inc({ job }, 0);
      this.failures.inc({ job }, 0);
      this.exposure.set({ job }, f.exposureMs === null ? Infinity : seconds(f.exposureMs));
      if (f.rpoMs === undefined) this.rpoTarget.remove({ job });
      else this.rpoTarget.set({ job }, seconds(f.rpoMs));
      if (f.newest) {
        this.lastSuccess.set({ job }, epochSeconds(f.newest.finishedAt));
        this.lastConsistent.set({ job }, epochSeconds(f.newest.consistentAt));
        this.lastSize.set({ job }, f.newest.sizeBytes);
      } else {
        this.lastSuccess.remove({ job });
        this.lastConsistent.remove({ job });
        this.lastSize.remove({ job });
      }
    }
  }

  /**
   * The drill gauges of one plan from a report (`plan` is the plan's `name:`,
   * as `report.plan.name`). A report older than the one shown is ignored.
   * Measurements a drill did not reach (RTO of a failed drill) and targets a
   * plan does not set have no series.
   */
  recordDrill(plan: string, report: DrillReport): void {
    const finished = Date.parse(report.finishedAt);
    const shown = this.drillShown.get(plan);
    if (shown !== undefined && finished < shown) return;
    this.drillShown.set(plan, finished);
    for (const verdict of VERDICTS) this.drillVerdict.set({ plan, verdict }, verdict === report.verdict ? 1 : 0);
    this.drillTime.set({ plan }, finished / 1_000);
    const set = (gauge: Gauge<"plan">, ms: number | null) => (ms === null ? gauge.remove({ plan }) : gauge.set({ plan }, seconds(ms)));
    set(this.drillRto, report.rto.actualMs);
    set(this.drillRtoTarget, report.rto.targetMs);
    set(this.drillRpo, report.rpo.actualMs);
    set(this.drillRpoTarget, report.rpo.targetMs);
  }

  /** Seeds the drill gauges on start from stored reports (`listDrillReports`): the newest report of each plan wins. */
  loadDrills(reports: readonly DrillReport[]): void {
    const newest = new Map<string, DrillReport>();
    for (const r of reports) {
      const known = newest.get(r.plan.name);
      const order = known === undefined ? 1 : Date.parse(r.finishedAt) - Date.parse(known.finishedAt) || r.drillId.localeCompare(known.drillId);
      if (order > 0) newest.set(r.plan.name, r);
    }
    for (const [plan, report] of newest) this.recordDrill(plan, report);
  }

  countSkipped(job: string, reason: SkipReason): void {
    this.skipped.inc({ job, reason });
  }

  countQueued(job: string): void {
    this.queued.inc({ job });
  }

  countMissed(job: string, slots: number): void {
    if (slots > 0) this.missed.inc({ job }, slots);
  }

  setRunning(count: number): void {
    this.running.set(count);
  }

  /** The Prometheus text exposition of every metric; serve it with `contentType`. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
