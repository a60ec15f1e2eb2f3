import type { DrillReport } from "../model/drill-report.js";
import { renderHtml } from "./html.js";
import { renderJunit } from "./junit.js";
import { renderMarkdown } from "./markdown.js";

/** The files of one drill's report, by name: the canonical JSON and its three renderings. */
export function renderReportFiles(report: DrillReport): Record<string, string> {
  return {
    "report.json": `${JSON.stringify(report, null, 2)}\n`,
    "report.md": renderMarkdown(report),
    "report.html": renderHtml(report),
    "junit.xml": renderJunit(report),
  };
}
