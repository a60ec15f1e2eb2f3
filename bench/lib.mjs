// Shared helpers of the benchmarks (bench/backup-bench.mjs, bench/postgres-bench.mjs):
// settings from the environment, LIFO cleanup on exit and on signals, running
// pipelines of child processes, sampling CPU and peak RSS from /proc, a
// throw-away radosgw, the interleaved measuring loop and the table printer.
// Plain Node ESM, no dependencies beyond the project's.
//
// Every child process is spawned with an argv array (no shell). Pipelines
// (a | b | …) are wired in Node by handing one child's stdout pipe to the next
// child as its stdin, so the data never passes through the bench process.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, closeSync, constants as fsConstants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, tmpdir } from "node:os";
import { delimiter, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

// --- paths, settings ---------------------------------------------------------------

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const DATA = join(ROOT, "bench", ".data");
export const CLI = join(ROOT, "dist", "cli", "main.js");
export const RADOSGW_SH = join(ROOT, "test", "servers", "radosgw.sh");

export const MIB = 1024 * 1024;
/** How often the sampler polls /proc. */
export const SAMPLE_MS = 50;

export function envInt(name, fallback, { min = 1 } = {}) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) die(`${name} must be ${min === 1 ? "a positive integer" : `an integer ≥ ${min}`}, got "${raw}"`);
  return n;
}

export function envFlag(name, fallback) {
  const raw = (process.env[name] ?? "").trim().toLowerCase();
  if (raw === "") return fallback;
  if (["1", "true", "yes", "on"].includes(raw)) return true;
  if (["0", "false", "no", "off"].includes(raw)) return false;
  die(`${name} must be 1 or 0, got "${process.env[name]}"`);
}

export function die(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

export const log = (message) => process.stderr.write(`bench: ${message}\n`);

// --- cleanup, signals ----------------------------------------------------------

/** Children currently running, so a signal can stop them (by pid, never by name). */
const running = new Set();
const cleanups = [];
let cleanupPromise;
let interrupted = false;

/** Registers a teardown; they run last-in first-out, every one of them even when one fails. */
export function onCleanup(task) {
  cleanups.push(task);
}

export function cleanup() {
  cleanupPromise ??= (async () => {
    // Every descendant by pid, not only the direct child: a `time` wrapper
    // would otherwise die alone and leave lifeboat running. Then give them
    // time to tear down what they made (lifeboat removes its scratch cluster).
    for (const child of running) for (const pid of [child.pid, ...descendantsOf(child.pid)]) signalPid(pid, "SIGTERM");
    for (let waited = 0; running.size > 0 && waited < 20_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
    while (cleanups.length > 0) {
      const task = cleanups.pop();
      try {
        await task();
      } catch (error) {
        log(`cleanup failed: ${error.message}`);
      }
    }
  })();
  return cleanupPromise;
}

export const isInterrupted = () => interrupted;

/**
 * SIGINT/SIGTERM/SIGHUP run the cleanups, then exit 130 (a second signal
 * exits at once). Also silences the AWS SDK's warning about Node 20.
 */
export function installProcessHandlers() {
  // The AWS SDK (used here only to create buckets) warns on Node 20; that is not news for a benchmark.
  process.removeAllListeners("warning");
  process.on("warning", (warning) => {
    if (warning.name !== "NodeVersionSupportWarning" && !String(warning.message).includes("AWS SDK for JavaScript")) process.stderr.write(`${warning.name}: ${warning.message}\n`);
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(signal, () => {
      if (interrupted) process.exit(130);
      interrupted = true;
      log(`${signal}: stopping (cleaning up; press again to quit at once)`);
      cleanup().finally(() => process.exit(130));
    });
  }
}

/** Runs `main`, then sets the exit code: main's result, 1 when it throws, 130 when interrupted. Cleans up either way. */
export function runMain(main) {
  main().then(
    async (code) => {
      await cleanup();
      process.exitCode = code;
    },
    async (error) => {
      if (!interrupted) process.stderr.write(`bench: ${error?.stack ?? error}\n`);
      await cleanup();
      process.exitCode = interrupted ? 130 : 1;
    },
  );
}

// --- small helpers ------------------------------------------------------------

export function which(program) {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const path = join(dir, program);
    try {
      accessSync(path, fsConstants.X_OK);
      if (statSync(path).isFile()) return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function firstLine(argv) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8", timeout: 10_000 });
  if (r.error || r.status !== 0) return undefined;
  return `${r.stdout}${r.stderr}`.split("\n").find((l) => l.trim() !== "")?.trim();
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function maxOf(values) {
  const defined = values.filter((v) => v !== undefined);
  return defined.length ? Math.max(...defined) : undefined;
}

export const fixed = (n, digits = 2) => (n === undefined || n === null || Number.isNaN(n) ? "-" : n.toFixed(digits));

export function tail(text, lines = 15) {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

export async function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

export function randomKey(length, alphabet) {
  const bytes = randomBytes(length);
  let out = "";
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

/** GNU time only: `-f %M` must print a number. Returns its path or undefined. */
export function gnuTime() {
  const time = which("time");
  if (!time) return undefined;
  const r = spawnSync(time, ["-f", "%M", "true"], { encoding: "utf8" });
  return r.status === 0 && /^\d+\s*$/.test(r.stderr.trim().split("\n").pop() ?? "") ? time : undefined;
}

let scratch;
/** A temp folder for this run, removed at the end (also on failure or Ctrl-C). */
export function scratchDir() {
  if (!scratch) {
    const dir = mkdtempSync(join(tmpdir(), "lifeboat-bench-"));
    scratch = dir;
    onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  }
  return scratch;
}

// --- /proc sampling --------------------------------------------------------------

const CLK_TCK = Number(firstLine(["getconf", "CLK_TCK"])) || 100;

/** {comm, ticks (utime+stime)} of a process or thread, or undefined when gone. */
function readStat(path) {
  let text;
  try {
    text = readFileSync(path, "latin1");
  } catch {
    return undefined;
  }
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  const fields = text.slice(close + 2).split(" ");
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  return { comm: text.slice(open + 1, close), ticks: Number(fields[11]) + Number(fields[12]) };
}

function readHwmKiB(pid) {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function childrenOf(pid) {
  const out = [];
  let tasks;
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, "latin1").split(" ")) if (c) out.push(Number(c));
    } catch {
      // thread gone
    }
  }
  return out;
}

function descendantsOf(pid) {
  const out = [];
  const queue = pid ? [pid] : [];
  while (queue.length > 0) {
    for (const c of childrenOf(queue.pop())) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

function signalPid(pid, signal) {
  try {
    if (pid) process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** pid → {comm, ticks} for every process on the machine. */
function allProcessTicks() {
  const out = new Map();
  let pids;
  try {
    pids = readdirSync("/proc").filter((n) => /^\d+$/.test(n));
  } catch {
    return out;
  }
  for (const p of pids) {
    const stat = readStat(`/proc/${p}/stat`);
    if (stat) out.set(Number(p), stat);
  }
  return out;
}

/** Busy and total CPU ticks of the whole machine (/proc/stat). */
function machineTicks() {
  try {
    const line = readFileSync("/proc/stat", "latin1").split("\n")[0];
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    return { busy: user + nice + system + irq + softirq + (steal ?? 0), total: user + nice + system + idle + iowait + irq + softirq + (steal ?? 0) };
  } catch {
    return undefined;
  }
}

/**
 * Polls /proc every 50 ms while a run is going: the CPU time of every process
 * the run started (and their descendants), the peak RSS (VmHWM) of each of
 * them (`peakRssKiB` is the highest of the node processes, i.e. lifeboat), when
 * each of them was first seen, the main-thread CPU of node, the CPU the servers spent meanwhile, and how busy
 * the whole machine was (so load from other users of the machine shows up as
 * "other").
 *
 * Servers are long-running daemons (radosgw, ceph-osd, a PostgreSQL
 * postmaster), given as name → pid. Their CPU counts with their descendants
 * (a postmaster's backends), from the start of the run. `discoverServers`, when
 * given, is called on every poll and returns more name → pid, for servers the
 * run itself starts (a scratch cluster); those count from the moment they
 * appear, and are taken out of the run's own processes.
 */
export class Sampler {
  constructor(rootPids, serverPids = {}, { discoverServers } = {}) {
    this.rootPids = rootPids;
    this.serverPids = { ...serverPids };
    this.discoverServers = discoverServers;
    this.procs = new Map();
    /** name → pid → {base, last}: ticks when first seen (0 when born during the run) and at the last poll. */
    this.serverTrees = new Map();
    this.starting = true;
    this.t0 = performance.now();
    this.machine0 = machineTicks();
    this.all0 = allProcessTicks();
    this.self0 = process.cpuUsage();
    this.tick();
    this.starting = false;
    this.timer = setInterval(() => this.tick(), SAMPLE_MS);
  }

  tick() {
    if (this.discoverServers) {
      try {
        for (const [name, pid] of Object.entries(this.discoverServers())) if (pid && this.serverPids[name] === undefined) this.serverPids[name] = pid;
      } catch {
        // best effort
      }
    }
    const claimed = new Set();
    for (const [name, root] of Object.entries(this.serverPids)) {
      const tree = this.serverTrees.get(name) ?? new Map();
      this.serverTrees.set(name, tree);
      const queue = [root];
      while (queue.length > 0) {
        const pid = queue.pop();
        if (claimed.has(pid)) continue;
        claimed.add(pid);
        const stat = readStat(`/proc/${pid}/stat`);
        if (!stat) continue;
        const entry = tree.get(pid) ?? { base: this.starting ? stat.ticks : 0, last: stat.ticks };
        entry.last = stat.ticks;
        tree.set(pid, entry);
        // A server the run started was first seen among the run's own processes: it is counted here now.
        this.procs.delete(pid);
        queue.push(...childrenOf(pid));
      }
    }
    const queue = [...this.rootPids];
    const seen = new Set();
    while (queue.length > 0) {
      const pid = queue.pop();
      if (seen.has(pid) || claimed.has(pid)) continue;
      seen.add(pid);
      const stat = readStat(`/proc/${pid}/stat`);
      if (!stat) continue;
      const entry = this.procs.get(pid) ?? { comm: stat.comm, ticks: 0, mainTicks: undefined, hwmKiB: undefined, seenSeconds: (performance.now() - this.t0) / 1000 };
      // A child seen between fork and exec still has its parent's name: keep the latest.
      entry.comm = stat.comm;
      entry.ticks = stat.ticks;
      const hwm = readHwmKiB(pid);
      if (hwm !== undefined) entry.hwmKiB = Math.max(entry.hwmKiB ?? 0, hwm);
      if (stat.comm === "node") {
        const main = readStat(`/proc/${pid}/task/${pid}/stat`);
        if (main) entry.mainTicks = main.ticks;
      }
      this.procs.set(pid, entry);
      queue.push(...childrenOf(pid));
    }
  }

  stop() {
    clearInterval(this.timer);
    this.tick();
    const self = process.cpuUsage(this.self0);
    const machine1 = machineTicks();
    const cpu = {};
    const peakRssKiBByName = {};
    const firstSeenSeconds = {};
    let ours = 0;
    let nodeMain;
    let peakRssKiB;
    for (const p of this.procs.values()) {
      const name = p.comm === "node" ? "lifeboat (node)" : p.comm;
      cpu[name] = (cpu[name] ?? 0) + p.ticks / CLK_TCK;
      firstSeenSeconds[name] = Math.min(firstSeenSeconds[name] ?? Infinity, p.seenSeconds);
      ours += p.ticks / CLK_TCK;
      if (p.mainTicks !== undefined) nodeMain = (nodeMain ?? 0) + p.mainTicks / CLK_TCK;
      if (p.hwmKiB !== undefined) {
        peakRssKiBByName[name] = Math.max(peakRssKiBByName[name] ?? 0, p.hwmKiB);
        if (p.comm === "node") peakRssKiB = Math.max(peakRssKiB ?? 0, p.hwmKiB);
      }
    }
    const server = {};
    const serverPids = new Set();
    for (const [name, tree] of this.serverTrees) {
      let ticks = 0;
      for (const [pid, { base, last }] of tree) {
        ticks += Math.max(0, last - base);
        serverPids.add(pid);
      }
      server[name] = ticks / CLK_TCK;
      ours += server[name];
    }
    const benchSelf = (self.user + self.system) / 1e6;
    const busy = machine1 && this.machine0 ? (machine1.busy - this.machine0.busy) / CLK_TCK : undefined;
    // Who else used the CPU meanwhile (processes alive at both ends of the run).
    const mine = new Set([...this.procs.keys(), ...serverPids, process.pid]);
    const others = {};
    for (const [pid, end] of allProcessTicks()) {
      const start = this.all0.get(pid);
      if (mine.has(pid) || !start || start.comm !== end.comm) continue;
      const secs = (end.ticks - start.ticks) / CLK_TCK;
      if (secs > 0) others[end.comm] = (others[end.comm] ?? 0) + secs;
    }
    const topOthers = Object.fromEntries(
      Object.entries(others)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 5)
        .map(([k, v]) => [k, Math.round(v * 100) / 100]),
    );
    return {
      cpuSeconds: cpu,
      nodeMainThreadSeconds: nodeMain,
      serverCpuSeconds: server,
      benchProcessSeconds: benchSelf,
      machineBusySeconds: busy,
      otherProcessesSeconds: busy === undefined ? undefined : Math.max(0, busy - ours - benchSelf),
      /** The biggest of those (kernel threads included; softirq time belongs to nobody). */
      otherTopSeconds: topOthers,
      peakRssKiB,
      peakRssKiBByName,
      /** When the first process of each name was seen, in seconds from the start of the run (±50 ms). */
      firstSeenSeconds,
    };
  }
}

/** Adds up the samples of consecutive steps of one run (CPU seconds add, peaks take the maximum). */
export function mergeSamples(list) {
  const sum = (key) => {
    const out = {};
    for (const s of list) for (const [k, v] of Object.entries(s[key] ?? {})) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  const total = (key) => (list.some((s) => s[key] !== undefined) ? list.reduce((acc, s) => acc + (s[key] ?? 0), 0) : undefined);
  const peaks = {};
  for (const s of list) for (const [k, v] of Object.entries(s.peakRssKiBByName ?? {})) peaks[k] = Math.max(peaks[k] ?? 0, v);
  return {
    cpuSeconds: sum("cpuSeconds"),
    nodeMainThreadSeconds: total("nodeMainThreadSeconds"),
    serverCpuSeconds: sum("serverCpuSeconds"),
    benchProcessSeconds: total("benchProcessSeconds"),
    machineBusySeconds: total("machineBusySeconds"),
    otherProcessesSeconds: total("otherProcessesSeconds"),
    otherTopSeconds: sum("otherTopSeconds"),
    peakRssKiB: maxOf(list.map((s) => s.peakRssKiB)),
    peakRssKiBByName: peaks,
  };
}

// --- running processes --------------------------------------------------------------

/**
 * Runs a pipeline of processes (one stage is fine): stage i's stdout pipe is
 * given to stage i+1 as its stdin, all spawned in the same tick so this
 * process never reads from the pipes. The last stage's stdout goes to
 * /dev/null unless `captureStdout`. A stage may name `uid`/`gid` (run as
 * another user), `cwd` and its own `env`. Resolves with the wall time, the
 * exit of every stage and the /proc samples; rejects when a stage fails.
 */
export async function runPipeline(stages, { env = process.env, captureStdout = false, serverPids = {}, discoverServers, what }) {
  const devnull = openSync("/dev/null", "w");
  const children = [];
  const stderr = stages.map(() => "");
  let stdout = "";
  const started = performance.now();
  try {
    for (let i = 0; i < stages.length; i++) {
      const last = i === stages.length - 1;
      const stdin = i === 0 ? "ignore" : children[i - 1].stdout;
      const out = last ? (captureStdout ? "pipe" : devnull) : "pipe";
      const { argv, uid, gid, cwd } = stages[i];
      const child = spawn(argv[0], argv.slice(1), {
        stdio: [stdin, out, "pipe"],
        env: stages[i].env ?? env,
        ...(uid !== undefined ? { uid } : {}),
        ...(gid !== undefined ? { gid } : {}),
        ...(cwd !== undefined ? { cwd } : {}),
      });
      // The next stage holds its own copy of the pipe; drop ours, or the
      // previous stage's "close" would wait for an EOF we never read.
      if (i > 0) children[i - 1].stdout.destroy();
      children.push(child);
    }
  } finally {
    closeSync(devnull);
  }
  const sampler = new Sampler(
    children.map((c) => c.pid).filter(Boolean),
    serverPids,
    { discoverServers },
  );
  const exits = await Promise.all(
    children.map(
      (child, i) =>
        new Promise((resolveExit) => {
          running.add(child);
          child.stderr.setEncoding("utf8");
          child.stderr.on("data", (d) => {
            stderr[i] = (stderr[i] + d).slice(-20_000);
          });
          if (i === children.length - 1 && captureStdout) {
            child.stdout.setEncoding("utf8");
            child.stdout.on("data", (d) => {
              stdout += d;
            });
          }
          child.once("error", (error) => {
            running.delete(child);
            resolveExit({ code: null, signal: null, error });
          });
          child.once("close", (code, signal) => {
            running.delete(child);
            resolveExit({ code, signal });
          });
        }),
    ),
  );
  const wallSeconds = (performance.now() - started) / 1000;
  const samples = sampler.stop();
  for (const child of children) child.stdout?.destroy();
  const failed = exits.findIndex((e) => e.error || e.code !== 0);
  if (failed >= 0) {
    const e = exits[failed];
    const why = e.error ? e.error.message : e.signal ? `killed by ${e.signal}` : `exit code ${e.code}`;
    const detail = stages.map((s, i) => (stderr[i].trim() ? `--- ${s.argv[0]} stderr ---\n${tail(stderr[i])}` : "")).filter(Boolean).join("\n");
    const out = captureStdout && stdout.trim() ? `\n--- stdout ---\n${tail(stdout)}` : "";
    throw new Error(`${what}: ${stages[failed].argv.slice(0, 3).join(" ")} failed (${why})${detail ? `\n${detail}` : ""}${out}`);
  }
  return { wallSeconds, samples, stdout, stderr };
}

/** The bench's age identity (bench/.data/identity.txt), created once with `lifeboat keygen`. */
export async function ensureIdentity() {
  const path = join(DATA, "identity.txt");
  if (!existsSync(path)) {
    mkdirSync(DATA, { recursive: true });
    await runPipeline([{ argv: [process.execPath, CLI, "keygen", "--output", path] }], { captureStdout: true, what: "lifeboat keygen" });
  }
  return path;
}

// --- radosgw ----------------------------------------------------------------------

/** Starts a throw-away radosgw (test/servers/radosgw.sh) on a free port with fresh keys; stopped and removed by cleanup(). */
export async function startRadosgw(bash) {
  if (!existsSync(RADOSGW_SH)) throw new Error(`${relative(ROOT, RADOSGW_SH)} not found`);
  const dir = mkdtempSync(join(tmpdir(), "lifeboat-bench-rgw-"));
  const port = await freePort();
  const accessKeyId = randomKey(20, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
  const secretAccessKey = randomKey(40, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
  onCleanup(async () => {
    const stop = spawnSync(bash, [RADOSGW_SH, "stop", dir], { encoding: "utf8", timeout: 60_000 });
    if (stop.status !== 0) log(`radosgw.sh stop failed (${stop.status}): ${tail(stop.stderr ?? "")}; leaving ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  });
  const started = performance.now();
  await runPipeline([{ argv: [bash, RADOSGW_SH, "start", dir, String(port), accessKeyId, secretAccessKey] }], { what: "starting radosgw" });
  const pidOf = (name) => Number(readFileSync(join(dir, "run", `${name}.pid`), "latin1").replace(/\D/g, "")) || undefined;
  const pids = {};
  for (const [label, file] of [["radosgw", "rgw"], ["ceph-osd", "osd"], ["ceph-mon", "mon"]]) {
    try {
      const pid = pidOf(file);
      if (pid) pids[label] = pid;
    } catch {
      // no pid file: not sampled
    }
  }
  return { dir, port, endpoint: `http://127.0.0.1:${port}`, accessKeyId, secretAccessKey, pids, startSeconds: (performance.now() - started) / 1000 };
}

/** The environment restic and rclone need to reach that radosgw (rclone as remote "bench:"). */
export function peerEnv(server, base) {
  const env = { ...base, AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey, AWS_DEFAULT_REGION: "us-east-1" };
  // rclone's S3 client refuses to start when AWS_CA_BUNDLE is set and its
  // transport is not the SDK's own ("LoadCustomCABundleError"); radosgw is plain HTTP anyway.
  delete env.AWS_CA_BUNDLE;
  return {
    restic: { ...env, RESTIC_PASSWORD: randomBytes(16).toString("hex") },
    rclone: {
      ...env,
      RCLONE_CONFIG_BENCH_TYPE: "s3",
      RCLONE_CONFIG_BENCH_PROVIDER: "Ceph",
      RCLONE_CONFIG_BENCH_ENDPOINT: server.endpoint,
      RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: server.accessKeyId,
      RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: server.secretAccessKey,
    },
  };
}

async function s3Client(server) {
  const sdk = await import("@aws-sdk/client-s3");
  const client = new sdk.S3Client({
    endpoint: server.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
  return { client, sdk };
}

export async function createBuckets(server, names) {
  const { client, sdk } = await s3Client(server);
  try {
    for (const Bucket of names) await client.send(new sdk.CreateBucketCommand({ Bucket }));
  } finally {
    client.destroy();
  }
}

export async function objectSize(server, bucket, key) {
  const { client, sdk } = await s3Client(server);
  try {
    return (await client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: key }))).ContentLength;
  } catch {
    return undefined;
  } finally {
    client.destroy();
  }
}

// --- measuring ------------------------------------------------------------------------

/**
 * Runs the kinds in rounds, (a) (b) (c) (a) (b) (c) …, so that a burst of load
 * from elsewhere on the machine hits every kind alike rather than one of them.
 * A kind with `rounds: 1` only runs in the first round. Each kind reports its
 * fastest run (wall time and /proc samples) and the highest RSS of all runs.
 */
export async function measure(kinds, rounds) {
  const results = new Map(kinds.map((k) => [k, []]));
  const errors = new Map();
  for (let round = 0; round < rounds; round++) {
    for (const kind of kinds) {
      if (errors.has(kind) || round >= (kind.rounds ?? rounds)) continue;
      try {
        const r = await kind.once(round);
        const n = Math.min(rounds, kind.rounds ?? rounds);
        log(`${kind.label}${n > 1 ? ` #${round + 1}` : ""}: ${fixed(r.wallSeconds)} s${r.peakRssMiB ? `, peak RSS ${fixed(r.peakRssMiB, 0)} MiB` : ""}`);
        results.get(kind).push(r);
      } catch (error) {
        if (interrupted) throw error;
        errors.set(kind, error.message);
        log(`${kind.label} failed:\n${error.message}`);
      }
    }
  }
  return kinds.map(({ once, rounds: _rounds, ...spec }) => {
    const list = results.get(kinds.find((k) => k.key === spec.key));
    const error = errors.get(kinds.find((k) => k.key === spec.key));
    if (error || list.length === 0) return { ...spec, error: error ?? "no result" };
    // Load from elsewhere only ever adds time, so the fastest run is the best
    // estimate of the real cost; the spread shows how noisy the machine was.
    const fastest = list.reduce((x, y) => (y.wallSeconds < x.wallSeconds ? y : x));
    const walls = list.map((r) => r.wallSeconds);
    return {
      ...spec,
      ...fastest,
      allWallSeconds: walls,
      allRuns: list.map(({ samples: _samples, ...r }) => r),
      medianWallSeconds: median(walls),
      slowestWallSeconds: Math.max(...walls),
      peakRssMiB: maxOf(list.map((r) => r.peakRssMiB)),
    };
  });
}

// --- report ------------------------------------------------------------------------

/** One line: the CPU seconds of every process of a run (and of the servers), and how busy the machine was. */
export function describeCpu(run) {
  const s = run.samples;
  if (!s) return "";
  const wall = run.wallSeconds;
  const parts = Object.entries(s.cpuSeconds)
    .filter(([name, secs]) => secs >= 0.05 && name !== "time")
    .sort((a, b) => b[1] - a[1])
    .map(([name, secs]) => {
      const main = name === "lifeboat (node)" && s.nodeMainThreadSeconds !== undefined ? `, main thread ${fixed(s.nodeMainThreadSeconds, 1)} s = ${fixed((100 * s.nodeMainThreadSeconds) / wall, 0)}%` : "";
      return `${name} ${fixed(secs, 1)} s (${fixed((100 * secs) / wall, 0)}%${main})`;
    });
  for (const [name, secs] of Object.entries(s.serverCpuSeconds ?? {})) if (secs >= 0.05) parts.push(`${name} ${fixed(secs, 1)} s (${fixed((100 * secs) / wall, 0)}%)`);
  const top = Object.entries(s.otherTopSeconds ?? {})
    .filter(([, secs]) => secs >= 0.1)
    .slice(0, 3)
    .map(([name, secs]) => `${name} ${fixed(secs, 1)}`)
    .join(", ");
  const machine =
    s.machineBusySeconds === undefined
      ? ""
      : `; machine busy ${fixed(s.machineBusySeconds, 1)} of ${fixed(wall * cpus().length, 1)} CPU-s, other processes ${fixed(s.otherProcessesSeconds, 1)} s${top ? ` (${top})` : ""}`;
  return `${parts.join(", ")}${machine}`;
}

export function table(headers, rows, alignRight) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => (alignRight[i] ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i]))).join("  ").trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

export function verdict(ok) {
  return ok === undefined ? "n/a" : ok ? "PASS" : "MISS";
}

// --- one long-running process (bench/daemon-bench.mjs) ------------------------------

/** Clock ticks per second of the /proc CPU figures (getconf CLK_TCK). */
export const clockTicksPerSecond = CLK_TCK;

/** utime + stime of one process in clock ticks (its own threads, not its children), or undefined when gone. */
export function processCpuTicks(pid) {
  return readStat(`/proc/${pid}/stat`)?.ticks;
}

/** VmRSS and VmHWM of one process in KiB, or undefined when gone. */
export function processMemoryKiB(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "latin1");
    const field = (name) => Number(new RegExp(`${name}:\\s+(\\d+)\\s+kB`).exec(status)?.[1]);
    return { rssKiB: field("VmRSS"), hwmKiB: field("VmHWM") };
  } catch {
    return undefined;
  }
}

/** Busy and total clock ticks of the whole machine since boot (/proc/stat, first line). */
export function machineCpuTicks() {
  return machineTicks();
}

/**
 * Lets cleanup() (a failure, Ctrl-C) stop a child this bench spawned itself,
 * by pid, and wait for it; it leaves the set when it exits.
 */
export function trackChild(child) {
  running.add(child);
  const forget = () => running.delete(child);
  child.once("exit", forget);
  child.once("error", forget);
  return child;
}

/** The last lines of a results block: one `note:` line each, after a blank line. */
export function notesBlock(notes) {
  return notes.length ? ["", ...notes.map((n) => `note: ${n}`)] : [];
}

/** Every bench reads /proc and runs the built CLI: stop early, saying why, when either is missing. */
export function assertBenchable() {
  if (process.platform !== "linux") die("Linux only (reads /proc for RSS and CPU)");
  if (!existsSync(CLI)) die(`${relative(ROOT, CLI)} is missing; run \`npm run bench\` (it builds first) or \`npm run build\``);
}
