import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBackup } from "../src/backup/run-backup.js";
import { listDrillReports, storeDrillReport } from "../src/catalog/drill-reports.js";
import { loadConfig, type LifeboatConfig } from "../src/config/load.js";
import { createLogger } from "../src/log/logger.js";
import type { DrillReport } from "../src/model/drill-report.js";
import type { BackupJob } from "../src/model/job.js";
import type { Manifest } from "../src/model/manifest.js";
import { renderReportFiles } from "../src/report/files.js";
import { readFreshness } from "../src/schedule/freshness.js";
import { checkStorage, startHealthServer, type HealthReport } from "../src/schedule/http-server.js";
import { DaemonMetrics } from "../src/schedule/metrics.js";
import { openFilesystemStore } from "../src/storage/filesystem.js";
import { Layout } from "../src/storage/layout.js";
import type { ObjectStore } from "../src/storage/store.js";
import { sampleReport } from "./support/report-builder.js";
import { tempDir } from "./support/builders.js";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format (0.0.4): `name{label="value",…} value`, comments skipped. */
function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!.replace(/\\n/g, "\n").replace(/\\(["\\])/g, "$1");
    }
    const raw = match[3]!;
    const value = raw === "+Inf" ? Infinity : raw === "-Inf" ? -Infinity : Number(raw);
    samples.push({ name: match[1]!, labels, value });
  }
  return samples;
}

/** The values of one metric whose labels include `labels`. */
function values(samples: Sample[], name: string, labels: Record<string, string> = {}): number[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).map((s) => s.value);
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = values(samples, name, labels);
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0];
}

const MINUTE = 60_000;

describe("daemon metrics and the health server", () => {
  const dir = tempDir("lifeboat-metrics-");
  const logLines: string[] = [];
  const log = createLogger({ level: "info", destination: { write: (line: string) => void logLines.push(line) } });
  const now = new Date();
  let config: LifeboatConfig;
  let store: ObjectStore;
  const layout = new Layout("");
  const manifests: Record<string, Manifest> = {};
  const storeFor = async (_job: BackupJob) => ({ store, layout });

  beforeAll(async () => {
    writeFileSync(
      join(dir, "lifeboat.yaml"),
      `storage:
  local: { type: filesystem, path: ./store }
jobs:
  fresh:
    source: { type: command, command: [echo, fresh data] }
    encrypt: false
    rpo: 1h
    schedule: "*/15 * * * *"
    timezone: UTC
  stale:
    source: { type: command, command: [echo, stale data] }
    encrypt: false
    rpo: 30m
  never:
    source: { type: command, command: [echo, never ran] }
    encrypt: false
    rpo: 1h
  untargeted:
    source: { type: command, command: [echo, no target] }
    encrypt: false
`,
    );
    config = loadConfig(join(dir, "lifeboat.yaml")).config;
    store = openFilesystemStore({ path: join(dir, "store") });
    const backup = async (job: string, agoMs: number) => {
      const at = new Date(now.getTime() - agoMs);
      const { manifest } = await runBackup({ job: config.jobs[job]!, store, layout, recipients: [], now: () => at });
      return manifest;
    };
    manifests.fresh = await backup("fresh", 5 * MINUTE);
    await backup("stale", 3 * 60 * MINUTE);
    manifests.stale = await backup("stale", 2 * 60 * MINUTE);
    manifests.untargeted = await backup("untargeted", 10 * MINUTE);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function serve(metrics: DaemonMetrics, health: () => Promise<HealthReport>) {
    const server = await startHealthServer({ host: "127.0.0.1", port: 0, metrics, health, log });
    return server;
  }

  const readyHealth = (storage: HealthReport["storage"]): HealthReport => ({
    ok: Object.values(storage).every((s) => s.reachable),
    storage,
    schedules: { loaded: true, jobs: Object.keys(config.jobs).length, drills: 0 },
    startedAt: now.toISOString(),
  });

  it("reads each job's newest complete backup and its exposure from storage", async () => {
    const freshness = await readFreshness(config, storeFor, now);
    const byJob = Object.fromEntries(freshness.map((f) => [f.job, f]));
    expect(Object.keys(byJob).sort()).toEqual(["fresh", "never", "stale", "untargeted"]);
    expect(byJob.stale!.newest?.id).toBe(manifests.stale!.id);
    expect(byJob.stale).toMatchObject({ storage: "local", exposureMs: 2 * 60 * MINUTE, rpoMs: 30 * MINUTE, overTarget: true, nextRun: undefined });
    expect(byJob.fresh).toMatchObject({ exposureMs: 5 * MINUTE, rpoMs: 60 * MINUTE, overTarget: false });
    expect(byJob.fresh!.newest).toEqual({
      id: manifests.fresh!.id,
      consistentAt: manifests.fresh!.consistentAt,
      finishedAt: manifests.fresh!.finishedAt,
      sizeBytes: manifests.fresh!.objects.reduce((s, o) => s + o.sizeBytes, 0),
      status: "succeeded",
    });
    // */15 in UTC: the next quarter hour strictly after now.
    const quarter = 15 * MINUTE;
    expect(byJob.fresh!.nextRun?.getTime()).toBe(Math.floor(now.getTime() / quarter) * quarter + quarter);
    expect(byJob.never).toMatchObject({ newest: undefined, exposureMs: null, overTarget: true });
    expect(byJob.untargeted).toMatchObject({ exposureMs: 10 * MINUTE, rpoMs: undefined, overTarget: undefined });
  });

  it("serves freshness gauges that match the catalog on /metrics", async () => {
    const metrics = new DaemonMetrics();
    metrics.setFreshness(await readFreshness(config, storeFor, now));
    const server = await serve(metrics, async () => readyHealth(await checkStorage({ local: store })));
    try {
      const response = await fetch(`${server.url}/metrics`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
      const samples = parsePrometheus(await response.text());
      for (const job of ["fresh", "stale", "untargeted"]) {
        const m = manifests[job]!;
        expect(value(samples, "lifeboat_backup_last_consistent_timestamp_seconds", { job })).toBe(Date.parse(m.consistentAt) / 1000);
        expect(value(samples, "lifeboat_backup_last_success_timestamp_seconds", { job })).toBe(Date.parse(m.finishedAt) / 1000);
        expect(value(samples, "lifeboat_backup_last_size_bytes", { job })).toBe(m.objects.reduce((s, o) => s + o.sizeBytes, 0));
        expect(value(samples, "lifeboat_rpo_exposure_seconds", { job })).toBeCloseTo((now.getTime() - Date.parse(m.consistentAt)) / 1000, 3);
        expect(value(samples, "lifeboat_backup_successes_total", { job })).toBe(0);
      }
      expect(value(samples, "lifeboat_rpo_exposure_seconds", { job: "stale" })).toBe(7200);
      expect(value(samples, "lifeboat_rpo_target_seconds", { job: "fresh" })).toBe(3600);
      expect(value(samples, "lifeboat_rpo_target_seconds", { job: "stale" })).toBe(1800);
      expect(value(samples, "lifeboat_rpo_target_seconds", { job: "untargeted" })).toBeUndefined();
      // Never succeeded: infinite exposure against its target, and no timestamps.
      expect(value(samples, "lifeboat_rpo_exposure_seconds", { job: "never" })).toBe(Infinity);
      expect(value(samples, "lifeboat_rpo_target_seconds", { job: "never" })).toBe(3600);
      expect(value(samples, "lifeboat_backup_last_success_timestamp_seconds", { job: "never" })).toBeUndefined();
      expect(value(samples, "lifeboat_backup_last_consistent_timestamp_seconds", { job: "never" })).toBeUndefined();
      // Default process metrics go into the same registry.
      expect(values(samples, "process_cpu_user_seconds_total").length).toBe(1);
    } finally {
      await server.close();
    }
  });

  it("records a backup run: counters, the duration histogram and fresher gauges", async () => {
    const metrics = new DaemonMetrics();
    metrics.setFreshness(await readFreshness(config, storeFor, now));
    const { manifest, durationMs } = await runBackup({ job: config.jobs.never!, store, layout, recipients: [] });
    const sizeBytes = manifest.objects.reduce((s, o) => s + o.sizeBytes, 0);
    metrics.recordBackupSucceeded("never", { consistentAt: new Date(manifest.consistentAt), finishedAt: new Date(manifest.finishedAt), durationMs, sizeBytes });
    metrics.recordBackupFailed("stale");
    metrics.recordBackupFailed("stale");
    const samples = parsePrometheus(await metrics.render());
    expect(value(samples, "lifeboat_backup_successes_total", { job: "never" })).toBe(1);
    expect(value(samples, "lifeboat_backup_failures_total", { job: "never" })).toBe(0);
    expect(value(samples, "lifeboat_backup_failures_total", { job: "stale" })).toBe(2);
    expect(value(samples, "lifeboat_backup_last_consistent_timestamp_seconds", { job: "never" })).toBe(Date.parse(manifest.consistentAt) / 1000);
    expect(value(samples, "lifeboat_backup_last_size_bytes", { job: "never" })).toBe(sizeBytes);
    expect(value(samples, "lifeboat_rpo_exposure_seconds", { job: "never" })).toBeLessThan(60);
    expect(value(samples, "lifeboat_backup_duration_seconds_count", { job: "never" })).toBe(1);
    expect(value(samples, "lifeboat_backup_duration_seconds_sum", { job: "never" })).toBeCloseTo(durationMs / 1000, 6);
    const buckets = samples.filter((s) => s.name === "lifeboat_backup_duration_seconds_bucket" && s.labels.job === "never");
    expect(buckets.map((b) => b.labels.le)).toEqual(["1", "5", "15", "30", "60", "120", "300", "600", "1800", "3600", "7200", "14400", "21600", "+Inf"]);
    expect(buckets.find((b) => b.labels.le === "+Inf")?.value).toBe(1);

    // The next freshness check comes from storage again, where the new backup now is.
    const later = new Date(Date.parse(manifest.consistentAt) + 90_000);
    metrics.setFreshness(await readFreshness(config, storeFor, later));
    const after = parsePrometheus(await metrics.render());
    expect(value(after, "lifeboat_rpo_exposure_seconds", { job: "never" })).toBe(90);
    rmSync(join(dir, "store", "never"), { recursive: true });
  });

  it("drops the series of a job that left the config", async () => {
    const metrics = new DaemonMetrics();
    const all = await readFreshness(config, storeFor, now);
    metrics.setFreshness(all);
    metrics.setFreshness(all.filter((f) => f.job !== "stale"));
    const samples = parsePrometheus(await metrics.render());
    expect(value(samples, "lifeboat_rpo_exposure_seconds", { job: "stale" })).toBeUndefined();
    expect(value(samples, "lifeboat_rpo_target_seconds", { job: "stale" })).toBeUndefined();
    expect(value(samples, "lifeboat_rpo_exposure_seconds", { job: "fresh" })).toBe(300);
  });

  it("counts skipped, queued and missed runs and shows the runs in progress", async () => {
    const metrics = new DaemonMetrics();
    metrics.countSkipped("fresh", "overlap");
    metrics.countSkipped("fresh", "overlap");
    metrics.countSkipped("fresh", "claimed-elsewhere");
    metrics.countSkipped("stale", "shutting-down");
    metrics.countSkipped("stale", "concurrency");
    metrics.countQueued("fresh");
    metrics.countMissed("stale", 3);
    metrics.countMissed("stale", 0);
    metrics.setRunning(2);
    const samples = parsePrometheus(await metrics.render());
    expect(value(samples, "lifeboat_scheduler_skipped_total", { job: "fresh", reason: "overlap" })).toBe(2);
    expect(value(samples, "lifeboat_scheduler_skipped_total", { job: "fresh", reason: "claimed-elsewhere" })).toBe(1);
    expect(value(samples, "lifeboat_scheduler_skipped_total", { job: "stale", reason: "shutting-down" })).toBe(1);
    expect(value(samples, "lifeboat_scheduler_skipped_total", { job: "stale", reason: "concurrency" })).toBe(1);
    expect(value(samples, "lifeboat_scheduler_queued_total", { job: "fresh" })).toBe(1);
    expect(value(samples, "lifeboat_scheduler_missed_total", { job: "stale" })).toBe(3);
    expect(value(samples, "lifeboat_runs_in_progress")).toBe(2);
    metrics.setRunning(0);
    expect(value(parsePrometheus(await metrics.render()), "lifeboat_runs_in_progress")).toBe(0);
  });

  it("seeds the drill gauges from the newest stored report of each plan", async () => {
    const older = sampleReport({ drillId: "20261120T190512Z-aaaa", verdict: "passed", t0: "2026-11-20T19:05:12.000Z", finishedAt: "2026-11-20T19:15:00.000Z" });
    const newer = sampleReport();
    const base = sampleReport();
    const failed = sampleReport({
      drillId: "20261122T080000Z-bbbb",
      plan: { ...base.plan, name: "billing" },
      verdict: "failed",
      t0: "2026-11-22T08:00:00.000Z",
      finishedAt: "2026-11-22T08:01:00.000Z",
      rto: { targetMs: 600_000, actualMs: null, met: false, reachedAt: null },
      rpo: { targetMs: null, actualMs: null, met: null, fromMetadataMs: null, fromProbeMs: null, countedFrom: null },
    });
    for (const report of [newer, older, failed]) await storeDrillReport(store, layout, report, renderReportFiles(report));
    const { reports, problems } = await listDrillReports(store, layout);
    expect(problems).toEqual([]);
    expect(reports).toHaveLength(3);

    const metrics = new DaemonMetrics();
    metrics.loadDrills(reports);
    let samples = parsePrometheus(await metrics.render());
    const plan = "orders-restore";
    expect(value(samples, "lifeboat_drill_last_verdict", { plan, verdict: "partial" })).toBe(1);
    for (const verdict of ["passed", "failed", "missed-targets", "interrupted"]) expect(value(samples, "lifeboat_drill_last_verdict", { plan, verdict })).toBe(0);
    expect(value(samples, "lifeboat_drill_last_timestamp_seconds", { plan })).toBe(Date.parse(newer.finishedAt) / 1000);
    expect(value(samples, "lifeboat_drill_rto_seconds", { plan })).toBe(newer.rto.actualMs! / 1000);
    expect(value(samples, "lifeboat_drill_rto_target_seconds", { plan })).toBe(newer.rto.targetMs! / 1000);
    expect(value(samples, "lifeboat_drill_rpo_seconds", { plan })).toBe(newer.rpo.actualMs! / 1000);
    expect(value(samples, "lifeboat_drill_rpo_target_seconds", { plan })).toBe(newer.rpo.targetMs! / 1000);
    // A failed drill that never reached recovery has no RTO reading, and a plan without an RPO target no target series.
    expect(value(samples, "lifeboat_drill_last_verdict", { plan: "billing", verdict: "failed" })).toBe(1);
    expect(value(samples, "lifeboat_drill_rto_seconds", { plan: "billing" })).toBeUndefined();
    expect(value(samples, "lifeboat_drill_rto_target_seconds", { plan: "billing" })).toBe(600);
    expect(value(samples, "lifeboat_drill_rpo_target_seconds", { plan: "billing" })).toBeUndefined();

    // A live drill replaces the gauges; an older report arriving late does not.
    const live: DrillReport = sampleReport({ drillId: "20261123T100000Z-cccc", verdict: "missed-targets", t0: "2026-11-23T10:00:00.000Z", finishedAt: "2026-11-23T10:20:00.000Z" });
    metrics.recordDrill(plan, live);
    metrics.recordDrill(plan, older);
    samples = parsePrometheus(await metrics.render());
    expect(value(samples, "lifeboat_drill_last_verdict", { plan, verdict: "missed-targets" })).toBe(1);
    expect(value(samples, "lifeboat_drill_last_verdict", { plan, verdict: "partial" })).toBe(0);
    expect(value(samples, "lifeboat_drill_last_timestamp_seconds", { plan })).toBe(Date.parse(live.finishedAt) / 1000);
    rmSync(join(dir, "store", "drills"), { recursive: true });
  });

  it("answers /healthz with 200 when every storage is reachable", async () => {
    const server = await serve(new DaemonMetrics(), async () => readyHealth(await checkStorage({ local: { store, layout } })));
    try {
      const response = await fetch(`${server.url}/healthz`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("application/json");
      expect(await response.json()).toEqual({ ok: true, storage: { local: { reachable: true } }, schedules: { loaded: true, jobs: 4, drills: 0 }, startedAt: now.toISOString() });
      const head = await fetch(`${server.url}/healthz`, { method: "HEAD" });
      expect(head.status).toBe(200);
      expect(await head.text()).toBe("");
    } finally {
      await server.close();
    }
  });

  it("answers /healthz with 503 when a storage is unreachable: a filesystem store whose root is a file", async () => {
    const file = join(dir, "not-a-folder");
    writeFileSync(file, "x");
    const broken = openFilesystemStore({ path: file });
    const storage = await checkStorage({ local: store, broken });
    expect(storage.local).toEqual({ reachable: true });
    expect(storage.broken?.reachable).toBe(false);
    expect(storage.broken?.error).toMatch(/not-a-folder/);
    const server = await serve(new DaemonMetrics(), async () => readyHealth(await checkStorage({ local: store, broken })));
    try {
      const response = await fetch(`${server.url}/healthz`);
      expect(response.status).toBe(503);
      const body = (await response.json()) as HealthReport;
      expect(body.ok).toBe(false);
      expect(body.storage.broken?.reachable).toBe(false);
      expect((await fetch(`${server.url}/healthz`, { method: "HEAD" })).status).toBe(503);
    } finally {
      await server.close();
    }
  });

  it("answers 503 while the schedules are not loaded, even with storage reachable", async () => {
    const server = await serve(new DaemonMetrics(), async () => ({ ...readyHealth({ local: { reachable: true } }), ok: false, schedules: { loaded: false, jobs: 0, drills: 0 } }));
    try {
      const response = await fetch(`${server.url}/healthz`);
      expect(response.status).toBe(503);
      expect(((await response.json()) as HealthReport).schedules.loaded).toBe(false);
    } finally {
      await server.close();
    }
  });

  it("counts a store that does not answer in time as unreachable", async () => {
    const hanging: ObjectStore = {
      ...store,
      kind: "filesystem",
      description: "a store that never answers",
      list: (_prefix: string, options?: { signal?: AbortSignal }) => ({
        [Symbol.asyncIterator]: () => ({
          next: () => new Promise<IteratorResult<never>>((_, reject) => options?.signal?.addEventListener("abort", () => reject(options.signal!.reason))),
        }),
      }),
    };
    const started = performance.now();
    const storage = await checkStorage({ hanging }, { timeoutMs: 200 });
    expect(storage.hanging).toEqual({ reachable: false, error: "no answer within 200 ms" });
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it("answers 404 for unknown paths, 405 for other methods, and 500 (logged) when a handler fails, and keeps serving", async () => {
    let fail = true;
    const server = await serve(new DaemonMetrics(), async () => {
      if (fail) throw new Error("health check exploded");
      return readyHealth({ local: { reachable: true } });
    });
    try {
      const missing = await fetch(`${server.url}/nope`);
      expect(missing.status).toBe(404);
      expect((await fetch(`${server.url}/`)).status).toBe(404);
      expect((await fetch(`${server.url}/metrics`, { method: "POST", body: "x" })).status).toBe(405);
      const broken = await fetch(`${server.url}/healthz`);
      expect(broken.status).toBe(500);
      expect(await broken.json()).toEqual({ ok: false, error: "health check exploded" });
      expect(logLines.some((l) => l.includes("health server request failed") && l.includes("health check exploded"))).toBe(true);
      fail = false;
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${server.url}/metrics?x=1`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it("fails with a LifeboatError when the port is taken", async () => {
    const first = await serve(new DaemonMetrics(), async () => readyHealth({}));
    try {
      await expect(startHealthServer({ host: "127.0.0.1", port: first.port, metrics: new DaemonMetrics(), health: async () => readyHealth({}), log })).rejects.toMatchObject({
        name: "LifeboatError",
        code: "LISTEN_FAILED",
      });
    } finally {
      await first.close();
    }
  });
});
