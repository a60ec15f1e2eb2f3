#!/usr/bin/env node
// Lifeboat PostgreSQL benchmark. On a generated database of about 1 GB
// (pgbench tables plus a wide table of mixed-entropy text), in one run:
//
//   backup:  the raw limit `pg_dump -Fc -Z0 | zstd -3 > /dev/null` against
//            `lifeboat backup` (zstd + age) to radosgw, with lifeboat's peak RSS;
//            restic and `pg_dump | zstd | rclone rcat` as peers;
//   restore: the raw `zstd -dc dump | pg_restore` into a fresh cluster against
//            `lifeboat restore --to scratch:postgres` from radosgw, streaming
//            (pg_restore --single-transaction from stdin) and staged (decoded
//            to a file, then pg_restore --jobs), with and without the time it
//            takes to create the cluster.
//
// See bench/README.md. Plain Node ESM, no dependencies beyond the project's.
//
//   npm run bench                                    # builds, runs the files bench, then this
//   node bench/postgres-bench.mjs                    # when dist/ is already built
//   BENCH_PG_SCALE=4 BENCH_PG_WIDE_MB=32 BENCH_REPEAT=1 node bench/postgres-bench.mjs   # quick check
//
// Every child process is spawned with an argv array (no shell); pipelines are
// wired in Node (bench/lib.mjs: runPipeline), so no data passes through here.
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from "node:os";
import { basename, join, relative, resolve } from "node:path";
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
  freePort,
  gnuTime,
  installProcessHandlers,
  isInterrupted,
  log,
  measure,
  mergeSamples,
  MIB,
  notesBlock,
  objectSize,
  onCleanup,
  peerEnv,
  ROOT,
  runMain,
  runPipeline,
  SAMPLE_MS,
  startRadosgw,
  table,
  tail,
  verdict,
  which,
} from "./lib.mjs";
import { clusterSettings as scratchClusterSettings } from "../dist/scratch/postgres.js";

// --- settings ----------------------------------------------------------------

/** pgbench scale: 100,000 pgbench_accounts rows per unit, about 15 MiB on disk with its index. */
const SCALE = envInt("BENCH_PG_SCALE", 40);
/** Heap size of the wide table, in MiB (its three indexes come on top). */
const WIDE_MB = envInt("BENCH_PG_WIDE_MB", 330);
/** Runs of each timed kind, interleaved (the fastest counts); peers and the fixed-cost restore go once. */
const REPEAT = envInt("BENCH_REPEAT", 2);
const PEERS = envFlag("BENCH_PEERS", true);
const RESTORE = envFlag("BENCH_PG_RESTORE", true);
/** The drill-overhead run (needs RESTORE). */
const DRILL = envFlag("BENCH_PG_DRILL", true);
/** pg_restore --jobs of the staged runs; lifeboat's own default (CPUs, at most 8). */
const RESTORE_JOBS = envInt("BENCH_PG_RESTORE_JOBS", Math.max(1, Math.min(8, availableParallelism())));

const GOAL_RATIO = 1.1;
const GOAL_RSS_MIB = 200;
/** The issue asks for a database of at least this size (pg_database_size). */
const MIN_DB_MB = 900;
const ZSTD_LEVEL = 3;
/** Bump when the generated database changes; the cached one is then rebuilt. */
const GENERATOR_VERSION = 1;
/** stageAboveMiB that forces streaming for any dump. */
const NEVER_STAGE_MIB = 1024 * 1024;

const SOURCE_DIR = join(DATA, "pg-source");
const SOURCE_MARKER = join(DATA, "pg-source.json");
const DUMP_ZST = join(DATA, "pg.dump.zst");
const RESULTS = join(DATA, "postgres-results.json");
const SOURCE_DB = "bench";
const TINY_DB = "tiny";
const SUPERUSER = "postgres";
/** The database lifeboat's scratch cluster restores into; the raw runs use the same name. */
const TARGET_DB = "scratch";

const BUCKET = "lifeboat-bench-pg";
const BUCKET_RESTIC = "lifeboat-bench-pg-restic";
const BUCKET_RCLONE = "lifeboat-bench-pg-rclone";

/** Environment of every PostgreSQL client tool the bench runs itself. */
const PG_ENV = { ...process.env, PGCONNECT_TIMEOUT: "10", PGAPPNAME: "lifeboat-bench" };

installProcessHandlers();

// --- tools ----------------------------------------------------------------------

/** PATH first, then `pg_config --bindir`: where lifeboat looks too. */
function detectTools() {
  const bindir = firstLine(["pg_config", "--bindir"]);
  const pg = (name) => which(name) ?? (bindir && existsSync(join(bindir, name)) ? join(bindir, name) : undefined);
  const tools = {
    pg_dump: pg("pg_dump"),
    pg_restore: pg("pg_restore"),
    psql: pg("psql"),
    pgbench: pg("pgbench"),
    initdb: pg("initdb"),
    pg_ctl: pg("pg_ctl"),
    zstd: which("zstd"),
    bash: which("bash"),
    restic: which("restic"),
    rclone: which("rclone"),
    time: gnuTime(),
  };
  const missing = ["pg_dump", "pg_restore", "psql", "pgbench", "initdb", "pg_ctl", "zstd"].filter((t) => !tools[t]);
  if (missing.length) die(`needs ${missing.join(", ")} on PATH (or in pg_config --bindir)`);
  const versions = {
    node: process.version,
    pg_dump: firstLine([tools.pg_dump, "--version"]),
    pg_restore: firstLine([tools.pg_restore, "--version"]),
    initdb: firstLine([tools.initdb, "--version"]),
    zstd: firstLine([tools.zstd, "--version"]),
    ...(tools.restic ? { restic: firstLine([tools.restic, "version"]) } : {}),
    ...(tools.rclone ? { rclone: firstLine([tools.rclone, "version"]) } : {}),
  };
  return { tools, versions };
}

/**
 * initdb and the server refuse to run as root; under root they run as the
 * `postgres` user (BENCH_PG_USER), as lifeboat's scratch kind does.
 */
function clusterUser() {
  if (process.getuid?.() !== 0) return undefined;
  const name = process.env.BENCH_PG_USER || "postgres";
  const id = (flag) => Number(spawnSync("id", [flag, name], { encoding: "utf8" }).stdout.trim());
  const uid = id("-u");
  const gid = id("-g");
  if (!Number.isInteger(uid) || uid <= 0 || !Number.isInteger(gid)) die(`running as root, but there is no user "${name}" to run PostgreSQL as (set BENCH_PG_USER)`);
  return { name, uid, gid };
}

// --- clusters --------------------------------------------------------------------

/**
 * postgresql.conf lines appended after initdb's: exactly the ones lifeboat's
 * scratch clusters get (imported from the build), so the raw restores run on
 * an equally tuned server. The source cluster uses them too; its loading
 * speed is not measured.
 */
function clusterSettings(port) {
  return `${CONF_MARKER}\n${scratchClusterSettings(port, undefined)}`;
}
const CONF_MARKER = "# lifeboat bench cluster";

const HBA = ["# lifeboat bench cluster: trust on loopback only", "local all all trust", "host all all 127.0.0.1/32 trust", ""].join("\n");

/** --locale=C, with a UTF-8 ctype where the system has C.UTF-8 (as lifeboat's scratch kind). */
let localeCache;
function localeOptions() {
  localeCache ??= /^c\.utf-?8$/im.test(spawnSync("locale", ["-a"], { encoding: "utf8" }).stdout ?? "") ? ["--locale=C", "--lc-ctype=C.UTF-8"] : ["--locale=C"];
  return localeCache;
}

function postmasterPid(dataDir) {
  try {
    const pid = Number.parseInt(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0] ?? "", 10);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `pid` is the postmaster of `dataDir` (its command line names the folder). */
function isPostmasterOf(pid, dataDir) {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    return /^(postgres|postmaster)$/.test(basename(args[0] ?? "")) && args.slice(1).some((a) => a.startsWith("/") && resolve(a) === resolve(dataDir));
  } catch {
    return false;
  }
}

/** A stage that runs as the cluster user (from "/", which it can always enter). */
function asCluster(ctx, argv) {
  return { argv, cwd: "/", ...(ctx.runAs ? { uid: ctx.runAs.uid, gid: ctx.runAs.gid } : {}) };
}

/** initdb into `<dir>/data` with the options lifeboat's scratch kind uses. */
async function initCluster(ctx, dir) {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (ctx.runAs) chownSync(dir, ctx.runAs.uid, ctx.runAs.gid);
  const dataDir = join(dir, "data");
  await runPipeline([asCluster(ctx, [ctx.tools.initdb, "-D", dataDir, "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", ...localeOptions(), "--no-sync"])], {
    captureStdout: true,
    what: `initdb ${relative(ROOT, dataDir)}`,
  });
  writeFileSync(join(dataDir, "pg_hba.conf"), HBA);
  if (ctx.runAs) chownSync(join(dataDir, "pg_hba.conf"), ctx.runAs.uid, ctx.runAs.gid);
}

/**
 * Starts the cluster in `<dir>/data` on a free loopback port (retrying when
 * the port is taken meanwhile) and registers its stop with cleanup(). The
 * settings are rewritten on every start, after initdb's own lines.
 */
async function startCluster(ctx, dir, { label }) {
  const dataDir = join(dir, "data");
  const confPath = join(dataDir, "postgresql.conf");
  const logPath = join(dir, "postgres.log");
  const leftover = postmasterPid(dataDir);
  if (leftover && isPostmasterOf(leftover, dataDir)) {
    log(`${label}: a server from an earlier run is still up (pid ${leftover}); stopping it`);
    await runPipeline([asCluster(ctx, [ctx.tools.pg_ctl, "stop", "-D", dataDir, "-m", "fast", "-w", "-t", "60", "-s"])], { what: `stopping ${label}` });
  }
  const initialConf = readFileSync(confPath, "utf8").split(`\n${CONF_MARKER}\n`)[0];
  let port;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    writeFileSync(confPath, `${initialConf}\n${clusterSettings(port)}`);
    if (ctx.runAs) chownSync(confPath, ctx.runAs.uid, ctx.runAs.gid);
    const logStart = existsSync(logPath) ? statSync(logPath).size : 0;
    try {
      await runPipeline([asCluster(ctx, [ctx.tools.pg_ctl, "start", "-D", dataDir, "-l", logPath, "-w", "-t", "60", "-s"])], { what: `starting ${label}` });
      break;
    } catch (error) {
      const serverLog = existsSync(logPath) ? readFileSync(logPath, "utf8").slice(logStart) : "";
      if (/could not bind IPv4 address|could not create any TCP\/IP sockets/.test(serverLog) && attempt < 3) continue;
      throw new Error(`${error.message}${serverLog.trim() ? `\n--- ${relative(ROOT, logPath)} ---\n${tail(serverLog)}` : ""}`);
    }
  }
  const pid = postmasterPid(dataDir);
  let stopped;
  const stop = (mode = "fast") =>
    (stopped ??= (async () => {
      if (!pid || !isPostmasterOf(pid, dataDir)) return;
      const r = spawnSync(ctx.tools.pg_ctl, ["stop", "-D", dataDir, "-m", mode, "-w", "-t", "60", "-s"], {
        encoding: "utf8",
        cwd: "/",
        timeout: 90_000,
        ...(ctx.runAs ? { uid: ctx.runAs.uid, gid: ctx.runAs.gid } : {}),
      });
      if (isPostmasterOf(pid, dataDir)) {
        log(`${label}: pg_ctl stop failed (${r.status}): ${tail(r.stderr ?? "", 3)}; killing pid ${pid}`);
        process.kill(pid, "SIGKILL");
      }
    })());
  onCleanup(() => stop("fast"));
  const url = (database) => `postgresql://${SUPERUSER}@127.0.0.1:${port}/${database}`;
  return { dir, dataDir, port, pid, url, stop };
}

/** Runs SQL statements, each as its own request (so CREATE DATABASE works); returns psql's unaligned tuples, trimmed. */
async function sql(ctx, url, ...statements) {
  const r = await runPipeline([{ argv: [ctx.tools.psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", `--dbname=${url}`, ...statements.flatMap((s) => ["-c", s])] }], {
    env: PG_ENV,
    captureStdout: true,
    what: "psql",
  });
  return r.stdout.trim();
}

// --- the source database -------------------------------------------------------------

/**
 * The wide table: orders-like rows of about 400 bytes (below the TOAST
 * threshold, so the database holds them uncompressed as the dump does), mixing
 * repetitive columns (status, region, names, JSON flags), medium-entropy
 * text (notes made of words) and high-entropy text (md5 hex tokens and
 * payloads). Deterministic: every value derives from the row number.
 */
const WORD_LIST =
  "account address after agent alert amount answer archive backup balance batch billing branch bucket buffer cache cancel cart charge check client cluster commit config confirm contract credit customer daily database delivery deploy device discount domain draft email entry error event export failed feature field file filter finance folder import index invoice issue item ledger limit local lookup manual merge message method metric mobile".split(
    " ",
  );
const sqlArray = (items) => `ARRAY[${items.map((s) => `'${s}'`).join(",")}]`;
const FIRST_NAMES = sqlArray("Ada Alan Alice Amir Anna Ben Carla Chen Dana David Diego Elena Emma Fatima Felix Grace Hana Hugo Ines Ivan Jack Jana Jonas Kai Kenji Lara Leo Lina Luca Maria Mateo Mia".split(" "));
const LAST_NAMES = sqlArray("Adams Almeida Baker Becker Brown Costa Dubois Evans Fischer Garcia Gomez Hansen Ito Jensen Kim Kowalski Larsen Lee Lopez Martin Meyer Moreau Muller Novak Olsen Park Patel Perez Rossi Santos Silva Smith".split(" "));

const WIDE_TABLE = `CREATE TABLE wide (
  id bigint NOT NULL,
  created_at timestamptz NOT NULL,
  status text NOT NULL,
  region text NOT NULL,
  customer text NOT NULL,
  email text NOT NULL,
  sku text NOT NULL,
  quantity integer NOT NULL,
  amount numeric(12,2) NOT NULL,
  note text,
  token text NOT NULL,
  payload text NOT NULL,
  attrs jsonb NOT NULL
)`;

function wideInsert(from, to) {
  return `INSERT INTO wide
SELECT i,
  timestamptz '2024-01-01 00:00:00+00' + i * interval '7 seconds' + (h1 % 5000) * interval '1 millisecond',
  (${sqlArray("pending paid paid paid shipped shipped delivered delivered delivered refunded cancelled".split(" "))})[1 + h1 % 11],
  (${sqlArray(["eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-northeast-1"])})[1 + h2 % 5],
  f || ' ' || l,
  lower(f) || '.' || lower(l) || (h3 % 100) || '@' || (${sqlArray(["example.com", "mail.example.org", "shop.example.net"])})[1 + h3 % 3],
  'SKU-' || lpad((h2 % 40000)::text, 5, '0'),
  1 + h1 % 9,
  (h2 % 90000) / 100.0,
  CASE WHEN h3 % 3 = 0 THEN NULL ELSE (SELECT string_agg(w[1 + (hashint8(i * 31 + k) & 2147483647) % ${WORD_LIST.length}], ' ') FROM generate_series(1, 3 + h1 % 10) k) END,
  md5(i::text),
  md5((i * 3)::text) || md5((i * 5)::text) || md5((i * 7)::text),
  jsonb_build_object('channel', (${sqlArray(["web", "web", "app", "store", "phone"])})[1 + h3 % 5], 'items', 1 + h2 % 5, 'gift', h1 % 7 = 0, 'coupon', CASE WHEN h2 % 4 = 0 THEN 'SAVE' || (h3 % 50) ELSE NULL END)
FROM (
  SELECT i, h1, h2, h3, (${FIRST_NAMES})[1 + h1 % 32] AS f, (${LAST_NAMES})[1 + h2 % 32] AS l
  FROM (SELECT i, hashint8(i) & 2147483647 AS h1, hashint8(i + 1000000007) & 2147483647 AS h2, hashint8(i * 7 + 3) & 2147483647 AS h3 FROM generate_series(${from}, ${to}) i) AS hashed
) AS s
CROSS JOIN (SELECT ${sqlArray(WORD_LIST)} AS w) AS words`;
}

/**
 * The source cluster (bench/.data/pg-source/) with database `bench`:
 * `pgbench -i -s SCALE` plus the wide table, and database `tiny` (100 rows,
 * for the fixed cost of a restore). Built once; reused while the marker
 * (pg-source.json) matches the generator, the sizes and the server version.
 */
async function ensureSource(ctx) {
  const dataDir = join(SOURCE_DIR, "data");
  const major = (/(\d+)/.exec(ctx.versions.initdb ?? "") ?? [])[1];
  let marker;
  try {
    marker = JSON.parse(readFileSync(SOURCE_MARKER, "utf8"));
    const pgVersion = readFileSync(join(dataDir, "PG_VERSION"), "utf8").trim();
    if (marker.generator !== GENERATOR_VERSION || marker.scale !== SCALE || marker.wideMiB !== WIDE_MB || pgVersion !== major) marker = undefined;
  } catch {
    marker = undefined;
  }
  if (marker) {
    const cluster = await startCluster(ctx, SOURCE_DIR, { label: "source cluster" });
    return { cluster, ...marker };
  }

  const started = performance.now();
  log(`generating the source database (pgbench scale ${SCALE} + a ${WIDE_MB} MiB wide table) under ${relative(ROOT, SOURCE_DIR)}/ …`);
  rmSync(SOURCE_MARKER, { force: true });
  const leftover = postmasterPid(dataDir);
  if (leftover && isPostmasterOf(leftover, dataDir)) {
    await runPipeline([asCluster(ctx, [ctx.tools.pg_ctl, "stop", "-D", dataDir, "-m", "immediate", "-w", "-t", "60", "-s"])], { what: "stopping the old source cluster" });
  }
  rmSync(SOURCE_DIR, { recursive: true, force: true });
  await initCluster(ctx, SOURCE_DIR);
  const cluster = await startCluster(ctx, SOURCE_DIR, { label: "source cluster" });
  const admin = cluster.url("postgres");
  const url = cluster.url(SOURCE_DB);
  await sql(ctx, admin, `CREATE DATABASE ${SOURCE_DB}`, `CREATE DATABASE ${TINY_DB}`);
  await sql(ctx, cluster.url(TINY_DB), "CREATE TABLE notes (id integer PRIMARY KEY, body text NOT NULL)", "INSERT INTO notes SELECT i, 'note ' || i FROM generate_series(1, 100) i");

  // pgbench: tables, server-side data generation, vacuum, primary keys.
  let step = performance.now();
  await runPipeline([{ argv: [ctx.tools.pgbench, "-i", "-s", String(SCALE), "-I", "dtGvp", "-h", "127.0.0.1", "-p", String(cluster.port), "-U", SUPERUSER, SOURCE_DB] }], {
    env: PG_ENV,
    captureStdout: true,
    what: "pgbench -i",
  });
  log(`  pgbench -i -s ${SCALE}: ${fixed((performance.now() - step) / 1000, 1)} s`);

  // The wide table: a first batch tells the row size, then the rest in batches.
  step = performance.now();
  await sql(ctx, url, WIDE_TABLE);
  const probeRows = 20_000;
  await sql(ctx, url, wideInsert(1, probeRows));
  const probeBytes = Number(await sql(ctx, url, "SELECT pg_relation_size('wide')"));
  const wideRows = Math.max(probeRows, Math.ceil((WIDE_MB * MIB) / (probeBytes / probeRows)));
  const batch = 250_000;
  for (let from = probeRows + 1; from <= wideRows; from += batch) await sql(ctx, url, wideInsert(from, Math.min(wideRows, from + batch - 1)));
  await sql(ctx, url, "ALTER TABLE wide ADD PRIMARY KEY (id)", "CREATE INDEX wide_created_at ON wide (created_at)", "CREATE INDEX wide_customer ON wide (customer)", "VACUUM ANALYZE wide", "CHECKPOINT");
  log(`  wide table, ${wideRows} rows: ${fixed((performance.now() - step) / 1000, 1)} s`);

  const [dbSizeBytes, wideBytes, wideTotalBytes, accountsRows, serverVersion] = (
    await sql(ctx, url, "SELECT concat_ws('|', pg_database_size(current_database()), pg_relation_size('wide'), pg_total_relation_size('wide'), (SELECT count(*) FROM pgbench_accounts), current_setting('server_version'))")
  ).split("|");
  const fresh = {
    generator: GENERATOR_VERSION,
    scale: SCALE,
    wideMiB: WIDE_MB,
    serverVersion,
    dbSizeBytes: Number(dbSizeBytes),
    wideHeapBytes: Number(wideBytes),
    wideTotalBytes: Number(wideTotalBytes),
    rows: { pgbench_accounts: Number(accountsRows), wide: wideRows },
    seconds: (performance.now() - started) / 1000,
  };
  writeFileSync(SOURCE_MARKER, `${JSON.stringify(fresh, null, 2)}\n`);
  log(`generated ${fixed(fresh.dbSizeBytes / MIB, 0)} MiB in ${fixed(fresh.seconds, 0)} s`);
  return { cluster, ...fresh };
}

/** Row counts of the two big tables, to check that a restore really restored. */
async function checkRestored(ctx, url, expected) {
  const got = (await sql(ctx, url, "SELECT concat_ws(' ', (SELECT count(*) FROM pgbench_accounts), (SELECT count(*) FROM wide))")).split(" ").map(Number);
  if (got[0] !== expected.pgbench_accounts || got[1] !== expected.wide) {
    throw new Error(`restored ${got[0]} pgbench_accounts and ${got[1]} wide rows; expected ${expected.pgbench_accounts} and ${expected.wide}`);
  }
}

// --- configs ---------------------------------------------------------------------

const yamlString = (s) => JSON.stringify(s);

/**
 * Two configs with the same jobs and store, differing only in how the
 * postgres source restores: streaming (stageAboveMiB huge) or staged
 * (stageAboveMiB 0, restoreJobs RESTORE_JOBS). Backups go through the
 * streaming one; restores find the same backups through either.
 */
function writeConfigs(endpoint, source) {
  const write = (mode, sourceOptions) => {
    const path = join(DATA, `lifeboat-pg-${mode}.yaml`);
    const job = (name, database) => `  ${name}:
    source: { type: postgres, url: ${yamlString(source.cluster.url(database))}, ${sourceOptions} }
    compression: zstd
    compressionLevel: ${ZSTD_LEVEL}
    encrypt: true
`;
    writeFileSync(
      path,
      `# Written by bench/postgres-bench.mjs on every run (radosgw and the source cluster get fresh ports); edits are lost.
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
${job("pg", SOURCE_DB)}${job("pgtiny", TINY_DB)}`,
    );
    return path;
  };
  return {
    stream: write("stream", `stageAboveMiB: ${NEVER_STAGE_MIB}, restoreJobs: ${RESTORE_JOBS}`),
    staged: write("staged", `stageAboveMiB: 0, restoreJobs: ${RESTORE_JOBS}`),
  };
}

// --- backup runs ---------------------------------------------------------------------

const pgDumpArgv = (ctx, url) => [ctx.tools.pg_dump, "-Fc", "-Z0", `--dbname=${url}`];
const zstdArgv = (ctx, extra = []) => [ctx.tools.zstd, `-${ZSTD_LEVEL}`, "-c", ...extra];

async function runRawBackup(ctx, extraZstdArgs = []) {
  const r = await runPipeline([{ argv: pgDumpArgv(ctx, ctx.source.cluster.url(SOURCE_DB)) }, { argv: zstdArgv(ctx, extraZstdArgs) }], {
    env: PG_ENV,
    serverPids: ctx.servers,
    what: "raw pg_dump | zstd",
  });
  return { wallSeconds: r.wallSeconds, samples: r.samples };
}

/** `lifeboat backup JOB --json` as a whole CLI process (node start-up and config loading included), under GNU time when there is one. */
async function runLifeboatBackup(ctx, job) {
  const timeFile = join(ctx.tmp, "time.out");
  rmSync(timeFile, { force: true });
  const argv = [process.execPath, CLI, "-c", ctx.configs.stream, "--json", "backup", job];
  const full = ctx.tools.time ? [ctx.tools.time, "-f", "%M %e %U %S", "-o", timeFile, ...argv] : argv;
  const r = await runPipeline([{ argv: full }], { env: ctx.lifeboatEnv, captureStdout: true, serverPids: ctx.servers, what: `lifeboat backup ${job}` });
  let result;
  try {
    result = JSON.parse(r.stdout)[0];
  } catch {
    throw new Error(`lifeboat backup ${job}: unexpected output:\n${tail(r.stdout)}\n${tail(r.stderr[0])}`);
  }
  if (!result?.ok) throw new Error(`lifeboat backup ${job} failed: ${JSON.stringify(result?.error ?? result)}`);
  return {
    wallSeconds: r.wallSeconds,
    samples: r.samples,
    peakRssMiB: r.samples.peakRssKiB === undefined ? undefined : r.samples.peakRssKiB / 1024,
    storedBytes: result.sizeBytes,
    sourceBytes: result.sourceBytes,
    lifeboatDurationSeconds: result.durationMs / 1000,
    backupId: result.id,
    ...(ctx.tools.time ? { gnuTime: readGnuTime(timeFile) } : {}),
  };
}

function readGnuTime(path) {
  try {
    const fields = readFileSync(path, "utf8").trim().split("\n").pop().split(" ").map(Number);
    rmSync(path, { force: true });
    if (fields.length === 4 && fields.every(Number.isFinite)) return { maxRssKiB: fields[0], elapsedSeconds: fields[1], userSeconds: fields[2], systemSeconds: fields[3] };
  } catch {
    // informational only
  }
  return undefined;
}

async function runRestic(ctx, env, i) {
  const repo = `s3:${ctx.server.endpoint}/${BUCKET_RESTIC}/pg-${i}`;
  const cache = mkdtempSync(join(ctx.tmp, "restic-cache-"));
  try {
    const base = [ctx.tools.restic, "-r", repo, "--cache-dir", cache];
    await runPipeline([{ argv: [...base, "init"] }], { env, captureStdout: true, what: "restic init" });
    const r = await runPipeline([{ argv: pgDumpArgv(ctx, ctx.source.cluster.url(SOURCE_DB)), env: PG_ENV }, { argv: [...base, "backup", "--stdin", "--stdin-filename", "db.pgdump", "--host", "bench"] }], {
      env,
      captureStdout: true,
      serverPids: ctx.servers,
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

async function runRclone(ctx, env, i) {
  const key = `pg-${i}.pgdump.zst`;
  const r = await runPipeline(
    [
      { argv: pgDumpArgv(ctx, ctx.source.cluster.url(SOURCE_DB)), env: PG_ENV },
      { argv: zstdArgv(ctx) },
      { argv: [ctx.tools.rclone, "--config", join(ctx.tmp, "rclone-empty.conf"), "rcat", `bench:${BUCKET_RCLONE}/${key}`] },
    ],
    { env, serverPids: ctx.servers, what: "rclone rcat" },
  );
  return { wallSeconds: r.wallSeconds, samples: r.samples, storedBytes: await objectSize(ctx.server, BUCKET_RCLONE, key) };
}

// --- restore runs --------------------------------------------------------------------

const restoreOptions = (url) => [`--dbname=${url}`, "--exit-on-error", "--no-owner", "--no-privileges"];

/**
 * A fresh target cluster for a raw restore, made the way lifeboat makes its
 * scratch cluster (initdb, the same settings, pg_ctl start, CREATE DATABASE
 * scratch). The time this takes is the provisioning cost lifeboat's restore
 * pays on top of the raw one.
 */
async function provisionTarget(ctx, i) {
  const dir = join(ctx.tmp, `raw-target-${i}-${Date.now()}`);
  let cluster;
  const remove = async () => {
    await cluster?.stop("immediate");
    rmSync(dir, { recursive: true, force: true });
  };
  onCleanup(remove);
  const started = performance.now();
  await initCluster(ctx, dir);
  cluster = await startCluster(ctx, dir, { label: "raw target cluster" });
  await sql(ctx, cluster.url("postgres"), `CREATE DATABASE ${TARGET_DB}`);
  return { url: cluster.url(TARGET_DB), pid: cluster.pid, provisionSeconds: (performance.now() - started) / 1000, remove };
}

/**
 * Raw restore into a fresh cluster. "stream": `zstd -dc dump | pg_restore
 * --single-transaction` (what lifeboat's streaming mode runs); "staged":
 * `zstd -d dump -o file`, then `pg_restore --jobs=N file`, then the file is
 * removed (what lifeboat's staged mode does). Only the restore is timed; the
 * provisioning time is kept apart.
 */
async function runRawRestore(ctx, mode, i) {
  const target = await provisionTarget(ctx, i);
  try {
    const servers = { ...ctx.servers, "postgres (target)": target.pid };
    const pgRestore = [ctx.tools.pg_restore, ...restoreOptions(target.url)];
    let wallSeconds;
    let samples;
    if (mode === "stream") {
      const r = await runPipeline([{ argv: [ctx.tools.zstd, "-dc", DUMP_ZST] }, { argv: [...pgRestore, "--single-transaction"] }], { env: PG_ENV, serverPids: servers, what: "raw zstd -dc | pg_restore" });
      ({ wallSeconds, samples } = r);
    } else {
      const file = join(ctx.staging, `raw-${i}.pgdump`);
      const started = performance.now();
      const decode = await runPipeline([{ argv: [ctx.tools.zstd, "-d", "-q", "-f", DUMP_ZST, "-o", file] }], { serverPids: servers, what: "raw zstd -d to a file" });
      const restore = await runPipeline([{ argv: [...pgRestore, `--jobs=${RESTORE_JOBS}`, file] }], { env: PG_ENV, serverPids: servers, what: "raw pg_restore --jobs" });
      rmSync(file, { force: true });
      wallSeconds = (performance.now() - started) / 1000;
      samples = mergeSamples([decode.samples, restore.samples]);
      samples.stepSeconds = { decode: decode.wallSeconds, restore: restore.wallSeconds };
    }
    await checkRestored(ctx, target.url, ctx.source.rows);
    return { wallSeconds, samples, provisionSeconds: target.provisionSeconds };
  } finally {
    await target.remove();
  }
}

/** Postmasters of the scratch clusters lifeboat made under the bench's LIFEBOAT_SCRATCH_DIR. */
function scratchPostmasters(root) {
  const out = {};
  let entries = [];
  try {
    entries = readdirSync(root);
  } catch {
    return out;
  }
  for (const entry of entries) {
    const pid = postmasterPid(join(root, entry, "data"));
    if (pid) out["postgres (scratch)"] = pid;
  }
  return out;
}

/**
 * `lifeboat restore JOB --to scratch:postgres --json` as a whole CLI process:
 * resolving the newest backup, creating the scratch cluster, downloading,
 * decrypting, decompressing and pg_restore. The scratch cluster's server is
 * sampled too once it appears. The restored rows are counted, then the
 * environment is removed with `lifeboat scratch remove` (neither is timed).
 */
async function runLifeboatRestore(ctx, config, job, expected) {
  const timeFile = join(ctx.tmp, "time.out");
  rmSync(timeFile, { force: true });
  const argv = [process.execPath, CLI, "-c", config, "--json", "restore", job, "--to", "scratch:postgres"];
  const full = ctx.tools.time ? [ctx.tools.time, "-f", "%M %e %U %S", "-o", timeFile, ...argv] : argv;
  const r = await runPipeline([{ argv: full }], {
    env: ctx.lifeboatEnv,
    captureStdout: true,
    serverPids: ctx.servers,
    discoverServers: () => scratchPostmasters(ctx.scratchRoot),
    what: `lifeboat restore ${job}`,
  });
  let result;
  try {
    result = JSON.parse(r.stdout);
    if (Array.isArray(result)) result = result[0];
  } catch {
    throw new Error(`lifeboat restore ${job}: unexpected output:\n${tail(r.stdout)}\n${tail(r.stderr[0])}`);
  }
  const scratchId = result?.scratch?.id;
  try {
    if (!result?.ok || !scratchId) throw new Error(`lifeboat restore ${job} failed: ${JSON.stringify(result?.error ?? result)}`);
    if (expected) await checkRestored(ctx, result.scratch.connection.url, expected);
    else if (Number(await sql(ctx, result.scratch.connection.url, "SELECT count(*) FROM notes")) !== 100) throw new Error(`lifeboat restore ${job}: the notes table does not hold 100 rows`);
  } finally {
    if (scratchId) await removeScratch(ctx, [scratchId]);
  }
  return {
    wallSeconds: r.wallSeconds,
    samples: r.samples,
    peakRssMiB: r.samples.peakRssKiB === undefined ? undefined : r.samples.peakRssKiB / 1024,
    lifeboatDurationSeconds: result.durationMs / 1000,
    ...(ctx.tools.time ? { gnuTime: readGnuTime(timeFile) } : {}),
  };
}

/**
 * `lifeboat drill` on a minimal plan (provision + restore + one verify), as a
 * whole CLI process. The figures that count come from the drill's own
 * report.json: RTO actual (t0 → the verify step passed) and the time it took
 * to create the scratch cluster, measured inside that RTO.
 */
async function runLifeboatDrill(ctx, config, job, expected, i) {
  const plan = join(ctx.tmp, "bench-drill.yaml");
  writeFileSync(
    plan,
    `name: bench-drill
targets: { rto: 1h }
scratch:
  db: { type: postgres }
steps:
  - name: restore
    restore: { job: ${job}, into: db }
  - name: accounts are there
    verify: { sql: "select count(*) = ${expected.pgbench_accounts} from pgbench_accounts", on: db }
`,
  );
  const out = join(ctx.tmp, `drill-${i}`);
  const argv = [process.execPath, CLI, "-c", config, "--json", "drill", plan, "--out", out];
  const r = await runPipeline([{ argv }], {
    env: ctx.lifeboatEnv,
    captureStdout: true,
    serverPids: ctx.servers,
    discoverServers: () => scratchPostmasters(ctx.scratchRoot),
    what: "lifeboat drill",
  });
  let report;
  try {
    report = JSON.parse(readFileSync(join(out, "report.json"), "utf8"));
  } catch {
    throw new Error(`lifeboat drill wrote no report:\n${tail(r.stdout)}\n${tail(r.stderr[0])}`);
  }
  if (report.verdict !== "passed") throw new Error(`lifeboat drill: ${report.verdict}: ${report.summary}`);
  return {
    wallSeconds: r.wallSeconds,
    samples: r.samples,
    peakRssMiB: r.samples.peakRssKiB === undefined ? undefined : r.samples.peakRssKiB / 1024,
    rtoSeconds: report.rto.actualMs / 1000,
    drillProvisionSeconds: report.phases.provisionMs / 1000,
    restoreStepSeconds: report.steps[0].durationMs / 1000,
    verifyStepSeconds: report.steps[1].durationMs / 1000,
    teardownSeconds: report.teardown.reduce((sum, t) => sum + (t.endMs - t.startMs), 0) / 1000,
  };
}

async function removeScratch(ctx, ids) {
  const config = ctx.configs ? ["-c", ctx.configs.stream] : [];
  await runPipeline([{ argv: [process.execPath, CLI, ...config, "scratch", "remove", ...ids] }], { env: ctx.lifeboatEnv, captureStdout: true, what: "lifeboat scratch remove" });
}

/**
 * Cleanup: removes every scratch environment left under the bench's scratch
 * root (a run that failed or was interrupted), through lifeboat first, then
 * by stopping any postmaster that is still up.
 */
async function sweepScratch(ctx) {
  if (!existsSync(ctx.scratchRoot)) return;
  try {
    const listed = await runPipeline([{ argv: [process.execPath, CLI, "--json", "scratch", "list"] }], { env: ctx.lifeboatEnv, captureStdout: true, what: "lifeboat scratch list" });
    const ids = JSON.parse(listed.stdout).map((r) => r.id);
    if (ids.length) await removeScratch(ctx, ids);
  } catch (error) {
    log(`lifeboat scratch cleanup failed: ${error.message.split("\n")[0]}`);
  }
  for (const entry of readdirSync(ctx.scratchRoot)) {
    const dataDir = join(ctx.scratchRoot, entry, "data");
    const pid = postmasterPid(dataDir);
    if (pid && isPostmasterOf(pid, dataDir)) {
      log(`stopping a scratch cluster left running (pid ${pid})`);
      spawnSync(ctx.tools.pg_ctl, ["stop", "-D", dataDir, "-m", "immediate", "-w", "-t", "30", "-s"], { cwd: "/", timeout: 60_000, ...(ctx.runAs ? { uid: ctx.runAs.uid, gid: ctx.runAs.gid } : {}) });
      if (isPostmasterOf(pid, dataDir)) process.kill(pid, "SIGKILL");
    }
  }
}

// --- report ------------------------------------------------------------------------

const rssOf = (r, name) => (r.samples?.peakRssKiBByName?.[name] === undefined ? undefined : r.samples.peakRssKiBByName[name] / 1024);
const allRuns = (r) => (r.allWallSeconds ?? []).map((w) => fixed(w)).join(" ");

function report(ctx) {
  const { backupRuns, restoreRuns, source } = ctx;
  const dumpMiB = ctx.dumpBytes / MIB;
  const lines = [];
  lines.push(
    `Lifeboat PostgreSQL bench: database "${SOURCE_DB}" ${fixed(source.dbSizeBytes / MIB, 0)} MiB (pg_database_size; pgbench scale ${SCALE} + wide table ${fixed(source.wideTotalBytes / MIB, 0)} MiB with indexes), ` +
      `pg_dump -Fc -Z0 ${fixed(dumpMiB, 0)} MiB, zstd -${ZSTD_LEVEL} ${fixed(ctx.dumpZstBytes / MIB, 0)} MiB; PostgreSQL ${source.serverVersion}, ${cpus().length} CPUs, node ${process.version}, load avg at start ${ctx.loadAtStart.map((l) => l.toFixed(2)).join(" ")}`,
  );

  // Backup.
  const a = backupRuns.find((r) => r.key === "a");
  const aT = backupRuns.find((r) => r.key === "aT");
  const ratio = (r, base) => (r.error || !base || base.error ? undefined : r.wallSeconds / base.wallSeconds);
  lines.push("", "BACKUP");
  const backupRows = backupRuns.map((r) => {
    r.ratio = ratio(r, a);
    r.ratioVsT0 = ratio(r, aT);
    return [
      r.label,
      r.error ? "failed" : fixed(r.wallSeconds),
      allRuns(r),
      r.error ? "-" : fixed(dumpMiB / r.wallSeconds, 1),
      fixed(r.ratio),
      fixed(r.ratioVsT0),
      r.peakRssMiB === undefined ? "-" : fixed(r.peakRssMiB, 0),
      r.storedBytes === undefined ? "-" : fixed(r.storedBytes / MIB, 1),
    ];
  });
  lines.push(table(["run", "wall s", "all runs s", "dump MiB/s", "ratio vs (a)", "vs (a')", "peak RSS MiB", "stored MiB"], backupRows, [false, true, true, true, true, true, true, true]));

  // Restore.
  let restoreVerdicts = [];
  if (restoreRuns.length) {
    const rS = restoreRuns.find((r) => r.key === "rS");
    const rP = restoreRuns.find((r) => r.key === "rP");
    const provisionRuns = restoreRuns.filter((r) => r.key === "rS" || r.key === "rP").flatMap((r) => (r.allRuns ?? []).map((x) => x.provisionSeconds));
    ctx.provisionSeconds = provisionRuns.length ? Math.min(...provisionRuns) : undefined;
    lines.push("", "RESTORE");
    const restoreRows = [];
    if (ctx.provisionSeconds !== undefined) restoreRows.push(["(p) provision: initdb + pg_ctl start + CREATE DATABASE", fixed(ctx.provisionSeconds), provisionRuns.map((s) => fixed(s)).join(" "), "-", "-", "-", "-"]);
    for (const r of restoreRuns) {
      r.ratio = r.key === "tiny" ? undefined : ratio(r, rS);
      // Lifeboat's runs include creating the scratch cluster; the raw ones do not.
      r.ratioWithoutProvisioning = r.lifeboat && r.ratio !== undefined && ctx.provisionSeconds !== undefined ? (r.wallSeconds - ctx.provisionSeconds) / rS.wallSeconds : r.ratio;
      r.ratioSameMode = r.key === "lS" ? ratio(r, rS) : r.key === "lP" ? ratio(r, rP) : undefined;
      restoreRows.push([
        r.label,
        r.error ? "failed" : fixed(r.wallSeconds),
        allRuns(r),
        r.error || r.key === "tiny" ? "-" : fixed(dumpMiB / r.wallSeconds, 1),
        r.key === "tiny" ? "-" : fixed(r.ratio),
        r.key === "tiny" ? "-" : fixed(r.ratioWithoutProvisioning),
        r.peakRssMiB === undefined ? "-" : fixed(r.peakRssMiB, 0),
      ]);
    }
    lines.push(table(["run", "wall s", "all runs s", "dump MiB/s", "ratio vs (r)", "without (p)", "peak RSS MiB"], restoreRows, [false, true, true, true, true, true, true]));
    const lS = restoreRuns.find((r) => r.key === "lS");
    const lP = restoreRuns.find((r) => r.key === "lP");
    const sameMode = [lS, lP].filter((r) => r && !r.error && r.ratioSameMode !== undefined).map((r) => `${r.label.split(" ")[0]} ${fixed(r.ratioSameMode)}`);
    if (sameMode.length) lines.push(`same-mode ratios (lifeboat streaming vs (r), lifeboat staged vs (r')): ${sameMode.join(", ")}`);
    // Which mode wins at this size.
    const faster = (x, y) => (x && y && !x.error && !y.error ? (y.wallSeconds - x.wallSeconds) / y.wallSeconds : undefined);
    const modeLine = (name, streaming, staged) => {
      const gain = faster(staged, streaming);
      if (gain === undefined) return undefined;
      return `${name}: staged --jobs=${RESTORE_JOBS} ${fixed(staged.wallSeconds)} s vs streaming ${fixed(streaming.wallSeconds)} s → ${gain > 0 ? `staged is ${fixed(100 * gain, 0)}% faster` : `streaming is ${fixed((100 * -gain * streaming.wallSeconds) / staged.wallSeconds, 0)}% faster`}`;
    };
    ctx.modes = { raw: faster(rP, rS), lifeboat: faster(lP, lS) };
    const modes = [modeLine("raw", rS, rP), modeLine("lifeboat", lS, lP)].filter(Boolean);
    if (modes.length) lines.push(`restore mode at ${fixed(dumpMiB, 0)} MiB of dump on ${cpus().length} CPUs: ${modes.join("; ")}`);
    restoreVerdicts = [lS, lP].filter(Boolean);
    // Where each restore's time goes (fastest run): when pg_restore started, and what came before it.
    const phases = [];
    if (rP && !rP.error && rP.samples?.stepSeconds) phases.push(`${rP.label.split(" ")[0]} zstd -d to a file ${fixed(rP.samples.stepSeconds.decode)} s, then pg_restore --jobs ${fixed(rP.samples.stepSeconds.restore)} s`);
    for (const r of [lS, lP]) {
      const seen = r && !r.error ? r.samples?.firstSeenSeconds : undefined;
      if (seen?.pg_restore === undefined) continue;
      const init = seen.initdb === undefined ? "" : `initdb at ${fixed(seen.initdb)} s, `;
      phases.push(`${r.label.split(" ")[0]} ${init}pg_restore at ${fixed(seen.pg_restore)} s, done at ${fixed(r.wallSeconds)} s (pg_restore ran ${fixed(r.wallSeconds - seen.pg_restore)} s)`);
    }
    if (phases.length) lines.push(`phases: ${phases.join("; ")}`);
  }
  const drill = restoreRuns.find((r) => r.key === "drill");
  const rawStream = restoreRuns.find((r) => r.key === "rS");
  if (drill && !drill.error && rawStream && !rawStream.error) {
    drill.rtoRatio = drill.rtoSeconds / rawStream.wallSeconds;
    drill.rtoRatioWithoutProvisioning = (drill.rtoSeconds - drill.drillProvisionSeconds) / rawStream.wallSeconds;
    lines.push(
      "",
      "DRILL (minimal plan: provision a scratch cluster, restore, one verify query; figures from the drill's report.json, fastest run)",
      `RTO actual ${fixed(drill.rtoSeconds)} s = provisioning ${fixed(drill.drillProvisionSeconds)} s + restore step ${fixed(drill.restoreStepSeconds)} s + verify step ${fixed(drill.verifyStepSeconds)} s (+ gaps); teardown ${fixed(drill.teardownSeconds)} s after it, not in the RTO; whole CLI process ${fixed(drill.wallSeconds)} s`,
      `RTO vs (r) ${fixed(rawStream.wallSeconds)} s: ${fixed(drill.rtoRatioWithoutProvisioning, 3)} without provisioning (goal ≤ ${GOAL_RATIO}: ${verdict(drill.rtoRatioWithoutProvisioning <= GOAL_RATIO)}), ${fixed(drill.rtoRatio, 3)} with it`,
    );
  }
  lines.push(
    "wall s: fastest run (load from elsewhere only adds time); dump MiB/s: pg_dump -Fc -Z0 output MiB / wall s; (p) is timed inside every raw restore run and is part of every lifeboat restore run; 'without (p)': (wall s - (p)) / (r)",
  );

  // Goals.
  lines.push("", `goals: backup ratio ≤ ${GOAL_RATIO} vs (a) and peak RSS ≤ ${GOAL_RSS_MIB} MiB (lifeboat node process); restore ratio ≤ ${GOAL_RATIO} vs (r), judged without (p), the cluster lifeboat creates`);
  const goalRows = [];
  const b = backupRuns.find((r) => r.key === "b");
  if (b) {
    b.verdict = { ratio: b.error ? "MISS" : verdict(b.ratio <= GOAL_RATIO), peakRss: b.error ? "MISS" : verdict(b.peakRssMiB === undefined ? undefined : b.peakRssMiB <= GOAL_RSS_MIB) };
    goalRows.push([b.label, b.error ? "failed" : fixed(b.ratio, 3), "", b.verdict.ratio, b.peakRssMiB === undefined ? "-" : fixed(b.peakRssMiB, 0), b.verdict.peakRss]);
  }
  for (const r of restoreVerdicts) {
    r.verdict = { ratio: r.error ? "MISS" : verdict(r.ratioWithoutProvisioning <= GOAL_RATIO), ratioWithProvisioning: r.error ? "MISS" : verdict(r.ratio <= GOAL_RATIO) };
    goalRows.push([r.label, r.error ? "failed" : fixed(r.ratioWithoutProvisioning, 3), r.error ? "" : `${fixed(r.ratio, 3)} (${r.verdict.ratioWithProvisioning})`, r.verdict.ratio, r.peakRssMiB === undefined ? "-" : fixed(r.peakRssMiB, 0), "n/a"]);
  }
  lines.push(table(["run", "ratio", "with (p)", `≤ ${GOAL_RATIO}`, "peak RSS MiB", `≤ ${GOAL_RSS_MIB}`], goalRows, [false, true, true, false, true, false]));
  const bigEnough = source.dbSizeBytes >= MIN_DB_MB * 1e6;
  lines.push(`database size ${fixed(source.dbSizeBytes / 1e6, 0)} MB ≥ ${MIN_DB_MB} MB: ${bigEnough ? "yes" : "NO (raise BENCH_PG_SCALE or BENCH_PG_WIDE_MB)"}`);

  // Where the time goes.
  lines.push("", "CPU seconds during each run (% of wall time; 100% = one core saturated); postgres (…) is the server side:");
  for (const r of [...backupRuns, ...restoreRuns]) if (!r.error) lines.push(`  ${r.label}: ${describeCpu(r)}`);
  const rssLines = [...backupRuns, ...restoreRuns]
    .filter((r) => !r.error && r.samples?.peakRssKiBByName)
    .map((r) => {
      // Helpers of a few MiB (sh, getent, pg_ctl) are left out.
      const names = Object.keys(r.samples.peakRssKiBByName).filter((n) => n !== "time" && rssOf(r, n) >= 5);
      return `  ${r.label}: ${names.map((n) => `${n} ${fixed(rssOf(r, n), 0)}`).join(", ")}`;
    });
  if (rssLines.length) lines.push("peak RSS MiB of each client process (fastest run):", ...rssLines);
  const busyRuns = [...backupRuns, ...restoreRuns].filter((r) => r.samples?.otherProcessesSeconds !== undefined && r.samples.otherProcessesSeconds / (r.wallSeconds * cpus().length) > 0.1);
  if (busyRuns.length) {
    const worst = Math.max(...busyRuns.map((r) => r.samples.otherProcessesSeconds / (r.wallSeconds * cpus().length)));
    ctx.notes.push(`other processes used up to ${fixed(100 * worst, 0)}% of the machine during ${busyRuns.map((r) => r.key).join(", ")}: those timings are skewed; rerun on a quiet machine (or raise BENCH_REPEAT)`);
  }
  const failures = [...backupRuns, ...restoreRuns].filter((r) => r.error);
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
  const runAs = clusterUser();
  const notes = [];

  // Everything temporary lives in one folder the cluster user can traverse: raw target clusters, lifeboat's scratch root, staging files.
  const tmp = mkdtempSync(join(tmpdir(), "lifeboat-bench-pg-"));
  chmodSync(tmp, 0o711);
  onCleanup(() => rmSync(tmp, { recursive: true, force: true }));
  const scratchRoot = join(tmp, "scratch");
  const staging = join(tmp, "staging");
  mkdirSync(staging);
  writeFileSync(join(tmp, "rclone-empty.conf"), "");
  const ctx = { tools, versions, runAs, tmp, scratchRoot, staging, notes, loadAtStart, servers: {}, backupRuns: [], restoreRuns: [] };
  ctx.lifeboatEnv = { ...process.env, LIFEBOAT_LOG_LEVEL: "warn", LIFEBOAT_SCRATCH_DIR: scratchRoot, LIFEBOAT_STAGING_DIR: staging, NO_PROXY: "127.0.0.1,localhost", no_proxy: "127.0.0.1,localhost" };
  onCleanup(() => sweepScratch(ctx));

  ctx.source = await ensureSource(ctx);
  log(`source cluster up on port ${ctx.source.cluster.port}: database ${SOURCE_DB} ${fixed(ctx.source.dbSizeBytes / MIB, 0)} MiB`);
  if (ctx.source.dbSizeBytes < MIN_DB_MB * 1e6) notes.push(`the database is ${fixed(ctx.source.dbSizeBytes / 1e6, 0)} MB, below the ${MIN_DB_MB} MB the issue asks for (BENCH_PG_SCALE, BENCH_PG_WIDE_MB)`);
  await ensureIdentity();

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
  ctx.server = server;
  ctx.servers = { "postgres (source)": ctx.source.cluster.pid, ...(server?.pids ?? {}) };
  if (server) {
    Object.assign(ctx.lifeboatEnv, { BENCH_S3_ACCESS_KEY: server.accessKeyId, BENCH_S3_SECRET_KEY: server.secretAccessKey });
    ctx.configs = writeConfigs(server.endpoint, ctx.source);
  }

  // Warm-up, untimed: the dump the raw restores read, made through the same path as (a).
  log("warm-up: one untimed pg_dump | zstd pass, kept as bench/.data/pg.dump.zst");
  const rawDump = join(tmp, "pg.dump");
  await runPipeline([{ argv: [...pgDumpArgv(ctx, ctx.source.cluster.url(SOURCE_DB)), "-f", rawDump] }], { env: PG_ENV, what: "pg_dump (warm-up)" });
  ctx.dumpBytes = statSync(rawDump).size;
  await runPipeline([{ argv: [tools.zstd, `-${ZSTD_LEVEL}`, "-T0", "-q", "-f", rawDump, "-o", DUMP_ZST] }], { what: "zstd (warm-up)" });
  rmSync(rawDump, { force: true });
  ctx.dumpZstBytes = statSync(DUMP_ZST).size;
  log(`dump: ${fixed(ctx.dumpBytes / MIB, 0)} MiB, zstd -${ZSTD_LEVEL} ${fixed(ctx.dumpZstBytes / MIB, 0)} MiB`);

  // Backup: (a) (a') (b) interleaved, then the peers once.
  const backupKinds = [
    { key: "a", label: "(a) raw pg_dump -Fc -Z0 | zstd -3", once: () => runRawBackup(ctx) },
    // Lifeboat runs zstd with -T0 (every core): this row shows the multi-threaded raw limit too.
    { key: "aT", label: "(a') raw pg_dump -Fc -Z0 | zstd -3 -T0", once: () => runRawBackup(ctx, ["-T0"]) },
    ...(server ? [{ key: "b", label: "(b) lifeboat backup → radosgw", goal: true, once: () => runLifeboatBackup(ctx, "pg") }] : []),
  ];
  if (server && PEERS) {
    const peers = peerEnv(server, ctx.lifeboatEnv);
    if (tools.restic) backupKinds.push({ key: "restic", label: "pg_dump | restic backup --stdin → radosgw", rounds: 1, once: (i) => runRestic(ctx, peers.restic, i) });
    else notes.push("restic not installed: skipped");
    if (tools.rclone) backupKinds.push({ key: "rclone", label: "pg_dump | zstd -3 | rclone rcat → radosgw", rounds: 1, once: (i) => runRclone(ctx, peers.rclone, i) });
    else notes.push("rclone not installed: skipped");
  }
  ctx.backupRuns = await measure(backupKinds, REPEAT);

  if (RESTORE) {
    const lifeboatOk = server && !ctx.backupRuns.find((r) => r.key === "b")?.error;
    if (server && !lifeboatOk) notes.push("lifeboat restore runs skipped: (b) made no backup to restore");
    if (lifeboatOk) await runLifeboatBackup(ctx, "pgtiny"); // untimed: what the fixed-cost restore restores
    // The source server is idle from here on.
    await ctx.source.cluster.stop("fast");
    delete ctx.servers["postgres (source)"];
    const restoreKinds = [
      { key: "rS", label: "(r) raw zstd -dc | pg_restore --single-transaction", once: (i) => runRawRestore(ctx, "stream", i) },
      { key: "rP", label: `(r') raw zstd -d > file; pg_restore --jobs=${RESTORE_JOBS}`, once: (i) => runRawRestore(ctx, "staged", i) },
      ...(lifeboatOk
        ? [
            { key: "lS", label: "(s) lifeboat restore → scratch, streaming", lifeboat: true, goal: true, once: () => runLifeboatRestore(ctx, ctx.configs.stream, "pg", ctx.source.rows) },
            { key: "lP", label: `(t) lifeboat restore → scratch, staged --jobs=${RESTORE_JOBS}`, lifeboat: true, goal: true, once: () => runLifeboatRestore(ctx, ctx.configs.staged, "pg", ctx.source.rows) },
            { key: "tiny", label: "(f) lifeboat restore → scratch, 100-row db (fixed cost)", lifeboat: true, rounds: 1, once: () => runLifeboatRestore(ctx, ctx.configs.stream, "pgtiny", undefined) },
            ...(DRILL ? [{ key: "drill", label: "(d) lifeboat drill: provision + restore + one verify", lifeboat: true, goal: true, once: (i) => runLifeboatDrill(ctx, ctx.configs.stream, "pg", ctx.source.rows, i) }] : []),
          ]
        : []),
    ];
    ctx.restoreRuns = await measure(restoreKinds, REPEAT);
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
    settings: { scale: SCALE, wideMiB: WIDE_MB, repeat: REPEAT, peers: PEERS, restore: RESTORE, restoreJobs: RESTORE_JOBS, zstdLevel: ZSTD_LEVEL, sampleMs: SAMPLE_MS },
    goals: { ratio: GOAL_RATIO, peakRssMiB: GOAL_RSS_MIB, minDatabaseMB: MIN_DB_MB },
    source: { ...ctx.source, cluster: undefined, dumpBytes: ctx.dumpBytes, dumpZstdBytes: ctx.dumpZstBytes },
    radosgw: server ? { endpoint: server.endpoint, startSeconds: server.startSeconds } : null,
    provisionSeconds: ctx.provisionSeconds,
    restoreModeGain: ctx.modes,
    backupRuns: ctx.backupRuns,
    restoreRuns: ctx.restoreRuns,
    notes,
  };
  writeFileSync(RESULTS, `${JSON.stringify(json, null, 2)}\n`);
  process.stdout.write(`\ntotal ${fixed(totalSeconds, 0)} s; results in ${relative(process.cwd(), RESULTS) || RESULTS}\n`);
  return [...ctx.backupRuns, ...ctx.restoreRuns].some((r) => r.error) ? 1 : 0;
}

runMain(main);
