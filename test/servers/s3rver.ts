// Runs s3rver (a lenient, in-memory-ish S3 emulator storing files in a directory)
// in a child process on 127.0.0.1. A child process keeps its Koa stack and the
// `--openssl-legacy-provider` flag it needs (ListObjectsV2 pagination over 1,000
// keys uses a legacy cipher for continuation tokens) out of the test process.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";

export interface S3rverHandle {
  endpoint: string;
  /** PID of the child process (for last-resort cleanup on process exit). */
  pid: number;
  stop(): Promise<void>;
}

// CommonJS, run with `node -e`. argv: [s3rverModulePath, directory, port].
// Prints one JSON line {port} when listening. Exits on SIGTERM/SIGINT and when
// stdin closes (the parent died), so it cannot outlive the test run.
const CHILD_SCRIPT = `
const S3rver = require(process.argv[1]);
const [directory, port] = process.argv.slice(2);
const server = new S3rver({
  address: "127.0.0.1",
  port: Number(port),
  silent: true,
  directory,
  resetOnClose: false,
});
let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  const http = server.httpServer;
  if (http && http.closeAllConnections) http.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
  server.close(() => process.exit(0));
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();
server.run().then(
  (addr) => process.stdout.write(JSON.stringify({ port: addr.port }) + "\\n"),
  (err) => {
    process.stderr.write("s3rver failed to start: " + (err && err.stack || err) + "\\n");
    process.exit(1);
  },
);
`;

export async function startS3rver(opts: { dir: string; port?: number }): Promise<S3rverHandle> {
  mkdirSync(opts.dir, { recursive: true });
  const require = createRequire(import.meta.url);
  const modulePath = require.resolve("s3rver");

  const child = spawn(
    process.execPath,
    ["-e", CHILD_SCRIPT, modulePath, opts.dir, String(opts.port ?? 0)],
    {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, NODE_OPTIONS: "--openssl-legacy-provider" },
    },
  );

  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (d: string) => {
    stderr = (stderr + d).slice(-4000);
  });

  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`s3rver did not start within 30 s\n${stderr}`));
    }, 30_000);
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (d: string) => {
      out += d;
      const nl = out.indexOf("\n");
      if (nl < 0) return;
      clearTimeout(timer);
      try {
        resolve((JSON.parse(out.slice(0, nl)) as { port: number }).port);
      } catch (err) {
        child.kill("SIGKILL");
        reject(new Error(`s3rver printed unexpected output: ${out}\n${stderr}`, { cause: err }));
      }
    });
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited during start (code ${code}, signal ${signal})\n${stderr}`));
    });
  });

  return {
    endpoint: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    stop: () => stopChild(child),
  };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
  child.stdin?.destroy();
  child.stdout?.destroy();
  child.stderr?.destroy();
}
