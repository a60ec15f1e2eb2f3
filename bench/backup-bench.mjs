#!/usr/bin/env node
// Lifeboat backup benchmark: how close does `lifeboat backup` (tar → zstd → age
// → SHA-256 → store) get to the raw `tar | zstd -3` limit, and how much memory
// does it use? Compares against restic and rclone on the same radosgw.
// See bench/README.md. Plain Node ESM, no dependencies beyond the project's.
//
//   npm run bench                      # builds, then runs this and postgres-bench.mjs
//   BENCH_SIZE_MB=256 BENCH_DOUBLE=0 BENCH_REPEAT=1 node bench/backup-bench.mjs
//
// Every child process is spawned with an argv array (no shell). Pipelines
// (tar | zstd | …) are wired in Node by handing one child's stdout pipe to the
// next child as its stdin, so the data never passes through this process
// (bench/lib.mjs: runPipeline).
import { createCipheriv, createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join, relative } from "node:path";
import {
  assertBenchable,
  cleanup,
  CLI,
  createBuckets,
  DATA,
  describeCpu,
  die,
  ensureIdentity,
  envFlag,
  envInt,
  firstLine,
  fixed,
  gnuTime,
  installProcessHandlers,
  isInterrupted,
  log,
  measure,
  MIB,
  notesBlock,
  objectSize,
  peerEnv,
  ROOT,
  runMain,
  runPipeline,
  SAMPLE_MS,
  scratchDir,
  startRadosgw,
  table,
  tail,
  verdict,
  which,
} from "./lib.mjs";

// --- settings ----------------------------------------------------------------

const SIZE_MB = envInt("BENCH_SIZE_MB", 512);
/** Also run (a) and (b) at twice the data, to show that RSS does not grow with it. */
const DOUBLE = envFlag("BENCH_DOUBLE", true);
const PEERS = envFlag("BENCH_PEERS", true);
/** Runs of (a), (b) and (c), interleaved (the fastest counts); peers and the 2× lifeboat run go once. */
const REPEAT = envInt("BENCH_REPEAT", 3);

const GOAL_RATIO = 1.15;
const GOAL_RSS_MIB = 200;
const ZSTD_LEVEL = 3;
const GENERATOR_VERSION = 1;
const SEED = 0x11feb0a7;

const BUCKET = "lifeboat-bench";
const BUCKET_RESTIC = "lifeboat-bench-restic";
const BUCKET_RCLONE = "lifeboat-bench-rclone";

installProcessHandlers();

// --- data set ------------------------------------------------------------------

/** sfc32: small, fast, seedable 32-bit PRNG. */
function makeRng(seed) {
  let a = 0x9e3779b9 ^ seed;
  let b = 0x243f6a88;
  let c = 0xb7e15162 ^ (seed >>> 1);
  let d = 1;
  const next = () => {
    a |= 0;
    b |= 0;
    c |= 0;
    d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 16; i++) next();
  return next;
}

function seedFor(name) {
  return createHash("sha256").update(`${SEED}:${name}`).digest().readUInt32LE(0);
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const FIRST = "Ada Alan Alice Amir Anna Ben Carla Chen Dana David Diego Elena Emma Fatima Felix Grace Hana Hugo Ines Ivan Jack Jana Jonas Kai Kenji Lara Leo Lina Luca Maria Mateo Mia Nadia Noah Olga Omar Paula Pedro Priya Rosa Sam Sara Sofia Tariq Tom Uma Vera Wei Yara Zoe".split(" ");
const LAST = "Adams Almeida Baker Becker Brown Chen Costa Dubois Evans Fischer Garcia Gomez Hansen Ito Jensen Kim Kowalski Larsen Lee Lopez Martin Meyer Moreau Muller Nakamura Novak Olsen Park Patel Perez Rossi Santos Schmidt Silva Smith Suzuki Tanaka Taylor Thomas Torres Wagner Walker Wang Weber White Wilson Wong Yamamoto Young Zhang".split(" ");
const WORDS = "account address after again agent alert amount answer archive backup balance batch before billing branch bucket buffer cache cancel cart charge check client cluster commit config confirm contract count credit customer daily database deliver delivery deploy device discount disk domain draft email entry error event export failed feature field file filter finance first folder import index invoice issue item job key label latest ledger limit line list local lookup manual merge message method metric mobile monthly network node notice number offline order owner package page partner payment pending period policy price primary product profile quantity queue quote record refund region release remote report request retry return review route sales schedule search secure segment server service session ship shipping size snapshot source status stock storage store subscription summary supplier support sync system table tax ticket token total tracking transfer update upload user value vendor version volume warehouse weekly".split(" ");
const COUNTRIES = "DE FR GB US CA ES IT NL BE PL SE NO DK FI PT IE AT CH JP BR".split(" ");
const DOMAINS = "example.com mail.example.org shop.example.net corp.example.io inbox.example.de".split(" ");
const STATUSES = "pending paid paid paid shipped shipped delivered delivered delivered refunded cancelled".split(" ");
const CITIES = "Berlin Paris London Madrid Rome Amsterdam Brussels Warsaw Stockholm Oslo Copenhagen Helsinki Lisbon Dublin Vienna Zurich Tokyo Toronto Austin Porto".split(" ");
const SERVICES = "api checkout billing search auth inventory shipping notifications".split(" ");
const LEVELS = "info info info info info info info debug debug warn error".split(" ");
const MESSAGES = [
  "request completed",
  "request completed",
  "request completed",
  "cache miss",
  "cache hit",
  "payment authorized",
  "order created",
  "order updated",
  "user logged in",
  "token refreshed",
  "slow query",
  "retrying upstream call",
  "upstream timeout",
  "validation failed",
  "job scheduled",
  "job finished",
];
const METHODS = "GET GET GET GET POST POST PUT DELETE".split(" ");
const ROUTES = "/api/v1/orders/ /api/v1/customers/ /api/v1/products/ /api/v1/cart/ /api/v2/search?q= /api/v1/invoices/ /healthz/".split(" ");
const HTTP_STATUS = [200, 200, 200, 200, 200, 200, 200, 201, 204, 304, 400, 401, 404, 500, 503];

function textGenerators(rng) {
  const int = (n) => rng() % n;
  const pick = (list) => list[rng() % list.length];
  const hex = (bytes) => {
    let s = "";
    for (let i = 0; i < bytes; i += 4) {
      const v = rng();
      s += HEX[v & 255] + HEX[(v >>> 8) & 255] + HEX[(v >>> 16) & 255] + HEX[v >>> 24];
    }
    return s.slice(0, bytes * 2);
  };
  const words = (min, max) => {
    const n = min + int(max - min + 1);
    let s = "";
    for (let i = 0; i < n; i++) s += (i ? " " : "") + pick(WORDS);
    return s;
  };
  const money = (max) => `${int(max)}.${String(int(100)).padStart(2, "0")}`;
  let clock = Date.UTC(2024, 0, 1);
  const ts = (stepMs) => {
    clock += int(stepMs);
    return new Date(clock).toISOString();
  };
  let orderId = 100_000;
  let customerId = 1;
  let lineOrder = 100_000;
  return {
    orders: {
      header: "order_id,uuid,created_at,customer_name,email,country,status,sku,quantity,amount,note\n",
      row() {
        const f = pick(FIRST);
        const l = pick(LAST);
        const note = int(3) === 0 ? "" : words(2, 9);
        return `${orderId++},${hex(16)},${ts(4000)},${f} ${l},${f.toLowerCase()}.${l.toLowerCase()}${int(100)}@${pick(DOMAINS)},${pick(COUNTRIES)},${pick(STATUSES)},SKU-${String(int(40_000)).padStart(5, "0")},${1 + int(9)},${money(900)},"${note}"\n`;
      },
    },
    customers: {
      header: "customer_id,name,email,phone,street,city,country,created_at,marketing_opt_in,lifetime_value\n",
      row() {
        const f = pick(FIRST);
        const l = pick(LAST);
        return `${customerId++},${f} ${l},${f.toLowerCase()}.${l.toLowerCase()}@${pick(DOMAINS)},+1-555-${String(int(10_000)).padStart(4, "0")},${1 + int(400)} ${pick(WORDS)} Street,${pick(CITIES)},${pick(COUNTRIES)},${ts(60_000)},${int(2) ? "true" : "false"},${money(20_000)}\n`;
      },
    },
    lineItems: {
      header: "order_id,line_no,sku,quantity,unit_price,discount,tax_rate,warehouse_id\n",
      row() {
        if (int(4) === 0) lineOrder++;
        return `${lineOrder},${1 + int(8)},SKU-${String(int(40_000)).padStart(5, "0")},${1 + int(12)},${money(400)},${int(5) === 0 ? money(30) : "0.00"},0.${pick(["07", "19", "20", "21", "10"])},${1 + int(12)}\n`;
      },
    },
    logs: {
      header: "",
      row() {
        const status = pick(HTTP_STATUS);
        const level = status >= 500 ? "error" : status >= 400 ? "warn" : pick(LEVELS);
        return `{"ts":"${ts(150)}","level":"${level}","service":"${pick(SERVICES)}","host":"web-${String(1 + int(12)).padStart(2, "0")}","msg":"${pick(MESSAGES)}","method":"${pick(METHODS)}","path":"${pick(ROUTES)}${int(1_000_000)}","status":${status},"duration_ms":${int(2000) / 10},"request_id":"${hex(8)}","user_id":${int(250_000)},"bytes":${int(65_536)}}\n`;
      },
    },
    doc: {
      header: "",
      row() {
        return int(3) === 0 ? `${pick(WORDS)}_${pick(WORDS)}: ${int(2) ? int(100_000) : words(1, 3)}\n` : `${words(6, 16)}.\n`;
      },
    },
  };
}

/** Writes rows until the file holds at least `targetBytes`; 1 MiB writes, nothing held in memory. */
function writeTextFile(path, targetBytes, generator) {
  const fd = openSync(path, "w");
  let written = 0;
  let parts = [];
  let pending = 0;
  const flush = () => {
    if (pending === 0) return;
    writeSync(fd, parts.join(""), null, "latin1");
    written += pending;
    parts = [];
    pending = 0;
  };
  try {
    if (generator.header) {
      parts.push(generator.header);
      pending += generator.header.length;
    }
    while (written + pending < targetBytes) {
      const row = generator.row();
      parts.push(row);
      pending += row.length;
      if (pending >= MIB) flush();
    }
    flush();
  } finally {
    closeSync(fd);
  }
  return written;
}

/** Incompressible bytes: AES-256-CTR keystream (deterministic from the name). */
function writeRandomFile(path, targetBytes, name) {
  const key = createHash("sha256").update(`${SEED}:key:${name}`).digest();
  const cipher = createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
  const zeros = Buffer.alloc(MIB);
  const fd = openSync(path, "w");
  let written = 0;
  try {
    while (written < targetBytes) {
      const n = Math.min(MIB, targetBytes - written);
      writeSync(fd, cipher.update(zeros.subarray(0, n)));
      written += n;
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

/**
 * Generates `data-<N>m/` once: CSV tables (~40 %), JSON-lines logs (~30 %),
 * incompressible blobs (~15 %) and many small text files (~15 %), like a
 * database dump next to its attachments. Cached; regenerated when the size or
 * the generator changes.
 */
function ensureDataset(sizeMiB) {
  const name = `data-${sizeMiB}m`;
  const folder = join(DATA, name);
  const markerPath = join(DATA, `${name}.json`);
  try {
    const marker = JSON.parse(readFileSync(markerPath, "utf8"));
    if (marker.generator === GENERATOR_VERSION && marker.sizeMiB === sizeMiB && existsSync(folder)) return { ...marker, folder, name };
  } catch {
    // missing or stale: regenerate
  }
  const started = performance.now();
  log(`generating ${name} (${sizeMiB} MiB, seed ${SEED.toString(16)}) under ${relative(ROOT, DATA)}/ …`);
  const partial = join(DATA, `${name}.partial`);
  rmSync(partial, { recursive: true, force: true });
  rmSync(folder, { recursive: true, force: true });
  rmSync(markerPath, { force: true });
  const total = sizeMiB * MIB;
  const share = (fraction) => Math.floor(total * fraction);
  const gen = (file) => textGenerators(makeRng(seedFor(`${sizeMiB}:${file}`)));
  let bytes = 0;
  let files = 0;
  const add = (n) => {
    bytes += n;
    files++;
  };

  for (const dir of ["tables", "logs", "blobs", "docs"]) mkdirSync(join(partial, dir), { recursive: true });
  add(writeTextFile(join(partial, "tables", "orders.csv"), share(0.22), gen("orders").orders));
  add(writeTextFile(join(partial, "tables", "customers.csv"), share(0.08), gen("customers").customers));
  add(writeTextFile(join(partial, "tables", "line_items.csv"), share(0.1), gen("line_items").lineItems));
  for (let i = 1; i <= 3; i++) add(writeTextFile(join(partial, "logs", `app-${i}.jsonl`), share(0.1), gen(`logs-${i}`).logs));
  for (let i = 1; i <= 4; i++) add(writeRandomFile(join(partial, "blobs", `attachment-${i}.bin`), share(0.15 / 4), `${sizeMiB}:blob-${i}`));
  // Small files: 2–96 KiB each (log-uniform), 32 folders.
  const docsTarget = total - bytes;
  const sizes = makeRng(seedFor(`${sizeMiB}:doc-sizes`));
  const docs = gen("docs").doc;
  let docBytes = 0;
  for (let i = 0; docBytes < docsTarget; i++) {
    const dir = join(partial, "docs", String(i % 32).padStart(2, "0"));
    if (i < 32) mkdirSync(dir, { recursive: true });
    const want = Math.min(Math.round(2048 * Math.pow(48, sizes() / 2 ** 32)), docsTarget - docBytes);
    const n = writeTextFile(join(dir, `doc-${String(i).padStart(6, "0")}.txt`), want, docs);
    docBytes += n;
    add(n);
  }
  renameSync(partial, folder);
  const marker = { generator: GENERATOR_VERSION, seed: SEED, sizeMiB, bytes, files, seconds: (performance.now() - started) / 1000 };
  writeFileSync(markerPath, `${JSON.stringify(marker, null, 2)}\n`);
  log(`generated ${files} files, ${fixed(bytes / MIB, 1)} MiB in ${fixed(marker.seconds, 1)} s`);
  return { ...marker, folder, name };
}

// --- tools, identity, configs --------------------------------------------------------

function detectTools() {
  const tools = {
    tar: which("tar"),
    zstd: which("zstd"),
    bash: which("bash"),
    restic: which("restic"),
    rclone: which("rclone"),
    time: gnuTime(),
  };
  if (!tools.tar || !tools.zstd) die("needs tar and zstd on PATH");
  const versions = {
    node: process.version,
    tar: firstLine([tools.tar, "--version"]),
    zstd: firstLine([tools.zstd, "--version"]),
    ...(tools.restic ? { restic: firstLine([tools.restic, "version"]) } : {}),
    ...(tools.rclone ? { rclone: firstLine([tools.rclone, "version"]) } : {}),
  };
  return { tools, versions };
}

const yamlString = (s) => JSON.stringify(s);

function writeFsConfig(datasets) {
  const path = join(DATA, "lifeboat-fs.yaml");
  const jobs = datasets.map((d, i) => jobYaml(i === 0 ? "bench" : "bench2x", d.folder)).join("");
  writeFileSync(
    path,
    `# Written by bench/backup-bench.mjs on every run; edits are lost.
storage:
  local:
    type: filesystem
    path: ./store
encryption:
  identity: "\${file:./identity.txt}"
jobs:
${jobs}`,
  );
  return path;
}

function writeS3Config(endpoint, datasets) {
  const path = join(DATA, "lifeboat-s3.yaml");
  const jobs = datasets.map((d, i) => jobYaml(i === 0 ? "bench" : "bench2x", d.folder)).join("");
  writeFileSync(
    path,
    `# Written by bench/backup-bench.mjs on every run (radosgw on a fresh port); edits are lost.
storage:
  rgw:
    type: s3
    endpoint: ${yamlString(endpoint)}
    bucket: ${yamlString(BUCKET)}
    forcePathStyle: true
    credentials:
      accessKeyId: "\${env:BENCH_S3_ACCESS_KEY}"
      secretAccessKey: "\${env:BENCH_S3_SECRET_KEY}"
encryption:
  identity: "\${file:./identity.txt}"
jobs:
${jobs}`,
  );
  return path;
}

function jobYaml(name, folder) {
  return `  ${name}:
    source: { type: files, paths: [${yamlString(folder)}] }
    compression: zstd
    compressionLevel: ${ZSTD_LEVEL}
    encrypt: true
`;
}

// --- the runs ------------------------------------------------------------------------

const tarArgv = (tools, dataset) => [tools.tar, "-cf", "-", "-C", DATA, dataset.name];
const zstdArgv = (tools) => [tools.zstd, `-${ZSTD_LEVEL}`, "-c"];
async function runRaw(tools, dataset, serverPids, extraZstdArgs = []) {
  const r = await runPipeline([{ argv: tarArgv(tools, dataset) }, { argv: [...zstdArgv(tools), ...extraZstdArgs] }], { serverPids, what: "raw tar | zstd" });
  return { wallSeconds: r.wallSeconds, samples: r.samples };
}

async function runLifeboat(tools, config, job, env, serverPids) {
  const timeFile = join(DATA, "time.out");
  rmSync(timeFile, { force: true });
  const argv = [process.execPath, CLI, "-c", config, "--json", "backup", job];
  const full = tools.time ? [tools.time, "-f", "%M %e %U %S", "-o", timeFile, ...argv] : argv;
  const r = await runPipeline([{ argv: full }], { env: { ...env, LIFEBOAT_LOG_LEVEL: "warn" }, captureStdout: true, serverPids, what: `lifeboat backup ${job}` });
  let result;
  try {
    result = JSON.parse(r.stdout)[0];
  } catch {
    throw new Error(`lifeboat backup ${job}: unexpected output:\n${tail(r.stdout)}\n${tail(r.stderr[0])}`);
  }
  if (!result?.ok) throw new Error(`lifeboat backup ${job} failed: ${JSON.stringify(result?.error ?? result)}`);
  let time;
  if (tools.time) {
    const fields = readFileSync(timeFile, "utf8").trim().split("\n").pop().split(" ").map(Number);
    if (fields.length === 4 && fields.every(Number.isFinite)) time = { maxRssKiB: fields[0], elapsedSeconds: fields[1], userSeconds: fields[2], systemSeconds: fields[3] };
    rmSync(timeFile, { force: true });
  }
  return {
    wallSeconds: r.wallSeconds,
    samples: r.samples,
    peakRssMiB: r.samples.peakRssKiB === undefined ? undefined : r.samples.peakRssKiB / 1024,
    storedBytes: result.sizeBytes,
    sourceBytes: result.sourceBytes,
    lifeboatDurationSeconds: result.durationMs / 1000,
    backupId: result.id,
    ...(time ? { gnuTime: time } : {}),
  };
}

async function runRestic(tools, server, dataset, env, i) {
  const repo = `s3:${server.endpoint}/${BUCKET_RESTIC}/${dataset.name}-${i}`;
  const cache = mkdtempSync(join(scratchDir(), "restic-cache-"));
  try {
    const base = [tools.restic, "-r", repo, "--cache-dir", cache];
    await runPipeline([{ argv: [...base, "init"] }], { env, captureStdout: true, what: "restic init" });
    const r = await runPipeline([{ argv: tarArgv(tools, dataset) }, { argv: [...base, "backup", "--stdin", "--stdin-filename", `${dataset.name}.tar`, "--host", "bench"] }], {
      env,
      captureStdout: true,
      serverPids: server.pids,
      what: "restic backup --stdin",
    });
    let storedBytes;
    try {
      const stats = await runPipeline([{ argv: [...base, "stats", "--mode", "raw-data", "--json"] }], { env, captureStdout: true, what: "restic stats" });
      storedBytes = JSON.parse(stats.stdout).total_size;
    } catch {
      // informational only
    }
    return { wallSeconds: r.wallSeconds, samples: r.samples, storedBytes };
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
}

async function runRclone(tools, server, dataset, env, i) {
  const key = `${dataset.name}-${i}.tar.zst`;
  const r = await runPipeline(
    [{ argv: tarArgv(tools, dataset) }, { argv: zstdArgv(tools) }, { argv: [tools.rclone, "--config", join(DATA, "rclone-empty.conf"), "rcat", `bench:${BUCKET_RCLONE}/${key}`] }],
    { env, serverPids: server.pids, what: "rclone rcat" },
  );
  return { wallSeconds: r.wallSeconds, samples: r.samples, storedBytes: await objectSize(server, BUCKET_RCLONE, key) };
}

function report(ctx) {
  const { dataset, runs, raw } = ctx;
  const lines = [];
  const srcMiB = (d) => d.bytes / MIB;
  lines.push(
    `Lifeboat backup bench: ${fixed(srcMiB(dataset), 0)} MiB source (${dataset.files} files, ${dataset.name}), zstd -${ZSTD_LEVEL}, ${cpus().length} CPUs, node ${process.version}, load avg at start ${ctx.loadAtStart.map((l) => l.toFixed(2)).join(" ")}`,
  );
  lines.push("");
  const rows = runs.map((r) => {
    const base = r.double ? ctx.raw2 : raw;
    const ratio = base && r.wallSeconds !== undefined ? r.wallSeconds / base.wallSeconds : undefined;
    r.ratio = r === raw || r === ctx.raw2 ? 1 : ratio;
    r.throughputMiBs = r.wallSeconds ? srcMiB(r.dataset) / r.wallSeconds : undefined;
    return [
      r.label,
      r.error ? "failed" : fixed(r.wallSeconds),
      r.allWallSeconds?.length > 1 ? `${fixed(r.wallSeconds)}–${fixed(r.slowestWallSeconds)} (${r.allWallSeconds.length})` : "",
      fixed(r.throughputMiBs, 1),
      r.error ? "-" : fixed(r.ratio),
      r.peakRssMiB === undefined ? "-" : fixed(r.peakRssMiB, 0),
      r.storedBytes === undefined ? "-" : fixed(r.storedBytes / MIB, 1),
    ];
  });
  lines.push(table(["run", "wall s", "range (runs)", "MiB/s", "ratio vs raw", "peak RSS MiB", "stored MiB"], rows, [false, true, true, true, true, true, true]));
  const rawT0 = runs.find((r) => r.key === "aT");
  if (rawT0?.wallSeconds) {
    const vsT0 = runs.filter((r) => r.goal && !r.double && r.wallSeconds).map((r) => `${r.label.split(" ")[0]} ${fixed(r.wallSeconds / rawT0.wallSeconds)}`);
    lines.push(`ratios against the multi-threaded raw limit (a') (Lifeboat's zstd uses -T0 too): ${vsT0.join(", ")}`);
  }
  lines.push(`wall s: fastest of the runs (load from elsewhere only adds time); MiB/s: source MiB / wall s; ratio: wall s / wall s of (a) on the same data`);
  lines.push("");
  lines.push(`goals: ratio ≤ ${GOAL_RATIO} (wall time vs the raw tar|zstd limit of the same data), peak RSS ≤ ${GOAL_RSS_MIB} MiB (lifeboat node process)`);
  const goalRows = [];
  for (const r of runs.filter((x) => x.goal)) {
    const ratioOk = r.error ? false : r.ratio <= GOAL_RATIO;
    const rssOk = r.peakRssMiB === undefined ? undefined : r.peakRssMiB <= GOAL_RSS_MIB;
    r.verdict = { ratio: r.error ? "MISS" : verdict(ratioOk), peakRss: r.error ? "MISS" : verdict(rssOk) };
    goalRows.push([r.label, r.error ? "failed" : fixed(r.ratio), r.verdict.ratio, r.peakRssMiB === undefined ? "-" : fixed(r.peakRssMiB, 0), r.verdict.peakRss]);
  }
  lines.push(table(["run", "ratio", "≤ 1.15", "peak RSS MiB", `≤ ${GOAL_RSS_MIB}`], goalRows, [false, true, false, true, false]));
  const b1 = runs.find((r) => r.key === "b");
  const b2 = runs.find((r) => r.key === "b2x");
  if (b1 && b2 && !b1.error && !b2.error && b1.peakRssMiB && b2.peakRssMiB) {
    const growth = b2.peakRssMiB / b1.peakRssMiB;
    ctx.rssFlat = growth <= 1.1;
    lines.push(`RSS at 2× data: ${fixed(b1.peakRssMiB, 0)} → ${fixed(b2.peakRssMiB, 0)} MiB (×${fixed(growth)}): ${ctx.rssFlat ? "flat" : "GROWS with data size"}`);
  }
  lines.push("");
  lines.push("CPU seconds during each run (% of wall time; 100% = one core saturated):");
  for (const r of runs) if (!r.error) lines.push(`  ${r.label}: ${describeCpu(r)}`);
  const busyRuns = runs.filter((r) => r.samples?.otherProcessesSeconds !== undefined && r.samples.otherProcessesSeconds / (r.wallSeconds * cpus().length) > 0.1);
  if (busyRuns.length) {
    const worst = Math.max(...busyRuns.map((r) => r.samples.otherProcessesSeconds / (r.wallSeconds * cpus().length)));
    ctx.notes.push(`other processes used up to ${fixed(100 * worst, 0)}% of the machine during ${busyRuns.map((r) => r.key).join(", ")}: those timings are skewed; rerun on a quiet machine (or raise BENCH_REPEAT)`);
  }
  const failures = runs.filter((r) => r.error);
  if (failures.length) {
    lines.push("");
    for (const r of failures) lines.push(`FAILED ${r.label}: ${r.error.split("\n")[0]}`);
  }
  lines.push(...notesBlock(ctx.notes));
  return lines.join("\n");
}

// --- main ------------------------------------------------------------------------------

async function main() {
  assertBenchable();
  const startedAt = new Date();
  const started = performance.now();
  const loadAtStart = loadavg();
  mkdirSync(DATA, { recursive: true });
  const { tools, versions } = detectTools();
  const notes = [];
  if (!tools.time) notes.push("GNU time not found: peak RSS comes from polling /proc/PID/status VmHWM only");

  const dataset = ensureDataset(SIZE_MB);
  const dataset2 = DOUBLE ? ensureDataset(2 * SIZE_MB) : undefined;
  const datasets = dataset2 ? [dataset, dataset2] : [dataset];
  await ensureIdentity();
  const fsConfig = writeFsConfig(datasets);
  writeFileSync(join(DATA, "rclone-empty.conf"), "");

  const runs = [];
  const ctx = { dataset, runs, notes, loadAtStart };

  let server;
  try {
    server = await startRadosgw(tools.bash ?? "bash");
    log(`radosgw up on ${server.endpoint} in ${fixed(server.startSeconds, 1)} s (${server.dir})`);
    await createBuckets(server, [BUCKET, BUCKET_RESTIC, BUCKET_RCLONE]);
  } catch (error) {
    if (isInterrupted()) throw error;
    notes.push(`radosgw did not start, S3 runs skipped: ${error.message.split("\n")[0]}`);
    log(`radosgw did not start:\n${error.message}`);
    server = undefined;
  }
  const serverPids = server?.pids ?? {};
  const s3Env = server ? { ...process.env, BENCH_S3_ACCESS_KEY: server.accessKeyId, BENCH_S3_SECRET_KEY: server.secretAccessKey, NO_PROXY: "127.0.0.1,localhost", no_proxy: "127.0.0.1,localhost" } : undefined;
  const s3Config = server ? writeS3Config(server.endpoint, datasets) : undefined;

  const kinds = [
    { key: "a", label: "(a) raw tar | zstd -3", dataset, once: () => runRaw(tools, dataset, serverPids) },
    // Lifeboat runs zstd with -T0 (every core): this row shows the multi-threaded raw limit too.
    { key: "aT", label: "(a') raw tar | zstd -3 -T0", dataset, once: () => runRaw(tools, dataset, serverPids, ["-T0"]) },
    ...(server ? [{ key: "b", label: "(b) lifeboat → radosgw", dataset, goal: true, once: () => runLifeboat(tools, s3Config, "bench", s3Env, serverPids) }] : []),
    {
      key: "c",
      label: "(c) lifeboat → filesystem",
      dataset,
      goal: true,
      once: () => {
        rmSync(join(DATA, "store"), { recursive: true, force: true });
        return runLifeboat(tools, fsConfig, "bench", process.env, serverPids);
      },
    },
  ];
  if (server && PEERS) {
    const peers = peerEnv(server, s3Env);
    if (tools.restic) {
      const resticEnv = peers.restic;
      kinds.push({ key: "restic", label: "restic backup --stdin → radosgw", dataset, rounds: 1, once: (i) => runRestic(tools, server, dataset, resticEnv, i) });
    } else notes.push("restic not installed: skipped");
    if (tools.rclone) {
      const rcloneEnv = peers.rclone;
      kinds.push({ key: "rclone", label: "tar | zstd -3 | rclone rcat → radosgw", dataset, rounds: 1, once: (i) => runRclone(tools, server, dataset, rcloneEnv, i) });
    } else notes.push("rclone not installed: skipped");
  }

  // Warm the page cache (and the binaries) so that no run pays for cold reads.
  log("warm-up: one untimed tar | zstd pass");
  await runRaw(tools, dataset, {});
  runs.push(...(await measure(kinds, REPEAT)));
  ctx.raw = runs.find((r) => r.key === "a");

  if (dataset2) {
    log(`2× data: warm-up pass over ${dataset2.name}`);
    await runRaw(tools, dataset2, {});
    const kinds2 = [
      { key: "a2x", label: "(a) raw tar | zstd -3, 2× data", dataset: dataset2, double: true, once: () => runRaw(tools, dataset2, serverPids) },
      ...(server
        ? [{ key: "b2x", label: "(b) lifeboat → radosgw, 2× data", dataset: dataset2, double: true, goal: true, rounds: 1, once: () => runLifeboat(tools, s3Config, "bench2x", s3Env, serverPids) }]
        : []),
    ];
    runs.push(...(await measure(kinds2, REPEAT)));
    ctx.raw2 = runs.find((r) => r.key === "a2x");
  }

  await cleanup();
  const text = report(ctx);
  process.stdout.write(`\n${text}\n`);

  const totalSeconds = (performance.now() - started) / 1000;
  const json = {
    startedAt: startedAt.toISOString(),
    totalSeconds,
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryMiB: Math.round(totalmem() / MIB), loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadavg() },
    versions,
    settings: { sizeMiB: SIZE_MB, double: DOUBLE, peers: PEERS, repeat: REPEAT, zstdLevel: ZSTD_LEVEL, sampleMs: SAMPLE_MS, peakRssSource: "max VmHWM of the lifeboat node process, polled from /proc" },
    goals: { ratio: GOAL_RATIO, peakRssMiB: GOAL_RSS_MIB },
    datasets: datasets.map(({ folder, ...d }) => ({ ...d, folder: relative(ROOT, folder) })),
    radosgw: server ? { endpoint: server.endpoint, startSeconds: server.startSeconds } : null,
    runs: runs.map(({ dataset: d, ...r }) => ({ ...r, dataset: d.name, sourceMiB: d.bytes / MIB })),
    rssFlatAtDoubleData: ctx.rssFlat,
    notes,
  };
  writeFileSync(join(DATA, "last-run.json"), `${JSON.stringify(json, null, 2)}\n`);
  process.stdout.write(`\ntotal ${fixed(totalSeconds, 0)} s; results in ${relative(process.cwd(), join(DATA, "last-run.json")) || "last-run.json"}\n`);
  return runs.some((r) => r.error) ? 1 : 0;
}

runMain(main);
