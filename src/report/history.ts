import { formatDuration } from "../model/duration.js";
import { renderTable } from "./text-table.js";
import type { DrillReport, Verdict } from "../model/drill-report.js";
import { formatMs, formatUtcMinute } from "./format.js";
import { markup } from "./markup.js";
import { htmlTable, renderPage } from "./page.js";
import { renderTrendChart } from "./trend-chart.js";

/** How many recent drills the trend looks at (and compares with as many before them). */
export const TREND_WINDOW = 5;

/** Changes smaller than this read as steady. */
const STEADY = 0.05;

/** One past drill, as the history table and chart show it. */
export interface HistoryRow {
  drillId: string;
  t0: string;
  verdict: Verdict;
  rtoActualMs: number | null;
  rtoTargetMs: number | null;
  rtoMet: boolean | null;
  rpoActualMs: number | null;
  rpoTargetMs: number | null;
  rpoMet: boolean | null;
}

/** The drills oldest first (by t0, then drill id). */
export function historyRows(reports: DrillReport[]): HistoryRow[] {
  return reports
    .map((r) => ({
      drillId: r.drillId,
      t0: r.t0,
      verdict: r.verdict,
      rtoActualMs: r.rto.actualMs,
      rtoTargetMs: r.rto.targetMs,
      rtoMet: r.rto.met,
      rpoActualMs: r.rpo.actualMs,
      rpoTargetMs: r.rpo.targetMs,
      rpoMet: r.rpo.met,
    }))
    .sort((a, b) => Date.parse(a.t0) - Date.parse(b.t0) || a.drillId.localeCompare(b.drillId));
}

const HEADERS = ["drill", "date (UTC)", "verdict", "RTO / target", "RPO / target"];

function cells(row: HistoryRow): string[] {
  return [
    row.drillId,
    formatUtcMinute(row.t0),
    row.verdict,
    `${formatMs(row.rtoActualMs, "-")} / ${formatMs(row.rtoTargetMs, "-")}`,
    `${formatMs(row.rpoActualMs, "-")} / ${formatMs(row.rpoTargetMs, "-")}`,
  ];
}

/** `lifeboat report PLAN --history` in the terminal: one line per drill, oldest first, then the trend. */
export function renderHistoryTable(reports: DrillReport[]): string {
  if (reports.length === 0) return "no drills yet";
  const rows = historyRows(reports);
  return `${renderTable(HEADERS, rows.map(cells))}\n\n${historyTrend(rows)}`;
}

/** The history page: a trend chart of RTO and RPO against their targets, and the table. */
export function renderHistoryHtml(plan: string, reports: DrillReport[]): string {
  const rows = historyRows(reports);
  const body =
    rows.length === 0
      ? markup`<main><h1>Drill history: ${plan}</h1><p>No drills yet.</p></main>`
      : markup`<main>
<h1>Drill history: ${plan}</h1>
<p>${historyTrend(rows)}</p>
<section class="chart">${renderTrendChart(rows)}</section>
<h2>Drills</h2>
${htmlTable(HEADERS, rows.map(cells), "history")}
</main>`;
  return renderPage(`drill history · ${plan}`, body);
}

/**
 * `trend: median RTO of the last 5 drills 8m 2s, up 12% from 7m 10s in the 5 before; …; 4 of the last 5 passed`
 */
export function historyTrend(rows: HistoryRow[], window = TREND_WINDOW): string {
  if (rows.length === 0) return "trend: no drills yet";
  const recent = rows.slice(-window);
  const earlier = rows.slice(0, -window).slice(-window);
  const passed = recent.filter((r) => r.verdict === "passed").length;
  return [
    `trend: ${medianTrend("RTO", recent.map((r) => r.rtoActualMs), earlier.map((r) => r.rtoActualMs))}`,
    medianTrend("RPO", recent.map((r) => r.rpoActualMs), earlier.map((r) => r.rpoActualMs)),
    `${passed} of the last ${recent.length} passed`,
  ].join("; ");
}

function medianTrend(label: string, recent: (number | null)[], earlier: (number | null)[]): string {
  const now = median(recent);
  const drills = recent.length === 1 ? "the last drill" : `the last ${recent.length} drills`;
  if (now === undefined) return `no ${label} measured in ${drills}`;
  const text = `median ${label} of ${drills} ${formatDuration(now)}`;
  const before = median(earlier);
  if (before === undefined) return `${text}, nothing earlier to compare`;
  const was = `${formatDuration(before)} in the ${earlier.length} before`;
  const change = before === 0 ? (now === 0 ? 0 : Infinity) : (now - before) / before;
  if (Math.abs(change) < STEADY) return `${text}, steady (${was})`;
  const percent = Number.isFinite(change) ? ` ${Math.round(Math.abs(change) * 100)}%` : "";
  return `${text}, ${change > 0 ? "up" : "down"}${percent} from ${was}`;
}

function median(values: (number | null)[]): number | undefined {
  const sorted = values.filter((v): v is number => v !== null).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
