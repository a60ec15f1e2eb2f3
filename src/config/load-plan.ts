import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { isBackupId } from "../model/backup-id.js";
import { parseDurationMs } from "../model/duration.js";
import { LifeboatError } from "../model/errors.js";
import {
  parseTemplate,
  templateReferences,
  type BackupChoice,
  type Check,
  type CommandSpec,
  type NonInteractivePolicy,
  type RestorePlan,
  type Step,
  type Template,
} from "../model/plan.js";
import { SCRATCH_CONNECTION_KEYS, SCRATCH_FITS, type NamedScratch } from "../model/scratch.js";
import { registerSecret } from "../log/redact.js";
import { formatDiagnostics, sortDiagnostics, type Diagnostic } from "./diagnostics.js";
import { buildScratch, type LifeboatConfig, type Report } from "./load.js";
import { ACTION_KEYS, PlanSchema, StepSchema, STEP_OPTION_KEYS, type RawPlan, type RawStep } from "./plan-schema.js";
import { resolveReferences } from "./references.js";
import { ScratchSchema } from "./schema.js";
import { describeIssues, ownerOf } from "./zod-issues.js";
import { MAX_CONFIG_BYTES, parseYaml, type Path } from "./yaml-document.js";

/**
 * Reads and checks a restore plan against the config it runs with: every
 * job, scratch environment and `${scratch.NAME.KEY}` it names must exist and
 * fit. Problems are reported like config problems (file:line:col, all at once).
 */
export interface PlanCheck {
  plan: RestorePlan | undefined;
  diagnostics: Diagnostic[];
  report: string;
}

const DEFAULT_TIMEOUT_MS = 10 * 60_000;
const DEFAULT_RETRY_DELAY_MS = 2_000;
const DEFAULT_FALLBACK = 3;

export function loadPlan(file: string, config: LifeboatConfig, env: NodeJS.ProcessEnv = process.env): RestorePlan {
  const result = checkPlan(file, config, env);
  if (!result.plan) {
    throw new LifeboatError("PLAN_INVALID", result.report, { kind: "usage", details: { diagnostics: result.diagnostics } });
  }
  return result.plan;
}

export function checkPlan(file: string, config: LifeboatConfig, env: NodeJS.ProcessEnv = process.env): PlanCheck {
  const path = resolve(file);
  const diagnostics: Diagnostic[] = [];
  let text = "";
  const finish = (plan: RestorePlan | undefined): PlanCheck => {
    const sorted = sortDiagnostics(diagnostics);
    const failed = sorted.some((d) => d.severity === "error");
    return { plan: failed ? undefined : plan, diagnostics: sorted, report: formatDiagnostics(sorted, new Map([[file, text]])) };
  };
  try {
    const stat = statSync(path);
    if (!stat.isFile()) diagnostics.push(fileProblem(file, "is not a regular file"));
    else if (stat.size > MAX_CONFIG_BYTES) diagnostics.push(fileProblem(file, `is ${stat.size} bytes; plan files are limited to 1 MiB`));
    else text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    diagnostics.push(fileProblem(file, code === "ENOENT" ? "plan file not found" : `cannot read plan file (${code})`));
  }
  if (diagnostics.length) return finish(undefined);

  const parsed = parseYaml(file, text);
  diagnostics.push(...parsed.diagnostics);
  if (parsed.diagnostics.some((d) => d.severity === "error")) return finish(undefined);
  const problem: Report = (p, message, rule, options = {}) =>
    diagnostics.push({ file, ...parsed.locate(p, { key: options.atKey ?? false }), message, rule, severity: options.severity ?? "error" });

  const baseDir = dirname(path);
  const refs = resolveReferences(parsed.data ?? {}, { baseDir, env });
  for (const p of refs.problems) problem(p.path, p.message, "reference");
  for (const ref of refs.values) if (ref.scheme === "file" || ref.path.includes("env") || ref.path.includes("headers")) registerSecret(ref.value);

  const validated = PlanSchema.safeParse(refs.data);
  if (!validated.success) {
    const unresolved = new Set(refs.problems.map((p) => p.path.join(".")));
    for (const p of describeIssues(validated.error.issues, PlanSchema, refs.data)) {
      if (!unresolved.has(p.path.join("."))) problem(p.path, p.message, "schema", { atKey: p.atKey });
    }
    // The well-formed steps are still checked against the config, so every problem shows at once.
    const salvaged = salvage(refs.data);
    if (salvaged) buildPlan(file, text, salvaged, config, baseDir, problem, { warnings: false });
    return finish(undefined);
  }
  return finish(buildPlan(file, text, validated.data, config, baseDir, problem));
}

function fileProblem(file: string, message: string): Diagnostic {
  return { file, line: 0, col: 0, length: 1, message, rule: "file", severity: "error" };
}

/** The parts of a plan that passed the schema: its scratch entries and steps, each on its own. */
function salvage(data: unknown): RawPlan | undefined {
  if (!data || typeof data !== "object" || Array.isArray(data)) return undefined;
  const raw = data as Record<string, unknown>;
  const scratch: RawPlan["scratch"] = {};
  if (raw.scratch && typeof raw.scratch === "object") {
    for (const [name, entry] of Object.entries(raw.scratch)) {
      const parsed = ScratchSchema.safeParse(entry);
      if (parsed.success) scratch[name] = parsed.data;
    }
  }
  // Steps keep their index so that problems point at the right line; malformed ones become holes.
  const steps = Array.isArray(raw.steps) ? raw.steps.map((s) => StepSchema.safeParse(s)).map((r) => (r.success ? r.data : undefined)) : [];
  return {
    name: typeof raw.name === "string" ? raw.name : "plan",
    targets: {},
    manual: "skip",
    scratch,
    steps: steps as RawStep[],
    storage: typeof raw.storage === "string" ? raw.storage : undefined,
  };
}

function buildPlan(file: string, text: string, raw: RawPlan, config: LifeboatConfig, baseDir: string, problem: Report, options = { warnings: true }): RestorePlan {
  const scratch: NamedScratch[] = Object.entries(raw.scratch).map(([name, entry]) => ({
    name,
    spec: buildScratch(name, entry, baseDir, problem),
  }));
  const scratchByName = new Map(scratch.map((s) => [s.name, s]));
  const jobNames = Object.keys(config.jobs);

  const named = (p: Path, kind: string, wanted: string, known: string[]) => {
    if (known.includes(wanted)) return true;
    problem(p, `unknown ${kind} "${wanted}" ${ownerOf(p)}; ${known.length ? `expected one of: ${known.join(", ")}` : `the ${kind === "job" ? "config has no jobs" : "plan declares no scratch environments"}`}`, "schema");
    return false;
  };
  const checkTemplate = (p: Path, value: string): Template => {
    const template = parseTemplate(value);
    for (const ref of templateReferences(template)) {
      const env = scratchByName.get(ref.scratch);
      if (!env) {
        named(p, "scratch environment", ref.scratch, [...scratchByName.keys()]);
        continue;
      }
      const keys = env.spec.type === "command" ? undefined : SCRATCH_CONNECTION_KEYS[env.spec.type];
      if (keys && !keys.includes(ref.key)) problem(p, `scratch "${ref.scratch}" (${env.spec.type}) has no "${ref.key}" ${ownerOf(p)}; it has: ${keys.join(", ")}`, "schema");
    }
    if (/\$\{scratch\./.test(value.replace(/\$\{scratch\.[a-z0-9][a-z0-9_-]*\.[A-Za-z0-9_]+\}/g, ""))) {
      problem(p, `malformed reference ${ownerOf(p)}; write \${scratch.NAME.KEY}, e.g. \${scratch.db.url}`, "schema");
    }
    return template;
  };
  const command = (p: Path, fields: { command?: string[] | undefined; env?: Record<string, string> | undefined; cwd?: string | undefined }): CommandSpec => ({
    argv: (fields.command ?? []).map((arg, i) => checkTemplate([...p, "command", i], arg)),
    env: Object.fromEntries(Object.entries(fields.env ?? {}).map(([k, v]) => [k, checkTemplate([...p, "env", k], v)])),
    cwd: resolve(baseDir, fields.cwd ?? "."),
  });
  const scratchFor = (p: Path, on: string | undefined, form: string, kinds: readonly string[]): string => {
    if (on === undefined) {
      problem(p, `${form} check ${ownerOf(p)} needs "on": the scratch environment to look at`, "schema", { atKey: true });
      return "";
    }
    if (!named([...p, "on"], "scratch environment", on, [...scratchByName.keys()])) return on;
    const type = scratchByName.get(on)!.spec.type;
    if (!kinds.includes(type)) problem([...p, "on"], `a ${form} check cannot look at scratch "${on}" (${type}) ${ownerOf(p)}; it needs ${kinds.filter((k) => k !== "command").join(" or ")}`, "schema");
    return on;
  };
  const oneForm = (p: Path, fields: Record<string, unknown>, forms: Record<string, readonly string[]>): string | undefined => {
    const present = Object.keys(forms).filter((f) => fields[f] !== undefined);
    if (present.length !== 1) {
      problem(p, `${ownerOf(p).replace(/^in /, "")} needs exactly one of: ${Object.keys(forms).join(", ")}${present.length ? `; it has ${present.join(" and ")}` : ""}`, "schema", { atKey: true });
      return undefined;
    }
    const form = present[0]!;
    const allowed = new Set([form, ...forms[form]!, ...STEP_OPTION_KEYS]);
    for (const key of Object.keys(fields)) {
      if (fields[key] !== undefined && !allowed.has(key)) problem([...p, key], `${key} does not apply to a ${form} check ${ownerOf(p)}`, "schema", { atKey: true });
    }
    return form;
  };

  const steps: Step[] = [];
  const seen = new Map<string, number>();
  raw.steps.forEach((s, i) => {
    if (!s) return;
    const p: Path = ["steps", i];
    const earlier = seen.get(s.name);
    if (earlier !== undefined) problem([...p, "name"], `step name "${s.name}" is used by steps[${earlier}] too; step names must be unique`, "schema");
    seen.set(s.name, i);

    const actions = ACTION_KEYS.filter((k) => s[k] !== undefined);
    if (actions.length !== 1) {
      problem(p, `step "${s.name}" needs exactly one of: ${ACTION_KEYS.join(", ")}${actions.length ? `; it has ${actions.join(" and ")}` : ""}`, "schema");
      return;
    }
    const kind = actions[0]!;
    const body = s[kind]!;
    const inner = typeof body === "object" ? (body as Partial<Record<(typeof STEP_OPTION_KEYS)[number], unknown>>) : {};
    const options: Partial<RawStep> = {};
    for (const key of STEP_OPTION_KEYS) {
      if (s[key] !== undefined && inner[key] !== undefined) problem([...p, kind, key], `${key} of step "${s.name}" is given twice (in the step and in ${kind})`, "schema", { atKey: true });
      (options as Record<string, unknown>)[key] = s[key] ?? inner[key];
    }
    const ap: Path = [...p, kind];
    let action: Step["action"] | undefined;
    switch (kind) {
      case "restore": {
        const r = s.restore!;
        if (named([...ap, "job"], "job", r.job, jobNames) && named([...ap, "into"], "scratch environment", r.into, [...scratchByName.keys()])) {
          const source = config.jobs[r.job]!.source.type;
          const type = scratchByName.get(r.into)!.spec.type;
          if (!SCRATCH_FITS[source].includes(type)) {
            problem([...ap, "into"], `a ${source} backup cannot be restored into scratch "${r.into}" (${type}) ${ownerOf(ap)}; use a ${SCRATCH_FITS[source][0]} scratch environment`, "schema");
          }
        }
        const chosen = (["id", "at", "pick"] as const).filter((k) => r[k] !== undefined);
        if (chosen.length > 1) problem([...ap, chosen[1]!], `${chosen.join(" and ")} cannot be combined ${ownerOf(ap)}; choose the backup one way`, "schema", { atKey: true });
        if (r.id !== undefined && !isBackupId(r.id)) problem([...ap, "id"], `id ${ownerOf(ap)} is not a backup id like 20261121T190512Z-3f9a`, "schema");
        action = { kind: "restore", job: r.job, into: r.into, choice: choice(r), fallback: r.id !== undefined ? 0 : (r.fallback ?? DEFAULT_FALLBACK) };
        break;
      }
      case "verify": {
        const v = s.verify!;
        const form = oneForm(ap, v, {
          sql: ["on", "rows", "equals"],
          command: ["env", "cwd", "stdoutContains"],
          http: ["method", "status", "bodyContains", "headers"],
          files: ["on"],
        });
        if (form === undefined) return;
        let check: Check;
        if (form === "sql") {
          if (v.rows !== undefined && v.equals !== undefined) problem([...ap, "equals"], `rows and equals cannot be combined ${ownerOf(ap)}`, "schema", { atKey: true });
          if (v.rows?.min !== undefined && v.rows.max !== undefined && v.rows.min > v.rows.max) problem([...ap, "rows"], `rows ${ownerOf(ap)} has min greater than max`, "schema");
          const expect: Extract<Check, { type: "sql" }>["expect"] =
            v.rows !== undefined ? { type: "rows", min: v.rows.min, max: v.rows.max } : v.equals !== undefined ? { type: "equals", value: String(v.equals) } : { type: "true" };
          check = { type: "sql", on: scratchFor(ap, v.on, "sql", ["postgres", "mariadb", "command"]), sql: v.sql!, expect };
        } else if (form === "command") {
          check = { type: "command", command: command(ap, v), stdoutContains: v.stdoutContains };
        } else if (form === "http") {
          check = {
            type: "http",
            url: checkTemplate([...ap, "http"], v.http!),
            method: v.method ?? "GET",
            status: v.status === undefined ? [200] : Array.isArray(v.status) ? v.status : [v.status],
            bodyContains: v.bodyContains,
            headers: Object.fromEntries(Object.entries(v.headers ?? {}).map(([k, h]) => [k, checkTemplate([...ap, "headers", k], h)])),
          };
        } else {
          const f = v.files!;
          if (!f.exist?.length && !Object.keys(f.sha256 ?? {}).length) problem([...ap, "files"], `files check ${ownerOf(ap)} needs exist or sha256`, "schema");
          for (const [key, list] of [["exist", f.exist ?? []], ["sha256", Object.keys(f.sha256 ?? {})]] as const) {
            list.forEach((path, j) => {
              if (path.startsWith("/") || path.split(/[\\/]/).includes("..")) {
                problem([...ap, "files", key, key === "exist" ? j : path], `${path} ${ownerOf(ap)} must be a path inside the scratch folder (no leading /, no ..)`, "schema");
              }
            });
          }
          check = { type: "files", on: scratchFor(ap, v.on, "files", ["directory", "command"]), exist: f.exist ?? [], sha256: lowerValues(f.sha256 ?? {}) };
        }
        action = { kind: "verify", check };
        break;
      }
      case "rpo-probe": {
        const r = s["rpo-probe"]!;
        const form = oneForm(ap, r, { sql: ["on"], command: ["env", "cwd"] });
        if (form === undefined) return;
        action = {
          kind: "rpo-probe",
          probe:
            form === "sql"
              ? { type: "sql", on: scratchFor(ap, r.on, "sql", ["postgres", "mariadb", "command"]), sql: r.sql! }
              : { type: "command", command: command(ap, r), stdoutContains: undefined },
        };
        break;
      }
      case "run": {
        const r = s.run!;
        action = { kind: "run", command: command(ap, r), background: r.background ?? false };
        break;
      }
      case "manual": {
        const m = s.manual!;
        const policy: NonInteractivePolicy = typeof m === "string" ? raw.manual : (m.nonInteractive ?? raw.manual);
        action = { kind: "manual", instructions: typeof m === "string" ? m : m.instructions, nonInteractive: policy };
        break;
      }
    }
    const critical = options.critical ?? true;
    const ms = (value: string | undefined) => (value === undefined ? undefined : parseDurationMs(value));
    steps.push({
      name: s.name,
      action: action!,
      timeoutMs: ms(options.timeout) ?? (kind === "restore" || kind === "manual" ? undefined : DEFAULT_TIMEOUT_MS),
      retries: kind === "manual" ? 0 : (options.retries ?? 0),
      retryDelayMs: ms(options.retryDelay) ?? DEFAULT_RETRY_DELAY_MS,
      onError: options.onError ?? (critical ? "fail" : "continue"),
      critical,
    });
    if (kind === "manual" && options.retries !== undefined) problem([...p, "retries"], `retries ${ownerOf(p)} has no meaning for a manual step`, "schema", { atKey: true, severity: "warning" });
  });

  if (raw.at !== undefined && raw.pick !== undefined) problem(["pick"], "at and pick cannot be combined; choose the recovery point one way", "schema", { atKey: true });
  const storageNames = Object.keys(config.storage);
  let storage = raw.storage;
  if (storage !== undefined) named(["storage"], "storage", storage, storageNames);
  const firstRestore = steps.find((s) => s.action.kind === "restore")?.action as { job: string } | undefined;
  storage ??= (firstRestore && config.jobs[firstRestore.job]?.storage) || storageNames[0] || "";

  if (options.warnings && raw.targets.rto === undefined && raw.targets.rpo === undefined) {
    problem(["name"], `plan "${raw.name}" has no targets; the drill measures RTO and RPO but cannot miss them (add targets: { rto: 15m, rpo: 1h })`, "schema", { severity: "warning" });
  }
  for (const s of options.warnings ? scratch : []) {
    if (!steps.some((step) => mentions(step, s.name))) {
      problem(["scratch", s.name], `scratch "${s.name}" is never used by a step; it would be created and removed for nothing`, "schema", { atKey: true, severity: "warning" });
    }
  }

  return {
    name: raw.name,
    file,
    sha256: createHash("sha256").update(text).digest("hex"),
    targets: { rtoMs: raw.targets.rto === undefined ? undefined : parseDurationMs(raw.targets.rto), rpoMs: raw.targets.rpo === undefined ? undefined : parseDurationMs(raw.targets.rpo) },
    scratch,
    recoveryPoint: choice(raw) ?? { by: "latest" },
    storage,
    steps,
  };
}

function choice(fields: { id?: string | undefined; at?: string | undefined; pick?: { "random-within": string } | undefined }): BackupChoice | undefined {
  if (fields.id !== undefined) return { by: "id", id: fields.id };
  if (fields.at !== undefined) return { by: "at", at: new Date(fields.at) };
  if (fields.pick !== undefined) return { by: "random-within", withinMs: parseDurationMs(fields.pick["random-within"])! };
  return undefined;
}

function lowerValues(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, v.toLowerCase()]));
}

/** Whether a step uses a scratch environment (restores into it, checks it, or interpolates it). */
function mentions(step: Step, scratch: string): boolean {
  const a = step.action;
  const templates: Template[] = [];
  const addCommand = (c: CommandSpec) => templates.push(...c.argv, ...Object.values(c.env));
  if (a.kind === "restore") return a.into === scratch;
  if (a.kind === "verify") {
    const c = a.check;
    if (c.type === "sql" || c.type === "files") return c.on === scratch;
    if (c.type === "command") addCommand(c.command);
    if (c.type === "http") templates.push(c.url, ...Object.values(c.headers));
  }
  if (a.kind === "rpo-probe") {
    if (a.probe.type === "sql") return a.probe.on === scratch;
    addCommand(a.probe.command);
  }
  if (a.kind === "run") addCommand(a.command);
  return templates.some((t) => templateReferences(t).some((r) => r.scratch === scratch));
}

/**
 * The plan file `lifeboat drill PLAN` means: a drill named in the config, a
 * path to a file, or `plans/PLAN.yaml` next to the config.
 */
export function resolvePlanFile(plan: string, config: LifeboatConfig): string {
  const drill = config.drills[plan];
  if (drill) return relativeToCwd(drill);
  if (existsSync(plan) && statSync(plan).isFile()) return plan;
  const conventional = join(config.baseDir, "plans", `${plan}.yaml`);
  if (existsSync(conventional)) return relativeToCwd(conventional);
  const known = [...Object.keys(config.drills), ...listPlanFiles(config).map((f) => relative(process.cwd(), f))];
  throw new LifeboatError("PLAN_UNKNOWN", `no plan "${plan}": not a drill in ${config.file}, not a file, and no plans/${plan}.yaml`, {
    kind: "usage",
    hint: known.length ? `known plans: ${known.join(", ")}` : "write one in plans/ (see plans/demo.yaml)",
  });
}

/**
 * The plan files that belong to a config: the plans of its drills, or, when
 * it declares none, every `plans/*.yaml` next to it.
 */
export function listPlanFiles(config: LifeboatConfig): string[] {
  const files = new Set(Object.values(config.drills));
  if (files.size > 0) return [...files];
  const dir = join(config.baseDir, "plans");
  try {
    for (const name of readdirSync(dir).sort()) if (/\.ya?ml$/.test(name)) files.add(join(dir, name));
  } catch {
    // no plans folder
  }
  return [...files];
}

function relativeToCwd(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel.startsWith("..") ? path : rel;
}
