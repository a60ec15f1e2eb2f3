import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32, deflateSync } from "node:zlib";
import { Ajv2020 } from "ajv/dist/2020.js";
import { XMLParser } from "fast-xml-parser";
import { afterAll, describe, expect, it } from "vitest";
import { DrillReportSchema, drillReportJsonSchema, type DrillReport, type Verdict } from "../src/model/drill-report.js";
import { renderHistoryHtml, renderHistoryTable, historyRows } from "../src/report/history.js";
import { renderHtml, TIMELINE_COLORS } from "../src/report/html.js";
import { renderJunit } from "../src/report/junit.js";
import { renderMarkdown } from "../src/report/markdown.js";
import { renderVerdictBlock } from "../src/report/verdict.js";
import { screenshot } from "./support/chromium.js";
import { countColor, decodePng, paeth } from "./support/png.js";
import { drillWithVerdict, pastDrill, sampleReport, withSteps } from "./support/report-builder.js";

const VERDICTS: Verdict[] = ["passed", "partial", "failed", "missed-targets", "interrupted"];

const scratchDirs: string[] = [];
function scratchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "lifeboat-report-"));
  scratchDirs.push(dir);
  return dir;
}
afterAll(() => scratchDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** Characters XML 1.0 does not allow. */
const NOT_XML = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

describe("the sample drill report", () => {
  const validate = (() => {
    const ajv = new Ajv2020({ allErrors: true });
    ajv.addFormat("date-time", {
      type: "string",
      validate: (text: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(text) && !Number.isNaN(Date.parse(text)),
    });
    return ajv.compile(drillReportJsonSchema() as object);
  })();

  it("is described by JSON Schema draft 2020-12", () => {
    expect((drillReportJsonSchema() as { $schema: string }).$schema).toBe("https://json-schema.org/draft/2020-12/schema");
  });

  it.each(VERDICTS)("for a %s drill satisfies DrillReportSchema and the JSON Schema of report.json", (verdict) => {
    const report = drillWithVerdict(verdict);
    expect(DrillReportSchema.parse(report)).toEqual(report);
    const ok = validate(JSON.parse(JSON.stringify(report)));
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it("is rejected by the JSON Schema when a time is not ISO 8601", () => {
    expect(validate({ ...sampleReport(), t0: "yesterday" })).toBe(false);
  });
});

describe("junit xml", () => {
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: "",
    isArray: (name) => ["testsuite", "testcase", "property"].includes(name),
  });

  interface Case {
    name: string;
    classname: string;
    time: string;
    failure?: { message: string };
    error?: { message: string };
    skipped?: { message: string };
  }
  interface Counts {
    tests: string;
    failures: string;
    errors: string;
    skipped: string;
    time: string;
  }
  type Suite = Counts & { name: string; testcase: Case[] };

  function parse(xml: string): { root: Counts; suite: Suite } {
    const doc = parser.parse(xml) as { testsuites: Counts & { testsuite: Suite[] } };
    expect(doc.testsuites.testsuite).toHaveLength(1);
    return { root: doc.testsuites, suite: doc.testsuites.testsuite[0]! };
  }

  it.each([
    ["passed", 0, 0, 0],
    ["partial", 1, 0, 1],
    ["failed", 1, 0, 4],
    ["missed-targets", 2, 0, 0],
    ["interrupted", 0, 1, 6],
  ] as const)("a %s drill has %i failures, %i errors and %i skipped, counted on both levels", (verdict, failures, errors, skipped) => {
    const report = drillWithVerdict(verdict);
    const { root, suite } = parse(renderJunit(report));
    const cases = suite.testcase;
    expect(cases).toHaveLength(report.steps.length + 2);
    const children = {
      failures: cases.filter((c) => c.failure !== undefined).length,
      errors: cases.filter((c) => c.error !== undefined).length,
      skipped: cases.filter((c) => c.skipped !== undefined).length,
    };
    expect(children).toEqual({ failures, errors, skipped });
    for (const level of [root, suite]) {
      expect(level.tests).toBe(String(cases.length));
      expect(level.failures).toBe(String(failures));
      expect(level.errors).toBe(String(errors));
      expect(level.skipped).toBe(String(skipped));
      expect(level.time).toBe((report.durationMs / 1000).toFixed(3));
    }
  });

  it("names the suite after the plan, a testcase after each step and target, with times in seconds", () => {
    const report = sampleReport();
    const { suite } = parse(renderJunit(report));
    expect(suite.name).toBe("lifeboat drill orders-restore");
    expect(suite.testcase.map((c) => c.name)).toEqual([...report.steps.map((s) => s.name), "RTO", "RPO"]);
    expect(new Set(suite.testcase.map((c) => c.classname))).toEqual(new Set(["drill.orders-restore"]));
    expect(suite.testcase[0]!.time).toBe("390.000");
    expect(suite.testcase.find((c) => c.name === "confirm-dashboard")!.time).toBe("0.000");
  });

  it("gives a failed step its error as the failure message", () => {
    const { suite } = parse(renderJunit(sampleReport()));
    expect(suite.testcase.find((c) => c.name === "smoke-report")!.failure!.message).toBe('timed out after 2m (step "smoke-report") [E_TIMEOUT]');
    expect(suite.testcase.find((c) => c.name === "confirm-dashboard")!.skipped!.message).toBe("no terminal to confirm at: skipped by policy");
  });

  it("fails a missed target and says by how much", () => {
    const { suite } = parse(renderJunit(drillWithVerdict("missed-targets")));
    expect(suite.testcase.find((c) => c.name === "RTO")!.failure!.message).toBe("RTO 10m 2s exceeds the target 5m");
    expect(suite.testcase.find((c) => c.name === "RPO")!.failure!.message).toBe("RPO 1h 6m exceeds the target 1h");
  });

  it("skips a target that was not declared, and one that was not measured", () => {
    const report = sampleReport({ rpo: { ...sampleReport().rpo, targetMs: null, met: null } });
    const { suite } = parse(renderJunit(report));
    expect(suite.testcase.find((c) => c.name === "RPO")!.skipped!.message).toBe("no RPO target declared");
    const failed = parse(renderJunit(drillWithVerdict("failed"))).suite;
    expect(failed.testcase.find((c) => c.name === "RTO")!.skipped!.message).toBe("RTO not measured: no step verified the recovery");
  });

  it("escapes markup and the control characters XML 1.0 cannot hold", () => {
    const hostile = 'a <b> & "c" \u0000\u0007\u001b[0m \uD800 \uFFFF';
    const report = withSteps(sampleReport(), { "smoke-report": { output: `${hostile}\n</system-out>`, error: { code: "E_X", message: hostile } } });
    const xml = renderJunit(report);
    expect(xml).not.toMatch(NOT_XML);
    expect(xml).not.toContain("<b>");
    const smoke = parse(xml).suite.testcase.find((c) => c.name === "smoke-report") as Case & { "system-out": string };
    expect(smoke.failure!.message).toBe("a <b> & \"c\" \u2400\u2407\u241b[0m \uFFFD \uFFFD [E_X]");
    expect(smoke["system-out"]).toContain("</system-out>");
  });
});

describe("html report", () => {
  const report = sampleReport();
  const html = renderHtml(report);

  it("is one page that needs no script and loads nothing", () => {
    expect(html.startsWith("<!doctype html>")).toBe(true);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i);
    expect(html).not.toMatch(/url\(\s*["']?\s*(?:https?:)?\/\//i);
    expect(html).not.toMatch(/@import/i);
    // the check above is not vacuous: step output holds a URL, shown as text
    expect(html).toContain("see https://runbooks.example.com/orders for the runbook");
  });

  it("shows script tags from step output as text", () => {
    expect(html).toContain("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;");
    expect(html).toContain("\u241b[31mERROR");
  });

  it("draws a bar per scratch, per step that ran and per teardown entry, with phase sub-bars for restores", () => {
    const ran = report.steps.filter((s) => s.startMs !== null).length;
    expect(html.match(/<rect class="bar"/g)).toHaveLength(report.provisioning.length + ran + report.teardown.length);
    expect(html.match(/<rect class="phase"/g)).toHaveLength(6);
    expect(html).toContain(`fill="${TIMELINE_COLORS.teardown}"`);
    expect(html).toMatch(/<g class="rto-target"><rect [^>]*width="3"/);
    expect(html).toContain("RTO target 15m");
    expect(html).toContain("RTO 8m 2s");
  });

  it("states the verdict, the targets, the backups with their hashes and the environment", () => {
    expect(html).toContain('class="banner verdict-partial"');
    expect(html).toContain("PARTIAL");
    expect(html).toContain("1h 5m old");
    expect(html).toContain("9f2c4e1a0b7d3c5e8f6a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e");
    expect(html).toContain("sha256 mismatch in data.dump.zst.age");
    expect(html).toContain("counted from the probe 1h 6m; backup metadata 1h 5m");
    expect(html).toContain("pg_restore");
    expect(html).toContain("drill-runner-1 (8 CPUs)");
    expect(html).toMatch(/<details><summary>output<\/summary><pre> count\n-------\n {2}1200/);
  });

  it("marks an RTO target far beyond the drill at the edge instead of squeezing the bars", () => {
    const far = renderHtml(sampleReport({ rto: { ...report.rto, targetMs: 24 * 3_600_000 } }));
    expect(far).toContain("RTO target 1d is off the chart");
    expect(far).not.toMatch(/<g class="rto-target"><rect/);
  });

  it("renders in headless Chromium with the timeline visible", { timeout: 30_000 }, async () => {
    const dir = scratchDir();
    writeFileSync(join(dir, "report.html"), html);
    await screenshot(join(dir, "report.html"), join(dir, "shot.png"), { width: 1280, height: 1000, timeoutMs: 20_000 });
    const image = decodePng(readFileSync(join(dir, "shot.png")));
    expect([image.width, image.height]).toEqual([1280, 1000]);
    // bars are 20 px high: the restore bars alone are ~300 px long, the failed
    // optional step ~100 px; the RTO target line is 3 px wide and runs ~400 px
    expect(countColor(image, TIMELINE_COLORS.passed)).toBeGreaterThan(4_000);
    expect(countColor(image, TIMELINE_COLORS.failed)).toBeGreaterThan(1_200);
    expect(countColor(image, TIMELINE_COLORS.rtoTarget)).toBeGreaterThan(800);
    expect(countColor(image, TIMELINE_COLORS.teardown)).toBeGreaterThan(100);
  });
});

describe("png decoding", () => {
  it("undoes all five row filters of an 8-bit RGB image", () => {
    const width = 3;
    const rows = [0, 1, 2, 3, 4].map((y) => Buffer.from(Array.from({ length: width * 3 }, (_, x) => (x * 53 + y * 97 + 11) % 256)));
    const png = encodeRgb(width, rows);
    const image = decodePng(png);
    expect([image.width, image.height]).toEqual([width, 5]);
    rows.forEach((row, y) => {
      for (let x = 0; x < width; x++) {
        const at = (y * width + x) * 4;
        expect([...image.pixels.subarray(at, at + 4)]).toEqual([row[x * 3], row[x * 3 + 1], row[x * 3 + 2], 255]);
      }
    });
  });

  /** Row y is stored with filter type y. */
  function encodeRgb(width: number, rows: Buffer[]): Buffer {
    const filtered = rows.map((row, y) => {
      const above = rows[y - 1] ?? Buffer.alloc(row.length);
      const out = Buffer.alloc(row.length + 1);
      out[0] = y;
      for (let x = 0; x < row.length; x++) {
        const a = x >= 3 ? row[x - 3]! : 0;
        const b = above[x]!;
        const c = x >= 3 ? above[x - 3]! : 0;
        const predicted = [0, a, b, (a + b) >> 1, paeth(a, b, c)][y]!;
        out[x + 1] = (row[x]! - predicted) & 0xff;
      }
      return out;
    });
    const header = Buffer.alloc(13);
    header.writeUInt32BE(width, 0);
    header.writeUInt32BE(rows.length, 4);
    header.set([8, 2, 0, 0, 0], 8);
    const chunk = (type: string, body: Buffer) => {
      const head = Buffer.alloc(8);
      head.writeUInt32BE(body.length, 0);
      head.write(type, 4, "latin1");
      const crc = Buffer.alloc(4);
      crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])), 0);
      return Buffer.concat([head, body, crc]);
    };
    const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    return Buffer.concat([signature, chunk("IHDR", header), chunk("IDAT", deflateSync(Buffer.concat(filtered))), chunk("IEND", Buffer.alloc(0))]);
  }
});

describe("history", () => {
  // monthly drills; RTO creeps up from ~7m to ~8m, RPO holds at 1h 5m
  const rtoSeconds = [400, 420, 410, 430, 415, 470, 480, 460, 500, 482];
  const drills: DrillReport[] = rtoSeconds.map((s, i) =>
    pastDrill(`2026-${String(i + 2).padStart(2, "0")}-01T19:05:12.000Z`, s * 1000, 3_900_000, i === 8 ? "missed-targets" : "passed"),
  );
  const shuffled = [drills[4]!, drills[9]!, drills[0]!, drills[7]!, drills[2]!, drills[5]!, drills[1]!, drills[8]!, drills[3]!, drills[6]!];

  it("lists the drills oldest first", () => {
    expect(historyRows(shuffled).map((r) => r.drillId)).toEqual(drills.map((d) => d.drillId));
    const lines = renderHistoryTable(shuffled).split("\n");
    expect(lines[0]).toMatch(/^drill\s+date \(UTC\)\s+verdict\s+RTO \/ target\s+RPO \/ target$/);
    expect(lines[1]).toBe("20260201T190512Z-7e01  2026-02-01 19:05  passed          6m 40s / 15m  1h 5m / 2h");
    expect(lines[9]).toContain("missed-targets");
    expect(lines.slice(1, 11).map((l) => l.split(" ")[0])).toEqual(drills.map((d) => d.drillId));
  });

  it("ends with the trend of the last five drills against the five before", () => {
    const last = renderHistoryTable(shuffled).split("\n").at(-1);
    expect(last).toBe(
      "trend: median RTO of the last 5 drills 8m, up 16% from 6m 55s in the 5 before; " +
        "median RPO of the last 5 drills 1h 5m, steady (1h 5m in the 5 before); 4 of the last 5 passed",
    );
  });

  it("says when there is nothing earlier to compare with", () => {
    expect(renderHistoryTable([drills[0]!]).split("\n").at(-1)).toBe(
      "trend: median RTO of the last drill 6m 40s, nothing earlier to compare; median RPO of the last drill 1h 5m, nothing earlier to compare; 1 of the last 1 passed",
    );
    expect(renderHistoryTable([])).toBe("no drills yet");
  });

  it("charts one point per drill for RTO and for RPO, with target lines, on a self-contained page", () => {
    const page = renderHistoryHtml("orders-restore", shuffled);
    expect(page.match(/<svg class="trend"/g)).toHaveLength(1);
    expect(page.match(/<circle class="point rto"/g)).toHaveLength(drills.length);
    expect(page.match(/<circle class="point rpo"/g)).toHaveLength(drills.length);
    expect(page).toContain("RTO target 15m");
    expect(page).toContain("RPO target 2h");
    expect(page).toContain("up 16% from 6m 55s");
    expect(page).not.toMatch(/<script|\b(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i);
    const rowOrder = [...page.matchAll(/<tr><td>(\d{8}T\d{6}Z-7e01)<\/td>/g)].map((m) => m[1]);
    expect(rowOrder).toEqual(drills.map((d) => d.drillId));
  });

  it("leaves out the RTO point of a drill that never reached recovery", () => {
    const failed = pastDrill("2026-12-01T19:05:12.000Z", null, 3_900_000, "failed");
    const page = renderHistoryHtml("orders-restore", [...drills, failed]);
    expect(page.match(/<circle class="point rto"/g)).toHaveLength(drills.length);
    expect(page.match(/<circle class="point rpo"/g)).toHaveLength(drills.length + 1);
  });
});

describe("markdown report", () => {
  const markdown = renderMarkdown(sampleReport());

  it("opens with the plan, the verdict and why", () => {
    expect(markdown.split("\n")[0]).toBe("# Drill report: orders-restore");
    expect(markdown).toContain('**Verdict: PARTIAL** — recovery verified in 8m 2s (target 15m), but optional step "smoke-report" failed');
    expect(markdown).toContain("`20261121T190512Z-d41c`");
  });

  it("compares RTO and RPO with their targets and shows both RPO readings", () => {
    expect(markdown).toContain('| RTO | 8m 2s | 15m | met | t0 to the end of step "probe-newest-order" |');
    expect(markdown).toContain("| RPO | 1h 6m | 2h | met | counted from the probe 1h 6m; backup metadata 1h 5m |");
    expect(markdown).toContain("from backup metadata 1h 5m, from the restored data (probe) 1h 6m");
  });

  it("lists every step with its status, and the failed step's error", () => {
    expect(markdown).toContain(
      '| 6 | smoke-report | run (optional) | failed | +8m 2s | 2m |  | timed out after 2m (step "smoke-report") \\[E\\_TIMEOUT\\] — hint: raise the step\'s timeout or make the report query faster |',
    );
    expect(markdown).toContain("| 3 | wait-ready | verify | passed | +7m 51s | 7.2s, 2 attempts | accepting connections |  |");
  });

  it("names the backups restored, their age, hashes and the fallback", () => {
    expect(markdown).toContain("### orders-db: `20261121T180000Z-3f9a`");
    expect(markdown).toContain("- consistent at 2026-11-21 18:00:00 UTC, 1h 5m old at t0");
    expect(markdown).toContain("`9f2c4e1a0b7d3c5e8f6a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e`");
    expect(markdown).toContain("  - `20261121T183000Z-77c1` (consistent at 2026-11-21 18:30:00 UTC): sha256 mismatch in data.dump.zst.age");
  });

  it("keeps teardown out of the RTO and names the tools", () => {
    expect(markdown).toContain("## Teardown\n\nRuns after the steps, in reverse order of creation; not part of the RTO.");
    expect(markdown).toContain("| pg\\_restore | 15.8 |");
    expect(markdown).toContain("| db | postgres | ready | +0ms | 12s | postgres 15.8 |  |");
  });

  it("quotes output in fences that its own backticks cannot close", () => {
    expect(markdown).toContain("### 6. smoke-report (failed)\n\n```text\nbuilding nightly report & totals\n<script>");
    const ticks = renderMarkdown(withSteps(sampleReport(), { "check-orders": { output: "```\nnot the end\n```" } }));
    expect(ticks).toContain("````text\n```\nnot the end\n```\n````");
  });
});

describe("verdict block", () => {
  it("sums up a partial drill: verdict, targets, where the data came from, what failed", () => {
    expect(renderVerdictBlock(sampleReport()).split("\n")).toEqual([
      'PARTIAL  drill 20261121T190512Z-d41c of plan "orders-restore"',
      'recovery verified in 8m 2s (target 15m), but optional step "smoke-report" failed',
      'RTO   8m 2s, target 15m: met (t0 to the end of step "probe-newest-order")',
      "RPO   1h 6m, target 2h: met (counted from the probe 1h 6m; backup metadata 1h 5m)",
      "data  orders-db 20261121T180000Z-3f9a, 1h 5m old at t0 (fell back from 20261121T183000Z-77c1: E_INTEGRITY)",
      "      uploads 20261121T183000Z-b210, 35m 12s old at t0",
      'failed (optional) step "smoke-report": timed out after 2m (step "smoke-report") [E_TIMEOUT]',
      "  hint: raise the step's timeout or make the report query faster",
    ]);
  });

  it("says when recovery was not reached", () => {
    const block = renderVerdictBlock(drillWithVerdict("failed"));
    expect(block).toContain("FAILED  drill");
    expect(block).toContain("RTO   not reached, target 15m (no step verified the recovery)");
    expect(block).toContain('failed step "check-orders": expected at least 1000 rows in orders, found 0 [E_VERIFY]');
  });

  it("reports missed targets and a teardown that left something behind", () => {
    const report = drillWithVerdict("missed-targets");
    const leftover = { ...report, teardown: [{ ...report.teardown[1]!, status: "failed" as const, error: { code: "E_TEARDOWN", message: "pg_ctl stop timed out" } }] };
    const block = renderVerdictBlock(leftover);
    expect(block).toContain("RTO   10m 2s, target 5m: missed");
    expect(block).toContain("RPO   1h 6m, target 1h: missed");
    expect(block).toContain('teardown of scratch "db" failed, it may still exist: pg_ctl stop timed out [E_TEARDOWN]');
  });

  it("is plain text even when errors carry terminal escapes", () => {
    const report = withSteps(sampleReport(), { "smoke-report": { error: { code: "E_X", message: "\u001b[31mred\u001b[0m" } } });
    expect(renderVerdictBlock(report)).not.toMatch(/\u001b/);
  });
});
