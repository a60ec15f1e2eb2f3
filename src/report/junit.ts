import type { DrillReport, StepReport } from "../model/drill-report.js";
import { describeProblem, rpoFacts, rtoFacts, type TargetFacts } from "./format.js";
import { escapeAttribute, escapeText } from "./markup.js";

/**
 * `junit.xml`: the drill for CI systems. One testsuite per drill, one testcase
 * per step (classname `drill.<plan>`) and one per target (`RTO`, `RPO`).
 * A failed step or a missed target is a failure, an interrupted step an
 * error; skipped and not-run steps, and targets without a declared target or
 * without a measurement, are skipped.
 */
export function renderJunit(report: DrillReport): string {
  const classname = `drill.${report.plan.name}`;
  const rto = rtoFacts(report);
  const rpo = rpoFacts(report);
  const cases = [...report.steps.map(stepCase), targetCase(rto, report.rto), targetCase(rpo, report.rpo)];
  const counts = {
    tests: String(cases.length),
    failures: String(cases.filter((c) => c.outcome?.kind === "failure").length),
    errors: String(cases.filter((c) => c.outcome?.kind === "error").length),
    skipped: String(cases.filter((c) => c.outcome?.kind === "skipped").length),
    time: seconds(report.durationMs),
  };
  const properties = [
    ["drill", report.drillId],
    ["verdict", report.verdict],
    ["summary", report.summary],
    ["plan file", report.plan.file],
    ["plan sha256", report.plan.sha256],
    ["rto", `${rto.actual} (target ${rto.target})`],
    ["rpo", `${rpo.actual} (target ${rpo.target})`],
  ].map(([name, value]) => `      ${tag("property", { name: name!, value: value! })}`);
  const suite = {
    name: `lifeboat drill ${report.plan.name}`,
    ...counts,
    timestamp: new Date(report.t0).toISOString().slice(0, 19),
    hostname: report.environment.host,
  };
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    open("testsuites", { name: "lifeboat", ...counts }),
    `  ${open("testsuite", suite)}`,
    "    <properties>",
    ...properties,
    "    </properties>",
    ...cases.map((c) => renderCase(c, classname)),
    "  </testsuite>",
    "</testsuites>",
    "",
  ].join("\n");
}

interface TestCase {
  name: string;
  timeMs: number;
  outcome: { kind: "failure" | "error" | "skipped"; message: string; type?: string; details?: string } | undefined;
  output: string | null;
}

function stepCase(step: StepReport): TestCase {
  const base = { name: step.name, timeMs: step.durationMs ?? 0, output: step.output };
  const error = step.error;
  switch (step.status) {
    case "passed":
      return { ...base, outcome: undefined };
    case "failed":
      return {
        ...base,
        outcome: { kind: "failure", message: error ? describeProblem(error) : "step failed", type: error?.code, details: stepDetails(step) },
      };
    case "interrupted":
      return { ...base, outcome: { kind: "error", message: error ? describeProblem(error) : "interrupted", type: error?.code, details: stepDetails(step) } };
    case "skipped":
    case "not-run":
      return { ...base, outcome: { kind: "skipped", message: step.note ?? step.status.replace("-", " ") } };
  }
}

function stepDetails(step: StepReport): string {
  const lines = [
    step.error?.message,
    step.error?.hint && `hint: ${step.error.hint}`,
    step.critical ? undefined : "optional step: its failure makes the drill partial, not failed",
    step.attempts.length > 1 ? `${step.attempts.length} attempts` : undefined,
    step.note ?? undefined,
  ];
  return lines.filter(Boolean).join("\n");
}

function targetCase(facts: TargetFacts, measured: { targetMs: number | null; actualMs: number | null }): TestCase {
  const base = { name: facts.label, timeMs: 0, output: null };
  if (measured.targetMs === null) return { ...base, outcome: { kind: "skipped", message: `no ${facts.label} target declared` } };
  if (measured.actualMs === null) return { ...base, outcome: { kind: "skipped", message: `${facts.label} not measured: ${facts.detail}` } };
  const summary = `${facts.label} ${facts.actual}, target ${facts.target} (${facts.detail})`;
  if (facts.met === false) {
    return { ...base, outcome: { kind: "failure", message: `${facts.label} ${facts.actual} exceeds the target ${facts.target}`, details: summary } };
  }
  return { ...base, output: summary, outcome: undefined };
}

function renderCase(c: TestCase, classname: string): string {
  const attributes = { name: c.name, classname, time: seconds(c.timeMs) };
  const children: string[] = [];
  if (c.outcome) {
    const { kind, message, type, details } = c.outcome;
    const attrs: Record<string, string> = type === undefined ? { message } : { message, type };
    children.push(details ? `${open(kind, attrs)}${escapeText(details)}</${kind}>` : tag(kind, attrs));
  }
  if (c.output) children.push(`<system-out>${escapeText(c.output)}</system-out>`);
  if (children.length === 0) return `    ${tag("testcase", attributes)}`;
  return [`    ${open("testcase", attributes)}`, ...children.map((child) => `      ${child}`), "    </testcase>"].join("\n");
}

function attributesText(attributes: Record<string, string>): string {
  return Object.entries(attributes)
    .map(([name, value]) => ` ${name}="${escapeAttribute(value)}"`)
    .join("");
}

function open(name: string, attributes: Record<string, string>): string {
  return `<${name}${attributesText(attributes)}>`;
}

function tag(name: string, attributes: Record<string, string>): string {
  return `<${name}${attributesText(attributes)}/>`;
}

function seconds(durationMs: number): string {
  return (durationMs / 1000).toFixed(3);
}
