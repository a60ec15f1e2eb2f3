import { promises as fs } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type { Readable } from "node:stream";
import { startTool, type RunningTool, type ToolExit, type ToolSpec } from "../../exec/spawn.js";
import { redactText, registerSecret } from "../../log/redact.js";
import { LifeboatError } from "../../model/errors.js";
import { templateReferences, templateText, type CommandCheck, type CommandSpec, type Template } from "../../model/plan.js";
import { parseTimestamp } from "../../model/timestamp.js";
import type { CheckContext, CheckResult } from "./check.js";

/**
 * A plan's own commands: command checks, command rpo-probes, `run` steps in
 * the foreground and in the background (the application under test).
 *
 * - argv is used as written, each element rendered on its own (never a
 *   shell); a relative program path (`./scripts/smoke.sh`) is resolved
 *   against the command's folder (`cwd`, by default the plan's folder), a
 *   bare name is looked up on PATH.
 * - The environment is not Lifeboat's (which may hold storage credentials):
 *   PATH, the locale and TZ, HOME and USER, plus the command's rendered
 *   `env`. Values of scratch keys that look secret (password, secret,
 *   token) are registered for redaction.
 * - The command runs in a process group of its own: a timeout or interrupt
 *   (the attempt's signal) terminates it and everything it started, and
 *   children it leaves behind when it exits are terminated too.
 * - Standard output is kept up to its last 1 MiB (what `stdoutContains` and
 *   probes read); the report gets the end of stdout and stderr.
 */
export interface PlanCommandResult {
  /** Standard output (its last 1 MiB). */
  stdout: string;
  /** The end of stdout and stderr, for the report. */
  output: string;
}

export interface BackgroundProcess {
  pid: number | undefined;
  /** Settles when the process exits (never rejects); exitCode is null when a signal ended it. */
  exited: Promise<{ exitCode: number | null; output: string }>;
  /** SIGTERM to its process group, SIGKILL after 5 s; resolves once it exited. Idempotent. */
  stop(): Promise<void>;
}

const MAX_STDOUT_BYTES = 1024 * 1024;
const BACKGROUND_OUTPUT_BYTES = 64 * 1024;
const REPORT_OUTPUT_BYTES = 8 * 1024;
const REPORT_OUTPUT_LINES = 40;
/** A background command that fails within this long did not start. */
const START_WINDOW_MS = 200;
const STOP_GRACE_MS = 5_000;
/** Every exit code counts as a finished run here; this module decides what a non-zero one means. */
const ANY_EXIT_CODE = Array.from({ length: 256 }, (_, i) => i);
const SECRET_KEY = /pass|secret|token/i;

/**
 * Runs a plan command to completion. Exit code 0 passes; another fails with
 * CHECK_FAILED (kind "verification") naming the code, with the end of
 * stderr. A program that cannot be found or started fails with
 * COMMAND_NOT_FOUND / COMMAND_FAILED (kind "run"); a command cut short by
 * the attempt's signal with CHECK_TIMEOUT or INTERRUPTED (see `stoppedError`).
 */
export async function runPlanCommand(spec: CommandSpec, ctx: CheckContext, options: { context?: string } = {}): Promise<PlanCommandResult> {
  const command = await prepare(spec, ctx, options.context);
  let tool: RunningTool;
  try {
    tool = startTool({ ...command.tool, stdout: "pipe", signal: ctx.signal, okExitCodes: ANY_EXIT_CODE });
  } catch (error) {
    throw commandError(error, command, ctx);
  }
  const stdout = tailOf(tool.stdout!, MAX_STDOUT_BYTES);
  let exit: ToolExit;
  try {
    exit = await tool.done;
  } catch (error) {
    throw commandError(error, command, ctx, reportOutput(stdout(), ""));
  }
  const text = stdout();
  const output = reportOutput(text, exit.stderrTail);
  if (exit.exitCode !== 0) {
    throw new LifeboatError("CHECK_FAILED", withTail(`${command.label} exited with code ${exit.exitCode}${command.where}`, exit.stderrTail), {
      kind: "verification",
      details: { exitCode: exit.exitCode, stderrTail: exit.stderrTail, output },
    });
  }
  return { stdout: text, output };
}

/** A `verify: { command }` step: exit code 0, and `stdoutContains` in its output when given. */
export async function runCommandCheck(check: CommandCheck, ctx: CheckContext): Promise<CheckResult> {
  const { stdout, output } = await runPlanCommand(check.command, ctx);
  const needle = check.stdoutContains;
  if (needle !== undefined && !stdout.includes(needle)) {
    throw new LifeboatError("CHECK_FAILED", `${programLabel(check.command)} exited with code 0 but its output does not contain ${JSON.stringify(needle)}${ending(stdout)}`, {
      kind: "verification",
      details: { output },
    });
  }
  return { note: needle === undefined ? "exit code 0" : `exit code 0, output contains ${JSON.stringify(needle)}`, output };
}

/** An rpo-probe command: the last non-empty line it prints is the newest timestamp in the restored data (see `parseTimestamp`). */
export async function readProbeCommand(check: CommandCheck, ctx: CheckContext): Promise<Date> {
  const { stdout } = await runPlanCommand(check.command, ctx, { context: "rpo probe" });
  const line = stdout
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean)
    .pop();
  const label = programLabel(check.command);
  if (line === undefined) {
    throw new LifeboatError("PROBE_FAILED", `rpo probe ${label} printed nothing; expected the newest timestamp in the restored data`, { kind: "verification" });
  }
  const at = parseTimestamp(line);
  if (!at) {
    throw new LifeboatError("PROBE_FAILED", `rpo probe ${label} printed ${quoteShort(line)} as its last line, which is not a timestamp`, {
      kind: "verification",
      hint: "print an ISO 8601 time with an offset (2026-11-21T19:42:32Z) or Unix seconds as the last line",
    });
  }
  return at;
}

/**
 * Starts a long-running command (a `run` step with `background: true`, e.g.
 * the application under test) and resolves once it runs: a command that
 * fails within the first ~200 ms fails the step (CHECK_FAILED, with its
 * stderr); one that exits 0 that fast passes. It is not tied to the step's
 * signal (which may fire after the step passed): an interrupt or timeout
 * during the start stops it, after that only `stop()` does (teardown).
 */
export async function startBackgroundCommand(spec: CommandSpec, ctx: CheckContext, name: string): Promise<BackgroundProcess> {
  const command = await prepare(spec, ctx, `background command "${name}"`);
  let tool: RunningTool;
  try {
    tool = startTool({ ...command.tool, stdout: "pipe", okExitCodes: ANY_EXIT_CODE });
  } catch (error) {
    throw commandError(error, command, ctx);
  }
  const stdout = tailOf(tool.stdout!, BACKGROUND_OUTPUT_BYTES);
  const exited = tool.done.then(
    (exit) => ({ exitCode: exit.exitCode as number | null, output: reportOutput(stdout(), exit.stderrTail), failure: undefined as unknown }),
    (error: unknown) => {
      const details = error instanceof LifeboatError ? error.details : undefined;
      const stderrTail = typeof details?.stderrTail === "string" ? details.stderrTail : "";
      const exitCode = typeof details?.exitCode === "number" ? details.exitCode : null;
      return { exitCode, output: reportOutput(stdout(), stderrTail), failure: error };
    },
  );

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      tool.kill("SIGTERM");
      if (!(await settlesWithin(exited, STOP_GRACE_MS))) tool.kill("SIGKILL");
      await exited;
    })();
    return stopping;
  };
  const background: BackgroundProcess = { pid: tool.pid, exited: exited.then(({ exitCode, output }) => ({ exitCode, output })), stop };

  let onAbort = () => {};
  const aborted = new Promise<"aborted">((resolve) => {
    onAbort = () => resolve("aborted");
    if (ctx.signal.aborted) onAbort();
    ctx.signal.addEventListener("abort", onAbort, { once: true });
  });
  const early = await Promise.race([exited, aborted, delay(START_WINDOW_MS)]);
  ctx.signal.removeEventListener("abort", onAbort);
  if (early === "aborted") {
    await stop();
    throw stoppedError(ctx.signal, `${command.label}${command.where}`);
  }
  if (early && typeof early === "object") {
    if (early.failure !== undefined && early.exitCode === null && !isKilled(early.failure)) throw commandError(early.failure, command, ctx);
    if (early.exitCode !== 0) {
      const how = early.exitCode === null ? "was killed" : `exited with code ${early.exitCode}`;
      throw new LifeboatError("CHECK_FAILED", withTail(`${command.label} ${how} right after it started${command.where}`, early.output), {
        kind: "verification",
        details: { exitCode: early.exitCode, output: early.output },
      });
    }
  }
  return background;
}

/**
 * The error for a check cut short by its attempt's signal: the signal's own
 * reason when it is a LifeboatError (the engine's words), CHECK_TIMEOUT
 * (kind "run") for a timeout (`AbortSignal.timeout`), else INTERRUPTED.
 */
export function stoppedError(signal: AbortSignal, what: string): LifeboatError {
  const reason: unknown = signal.reason;
  if (reason instanceof LifeboatError) return reason;
  if ((reason as { name?: unknown } | undefined)?.name === "TimeoutError") {
    return new LifeboatError("CHECK_TIMEOUT", `${what} timed out`, { kind: "run", cause: reason });
  }
  return new LifeboatError("INTERRUPTED", `${what} was stopped because the run was interrupted`, { kind: "interrupted", cause: reason });
}

interface PreparedCommand {
  tool: Omit<ToolSpec, "stdout" | "signal" | "okExitCodes">;
  /** The program as the plan wrote it (never rendered, so never a secret): `command ./scripts/smoke.sh`. */
  label: string;
  /** ` (context)` or nothing. */
  where: string;
  program: string;
  cwd: string;
}

async function prepare(spec: CommandSpec, ctx: CheckContext, context: string | undefined): Promise<PreparedCommand> {
  const label = programLabel(spec);
  const where = context ? ` (${context})` : "";
  const stat = await fs.stat(spec.cwd).catch(() => undefined);
  if (!stat?.isDirectory()) {
    throw new LifeboatError("COMMAND_CWD_MISSING", `the folder ${spec.cwd} that ${label} runs in does not exist${where}`, { kind: "usage" });
  }
  for (const template of [...spec.argv, ...Object.values(spec.env)]) registerSecretReferences(template, ctx);
  const argv = spec.argv.map((part) => ctx.render(part));
  const [program = ""] = argv;
  if (program.includes("/") && !isAbsolute(program)) argv[0] = resolve(spec.cwd, program);
  const env: Record<string, string> = {};
  for (const key of ["HOME", "USER"]) if (process.env[key] !== undefined) env[key] = process.env[key]!;
  for (const [key, value] of Object.entries(spec.env)) env[key] = ctx.render(value);
  return {
    tool: { argv, env, cwd: spec.cwd, context: context ?? `running ${label}`, inheritEnv: false, processGroup: true },
    label,
    where,
    program,
    cwd: spec.cwd,
  };
}

function programLabel(spec: CommandSpec): string {
  const first = spec.argv[0];
  return `command ${first ? templateText(first) : "(empty)"}`;
}

function registerSecretReferences(template: Template, ctx: CheckContext): void {
  for (const reference of templateReferences(template)) {
    if (SECRET_KEY.test(reference.key)) registerSecret(ctx.render([reference]));
  }
}

/** A failure to run (rather than a non-zero exit) in the words of the plan. */
function commandError(error: unknown, command: PreparedCommand, ctx: CheckContext, output?: string): unknown {
  if (!(error instanceof LifeboatError)) return error;
  if (error.code === "INTERRUPTED" && ctx.signal.aborted) return stoppedError(ctx.signal, `${command.label}${command.where}`);
  if (error.code === "TOOL_NOT_FOUND") {
    const relative = command.program.includes("/") && !isAbsolute(command.program);
    return new LifeboatError("COMMAND_NOT_FOUND", `${command.label} was not found${relative ? ` in ${command.cwd}` : " on PATH"}${command.where}`, {
      kind: "run",
      hint: relative ? "relative program paths are resolved against the command's folder (cwd:, by default the plan's folder)" : "install it, or give its path",
      cause: error,
    });
  }
  if (error.code === "TOOL_FAILED" && error.details?.exitCode === null) {
    const cause = (error.cause as { code?: unknown } | undefined)?.code;
    const why = cause === "EACCES" ? ": permission denied (is it executable?)" : cause === "ENOEXEC" ? ": not a program or script it can run" : "";
    return new LifeboatError("COMMAND_FAILED", `${command.label} could not be started${why}${command.where}`, { kind: "run", cause: error });
  }
  if (isKilled(error)) {
    return new LifeboatError("CHECK_FAILED", withTail(`${command.label} was killed by ${String(error.details?.signal)}${command.where}`, error.details?.stderrTail as string), {
      kind: "verification",
      details: { ...error.details, ...(output ? { output } : {}) },
      cause: error,
    });
  }
  return error;
}

function isKilled(error: unknown): error is LifeboatError {
  return error instanceof LifeboatError && error.code === "TOOL_KILLED";
}

/** Keeps the last `maxBytes` of a stream; returns a reader of the text so far. */
function tailOf(stream: Readable, maxBytes: number): () => string {
  const chunks: Buffer[] = [];
  let size = 0;
  stream.on("data", (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    while (chunks.length > 1 && size - chunks[0]!.length >= maxBytes) size -= chunks.shift()!.length;
  });
  return () => {
    const all = Buffer.concat(chunks);
    return all.subarray(Math.max(0, all.length - maxBytes)).toString("utf8");
  };
}

/** The end of stdout, then the end of stderr, for the report. */
function reportOutput(stdout: string, stderrTail: string): string {
  const out = lastLines(stdout, REPORT_OUTPUT_LINES, REPORT_OUTPUT_BYTES);
  const err = stderrTail.trimEnd();
  if (!err) return out;
  return out ? `${out}\n[stderr]\n${err}` : `[stderr]\n${err}`;
}

function lastLines(text: string, lines: number, bytes: number): string {
  const kept = text.trimEnd().split(/\r?\n/).slice(-lines).join("\n");
  return kept.length > bytes ? kept.slice(-bytes) : kept;
}

function withTail(message: string, tail: string | undefined): string {
  const text = (tail ?? "").trimEnd();
  if (!text) return message;
  return `${message}\n${lastLines(text, 20, 4096)
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n")}`;
}

function ending(stdout: string): string {
  const tail = redactText(lastLines(stdout, 5, 500));
  return tail ? `; it ended with:\n${tail.split("\n").map((l) => `  ${l}`).join("\n")}` : "; it printed nothing";
}

function quoteShort(text: string): string {
  return redactText(JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text));
}

function delay(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms).unref());
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
