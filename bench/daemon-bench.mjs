#!/usr/bin/env node
// Lifeboat daemon benchmark: `lifeboat daemon` with 1,000 scheduled jobs. How
// long does it take to start, how much CPU does it burn while nothing is due,
// how late does a run start after its scheduled time when ~8 jobs are due
// every second, and how much memory does it hold? See bench/README.md.
// Plain Node ESM, no dependencies beyond the project's.
//
//   npm run bench                                 # builds, then runs every bench
//   npm run build --silent && node bench/daemon-bench.mjs
//   BENCH_DAEMON_IDLE_S=20 BENCH_DAEMON_WINDOW_S=30 node bench/daemon-bench.mjs   # quick check
//
// The daemon is the real built CLI (`node dist/cli/main.js -c CONFIG daemon`),
// spawned with an argv array (no shell), LIFEBOAT_LOG_LEVEL=info, its pino JSON
// lines read from stderr. CPU and memory come from /proc/PID/stat and
// /proc/PID/status. Everything lives in a temp folder removed at the end.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join, relative } from "node:path";
import {
  assertBenchable,
  cleanup,
  CLI,
  clockTicksPerSecond,
  DATA,
  die,
  envInt,
  fixed,
  installProcessHandlers,
  log,
  machineCpuTicks,
  median,
  MIB,
  notesBlock,
  processCpuTicks,
  processMemoryKiB,
  ROOT,
  runMain,
  scratchDir,
  table,
  tail,
  trackChild,
  verdict,
} from "./lib.mjs";

// --- settings ----------------------------------------------------------------

const JOBS = envInt("BENCH_DAEMON_JOBS", 1000);
/** Start-up runs (each: node -e "", lifeboat --version, a daemon start to ready and SIGTERM), interleaved. */
const REPEAT = envInt("BENCH_REPEAT", 3);
/** Seconds of idle CPU sampling, after SETTLE_S of quiet following the ready line. */
const IDLE_S = envInt("BENCH_DAEMON_IDLE_S", 60);
const SETTLE_S = 5;
/** The lateness window: every job is due exactly once in any window of this many seconds (its schedule repeats with this period). */
const WINDOW_S = envInt("BENCH_DAEMON_WINDOW_S", 120);
/** Seconds between the ready line and the start of the lateness window (the runs due meanwhile are a warm-up). */
const LEAD_S = 10;
const CONCURRENCY = envInt("BENCH_DAEMON_CONCURRENCY", 16);
/** After the window: how long the bench waits for the window's last runs to start. */
const DRAIN_S = 30;

const GOAL_START_S = 2;
const GOAL_IDLE_CPU_PERCENT = 1;
const GOAL_P99_MS = 1000;
/** 150 MB (10^6 bytes), shown in MiB like the other benches. */
const GOAL_RSS_MIB = 150e6 / MIB;

installProcessHandlers();

// --- configs -----------------------------------------------------------------

const pad = (i) => String(i).padStart(4, "0");
const header = (what) => `# Written by bench/daemon-bench.mjs (${what}); removed at the end of the run.
# No storage key: the embedded filesystem store, .lifeboat/store next to this file.
daemon:
  listen: "127.0.0.1:0"
  concurrency: ${CONCURRENCY}
  gracePeriod: 30s
  # freshnessCheck: the default (1m), so the idle figure includes the RPO re-read.
jobs:
`;
const jobYaml = (i, schedule) => `  job-${pad(i)}:
    source: { type: command, command: [printf, "job-${pad(i)}\\n"] }
    schedule: "${schedule}"
    catchUp: none
`;

/**
 * Idle: every job on a yearly schedule about six months away (minute and hour
 * spread over the jobs), catchUp none: nothing is due while the bench watches.
 */
function writeIdleConfig(dir) {
  const month = ((new Date().getMonth() + 6) % 12) + 1;
  let text = header("idle: nothing due for months");
  for (let i = 0; i < JOBS; i++) text += jobYaml(i, `${i % 60} ${i % 24} 15 ${month} *`);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "lifeboat.yaml");
  writeFileSync(path, text);
  return path;
}

/**
 * Load: 6-field cron (seconds first). Job i is due at offset o = ⌊i·W/JOBS⌋
 * seconds into every W-second period (W = 120: second o mod 60 of the even or
 * odd minutes), so ~JOBS/W jobs come due each second (8–9 at 1,000 jobs) and
 * every job is due exactly once in any W-second window.
 */
function writeLoadConfig(dir) {
  if (WINDOW_S !== 60 && WINDOW_S !== 120 && !(WINDOW_S < 60 && 60 % WINDOW_S === 0)) die("BENCH_DAEMON_WINDOW_S must divide 60, or be 60 or 120");
  let text = header(`load: every job due once every ${WINDOW_S} s, ~${fixed(JOBS / WINDOW_S, 1)} a second`);
  for (let i = 0; i < JOBS; i++) {
    const o = Math.floor((i * WINDOW_S) / JOBS);
    const schedule = WINDOW_S === 120 ? `${o % 60} ${o < 60 ? "0-58/2" : "1-59/2"} * * * *` : `${o}-59/${WINDOW_S} * * * * *`;
    text += jobYaml(i, schedule);
  }
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "lifeboat.yaml");
  writeFileSync(path, text);
  return path;
}

// --- processes ---------------------------------------------------------------

const childEnv = () => ({ ...process.env, LIFEBOAT_LOG_LEVEL: "info", NO_COLOR: "1" });

/** Spawns a short command and resolves with its wall time (spawn → exit), rejecting unless it exits 0. */
function timeCommand(argv, what) {
  return new Promise((resolveRun, reject) => {
    const started = performance.now();
    const child = trackChild(spawn(argv[0], argv.slice(1), { stdio: ["ignore", "ignore", "pipe"], env: childEnv() }));
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr = (stderr + d).slice(-10_000)));
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      const wallSeconds = (performance.now() - started) / 1000;
      if (code === 0) resolveRun(wallSeconds);
      else reject(new Error(`${what}: exit ${code ?? signal}\n${tail(stderr)}`));
    });
  });
}

/** "343ms", "1.2s", "1m 3s" (formatDuration) → seconds. */
function parseDurationText(text) {
  let ms = 0;
  for (const [, n, unit] of text.matchAll(/([\d.]+)(ms|d|h|m|s)/g)) ms += Number(n) * { ms: 1, s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[unit];
  return ms / 1000;
}

/**
 * A running `lifeboat daemon`: resolves `ready` on its ready line, keeps the
 * parsed pino lines the bench asks for (by msg), counts the others by msg,
 * and stops with SIGTERM.
 */
class Daemon {
  constructor(config, { keep = [] } = {}) {
    this.config = config;
    this.keep = new Set(keep);
    this.kept = [];
    this.counts = {};
    this.stderrTail = "";
    this.spawnedAt = performance.now();
    this.child = trackChild(spawn(process.execPath, [CLI, "-c", config, "daemon"], { stdio: ["ignore", "ignore", "pipe"], env: childEnv() }));
    this.pid = this.child.pid;
    this.exited = new Promise((resolveExit) => {
      this.child.once("error", (error) => resolveExit({ code: null, signal: null, error }));
      this.child.once("exit", (code, signal) => resolveExit({ code, signal }));
    });
    this.ready = new Promise((resolveReady, reject) => {
      let partial = "";
      this.child.stderr.setEncoding("utf8").on("data", (chunk) => {
        this.stderrTail = (this.stderrTail + chunk).slice(-20_000);
        const lines = (partial + chunk).split("\n");
        partial = lines.pop();
        for (const line of lines) this.onLine(line, resolveReady);
      });
      this.exited.then((e) => reject(new Error(`lifeboat daemon exited before it was ready (${e.error?.message ?? `exit ${e.code ?? e.signal}`})\n${tail(this.stderrTail)}`)));
    });
    this.ready.catch(() => {});
  }

  onLine(line, resolveReady) {
    if (line.startsWith("{")) {
      const msg = /"msg":"([^"]*)"/.exec(line)?.[1] ?? "?";
      this.counts[msg] = (this.counts[msg] ?? 0) + 1;
      if (this.keep.has(msg)) {
        try {
          this.kept.push({ ...JSON.parse(line), receivedAt: Date.now() });
        } catch {
          // a torn line: counted, not kept
        }
      }
      return;
    }
    const m = /^lifeboat daemon (\S+): (\d+) jobs and (\d+) drills scheduled .* started in (.+)$/.exec(line);
    if (m) {
      this.readyAt = performance.now();
      this.readyEpochMs = Date.now();
      resolveReady({ instance: m[1], jobs: Number(m[2]), drills: Number(m[3]), wallSeconds: (this.readyAt - this.spawnedAt) / 1000, inProcessSeconds: parseDurationText(m[4]) });
    }
  }

  /** SIGTERM, then the exit; rejects unless the daemon exits 0 within `timeoutMs`. */
  async stop(timeoutMs = 45_000) {
    const asked = performance.now();
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), timeoutMs);
    const e = await this.exited;
    clearTimeout(timer);
    const stopSeconds = (performance.now() - asked) / 1000;
    if (e.code !== 0) throw new Error(`lifeboat daemon did not exit 0 on SIGTERM (${e.error?.message ?? `exit ${e.code ?? e.signal}`})\n${tail(this.stderrTail)}`);
    return stopSeconds;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls VmRSS/VmHWM every second while a phase runs. */
function memoryPoller(pid) {
  const samples = [];
  const poll = () => {
    const m = processMemoryKiB(pid);
    if (m) samples.push({ at: performance.now(), ...m });
  };
  poll();
  const timer = setInterval(poll, 1000);
  return {
    samples,
    stop() {
      clearInterval(timer);
      poll();
      return samples;
    },
  };
}

function percentile(sorted, p) {
  if (sorted.length === 0) return undefined;
  // Nearest rank: the smallest value with at least p % of the values at or below it.
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/**
 * From the store's manifests (after the daemon stopped): for the backups of
 * the window, scheduled time → backup started (manifest startedAt, i.e. after
 * the claim in storage, when the source command is spawned) and → finished.
 */
function manifestDelays(storeDir, inWindow) {
  const started = [];
  const finished = [];
  for (const job of readdirSync(storeDir, { withFileTypes: true })) {
    if (!job.isDirectory() || !job.name.startsWith("job-")) continue;
    for (const backup of readdirSync(join(storeDir, job.name))) {
      let m;
      try {
        m = JSON.parse(readFileSync(join(storeDir, job.name, backup, "manifest.json"), "utf8"));
      } catch {
        continue; // not a finished backup
      }
      if (!m.run || !inWindow({ trigger: m.run.trigger, scheduledAt: m.run.scheduledAt })) continue;
      const slot = Date.parse(m.run.scheduledAt);
      started.push(Date.parse(m.startedAt) - slot);
      finished.push(Date.parse(m.finishedAt) - slot);
    }
  }
  const summary = (list) => {
    const sorted = list.sort((a, b) => a - b);
    return { count: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) };
  };
  return { started: summary(started), finished: summary(finished) };
}

// --- phases ------------------------------------------------------------------

/** Start-up: node itself, the CLI without a command, and the daemon to its ready line, interleaved. */
async function measureStart(idleConfig) {
  const runs = { node: [], version: [], daemon: [] };
  for (let round = 0; round < REPEAT; round++) {
    runs.node.push(await timeCommand([process.execPath, "-e", ""], 'node -e ""'));
    runs.version.push(await timeCommand([process.execPath, CLI, "--version"], "lifeboat --version"));
    const daemon = new Daemon(idleConfig);
    const ready = await daemon.ready;
    if (ready.jobs !== JOBS) throw new Error(`the daemon scheduled ${ready.jobs} jobs, expected ${JOBS}`);
    const stopSeconds = await daemon.stop();
    runs.daemon.push({ ...ready, stopSeconds });
    log(`start #${round + 1}: node -e "" ${fixed(runs.node.at(-1), 3)} s, lifeboat --version ${fixed(runs.version.at(-1), 3)} s, daemon ready ${fixed(ready.wallSeconds, 3)} s (in-process ${fixed(ready.inProcessSeconds, 3)} s), stopped in ${fixed(stopSeconds, 2)} s`);
  }
  return runs;
}

/** Idle: the daemon with every job months away; CPU over IDLE_S seconds, after SETTLE_S of quiet. */
async function measureIdle(idleConfig) {
  const daemon = new Daemon(idleConfig, { keep: ["scheduled run started"] });
  const ready = await daemon.ready;
  const memory = memoryPoller(daemon.pid);
  await sleep(SETTLE_S * 1000);
  const t0 = performance.now();
  const ticks0 = processCpuTicks(daemon.pid);
  const machine0 = machineCpuTicks();
  const mem0 = processMemoryKiB(daemon.pid);
  log(`idle: sampling CPU for ${IDLE_S} s (after ${SETTLE_S} s of quiet; the freshness check and the heartbeat fire about ${60 - SETTLE_S} s in) …`);
  await sleep(IDLE_S * 1000);
  const ticks1 = processCpuTicks(daemon.pid);
  const machine1 = machineCpuTicks();
  const seconds = (performance.now() - t0) / 1000;
  const samples = memory.stop().filter((s) => s.at >= t0);
  const mem1 = processMemoryKiB(daemon.pid);
  const stopSeconds = await daemon.stop();
  const cpuSeconds = (ticks1 - ticks0) / clockTicksPerSecond;
  const machineBusySeconds = machine1 && machine0 ? (machine1.busy - machine0.busy) / clockTicksPerSecond : undefined;
  const result = {
    ready,
    seconds,
    cpuSeconds,
    cpuPercent: (100 * cpuSeconds) / seconds,
    machineBusySeconds,
    runsStarted: daemon.kept.length,
    rssKiBAtStart: mem0?.rssKiB,
    rssKiBAtEnd: mem1?.rssKiB,
    rssKiBMedian: median(samples.map((s) => s.rssKiB)),
    rssKiBMax: Math.max(...samples.map((s) => s.rssKiB)),
    hwmKiB: mem1?.hwmKiB,
    stopSeconds,
    logCounts: daemon.counts,
  };
  log(`idle: ${fixed(cpuSeconds, 2)} CPU-s in ${fixed(seconds, 1)} s = ${fixed(result.cpuPercent, 2)} %, RSS ${fixed(result.rssKiBMedian / 1024, 0)} MiB (median), VmHWM ${fixed(result.hwmKiB / 1024, 0)} MiB, ${result.runsStarted} runs started`);
  return result;
}

/** Load: ~JOBS/WINDOW_S jobs due every second; lateness of the runs due in one WINDOW_S window after a LEAD_S warm-up. */
async function measureLoad(loadConfig) {
  const daemon = new Daemon(loadConfig, { keep: ["scheduled run started"] });
  const ready = await daemon.ready;
  const memory = memoryPoller(daemon.pid);
  const windowStartMs = Math.ceil((daemon.readyEpochMs + LEAD_S * 1000) / 1000) * 1000;
  const windowEndMs = windowStartMs + WINDOW_S * 1000;
  const inWindow = (r) => r.trigger === "schedule" && Date.parse(r.scheduledAt) >= windowStartMs && Date.parse(r.scheduledAt) < windowEndMs;
  log(`load: ${JOBS} jobs, ~${fixed(JOBS / WINDOW_S, 1)} due a second, concurrency ${CONCURRENCY}; measuring the runs due in ${new Date(windowStartMs).toISOString()} – ${new Date(windowEndMs).toISOString()} (${WINDOW_S} s) …`);
  await sleep(Math.max(0, windowStartMs - Date.now()));
  const ticks0 = processCpuTicks(daemon.pid);
  const machine0 = machineCpuTicks();
  const counts0 = { ...daemon.counts };
  await sleep(Math.max(0, windowEndMs - Date.now()));
  const ticks1 = processCpuTicks(daemon.pid);
  const machine1 = machineCpuTicks();
  const counts1 = { ...daemon.counts };
  // The window's last runs may still be waiting: give them DRAIN_S to start.
  const deadline = Date.now() + DRAIN_S * 1000;
  while (daemon.kept.filter(inWindow).length < JOBS && Date.now() < deadline) await sleep(250);
  const samples = memory.stop();
  const mem = processMemoryKiB(daemon.pid);
  const stopSeconds = await daemon.stop();

  const started = daemon.kept.filter(inWindow);
  const manifests = manifestDelays(join(dirname(loadConfig), ".lifeboat", "store"), inWindow);
  const lateness = started.map((r) => r.latenessMs).sort((a, b) => a - b);
  const catchUp = daemon.kept.filter((r) => r.trigger !== "schedule").length;
  const during = (msg) => (counts1[msg] ?? 0) - (counts0[msg] ?? 0);
  const busySeconds = machine1 && machine0 ? (machine1.busy - machine0.busy) / clockTicksPerSecond : undefined;
  const result = {
    ready,
    windowStart: new Date(windowStartMs).toISOString(),
    windowSeconds: WINDOW_S,
    dueInWindow: JOBS,
    startedInWindow: started.length,
    catchUpStarts: catchUp,
    latenessMs: {
      p50: percentile(lateness, 50),
      p90: percentile(lateness, 90),
      p99: percentile(lateness, 99),
      max: lateness.at(-1),
      min: lateness[0],
      over1s: lateness.filter((l) => l >= 1000).length,
    },
    manifests,
    daemonCpuSeconds: (ticks1 - ticks0) / clockTicksPerSecond,
    machineBusySeconds: busySeconds,
    machineCapacitySeconds: WINDOW_S * cpus().length,
    duringWindow: {
      started: during("scheduled run started"),
      finished: during("scheduled backup finished"),
      failed: during("scheduled backup failed"),
      couldNotStart: during("scheduled run could not start"),
      queued: during("scheduled run queued"),
      skipped: during("scheduled run skipped"),
      missed: during("scheduled runs missed while the process was paused; the newest runs"),
    },
    rssKiBMedian: median(samples.map((s) => s.rssKiB)),
    rssKiBMax: Math.max(...samples.map((s) => s.rssKiB)),
    hwmKiB: mem?.hwmKiB,
    stopSeconds,
    logCounts: daemon.counts,
  };
  const d = result.duringWindow;
  log(
    `load: ${started.length}/${JOBS} due runs started, lateness p50 ${result.latenessMs.p50} ms, p99 ${result.latenessMs.p99} ms, max ${result.latenessMs.max} ms; ` +
      `in the window ${d.finished} backups finished, ${d.failed + d.couldNotStart} failed, ${d.queued} queued, ${d.skipped} skipped; daemon ${fixed(result.daemonCpuSeconds, 1)} CPU-s, machine ${fixed(busySeconds, 1)} of ${result.machineCapacitySeconds} CPU-s; VmHWM ${fixed(result.hwmKiB / 1024, 0)} MiB`,
  );
  return result;
}

// --- report ------------------------------------------------------------------

function report(ctx) {
  const { start, idle, load } = ctx;
  const lines = [];
  lines.push(
    `Lifeboat daemon bench: ${JOBS} jobs (command source: printf, zstd, filesystem store), concurrency ${CONCURRENCY}, ${cpus().length} CPUs, node ${process.version}, load avg at start ${ctx.loadAtStart.map((l) => l.toFixed(2)).join(" ")}`,
  );
  lines.push("");
  const s = (list) => ({ median: median(list), min: Math.min(...list), max: Math.max(...list), n: list.length });
  const node = s(start.node);
  const version = s(start.version);
  const wall = s(start.daemon.map((r) => r.wallSeconds));
  const inProc = s(start.daemon.map((r) => r.inProcessSeconds));
  const range = (x, d = 3) => `${fixed(x.min, d)}–${fixed(x.max, d)} (${x.n})`;
  const rows = [
    ['node -e ""', fixed(node.median, 3), range(node), "1.00"],
    ["lifeboat --version", fixed(version.median, 3), range(version), fixed(version.median / node.median, 1)],
    ["lifeboat daemon: spawn → ready line", fixed(wall.median, 3), range(wall), fixed(wall.median / node.median, 1)],
    ["  in-process (runDaemon → ready)", fixed(inProc.median, 3), range(inProc), "-"],
    [`  idle-phase start (start #${REPEAT + 1})`, fixed(idle.ready.wallSeconds, 3), "", fixed(idle.ready.wallSeconds / node.median, 1)],
    ["  load-phase start (fresh store)", fixed(load.ready.wallSeconds, 3), "", fixed(load.ready.wallSeconds / node.median, 1)],
  ];
  lines.push("start-up (wall seconds, spawn → exit or ready line; median of the runs):");
  lines.push(table(["run", "median s", "range (runs)", "× node -e"], rows, [false, true, true, true]));
  lines.push("");

  const L = load.latenessMs;
  const peakMiB = Math.max(idle.hwmKiB ?? 0, load.hwmKiB ?? 0) / 1024;
  const idleMiB = idle.rssKiBMedian / 1024;
  const worstStart = Math.max(wall.max, idle.ready.wallSeconds, load.ready.wallSeconds);
  ctx.verdicts = {
    start: worstStart < GOAL_START_S,
    idleCpu: idle.cpuPercent < GOAL_IDLE_CPU_PERCENT && idle.runsStarted === 0,
    lateness: load.startedInWindow === JOBS && L.p99 !== undefined && L.p99 < GOAL_P99_MS,
    rss: peakMiB < GOAL_RSS_MIB,
  };
  const goals = [
    ["daemon start, spawn → ready (slowest start)", `${fixed(worstStart, 2)} s`, `< ${GOAL_START_S} s`, verdict(ctx.verdicts.start)],
    [`idle CPU over ${fixed(idle.seconds, 0)} s (${idle.runsStarted} runs started)`, `${fixed(idle.cpuPercent, 2)} % (${fixed(idle.cpuSeconds, 2)} CPU-s)`, `< ${GOAL_IDLE_CPU_PERCENT} %`, verdict(ctx.verdicts.idleCpu)],
    [`lateness p50 / p99 / max (${load.startedInWindow}/${JOBS} runs)`, `${L.p50 ?? "-"} / ${L.p99 ?? "-"} / ${L.max ?? "-"} ms`, `p99 < ${GOAL_P99_MS} ms`, verdict(ctx.verdicts.lateness)],
    ["RSS idle (median) / peak (VmHWM)", `${fixed(idleMiB, 0)} / ${fixed(peakMiB, 0)} MiB`, `< ${fixed(GOAL_RSS_MIB, 0)} MiB (150 MB)`, verdict(ctx.verdicts.rss)],
  ];
  const M = load.manifests;
  lines.push("goals:");
  lines.push(table(["measure", "value", "goal", "verdict"], goals, [false, true, false, false]));
  lines.push("");
  const d = load.duringWindow;
  const rereads = Math.floor((SETTLE_S + idle.seconds) / 60);
  lines.push(`idle: ${JOBS} jobs due months from now, catchUp none; the window includes ${rereads} RPO freshness re-read(s) of all ${JOBS} jobs (daemon.freshnessCheck, default 1m) and ${rereads} heartbeat write(s); machine busy ${fixed(idle.machineBusySeconds, 1)} of ${fixed(idle.seconds * cpus().length, 0)} CPU-s`);
  lines.push(
    `load: ~${fixed(JOBS / WINDOW_S, 1)} runs due a second (job i at second ⌊i·${WINDOW_S}/${JOBS}⌋ of every ${WINDOW_S} s period); lateness = "scheduled run started".latenessMs (scheduled time → run started), trigger "schedule" only, slots in ${load.windowStart} + ${WINDOW_S} s; p90 ${L.p90} ms, ${L.over1s} runs ≥ 1 s late`,
  );
  lines.push(
    `      in the window: ${d.started} started, ${d.finished} backups finished, ${d.failed} failed, ${d.couldNotStart} could not start, ${d.queued} queued (concurrency), ${d.skipped} skipped (overlap), ${d.missed} missed; daemon main process ${fixed(load.daemonCpuSeconds, 1)} CPU-s (${fixed((100 * load.daemonCpuSeconds) / WINDOW_S, 0)} % of a core), machine busy ${fixed(load.machineBusySeconds, 1)} of ${load.machineCapacitySeconds} CPU-s (${fixed((100 * load.machineBusySeconds) / load.machineCapacitySeconds, 0)} %)`,
  );
  lines.push(
    `      from the ${M.started.count} manifests of the window: scheduled → backup started (after the claim in storage) p50 ${M.started.p50} / p99 ${M.started.p99} / max ${M.started.max} ms; → backup finished p50 ${M.finished.p50} / p99 ${M.finished.p99} / max ${M.finished.max} ms`,
  );
  lines.push(`RSS: idle median ${fixed(idleMiB, 0)} MiB (${fixed(idle.rssKiBAtStart / 1024, 0)} → ${fixed(idle.rssKiBAtEnd / 1024, 0)} over the window), under load median ${fixed(load.rssKiBMedian / 1024, 0)} MiB, VmHWM idle ${fixed(idle.hwmKiB / 1024, 0)} MiB, load ${fixed(load.hwmKiB / 1024, 0)} MiB`);
  const stops = [...start.daemon.map((r) => r.stopSeconds), idle.stopSeconds, load.stopSeconds];
  lines.push(`SIGTERM → exit 0: ${stops.map((x) => fixed(x, 2)).join(", ")} s`);
  const idleOthers = (idle.machineBusySeconds - idle.cpuSeconds) / (idle.seconds * cpus().length);
  if (idleOthers > 0.1) ctx.notes.push(`other processes kept the machine ${fixed(100 * idleOthers, 0)} % busy during the idle window: the idle CPU and lateness figures may be skewed; rerun on a quiet machine`);
  if (load.catchUpStarts > 0) ctx.notes.push(`${load.catchUpStarts} catch-up runs started (excluded from lateness); catchUp is none, so this is unexpected`);
  if (load.startedInWindow < JOBS) ctx.notes.push(`${JOBS - load.startedInWindow} runs due in the window had not started ${DRAIN_S} s after it: the machine did not keep up with ${fixed(JOBS / WINDOW_S, 1)} runs a second; lower the load (BENCH_DAEMON_JOBS) and rerun`);
  lines.push(...notesBlock(ctx.notes));
  return lines.join("\n");
}

// --- main --------------------------------------------------------------------

async function main() {
  assertBenchable();
  const startedAt = new Date();
  const started = performance.now();
  const loadAtStart = loadavg();
  const dir = scratchDir();
  const idleConfig = writeIdleConfig(join(dir, "idle"));
  const loadConfig = writeLoadConfig(join(dir, "load"));
  const notes = [];

  const start = await measureStart(idleConfig);
  const idle = await measureIdle(idleConfig);
  const load = await measureLoad(loadConfig);

  await cleanup();
  const ctx = { start, idle, load, notes, loadAtStart };
  const text = report(ctx);
  process.stdout.write(`\n${text}\n`);

  const totalSeconds = (performance.now() - started) / 1000;
  const json = {
    startedAt: startedAt.toISOString(),
    totalSeconds,
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryMiB: Math.round(totalmem() / MIB), loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadavg() },
    versions: { node: process.version },
    settings: { jobs: JOBS, repeat: REPEAT, idleSeconds: IDLE_S, settleSeconds: SETTLE_S, windowSeconds: WINDOW_S, leadSeconds: LEAD_S, concurrency: CONCURRENCY, drainSeconds: DRAIN_S },
    goals: { startSeconds: GOAL_START_S, idleCpuPercent: GOAL_IDLE_CPU_PERCENT, latenessP99Ms: GOAL_P99_MS, rssMiB: GOAL_RSS_MIB },
    start,
    idle,
    load,
    verdicts: Object.fromEntries(Object.entries(ctx.verdicts).map(([k, v]) => [k, verdict(v)])),
    notes,
  };
  mkdirSync(DATA, { recursive: true });
  const out = join(DATA, "daemon-last-run.json");
  writeFileSync(out, `${JSON.stringify(json, null, 2)}\n`);
  process.stdout.write(`\ntotal ${fixed(totalSeconds, 0)} s; results in ${relative(process.cwd(), out) || out}\n`);
  return 0;
}

runMain(main);
