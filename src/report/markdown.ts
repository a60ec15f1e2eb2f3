import { formatDuration } from "../model/duration.js";
import type { BackupUsed, DrillReport, StepReport } from "../model/drill-report.js";
import { formatBytes } from "../model/size.js";
import {
  attemptsText,
  describeProblem,
  formatMs,
  formatOffset,
  formatUtc,
  metWord,
  recoveryPointText,
  rpoFacts,
  rtoFacts,
} from "./format.js";
import { oneLine, visibleText } from "./text.js";

/** `report.md`: the drill for people reading it in a repository, a ticket or an audit folder. */
export function renderMarkdown(report: DrillReport): string {
  return [
    ...header(report),
    ...targets(report),
    ...phases(report),
    ...steps(report),
    ...backups(report),
    ...provisioning(report),
    ...teardown(report),
    ...environment(report),
    ...outputs(report),
  ].join("\n");
}

function header(report: DrillReport): string[] {
  return [
    `# Drill report: ${inline(report.plan.name)}`,
    "",
    `**Verdict: ${report.verdict.toUpperCase()}** — ${inline(report.summary)}`,
    "",
    ...table(
      ["", ""],
      [
        ["drill", code(report.drillId)],
        ["plan", `${code(report.plan.file)} (sha256 ${code(report.plan.sha256)})`],
        ["started (t0)", formatUtc(report.t0)],
        ["finished", formatUtc(report.finishedAt)],
        ["duration", `${formatDuration(report.durationMs)}, teardown included`],
        ["recovery point", inline(recoveryPointText(report))],
      ],
    ),
  ];
}

function targets(report: DrillReport): string[] {
  const { rpo } = report;
  const rows = [rtoFacts(report), rpoFacts(report)].map((f) => [f.label, f.actual, f.target, metWord(f.met), inline(f.detail)]);
  return [
    "## Targets",
    "",
    ...table(["", "actual", "target", "result", "how"], rows),
    `RPO readings: from backup metadata ${formatMs(rpo.fromMetadataMs)}, from the restored data (probe) ${formatMs(rpo.fromProbeMs)}; the worse one counts.`,
    "",
  ];
}

function phases(report: DrillReport): string[] {
  const p = report.phases;
  return [
    "## Phases",
    "",
    ...table(
      ["phase", "total"],
      [
        ["provision", formatDuration(p.provisionMs)],
        ["fetch", formatDuration(p.fetchMs)],
        ["decode (decrypt and decompress)", formatDuration(p.decodeMs)],
        ["restore", formatDuration(p.restoreMs)],
        ["verify", formatDuration(p.verifyMs)],
      ],
    ),
    "Fetch, decode and restore run at once in a stream, so they overlap and do not add up.",
    "",
  ];
}

function steps(report: DrillReport): string[] {
  const rows = report.steps.map((step) => [
    String(step.index + 1),
    inline(step.name),
    step.kind + (step.critical ? "" : " (optional)"),
    step.status,
    formatOffset(step.startMs),
    [formatMs(step.durationMs), attemptsText(step)].filter(Boolean).join(", "),
    inline(stepNote(step)),
    step.error ? inline(describeProblem(step.error)) + (step.error.hint ? ` — hint: ${inline(step.error.hint)}` : "") : "",
  ]);
  return ["## Steps", "", ...table(["#", "step", "kind", "status", "start", "duration", "note", "error"], rows)];
}

function stepNote(step: StepReport): string {
  const probe = step.probe ? `newest data ${formatUtc(step.probe.value)}, RPO ${formatDuration(step.probe.rpoMs)}` : undefined;
  return [step.note, probe].filter(Boolean).join("; ");
}

function backups(report: DrillReport): string[] {
  if (report.backups.length === 0) return ["## Backups used", "", "No backup was restored.", ""];
  return ["## Backups used", "", ...report.backups.flatMap(backup)];
}

function backup(used: BackupUsed): string[] {
  const fallbacks = used.fallbackFrom.map(
    (f) => `  - ${code(f.id)}${f.consistentAt ? ` (consistent at ${formatUtc(f.consistentAt)})` : ""}: ${inline(f.message)} [${inline(f.code)}]`,
  );
  return [
    `### ${inline(used.job)}: ${code(used.id)}`,
    "",
    `- restored by step ${inline(used.step)}`,
    `- consistent at ${formatUtc(used.consistentAt)}, ${formatDuration(used.ageMs)} old at t0`,
    `- ${formatBytes(used.sizeBytes)}, codec ${used.codec.map(inline).join(" → ")}`,
    ...(fallbacks.length > 0 ? ["- newer backups tried first and rejected:", ...fallbacks] : []),
    "",
    ...table(
      ["object", "size", "sha256"],
      used.objects.map((o) => [code(o.key), formatBytes(o.sizeBytes), code(o.sha256)]),
    ),
  ];
}

function provisioning(report: DrillReport): string[] {
  const rows = report.provisioning.map((p) => [
    inline(p.scratch),
    inline(p.type),
    p.status,
    formatOffset(p.startMs),
    formatMs(p.startMs !== null && p.endMs !== null ? p.endMs - p.startMs : null),
    Object.entries(p.versions).map(([tool, version]) => inline(`${tool} ${version}`)).join(", "),
    p.error ? inline(describeProblem(p.error)) : "",
  ]);
  return ["## Provisioning", "", ...table(["scratch", "type", "status", "start", "duration", "versions", "error"], rows)];
}

function teardown(report: DrillReport): string[] {
  const rows = report.teardown.map((t) => [
    inline(t.name),
    t.what,
    t.status,
    formatOffset(t.startMs),
    formatDuration(t.endMs - t.startMs),
    t.error ? inline(describeProblem(t.error)) : "",
  ]);
  return [
    "## Teardown",
    "",
    "Runs after the steps, in reverse order of creation; not part of the RTO.",
    "",
    ...table(["name", "what", "status", "start", "duration", "error"], rows),
  ];
}

function environment(report: DrillReport): string[] {
  const env = report.environment;
  const tools = Object.entries(env.tools).map(([tool, version]) => [inline(tool), inline(version)]);
  return [
    "## Environment",
    "",
    ...table(
      ["", ""],
      [
        ["lifeboat", inline(env.lifeboat)],
        ["node", inline(env.node)],
        ["platform", inline(`${env.platform} ${env.arch}`)],
        ["host", inline(`${env.host} (${env.cpus} CPUs)`)],
      ],
    ),
    ...(tools.length > 0 ? ["### Tool versions", "", ...table(["tool", "version"], tools)] : []),
  ];
}

function outputs(report: DrillReport): string[] {
  const withOutput = report.steps.filter((step) => step.output !== null && step.output.trim() !== "");
  if (withOutput.length === 0) return [];
  return [
    "## Output",
    "",
    "The end of each step's output (stdout and stderr), redacted.",
    "",
    ...withOutput.flatMap((step) => [`### ${step.index + 1}. ${inline(step.name)} (${step.status})`, "", ...fence(step.output!), ""]),
  ];
}

/** A table followed by a blank line. */
function table(headers: string[], rows: string[][]): string[] {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(headers), line(headers.map(() => "---")), ...rows.map(line), ""];
}

/** Report text inside a line or a table cell: Markdown punctuation and line breaks lose their meaning. */
function inline(text: string): string {
  return oneLine(text).replace(/[\\`*_[\]<>|~&#]/g, "\\$&");
}

/** A code span; a pipe is still escaped because GFM splits table cells first. */
function code(text: string): string {
  const value = oneLine(text).replace(/\|/g, "\\|");
  const ticks = "`".repeat(longestRun(value, "`") + 1);
  const pad = value.startsWith("`") || value.endsWith("`") ? " " : "";
  return `${ticks}${pad}${value}${pad}${ticks}`;
}

/** A fenced block that no run of backticks in `text` can close early. */
function fence(text: string): string[] {
  const ticks = "`".repeat(Math.max(3, longestRun(text, "`") + 1));
  return [`${ticks}text`, visibleText(text).replace(/\n+$/, ""), ticks];
}

function longestRun(text: string, char: string): number {
  let longest = 0;
  let run = 0;
  for (const c of text) {
    run = c === char ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  return longest;
}
