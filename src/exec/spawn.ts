import { Writable, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { execa } from "execa";
import { LifeboatError } from "../model/errors.js";
import { redactText } from "../log/redact.js";

/**
 * The only place that starts child processes. Always an argv array, never a
 * shell. A tool that exits with a code outside `okExitCodes`, is killed by a
 * signal, or cannot be found fails with a `LifeboatError` that names the tool,
 * the context (what Lifeboat was doing) and the last lines of its stderr.
 */
export interface ToolSpec {
  /** argv[0] and its arguments. */
  argv: readonly string[];
  /** What Lifeboat was doing, for errors: `backing up job "uploads"`. */
  context: string;
  /** Extra environment variables (secrets go here, never into argv). */
  env?: Record<string, string>;
  cwd?: string;
  /** Wire stdin as a stream (`pipe`) or not at all (`ignore`). */
  stdin?: "pipe" | "ignore";
  /**
   * Wire stdout as a stream (`pipe`), not at all (`ignore`), or straight into a
   * writable that has a file descriptor (another tool's stdin): the bytes then
   * never pass through Node.
   */
  stdout?: "pipe" | "ignore" | Writable;
  /** Exit codes that count as success (default: [0]). */
  okExitCodes?: readonly number[];
  /** Aborting terminates the tool (SIGTERM, then SIGKILL after 2 s). */
  signal?: AbortSignal;
  /** Wall-clock limit; the tool is killed when it is exceeded. */
  timeoutMs?: number;
  /** Run as this user (needs root); see `lookupUser`. */
  runAs?: SystemUser | undefined;
  /**
   * false: the tool gets only PATH, the locale and time zone plus `env`, not
   * Lifeboat's environment. For servers (scratch clusters) that would
   * otherwise carry storage credentials where any superuser can read them.
   */
  inheritEnv?: boolean | undefined;
  /**
   * Run the tool in a process group (and session) of its own, for commands
   * that start others (a plan's scripts, the application under test):
   * `kill()` signals the whole group, an abort signals it too, and when the
   * tool itself exits, whatever is left of its group (children it left
   * behind, which would hold its pipes open) is terminated: SIGTERM, then
   * SIGKILL after 2 s. Groups still alive when Lifeboat exits are killed.
   * A program that puts itself in a new session (setsid, a daemon) escapes.
   */
  processGroup?: boolean | undefined;
}

const BASE_ENV = ["PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ"];

function toolEnv(spec: ToolSpec): { env: Record<string, string | undefined>; extendEnv: boolean } {
  const own = spec.runAs ? { HOME: spec.runAs.home, USER: spec.runAs.name, LOGNAME: spec.runAs.name } : {};
  if (spec.inheritEnv !== false) return { env: { ...spec.env, ...own }, extendEnv: true };
  const base = Object.fromEntries(BASE_ENV.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]));
  return { env: { ...base, ...spec.env, ...own }, extendEnv: false };
}

export interface SystemUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface ToolExit {
  exitCode: number;
  /** The last lines of stderr (at most ~8 KiB), redacted. */
  stderrTail: string;
}

export interface RunningTool {
  /** The tool's stdin (when `stdin: "pipe"`); the caller ends it. */
  stdin: Writable | null;
  /** The tool's stdout (when `stdout: "pipe"`); the caller must consume it. */
  stdout: Readable | null;
  /** Resolves when the tool exits with an ok code; rejects with a LifeboatError otherwise. Never unhandled. */
  done: Promise<ToolExit>;
  /** The process id, for tests and sweeps. */
  pid: number | undefined;
  /** Kills the tool (its group, with `processGroup`) now (SIGKILL unless told otherwise); `done` then reports TOOL_KILLED. */
  kill(signal?: NodeJS.Signals): void;
}

const STDERR_TAIL_BYTES = 8 * 1024;

export function startTool(spec: ToolSpec): RunningTool {
  const [file, ...args] = spec.argv;
  if (!file) throw new LifeboatError("TOOL_ARGV_EMPTY", `empty command (${spec.context})`, { kind: "usage" });
  const toolName = file.split("/").pop() ?? file;

  const child = execa(file, args, {
    stdin: spec.stdin ?? "ignore",
    stdout: spec.stdout ?? "pipe",
    stderr: "pipe",
    buffer: false,
    // A tool started as another user must not inherit our HOME (it could not read it).
    ...toolEnv(spec),
    cwd: spec.cwd,
    cancelSignal: spec.signal,
    forceKillAfterDelay: 2_000,
    timeout: spec.timeoutMs,
    reject: false,
    stripFinalNewline: false,
    encoding: "buffer",
    ...(spec.runAs ? { uid: spec.runAs.uid, gid: spec.runAs.gid } : {}),
    ...(spec.processGroup ? { detached: true } : {}),
  });
  const group = spec.processGroup && child.pid !== undefined ? watchGroup(child, child.pid, spec.signal) : undefined;

  let tail = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    tail = (tail + chunk.toString("utf8")).slice(-STDERR_TAIL_BYTES);
  });
  // Errors on the child's pipes (EPIPE when a downstream stage failed first) are
  // reported through `done`; they must not crash the process.
  child.stdin?.on("error", () => {});
  child.stdout?.on("error", () => {});

  const done = child.then((result) => {
    const stderrTail = redactText(lastLines(tail, 20));
    const failure = describeFailure(result, spec, toolName);
    if (failure) {
      const { code, message, kind, hint } = failure;
      throw new LifeboatError(code, stderrTail ? `${message}\n${indent(stderrTail)}` : message, {
        kind,
        hint,
        details: { tool: toolName, exitCode: result.exitCode ?? null, signal: result.signal ?? null, stderrTail },
        cause: result.cause,
      });
    }
    return { exitCode: result.exitCode ?? 0, stderrTail };
  });
  done.catch(() => {});

  const kill = (signal: NodeJS.Signals = "SIGKILL") => {
    if (group === undefined || !signalGroup(group, signal)) child.kill(signal);
  };
  return { stdin: child.stdin ?? null, stdout: child.stdout ?? null, done, pid: child.pid, kill };
}

const GROUP_GRACE_MS = 2_000;
/** Process groups of running tools (`processGroup`), killed if Lifeboat exits first. */
const liveGroups = new Set<number>();
let exitHook = false;

function watchGroup(child: { once(event: "exit", listener: () => void): unknown }, pgid: number, signal: AbortSignal | undefined): number {
  if (!exitHook) {
    exitHook = true;
    process.on("exit", () => {
      for (const group of liveGroups) signalGroup(group, "SIGKILL");
    });
  }
  liveGroups.add(pgid);
  const onAbort = () => void signalGroup(pgid, "SIGTERM");
  signal?.addEventListener("abort", onAbort, { once: true });
  child.once("exit", () => {
    signal?.removeEventListener("abort", onAbort);
    if (!signalGroup(pgid, "SIGTERM")) return void liveGroups.delete(pgid);
    const timer = setTimeout(() => {
      signalGroup(pgid, "SIGKILL");
      liveGroups.delete(pgid);
    }, GROUP_GRACE_MS);
    timer.unref();
  });
  return pgid;
}

/** Signals every process of a group; false when the group is gone. */
function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts `first | … | last` with each tool's stdout handed to the next one's
 * stdin as a file descriptor, so the data flows between the processes
 * without passing through Node. The last tool's stdout is the chain's
 * output; the tools are returned in order.
 */
export function startToolChain(stages: readonly ToolSpec[]): RunningTool[] {
  const tools: RunningTool[] = [];
  let next: RunningTool | undefined;
  // From the end: each consumer's stdin pipe becomes its producer's stdout.
  for (let i = stages.length - 1; i >= 0; i--) {
    const spec = stages[i]!;
    let tool: RunningTool;
    try {
      tool = startTool({ ...spec, stdin: i === 0 ? spec.stdin : "pipe", stdout: next ? next.stdin! : (spec.stdout ?? "pipe") });
    } finally {
      // The producer holds the pipe's write end now; Node's copy must go, or the
      // consumer would never see end-of-file.
      next?.stdin!.destroy();
    }
    tools.unshift(tool);
    next = tool;
  }
  return tools;
}

/**
 * A relay for `startToolChain` that passes its input through unchanged and
 * reports how many bytes it passed (`dd` prints "N bytes … copied" on
 * stderr when it ends): the byte count of a stream that never passes
 * through Node. Read it with `relayedBytes`.
 */
export function byteCounter(context: string, signal?: AbortSignal): ToolSpec {
  return { argv: ["dd", "bs=1M"], context, ...(signal ? { signal } : {}) };
}

export function relayedBytes(exit: ToolExit): number {
  const copied = /^(\d+) bytes/m.exec(exit.stderrTail);
  if (!copied) throw new LifeboatError("TOOL_OUTPUT", "dd did not report how many bytes it copied", { kind: "run" });
  return Number(copied[1]);
}

/** Runs a tool to completion and returns its stdout as text (for version probes and small outputs). */
export async function runTool(spec: Omit<ToolSpec, "stdout">): Promise<ToolExit & { stdout: string }> {
  const tool = startTool({ ...spec, stdout: "pipe" });
  const chunks: Buffer[] = [];
  tool.stdout?.on("data", (c: Buffer) => chunks.push(c));
  const exit = await tool.done;
  return { ...exit, stdout: Buffer.concat(chunks).toString("utf8") };
}

interface Failure {
  code: string;
  message: string;
  kind: "run" | "interrupted";
  hint?: string;
}

function describeFailure(
  result: { exitCode?: number; signal?: string; isCanceled: boolean; timedOut: boolean; cause?: unknown; failed: boolean },
  spec: ToolSpec,
  toolName: string,
): Failure | undefined {
  const ok = spec.okExitCodes ?? [0];
  if (result.isCanceled) {
    return { code: "INTERRUPTED", message: `${toolName} was stopped because the run was interrupted (${spec.context})`, kind: "interrupted" };
  }
  if (result.timedOut) {
    return { code: "TOOL_TIMEOUT", message: `${toolName} timed out after ${spec.timeoutMs} ms (${spec.context})`, kind: "run" };
  }
  const cause = result.cause as { code?: string } | undefined;
  if (cause?.code === "ENOENT" && result.exitCode === undefined) {
    return {
      code: "TOOL_NOT_FOUND",
      message: `${toolName} was not found (${spec.context})`,
      kind: "run",
      hint: `install ${toolName} or put it on PATH`,
    };
  }
  if (result.signal) {
    return { code: "TOOL_KILLED", message: `${toolName} was killed by ${result.signal} (${spec.context})`, kind: "run" };
  }
  if (result.exitCode === undefined) {
    return { code: "TOOL_FAILED", message: `${toolName} could not be started (${spec.context})`, kind: "run" };
  }
  if (!ok.includes(result.exitCode)) {
    return { code: "TOOL_FAILED", message: `${toolName} failed with exit code ${result.exitCode} (${spec.context})`, kind: "run" };
  }
  return undefined;
}

function lastLines(text: string, count: number): string {
  return text.trimEnd().split(/\r?\n/).slice(-count).join("\n");
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}

/**
 * Streams `input` into a restore tool's stdin and waits for both. If the
 * input fails (wrong bytes, a broken download), the tool is killed before its
 * stdin closes, so it never takes a cut-short input for a complete one (and
 * never commits it). The error reported is the one that explains the rest:
 * the input's own failure, else the tool's exit — never "stopped reading",
 * which only echoes the tool's exit.
 */
export async function feedTool(input: Readable, spec: ToolSpec): Promise<ToolExit> {
  const tool = startTool({ ...spec, stdin: "pipe", stdout: spec.stdout ?? "ignore" });
  input.once("error", (error) => {
    if (!(error instanceof LifeboatError && error.code === "TOOL_STOPPED_READING")) tool.kill();
  });
  const toolName = spec.argv[0]?.split("/").pop() ?? "tool";
  const [piped, exited] = await Promise.allSettled([pipeline(input, toolInput(tool.stdin!, { afterClose: "fail", toolName })), tool.done]);
  const inputFailed = piped.status === "rejected" && piped.reason instanceof LifeboatError && piped.reason.code !== "TOOL_STOPPED_READING";
  if (inputFailed) throw piped.reason;
  if (exited.status === "rejected") throw exited.reason;
  if (piped.status === "rejected") throw piped.reason;
  return exited.value;
}

/**
 * A Writable that feeds a tool's stdin with backpressure. Tools may stop
 * reading before the stream ends (GNU tar stops at the end-of-archive marker
 * and leaves the padding unread); `afterClose` says what happens to bytes
 * that arrive once the tool closed its stdin: "discard" them (the tool's exit
 * code decides success), or "fail" (the tool must read everything).
 * Either way the upstream is read to its end, so hashes over it complete.
 */
export function toolInput(stdin: Writable, options: { afterClose: "discard" | "fail"; toolName: string }): Writable {
  let closed = false;
  const markClosed = () => {
    closed = true;
  };
  stdin.on("close", markClosed);
  stdin.on("error", markClosed);
  const closedEarly = () =>
    new LifeboatError("TOOL_STOPPED_READING", `${options.toolName} stopped reading its input before the end of the backup`, { kind: "run" });
  return new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      if (closed) return callback(options.afterClose === "discard" ? null : closedEarly());
      if (stdin.write(chunk)) return callback();
      const resume = () => {
        stdin.off("drain", resume);
        stdin.off("close", resume);
        callback();
      };
      stdin.once("drain", resume);
      stdin.once("close", resume);
    },
    final(callback) {
      if (closed) return callback();
      stdin.once("close", () => callback());
      stdin.end();
    },
    destroy(error, callback) {
      // Upstream failed: close the tool's input so it sees EOF and exits instead of waiting forever.
      if (!closed) stdin.destroy();
      callback(error);
    },
  });
}
