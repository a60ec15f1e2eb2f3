import type { NamedScratch } from "./scratch.js";

/**
 * A restore plan (`plans/*.yaml`): scratch environments to create, then steps
 * run in order, then teardown. Built and checked by `config/load-plan.ts`,
 * run by `drill/`. Pure data: every reference (jobs, scratch names) was
 * checked against the config when the plan was loaded.
 */
export interface RestorePlan {
  name: string;
  /** The plan file as the user named it. */
  file: string;
  /** SHA-256 of the plan file's text, so a report names exactly what ran. */
  sha256: string;
  targets: Targets;
  /** Created before the first step, in this order; torn down in reverse. */
  scratch: NamedScratch[];
  /** The recovery point every restore step uses unless it chooses its own. */
  recoveryPoint: BackupChoice;
  /** The storage that keeps this plan's drill reports. */
  storage: string;
  steps: Step[];
}

export interface Targets {
  rtoMs: number | undefined;
  rpoMs: number | undefined;
}

/** Which backup a restore step uses. The newest fitting one, unless `id`. */
export type BackupChoice =
  | { by: "latest" }
  | { by: "id"; id: string }
  | { by: "at"; at: Date }
  /** A random recovery point within this window before t0 (AWS Backup restore testing's "random within"). */
  | { by: "random-within"; withinMs: number };

/** What a manual step does when nobody can confirm it at a terminal. */
export type NonInteractivePolicy = "skip" | "wait" | "fail";

export type StepKind = Step["action"]["kind"];

export interface Step {
  name: string;
  action: RestoreAction | VerifyAction | RpoProbeAction | RunAction | ManualAction;
  /** Per attempt; undefined means no limit. */
  timeoutMs: number | undefined;
  /** Extra attempts after a failure (readiness checks). */
  retries: number;
  retryDelayMs: number;
  /** After this step fails: stop the drill, or go on with the next step. */
  onError: "fail" | "continue";
  /** A critical step failing fails the drill; an optional one makes it `partial`. */
  critical: boolean;
}

export interface RestoreAction {
  kind: "restore";
  job: string;
  /** The scratch environment (by name) the backup is restored into. */
  into: string;
  /** undefined: the plan's recovery point. */
  choice: BackupChoice | undefined;
  /** How many older backups to try when a backup fails its integrity check. */
  fallback: number;
}

export interface VerifyAction {
  kind: "verify";
  check: Check;
}

export interface RpoProbeAction {
  kind: "rpo-probe";
  /** Prints (or returns) the newest timestamp in the restored data. */
  probe: SqlQuery | CommandCheck;
}

export interface RunAction {
  kind: "run";
  command: CommandSpec;
  /** Keep it running (e.g. the application) until teardown; the step passes once it started. */
  background: boolean;
}

export interface ManualAction {
  kind: "manual";
  /** What the person has to do. */
  instructions: string;
  nonInteractive: NonInteractivePolicy;
}

export type Check = SqlCheck | CommandCheck | HttpCheck | FilesCheck;

export interface SqlQuery {
  type: "sql";
  /** The scratch environment (a database) the query runs on. */
  on: string;
  sql: string;
}

export interface SqlCheck extends SqlQuery {
  expect: { type: "true" } | { type: "rows"; min: number | undefined; max: number | undefined } | { type: "equals"; value: string };
}

export interface CommandCheck {
  type: "command";
  command: CommandSpec;
  /** Also require this text in the command's standard output. */
  stdoutContains: string | undefined;
}

export interface HttpCheck {
  type: "http";
  url: Template;
  method: "GET" | "HEAD" | "POST";
  /** Accepted status codes. */
  status: number[];
  bodyContains: string | undefined;
  headers: Record<string, Template>;
}

export interface FilesCheck {
  type: "files";
  /** The scratch environment (a folder) the paths are relative to. */
  on: string;
  exist: string[];
  /** Relative path → expected SHA-256 (hex). */
  sha256: Record<string, string>;
}

export interface CommandSpec {
  argv: Template[];
  env: Record<string, Template>;
  /** Absolute; default the plan file's folder. */
  cwd: string;
}

/**
 * A string with `${scratch.NAME.KEY}` references, kept structured so each
 * value is substituted on its own (never through a shell).
 */
export type Template = ReadonlyArray<string | ScratchReference>;

export interface ScratchReference {
  scratch: string;
  key: string;
}

const SCRATCH_REFERENCE = /\$\{scratch\.([a-z0-9][a-z0-9_-]*)\.([A-Za-z0-9_]+)\}/g;

/** `postgres://${scratch.db.host}:5432` → ["postgres://", {scratch: "db", key: "host"}, ":5432"]. */
export function parseTemplate(text: string): Template {
  const parts: Array<string | ScratchReference> = [];
  let last = 0;
  for (const match of text.matchAll(SCRATCH_REFERENCE)) {
    if (match.index > last) parts.push(text.slice(last, match.index));
    parts.push({ scratch: match[1]!, key: match[2]! });
    last = match.index + match[0].length;
  }
  if (last < text.length || parts.length === 0) parts.push(text.slice(last));
  return parts;
}

/** Fills a template; `lookup` throws for an unknown environment or key. */
export function renderTemplate(template: Template, lookup: (reference: ScratchReference) => string): string {
  return template.map((part) => (typeof part === "string" ? part : lookup(part))).join("");
}

/** The template as written in the plan, for messages. */
export function templateText(template: Template): string {
  return template.map((part) => (typeof part === "string" ? part : `\${scratch.${part.scratch}.${part.key}}`)).join("");
}

/** Every scratch reference in a template. */
export function templateReferences(template: Template): ScratchReference[] {
  return template.filter((part): part is ScratchReference => typeof part !== "string");
}
