import { spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { pathToFileURL } from "node:url";

const NAMES = ["chromium", "chromium-browser", "google-chrome"];

/** Headless Chromium on PATH; a missing browser fails the test that needs it, never skips it. */
export function findChromium(): string {
  for (const dir of (process.env.PATH ?? "").split(delimiter).filter(Boolean)) {
    for (const name of NAMES) {
      const file = join(dir, name);
      try {
        accessSync(file, constants.X_OK);
        return file;
      } catch {
        // not here
      }
    }
  }
  throw new Error(`no chromium on PATH (looked for ${NAMES.join(", ")}): run scripts/install-test-deps.sh`);
}

/** Opens `htmlFile` in headless Chromium and writes a `width`x`height` PNG screenshot of it to `pngFile`. */
export async function screenshot(htmlFile: string, pngFile: string, options: { width: number; height: number; timeoutMs: number }): Promise<void> {
  const profile = mkdtempSync(join(tmpdir(), "lifeboat-chromium-"));
  const args = [
    "--headless",
    "--disable-gpu",
    "--no-sandbox",
    "--hide-scrollbars",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--force-device-scale-factor=1",
    `--user-data-dir=${profile}`,
    `--window-size=${options.width},${options.height}`,
    `--screenshot=${pngFile}`,
    pathToFileURL(htmlFile).href,
  ];
  try {
    await run(findChromium(), args, options.timeoutMs);
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

function run(file: string, args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    // "exit", not "close": the browser's helper processes may hold stderr open a little longer.
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`chromium exited with ${signal ?? `code ${code}`} (timeout ${timeoutMs}ms)\n${stderr}`));
    });
  });
}
