import { formatDuration } from "../model/duration.js";
import { durationTicks, linearScale } from "./axis.js";
import { formatUtcMinute } from "./format.js";
import type { HistoryRow } from "./history.js";
import { markup, type Markup } from "./markup.js";

export const TREND_COLORS = {
  rto: "#3f7fd0",
  rpo: "#8e6bc9",
  missed: "#d64545",
  target: "#e0218a",
  grid: "#e5e8ec",
  text: "#323f4b",
  muted: "#7b8794",
} as const;

const WIDTH = 920;
const LEFT = 80;
const RIGHT = 880;
const PANEL_HEIGHT = 200;
const PLOT_TOP = 32;
const PLOT_HEIGHT = 130;
/** Date labels are 10 characters wide: keep them this far apart. */
const DATE_LABEL_GAP = 90;

interface Series {
  label: "RTO" | "RPO";
  className: string;
  color: string;
  actual: (row: HistoryRow) => number | null;
  target: (row: HistoryRow) => number | null;
  met: (row: HistoryRow) => boolean | null;
}

const SERIES: Series[] = [
  { label: "RTO", className: "rto", color: TREND_COLORS.rto, actual: (r) => r.rtoActualMs, target: (r) => r.rtoTargetMs, met: (r) => r.rtoMet },
  { label: "RPO", className: "rpo", color: TREND_COLORS.rpo, actual: (r) => r.rpoActualMs, target: (r) => r.rpoTargetMs, met: (r) => r.rpoMet },
];

/**
 * RTO and RPO actuals over time, one panel each (they differ in scale by
 * hours), one point per drill that measured them, with the newest target as
 * a horizontal line. Points that missed their target are red.
 */
export function renderTrendChart(rows: HistoryRow[]): Markup {
  const times = rows.map((r) => Date.parse(r.t0));
  const first = Math.min(...times);
  const spanMs = Math.max(...times) - first;
  const x = (t: number) => (spanMs === 0 ? Math.round((LEFT + RIGHT) / 2) : linearScale(spanMs, LEFT + 16, RIGHT - LEFT - 32)(t - first));
  const height = SERIES.length * PANEL_HEIGHT + 10;
  const panels = SERIES.map((series, i) => panel(series, rows, (r) => x(Date.parse(r.t0)), i * PANEL_HEIGHT));
  return markup`<svg class="trend" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" font-family="system-ui, sans-serif" font-size="12">
<title>RTO and RPO of the last ${rows.length} drills</title>
${panels}
</svg>`;
}

function panel(series: Series, rows: HistoryRow[], xOf: (row: HistoryRow) => number, top: number): Markup {
  const measured = rows.filter((r) => series.actual(r) !== null);
  const target = [...rows].reverse().map(series.target).find((t) => t !== null) ?? null;
  const maxMs = Math.max(target ?? 0, ...measured.map((r) => series.actual(r)!), 1) * 1.1;
  const plotTop = top + PLOT_TOP;
  const bottom = plotTop + PLOT_HEIGHT;
  const y = (ms: number) => bottom - linearScale(maxMs, 0, PLOT_HEIGHT)(ms);
  const c = TREND_COLORS;

  const grid = durationTicks(maxMs, 5).map(
    (t) => markup`<line x1="${LEFT}" y1="${y(t) + 0.5}" x2="${RIGHT}" y2="${y(t) + 0.5}" stroke="${c.grid}"/><text x="${LEFT - 8}" y="${y(t) + 4}" text-anchor="end" fill="${c.muted}">${t === 0 ? "0" : formatDuration(t)}</text>`,
  );
  const targetLine =
    target === null
      ? ""
      : markup`<g class="target"><line x1="${LEFT}" y1="${y(target) + 0.5}" x2="${RIGHT}" y2="${y(target) + 0.5}" stroke="${c.target}" stroke-width="2" stroke-dasharray="6 4"/><text x="${RIGHT}" y="${y(target) - 5}" text-anchor="end" fill="${c.target}">${series.label} target ${formatDuration(target)}</text></g>`;
  const line = measured.map((r) => `${xOf(r)},${y(series.actual(r)!)}`).join(" ");
  const points = measured.map((r) => {
    const actual = series.actual(r)!;
    const fill = series.met(r) === false ? c.missed : series.color;
    return markup`<circle class="point ${series.className}" cx="${xOf(r)}" cy="${y(actual)}" r="5" fill="${fill}"><title>${r.drillId}: ${series.label} ${formatDuration(actual)} (${r.verdict})</title></circle>`;
  });
  const dates = dateLabels(rows, xOf).map(
    (r) => markup`<text x="${xOf(r)}" y="${bottom + 18}" text-anchor="middle" fill="${c.muted}">${formatUtcMinute(r.t0).slice(0, 10)}</text>`,
  );

  return markup`<g class="panel ${series.className}">
<text x="${LEFT}" y="${top + 20}" font-weight="600" fill="${c.text}">${series.label} actual</text>
${grid}
<line x1="${LEFT}" y1="${bottom + 0.5}" x2="${RIGHT}" y2="${bottom + 0.5}" stroke="${c.muted}"/>
${targetLine}
${measured.length > 1 ? markup`<polyline points="${line}" fill="none" stroke="${series.color}" stroke-width="2"/>` : ""}
${points}
${dates}
</g>`;
}

/** The drills whose date is written under the axis: the newest, then older ones that leave room. */
function dateLabels(rows: HistoryRow[], xOf: (row: HistoryRow) => number): HistoryRow[] {
  const kept: HistoryRow[] = [];
  for (const row of [...rows].reverse()) {
    const last = kept.at(-1);
    if (last === undefined || xOf(last) - xOf(row) >= DATE_LABEL_GAP) kept.push(row);
  }
  return kept;
}
