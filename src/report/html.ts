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
  type TargetFacts,
} from "./format.js";
import { markup, type Markup } from "./markup.js";
import { htmlTable, renderPage } from "./page.js";
import { renderTimeline } from "./timeline.js";

export { TIMELINE_COLORS } from "./timeline.js";

/**
 * `report.html`: the drill on one self-contained page (inline CSS and SVG, no
 * scripts, nothing fetched): verdict, RTO/RPO against targets, a timeline,
 * the steps with their output, the backups restored and the environment.
 */
export function renderHtml(report: DrillReport): string {
  return renderPage(
    `${report.verdict} · drill ${report.drillId} · ${report.plan.name}`,
    markup`<main>
${banner(report)}
<div class="targets">${target(rtoFacts(report))}${target(rpoFacts(report))}</div>
<section class="chart"><h2>Timeline</h2>${renderTimeline(report)}</section>
${phases(report)}
${steps(report)}
${backups(report)}
${provisioning(report)}
${teardown(report)}
${environment(report)}
</main>`,
  );
}

function banner(report: DrillReport): Markup {
  return markup`<header class="banner verdict-${report.verdict}">
<h1><span class="verdict">${report.verdict.toUpperCase()}</span> ${report.summary}</h1>
<div class="meta">plan <strong>${report.plan.name}</strong> (<code>${report.plan.file}</code>) · drill <code>${report.drillId}</code> · ${formatUtc(report.t0)} → ${formatUtc(report.finishedAt)} · ${formatDuration(report.durationMs)} with teardown · recovery point: ${recoveryPointText(report)}</div>
</header>`;
}

function target(facts: TargetFacts): Markup {
  const result = facts.met === null ? "" : markup` <span class="${facts.met ? "met" : "missed"}">${metWord(facts.met)}</span>`;
  return markup`<div class="target"><div>${facts.label} actual</div>
<div class="value">${facts.actual}${result}</div>
<div>target ${facts.target}</div><div class="muted">${facts.detail}</div></div>`;
}

function phases(report: DrillReport): Markup {
  const p = report.phases;
  const rows = [
    ["provision", p.provisionMs],
    ["fetch", p.fetchMs],
    ["decode (decrypt and decompress)", p.decodeMs],
    ["restore", p.restoreMs],
    ["verify", p.verifyMs],
  ].map(([name, ms]) => [name as string, formatDuration(ms as number)]);
  return markup`<h2>Phases</h2>${htmlTable(["phase", "total"], rows)}
<p class="muted">Fetch, decode and restore run at once in a stream, so they overlap and do not add up.</p>`;
}

function steps(report: DrillReport): Markup {
  const rows = report.steps.map((step) => [
    String(step.index + 1),
    step.name,
    step.kind + (step.critical ? "" : " (optional)"),
    status(step.status),
    formatOffset(step.startMs),
    [formatMs(step.durationMs), attemptsText(step)].filter(Boolean).join(", "),
    stepDetails(step),
  ]);
  return markup`<h2>Steps</h2>${htmlTable(["#", "step", "kind", "status", "start", "duration", "note, error and output"], rows, "steps")}`;
}

function stepDetails(step: StepReport): Markup {
  const failedAttempts = step.attempts.filter((a) => !a.ok && a.error);
  return markup`${step.note ? markup`<div>${step.note}</div>` : ""}
${step.probe ? markup`<div>newest data ${formatUtc(step.probe.value)}, RPO ${formatDuration(step.probe.rpoMs)}</div>` : ""}
${step.error ? markup`<div class="status-failed">${describeProblem(step.error)}</div>${step.error.hint ? markup`<div>hint: ${step.error.hint}</div>` : ""}` : ""}
${failedAttempts.length > 0 && step.status === "passed" ? markup`<div class="muted">retried after: ${failedAttempts.map((a) => describeProblem(a.error!)).join("; ")}</div>` : ""}
${step.output ? markup`<details${step.status === "passed" ? "" : markup` open`}><summary>output</summary><pre>${step.output}</pre></details>` : ""}`;
}

function status(value: string): Markup {
  return markup`<span class="status status-${value}">${value}</span>`;
}

function backups(report: DrillReport): Markup {
  if (report.backups.length === 0) return markup`<h2>Backups used</h2><p>No backup was restored.</p>`;
  return markup`<h2>Backups used</h2>${report.backups.map(backup)}`;
}

function backup(used: BackupUsed): Markup {
  const fallbacks = used.fallbackFrom.map(
    (f) => markup`<li><code>${f.id}</code>${f.consistentAt ? ` (consistent at ${formatUtc(f.consistentAt)})` : ""}: ${f.message} [${f.code}]</li>`,
  );
  const objects = used.objects.map((o) => [markup`<code>${o.key}</code>`, formatBytes(o.sizeBytes), markup`<code class="hash">${o.sha256}</code>`]);
  return markup`<h3>${used.job}: <code>${used.id}</code></h3>
<p>restored by step ${used.step} · consistent at ${formatUtc(used.consistentAt)}, <strong>${formatDuration(used.ageMs)} old</strong> at t0 · ${formatBytes(used.sizeBytes)} · ${used.codec.join(" → ")}</p>
${fallbacks.length > 0 ? markup`<p>Newer backups tried first and rejected:</p><ul>${fallbacks}</ul>` : ""}
${htmlTable(["object", "size", "sha256"], objects)}`;
}

function provisioning(report: DrillReport): Markup {
  const rows = report.provisioning.map((p) => [
    p.scratch,
    p.type,
    status(p.status),
    formatOffset(p.startMs),
    formatMs(p.startMs !== null && p.endMs !== null ? p.endMs - p.startMs : null),
    Object.entries(p.versions).map(([tool, version]) => `${tool} ${version}`).join(", "),
    p.error ? describeProblem(p.error) : "",
  ]);
  return markup`<h2>Provisioning</h2>${htmlTable(["scratch", "type", "status", "start", "duration", "versions", "error"], rows)}`;
}

function teardown(report: DrillReport): Markup {
  const rows = report.teardown.map((t) => [t.name, t.what, status(t.status), formatOffset(t.startMs), formatDuration(t.endMs - t.startMs), t.error ? describeProblem(t.error) : ""]);
  return markup`<h2>Teardown</h2><p class="muted">Runs after the steps, in reverse order of creation; not part of the RTO.</p>
${htmlTable(["name", "what", "status", "start", "duration", "error"], rows)}`;
}

function environment(report: DrillReport): Markup {
  const env = report.environment;
  const facts = [
    ["lifeboat", env.lifeboat],
    ["node", env.node],
    ["platform", `${env.platform} ${env.arch}`],
    ["host", `${env.host} (${env.cpus} CPUs)`],
  ];
  const tools = Object.entries(env.tools);
  return markup`<h2>Environment</h2>${htmlTable(["", ""], facts)}
${tools.length > 0 ? markup`<h3>Tool versions</h3>${htmlTable(["tool", "version"], tools)}` : ""}`;
}
