// Vitest globalSetup: starts the S3-compatible test servers once per run
// (radosgw and s3rver, in parallel) and provides `s3Servers` to the tests
// (see s3-servers.ts). radosgw is required: if it cannot start, the run fails.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { startS3rver, type S3rverHandle } from "../servers/s3rver.js";
import type { S3ServerInfo } from "./s3-servers.js";
import { freePort } from "../../src/scratch/local-server.js";

const RADOSGW_SH = fileURLToPath(new URL("../servers/radosgw.sh", import.meta.url));
const REGION = "us-east-1";


let runningScript: ChildProcess | undefined;

function runScript(args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      "bash",
      [RADOSGW_SH, ...args],
      { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (runningScript === child) runningScript = undefined;
        if (err) {
          reject(
            new Error(
              `radosgw.sh ${args[0]} failed (${err.message.split("\n")[0]}).\n${stdout}${stderr}`,
            ),
          );
        } else {
          resolve();
        }
      },
    );
    runningScript = child;
  });
}

/** Kills radosgw's daemons by their PID files; synchronous, for process exit. */
function killRadosgwSync(dir: string): void {
  for (const d of ["rgw", "osd", "mon"]) {
    try {
      const pid = Number(readFileSync(join(dir, "run", `${d}.pid`), "utf8").trim());
      if (pid > 1) process.kill(pid, "SIGKILL");
    } catch {
      // no pid file or already gone
    }
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = mkdtempSync(join(tmpdir(), "lifeboat-s3-"));
  const rgwDir = join(root, "radosgw");
  const s3rverDir = join(root, "s3rver");
  let s3rver: S3rverHandle | undefined;
  let finished = false;

  // If vitest itself is SIGKILLed, a detached watchdog stops the cluster
  // once this process is gone (s3rver exits by itself when its stdin closes).
  const watchdog = spawn(
    "bash",
    [
      "-c",
      'while kill -0 "$1" 2>/dev/null; do sleep 1; done; bash "$2" stop "$3" >/dev/null 2>&1; rm -rf "$4"',
      "lifeboat-s3-watchdog",
      String(process.pid),
      RADOSGW_SH,
      rgwDir,
      root,
    ],
    { detached: true, stdio: "ignore" },
  );
  watchdog.unref();
  const stopWatchdog = (): void => {
    try {
      if (watchdog.pid) process.kill(-watchdog.pid, "SIGKILL");
    } catch {
      // already gone
    }
  };

  // Last resort if vitest exits without reaching teardown (process.exit, or
  // SIGINT/SIGTERM, which vitest turns into process.exit).
  const onExit = (): void => {
    if (finished) return;
    finished = true;
    stopWatchdog();
    runningScript?.kill("SIGKILL");
    killRadosgwSync(rgwDir);
    if (s3rver) {
      try {
        process.kill(s3rver.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    try {
      rmSync(root, { recursive: true, force: true });
    } catch {
      // best effort
    }
  };
  process.once("exit", onExit);

  const rgwPort = await freePort();
  // radosgw-style keys: 20-char uppercase access key, 40-char secret.
  const accessKeyId = `LB${randomBytes(9).toString("hex").toUpperCase()}`;
  const secretAccessKey = randomBytes(30).toString("base64").replace(/[+/]/g, "x");

  const started = Date.now();
  const [rgwResult, s3rverResult] = await Promise.allSettled([
    runScript(["start", rgwDir, String(rgwPort), accessKeyId, secretAccessKey], 180_000),
    startS3rver({ dir: s3rverDir }),
  ]);
  if (s3rverResult.status === "fulfilled") s3rver = s3rverResult.value;

  const teardown = async (): Promise<void> => {
    if (finished) return;
    const results = await Promise.allSettled([
      existsSync(rgwDir) ? runScript(["stop", rgwDir], 60_000) : Promise.resolve(),
      s3rver ? s3rver.stop() : Promise.resolve(),
    ]);
    finished = true;
    process.off("exit", onExit);
    stopWatchdog();
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed.length > 0) {
      killRadosgwSync(rgwDir);
    }
    rmSync(root, { recursive: true, force: true });
    if (failed.length > 0) {
      throw new Error(`stopping the S3 test servers failed:\n${failed.map((f) => String(f.reason)).join("\n")}`);
    }
  };

  if (rgwResult.status === "rejected" || s3rverResult.status === "rejected") {
    const reasons = [rgwResult, s3rverResult]
      .filter((r): r is PromiseRejectedResult => r.status === "rejected")
      .map((r) => (r.reason instanceof Error ? r.reason.message : String(r.reason)));
    await teardown().catch(() => undefined);
    throw new Error(`S3 test servers failed to start:\n${reasons.join("\n\n")}`);
  }

  if (process.env.LIFEBOAT_S3_DEBUG) {
    console.log(`[s3 servers] started in ${Date.now() - started} ms under ${root}`);
  }

  const servers: S3ServerInfo[] = [
    {
      name: "radosgw",
      endpoint: `http://127.0.0.1:${rgwPort}`,
      region: REGION,
      accessKeyId,
      secretAccessKey,
      strict: true,
    },
    {
      name: "s3rver",
      endpoint: s3rver!.endpoint,
      region: REGION,
      accessKeyId: "S3RVER",
      secretAccessKey: "S3RVER",
      strict: false,
    },
  ];
  project.provide("s3Servers", servers);
  return teardown;
}
