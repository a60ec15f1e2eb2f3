import { promises as fs, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { runTool, startTool, type SystemUser } from "../exec/spawn.js";
import { isRoot, locateTool, lookupUser, type ToolSearch } from "../exec/tools.js";
import { LifeboatError } from "../model/errors.js";
import type { MariadbScratch } from "../model/scratch.js";
import { freePort, readLogFrom } from "./local-server.js";
import type { ProvisionedScratch, ScratchKind } from "./scratch.js";

/**
 * `mariadb`: an ephemeral MariaDB server of its own: `mariadb-install-db`
 * creates a data directory in the environment's folder, and `mariadbd`
 * serves it on a free port on 127.0.0.1 (and a socket in the same folder)
 * with a `scratch` database for the restore. `root` has no password; only
 * this machine can connect. When Lifeboat runs as root the server runs as
 * `runAs` (mariadbd refuses root).
 *
 * The server is started in a session of its own (`setsid --fork`): it does
 * not hold Lifeboat's event loop open, a Ctrl-C at the terminal does not reach
 * it, and it survives Lifeboat being killed — teardown, or the next start's
 * sweep, stops it. It is tuned for restore speed, not durability (the data is
 * thrown away): no binary log, no doublewrite, no flush at commit. The event
 * scheduler is off, so restored events do not change the data under a drill's
 * checks, and `secure_file_priv` keeps server-side file access inside the
 * environment's folder.
 */
const READY_TIMEOUT_MS = 60_000;
const INSTALL_TIMEOUT_MS = 120_000;
const SHUTDOWN_TIMEOUT_MS = 30_000;
const PORT_ATTEMPTS = 5;
/** sun_path holds 108 bytes, the terminating NUL included. */
const MAX_SOCKET_PATH_BYTES = 107;
/** Where Debian and tarball installs keep mariadbd when it is not on PATH. */
const SERVER_FOLDERS = ["/usr/sbin", "/usr/libexec", "/usr/local/mysql/bin"];
const SERVER_NAMES = ["mariadbd", "mysqld"];
const DATABASE = "scratch";

export const mariadbScratch: ScratchKind<MariadbScratch> = {
  type: "mariadb",

  describe() {
    return "an ephemeral MariaDB server on a free loopback port";
  },

  async provision(spec, context): Promise<ProvisionedScratch> {
    const paths = serverPaths(context.dir);
    if (Buffer.byteLength(paths.socket) > MAX_SOCKET_PATH_BYTES) {
      throw new LifeboatError("SCRATCH_PATH_TOO_LONG", `the socket path ${paths.socket} is too long for a Unix socket (scratch "${context.name}")`, {
        kind: "usage",
        hint: "set LIFEBOAT_SCRATCH_DIR to a shorter folder",
      });
    }
    const where = `starting scratch environment "${context.name}"`;
    const search: ToolSearch = { bin: spec.bin, fallback: async () => SERVER_FOLDERS };
    const [installDb, server, client, admin, setsid] = await Promise.all([
      locateTool(["mariadb-install-db", "mysql_install_db"], search),
      locateTool(SERVER_NAMES, search),
      locateTool(["mariadb", "mysql"], search),
      locateTool(["mariadb-admin", "mysqladmin"], search),
      locateTool("setsid"),
    ]);
    const user = isRoot() ? await lookupUser(spec.runAs) : undefined;
    for (const dir of [paths.files, paths.tmp]) await fs.mkdir(dir, { mode: 0o700 });
    if (user) {
      for (const dir of [context.dir, paths.files, paths.tmp]) await fs.chown(dir, user.uid, user.gid);
      await assertWritableBy(user, context.dir, context.name);
    }
    const signal = context.signal ? { signal: context.signal } : {};

    // Recorded before the server exists: a run killed from here on leaves a record the sweep acts on.
    const recorded = { datadir: paths.datadir, socket: paths.socket, pidFile: paths.pidFile };
    await context.record(recorded);
    await runTool({
      argv: [
        installDb,
        "--no-defaults",
        `--datadir=${paths.datadir}`,
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        // Passed on to the bootstrap server. A server that starts deletes the
        // `#sql*` files in its tmpdir: with the shared /tmp, servers starting
        // side by side would delete each other's temporary tables.
        `--tmpdir=${paths.tmp}`,
        ...(user ? [`--user=${user.name}`] : []),
      ],
      context: where,
      stdin: "ignore",
      timeoutMs: INSTALL_TIMEOUT_MS,
      ...signal,
    });

    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const logOffset = await fs.stat(paths.errorLog).then((s) => s.size, () => 0);
      // inheritEnv: false — the server must not carry our storage credentials.
      const started = startTool({ argv: [setsid, "--fork", server, ...serverArgs(paths, port, user)], context: where, stdout: "ignore", inheritEnv: false, ...signal });
      const outcome = await waitUntilReady({ admin, paths, logOffset, started: started.done, name: context.name, signal: context.signal });
      // setsid returned at once; its stderr closes when mariadbd moves its own to the error log.
      await started.done;
      if (outcome === "ready") break;
      if (attempt === PORT_ATTEMPTS) {
        throw new LifeboatError("SCRATCH_START_FAILED", `mariadbd found no free port after ${PORT_ATTEMPTS} attempts (${where})`, { kind: "run" });
      }
      context.log.debug({ port }, "port taken before mariadbd bound it; retrying with another");
    }
    const pid = serverPids(paths.datadir, pidHints(paths.pidFile))[0];
    await context.record({ ...recorded, port, ...(pid ? { pid } : {}) });

    const setup = await runTool({
      argv: [
        client,
        "--no-defaults",
        `--socket=${paths.socket}`,
        "--user=root",
        "--batch",
        "--skip-column-names",
        "--execute",
        `CREATE DATABASE ${DATABASE} CHARACTER SET utf8mb4; SELECT VERSION()`,
      ],
      context: where,
      timeoutMs: 30_000,
      ...signal,
    });
    const version = setup.stdout.trim();
    const url = `mariadb://root@127.0.0.1:${port}/${DATABASE}`;
    return {
      connection: { url, host: "127.0.0.1", port: String(port), user: "root", database: DATABASE, socket: paths.socket },
      connectHint: `mariadb -h 127.0.0.1 -P ${port} -u root ${DATABASE}`,
      versions: version ? { server: version } : undefined,
    };
  },

  async remove(resource, context) {
    const datadir = typeof resource.datadir === "string" ? resource.datadir : undefined;
    if (!datadir) return; // nothing was created
    const socket = typeof resource.socket === "string" ? resource.socket : undefined;
    const hints = [...(typeof resource.pid === "number" ? [resource.pid] : []), ...(typeof resource.pidFile === "string" ? pidHints(resource.pidFile) : [])];
    if (serverPids(datadir, hints).length === 0) return;

    // Politely first: a clean shutdown over the socket, as root. (The SQL
    // statement returns at once; `mariadb-admin shutdown` polls the pid file
    // once a second.)
    if (socket) {
      try {
        const client = await locateTool(["mariadb", "mysql"], { bin: context.spec?.bin, fallback: async () => SERVER_FOLDERS });
        await runTool({
          argv: [client, "--no-defaults", `--socket=${socket}`, "--user=root", "--connect-timeout=5", "--execute", "SHUTDOWN"],
          context: `removing scratch server ${datadir}`,
          timeoutMs: 10_000,
        });
        if (await gone(datadir, hints, SHUTDOWN_TIMEOUT_MS)) return;
      } catch (error) {
        context.log.debug({ err: (error as Error).message }, "shutdown over the socket failed; killing the server");
      }
    }
    // Then by force: only processes that are mariadbd serving this data directory.
    for (const pid of serverPids(datadir, hints)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
      }
    }
    if (!(await gone(datadir, hints, 10_000))) {
      throw new LifeboatError("SCRATCH_REMOVE_FAILED", `the scratch MariaDB server for ${datadir} is still running after SIGKILL`, { kind: "run" });
    }
  },
};

interface ServerPaths {
  datadir: string;
  socket: string;
  pidFile: string;
  errorLog: string;
  /** secure_file_priv: the only folder LOAD DATA INFILE / SELECT … INTO OUTFILE may use. */
  files: string;
  tmp: string;
}

function serverPaths(dir: string): ServerPaths {
  return {
    datadir: join(dir, "data"),
    socket: join(dir, "mysqld.sock"),
    pidFile: join(dir, "mysqld.pid"),
    errorLog: join(dir, "error.log"),
    files: join(dir, "files"),
    tmp: join(dir, "tmp"),
  };
}

function serverArgs(p: ServerPaths, port: number, user: SystemUser | undefined): string[] {
  return [
    "--no-defaults", // must come first
    `--datadir=${p.datadir}`,
    `--port=${port}`,
    "--bind-address=127.0.0.1",
    `--socket=${p.socket}`,
    `--pid-file=${p.pidFile}`,
    `--log-error=${p.errorLog}`,
    `--secure-file-priv=${p.files}`,
    `--tmpdir=${p.tmp}`,
    "--skip-name-resolve",
    "--skip-log-bin",
    "--character-set-server=utf8mb4",
    "--max-allowed-packet=1G",
    "--event-scheduler=OFF",
    // Scratch data need not survive a crash: trade durability for restore speed.
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    ...(user ? [`--user=${user.name}`] : []),
  ];
}

/**
 * Polls until the server answers a ping. "port-taken" when another process
 * bound the port first (the caller retries with another); throws when the
 * server gave up, vanished or took too long, with the end of its error log.
 */
async function waitUntilReady(options: {
  admin: string;
  paths: ServerPaths;
  logOffset: number;
  started: Promise<unknown>;
  name: string;
  signal: AbortSignal | undefined;
}): Promise<"ready" | "port-taken"> {
  const { admin, paths, name } = options;
  const where = `starting scratch environment "${name}"`;
  const begin = Date.now();
  let setsidFailed: unknown;
  options.started.catch((error: unknown) => {
    setsidFailed = error;
  });
  const fail = async (why: string) => {
    const log = await readLogFrom(paths.errorLog, options.logOffset);
    const tail = log.trimEnd().split("\n").slice(-15).map((l) => `  ${l}`).join("\n");
    return new LifeboatError("SCRATCH_START_FAILED", `mariadbd ${why} (${where})${tail.trim() ? `\n${tail}` : ""}`, { kind: "run" });
  };
  for (;;) {
    if (options.signal?.aborted) throw new LifeboatError("INTERRUPTED", `interrupted (${where})`, { kind: "interrupted" });
    if (setsidFailed) throw setsidFailed;
    const log = await readLogFrom(paths.errorLog, options.logOffset);
    if (/Address already in use/.test(log)) {
      await gone(paths.datadir, [], 10_000);
      return "port-taken";
    }
    if (/\[ERROR\] Aborting/.test(log)) throw await fail("could not start");
    const ping = await runTool({
      argv: [admin, "--no-defaults", `--socket=${paths.socket}`, "--user=root", "--connect-timeout=2", "--silent", "ping"],
      context: where,
      timeoutMs: 10_000,
    }).then(
      () => true,
      () => false,
    );
    if (ping) return "ready";
    // setsid forks and returns at once; give the child a moment to become mariadbd.
    if (Date.now() - begin > 2_000 && serverPids(paths.datadir, []).length === 0) throw await fail("exited before accepting connections");
    if (Date.now() - begin > READY_TIMEOUT_MS) throw await fail(`did not accept connections within ${READY_TIMEOUT_MS / 1000} s`);
    await sleep(100);
  }
}

/** The writes an unprivileged server needs, checked up front for a clear message. */
async function assertWritableBy(user: SystemUser, dir: string, name: string): Promise<void> {
  const ok = await runTool({ argv: ["test", "-w", dir, "-a", "-x", dir], context: `checking scratch folder access for ${user.name}`, runAs: user, cwd: "/" }).then(
    () => true,
    () => false,
  );
  if (!ok) {
    throw new LifeboatError("SCRATCH_NOT_WRITABLE", `user "${user.name}" cannot use ${dir} (scratch "${name}")`, {
      kind: "run",
      hint: "every folder above it must be searchable by that user (chmod o+x), or set LIFEBOAT_SCRATCH_DIR to a folder that is",
    });
  }
}



function pidHints(pidFile: string): number[] {
  try {
    const pid = Number(readFileSync(pidFile, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? [pid] : [];
  } catch {
    return [];
  }
}

/**
 * The running mariadbd processes serving `datadir`: the hinted pids (recorded,
 * pid file) and any other found in /proc, each checked by its command line,
 * so a recycled pid is never mistaken for the server.
 */
function serverPids(datadir: string, hints: number[]): number[] {
  let candidates: number[] = hints;
  try {
    candidates = [...new Set([...hints, ...readdirSync("/proc").filter((e) => /^\d+$/.test(e)).map(Number)])];
  } catch {
    // no /proc: only the hints, which cannot be verified
    return [];
  }
  return candidates.filter((pid) => isServerFor(pid, datadir));
}

function isServerFor(pid: number, datadir: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    const program = argv[0]?.split("/").pop() ?? "";
    if (!SERVER_NAMES.includes(program) || !argv.includes(`--datadir=${datadir}`)) return false;
    // A zombie (killed, not yet reaped by its new parent) is gone for our purposes.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

async function gone(datadir: string, hints: number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (serverPids(datadir, hints).length === 0) return true;
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
}
