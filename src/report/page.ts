import { markup, type Markup, type MarkupValue } from "./markup.js";

/**
 * The shell of Lifeboat's HTML pages: one file with its styles inline, no
 * scripts, fonts or images to load, so it opens the same from a bucket, a CI
 * artifact or an email years later.
 */
export function renderPage(title: string, body: MarkupValue): string {
  return markup`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>${STYLE}</style>
</head>
<body>
${body}
</body>
</html>
`.text;
}

/** A table; cells are escaped unless they are markup already. */
export function htmlTable(headers: string[], rows: MarkupValue[][], className = ""): Markup {
  const head = headers.some((h) => h !== "") ? markup`<thead><tr>${headers.map((h) => markup`<th>${h}</th>`)}</tr></thead>` : "";
  return markup`<table class="${className}">${head}
<tbody>${rows.map((row) => markup`<tr>${row.map((cell) => markup`<td>${cell}</td>`)}</tr>\n`)}</tbody></table>`;
}

const STYLE = markup`
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 24px 48px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2933; background: #fff; }
main { max-width: 1100px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; border-bottom: 1px solid #e4e7eb; padding-bottom: 4px; }
h3 { font-size: 14px; margin: 16px 0 6px; }
.banner { padding: 12px 16px; border-radius: 6px; border-left: 8px solid; margin-bottom: 12px; }
.banner .verdict { font-size: 20px; font-weight: 700; letter-spacing: 0.04em; margin-right: 12px; }
.banner .meta { color: #52606d; font-size: 13px; margin-top: 4px; }
.verdict-passed { background: #e3f4ea; border-color: #207245; }
.verdict-failed, .verdict-interrupted { background: #fbe6e6; border-color: #a82d2d; }
.verdict-missed-targets, .verdict-partial { background: #fdf2dc; border-color: #a86b00; }
.targets { display: flex; gap: 12px; flex-wrap: wrap; margin-bottom: 8px; }
.target { border: 1px solid #d9dee3; border-radius: 6px; padding: 8px 12px; min-width: 300px; }
.target .value { font-size: 18px; font-weight: 700; }
.met { color: #207245; } .missed { color: #a82d2d; }
.chart { overflow-x: auto; }
.chart svg { display: block; }
table { border-collapse: collapse; margin: 4px 0 12px; }
th, td { text-align: left; vertical-align: top; padding: 4px 10px 4px 0; border-bottom: 1px solid #eef0f2; }
th { font-weight: 600; color: #52606d; }
code, pre { font: 12px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
pre { background: #f5f7fa; border: 1px solid #e4e7eb; padding: 8px; max-width: 1000px; max-height: 360px; overflow: auto; white-space: pre-wrap; word-break: break-all; }
.status { font-weight: 600; }
.status-passed, .status-ready, .status-removed { color: #207245; }
.status-failed, .status-interrupted { color: #a82d2d; }
.status-skipped, .status-not-run { color: #7b8794; }
.hash { word-break: break-all; }
.muted { color: #7b8794; }
`;
