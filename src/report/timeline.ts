import { formatDuration } from "../model/duration.js";
import type { DrillReport, StepReport } from "../model/drill-report.js";
import { durationTicks, linearScale } from "./axis.js";
import { markup, type Markup } from "./markup.js";
import { oneLine } from "./text.js";

/** The timeline's palette; tests look for these colours in a screenshot of the page. */
export const TIMELINE_COLORS = {
  passed: "#2e9d5b",
  failed: "#d64545",
  skipped: "#a3acb9",
  notRun: "#d5dae1",
  interrupted: "#e0a030",
  teardown: "#8c96a3",
  fetch: "#3f7fd0",
  decode: "#8e6bc9",
  restore: "#1b9aaa",
  rtoTarget: "#e0218a",
  rtoActual: "#102a43",
  grid: "#e5e8ec",
  teardownBand: "#f1f2f4",
  text: "#323f4b",
  muted: "#7b8794",
} as const;

const WIDTH = 1000;
const PLOT_LEFT = 240;
const PLOT_RIGHT = 975;
const TOP = 64;
const SECTION_HEIGHT = 24;
const ROW_HEIGHT = 30;
const BAR_HEIGHT = 20;
const LANE_HEIGHT = 5;
const LANE_GAP = 2;
/** A target further out than this many times the drill's length is marked at the edge instead of squeezing the bars. */
const TARGET_REACH = 3;

interface Span {
  startMs: number;
  endMs: number;
  fill: string;
  title: string;
}

interface Row {
  label: string;
  bar: (Span & { stroke?: string }) | undefined;
  /** Restore steps: one thin bar per stream phase, which overlap in time. */
  lanes: Span[];
  /** Shown in place of a bar that never ran. */
  instead: string;
}

interface Section {
  title: string;
  rows: Row[];
  /** Teardown: greyed out, outside the RTO. */
  shaded: boolean;
}

/**
 * The drill as a Gantt chart: one row per scratch provisioned, per step (restore
 * steps with their fetch/decode/restore phases) and per teardown entry, on an
 * axis of time after t0, with the RTO target and the RTO actual as vertical lines.
 */
export function renderTimeline(report: DrillReport): Markup {
  const sections = timelineSections(report).filter((s) => s.rows.length > 0);
  const dataEndMs = Math.max(report.durationMs, report.rto.actualMs ?? 0, ...sections.flatMap((s) => s.rows.map(rowEnd)));
  const targetMs = report.rto.targetMs;
  const targetOnScale = targetMs !== null && targetMs <= dataEndMs * TARGET_REACH;
  const domainMs = Math.max(dataEndMs, targetOnScale ? targetMs : 0) * 1.03 || 1;
  const x = linearScale(domainMs, PLOT_LEFT, PLOT_RIGHT - PLOT_LEFT);

  let y = TOP;
  const drawn: Markup[] = [];
  for (const section of sections) {
    const top = y;
    const rows: Markup[] = [];
    y += SECTION_HEIGHT;
    for (const row of section.rows) {
      rows.push(renderRow(row, y, x));
      y += rowHeight(row);
    }
    drawn.push(markup`<g class="section">
${section.shaded ? markup`<rect x="0" y="${top}" width="${WIDTH}" height="${y - top}" fill="${TIMELINE_COLORS.teardownBand}"/>` : ""}
<text x="8" y="${top + 17}" font-weight="600" fill="${TIMELINE_COLORS.text}">${section.title}</text>
${rows}</g>`);
  }
  const bottom = y;
  const height = bottom + 76;

  return markup`<svg class="timeline" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" font-family="system-ui, sans-serif" font-size="12" shape-rendering="crispEdges">
<title>timeline of drill ${report.drillId}</title>
${axis(domainMs, x, bottom)}
${drawn}
${rtoMarkers(report, x, bottom, targetOnScale)}
${legend(bottom + 44)}
</svg>`;
}

function timelineSections(report: DrillReport): Section[] {
  const c = TIMELINE_COLORS;
  const provisionFill = { ready: c.passed, failed: c.failed, "not-run": c.notRun } as const;
  return [
    {
      title: "provisioning",
      shaded: false,
      rows: report.provisioning.map((p) => ({
        label: `${p.scratch} (${p.type})`,
        bar: span(p.startMs, p.endMs, provisionFill[p.status], `scratch "${p.scratch}": ${p.status}`),
        lanes: [],
        instead: p.status,
      })),
    },
    { title: "steps", shaded: false, rows: report.steps.map(stepRow) },
    {
      title: "teardown (not part of the RTO)",
      shaded: true,
      rows: report.teardown.map((t) => ({
        label: `${t.name} (${t.what})`,
        bar: {
          ...span(t.startMs, t.endMs, c.teardown, `teardown of "${t.name}": ${t.status}`)!,
          ...(t.status === "failed" ? { stroke: c.failed } : {}),
        },
        lanes: [],
        instead: t.status,
      })),
    },
  ];
}

const STEP_FILL: Record<StepReport["status"], string> = {
  passed: TIMELINE_COLORS.passed,
  failed: TIMELINE_COLORS.failed,
  skipped: TIMELINE_COLORS.skipped,
  "not-run": TIMELINE_COLORS.notRun,
  interrupted: TIMELINE_COLORS.interrupted,
};

const PHASE_ORDER = ["fetch", "decode", "restore"] as const;

function stepRow(step: StepReport): Row {
  const phases = [...step.phases].sort((a, b) => PHASE_ORDER.indexOf(a.phase) - PHASE_ORDER.indexOf(b.phase));
  const attempts = step.attempts.length > 1 ? `, ${step.attempts.length} attempts` : "";
  return {
    label: `${step.index + 1}. ${step.name}`,
    bar: span(step.startMs, step.endMs, STEP_FILL[step.status], `${step.name}: ${step.status}${attempts}`),
    lanes: phases.map((p) => span(p.startMs, p.endMs, TIMELINE_COLORS[p.phase], `${step.name}: ${p.phase}`)!),
    instead: step.status === "not-run" ? "not run" : step.status,
  };
}

function span(startMs: number | null, endMs: number | null, fill: string, what: string): Span | undefined {
  if (startMs === null || endMs === null) return undefined;
  const title = `${what}, +${formatDuration(startMs)} to +${formatDuration(endMs)} (${formatDuration(endMs - startMs)})`;
  return { startMs, endMs, fill, title };
}

function rowEnd(row: Row): number {
  return Math.max(row.bar?.endMs ?? 0, ...row.lanes.map((l) => l.endMs));
}

function rowHeight(row: Row): number {
  return ROW_HEIGHT + (row.lanes.length > 0 ? row.lanes.length * (LANE_HEIGHT + LANE_GAP) + 2 : 0);
}

function renderRow(row: Row, y: number, x: (ms: number) => number): Markup {
  const barY = y + (ROW_HEIGHT - BAR_HEIGHT) / 2;
  const label = markup`<text x="${PLOT_LEFT - 10}" y="${barY + 14}" text-anchor="end" fill="${TIMELINE_COLORS.text}"><title>${row.label}</title>${truncate(row.label, 34)}</text>`;
  if (!row.bar) {
    return markup`${label}<text x="${PLOT_LEFT + 6}" y="${barY + 14}" font-style="italic" fill="${TIMELINE_COLORS.muted}">${row.instead}</text>`;
  }
  const lanes = row.lanes.map(
    (lane, i) => markup`<rect class="phase" x="${x(lane.startMs)}" y="${barY + BAR_HEIGHT + 3 + i * (LANE_HEIGHT + LANE_GAP)}" width="${width(lane, x)}" height="${LANE_HEIGHT}" fill="${lane.fill}"><title>${lane.title}</title></rect>`,
  );
  const stroke = row.bar.stroke ? markup` stroke="${row.bar.stroke}" stroke-width="2"` : "";
  const end = x(row.bar.startMs) + width(row.bar, x);
  const duration = markup`<text x="${end + 6}" y="${barY + 14}" fill="${TIMELINE_COLORS.muted}">${formatDuration(row.bar.endMs - row.bar.startMs)}</text>`;
  return markup`${label}<rect class="bar" x="${x(row.bar.startMs)}" y="${barY}" width="${width(row.bar, x)}" height="${BAR_HEIGHT}" fill="${row.bar.fill}"${stroke}><title>${row.bar.title}</title></rect>${duration}${lanes}`;
}

function width(s: Span, x: (ms: number) => number): number {
  return Math.max(2, x(s.endMs) - x(s.startMs));
}

function axis(domainMs: number, x: (ms: number) => number, bottom: number): Markup {
  const ticks = durationTicks(domainMs, 10).map(
    (t) => markup`<rect x="${x(t)}" y="${TOP}" width="1" height="${bottom - TOP + 6}" fill="${TIMELINE_COLORS.grid}"/><text x="${x(t)}" y="${bottom + 20}" text-anchor="middle" fill="${TIMELINE_COLORS.muted}">${t === 0 ? "t0" : `+${formatDuration(t)}`}</text>`,
  );
  return markup`<g class="axis">${ticks}</g>`;
}

function rtoMarkers(report: DrillReport, x: (ms: number) => number, bottom: number, targetOnScale: boolean): Markup {
  const { targetMs, actualMs } = report.rto;
  const c = TIMELINE_COLORS;
  const target =
    targetMs === null
      ? ""
      : targetOnScale
        ? markup`<g class="rto-target"><rect x="${x(targetMs) - 1}" y="26" width="3" height="${bottom - 26}" fill="${c.rtoTarget}"/>${label(x(targetMs), 20, `RTO target ${formatDuration(targetMs)}`, c.rtoTarget)}</g>`
        : markup`<g class="rto-target">${label(PLOT_RIGHT, 20, `RTO target ${formatDuration(targetMs)} is off the chart →`, c.rtoTarget)}</g>`;
  const actual =
    actualMs === null
      ? ""
      : markup`<g class="rto-actual"><line x1="${x(actualMs) + 0.5}" y1="44" x2="${x(actualMs) + 0.5}" y2="${bottom}" stroke="${c.rtoActual}" stroke-width="1" stroke-dasharray="4 3"/><path d="M${x(actualMs) + 0.5} 44 l-5 -7 h10 z" fill="${c.rtoActual}" shape-rendering="auto"/>${label(x(actualMs), 34, `RTO ${formatDuration(actualMs)}`, c.rtoActual)}</g>`;
  return markup`${target}${actual}`;
}

/** A marker's label, beside the line and kept inside the chart. */
function label(atX: number, y: number, text: string, fill: string): Markup {
  const nearEnd = atX > PLOT_RIGHT - 160;
  return markup`<text x="${nearEnd ? atX - 6 : atX + 6}" y="${y}" text-anchor="${nearEnd ? "end" : "start"}" font-weight="600" fill="${fill}">${text}</text>`;
}

function legend(y: number): Markup {
  const c = TIMELINE_COLORS;
  const items: [string, string][] = [
    ["passed / ready", c.passed],
    ["failed", c.failed],
    ["interrupted", c.interrupted],
    ["skipped", c.skipped],
    ["teardown", c.teardown],
    ["fetch", c.fetch],
    ["decode", c.decode],
    ["restore", c.restore],
    ["RTO target", c.rtoTarget],
    ["RTO actual", c.rtoActual],
  ];
  let at = 8;
  const drawn = items.map(([name, fill]) => {
    const item = markup`<rect x="${at}" y="${y}" width="10" height="10" fill="${fill}"/><text x="${at + 14}" y="${y + 9}" fill="${c.text}">${name}</text>`;
    at += 14 + name.length * 7 + 18;
    return item;
  });
  return markup`<g class="legend">${drawn}</g>`;
}

function truncate(text: string, max: number): string {
  const line = oneLine(text);
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}
