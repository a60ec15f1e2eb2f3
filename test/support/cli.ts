import { spawn } from "node:child_process";
import { resolve } from "node:path";

/**
 * The built CLI, run as a user would: a child process with argv, reading a
 * real lifeboat.yaml, talking to the real radosgw started by the test setup.
 */
export const CLI = resolve("dist/cli/main.js");

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Run through this command first, e.g. ["runuser", "-u", "nobody", "--"]. */
  prefix?: string[];
  onSpawn?: (child: ReturnType<typeof spawn>) => void;
}

export function lifeboat(args: string[], options: RunOptions = {}): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const [program, ...programArgs] = [...(options.prefix ?? []), process.execPath, CLI, ...args];
    const child = spawn(program!, programArgs, {
      cwd: options.cwd,
      env: { ...process.env, LIFEBOAT_LOG_LEVEL: "info", ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code, signal) => resolvePromise({ code, signal, stdout, stderr }));
    options.onSpawn?.(child);
  });
}

