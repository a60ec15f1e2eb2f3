import { Readable } from "node:stream";
import { DrillReportSchema, type DrillReport } from "../model/drill-report.js";
import { LifeboatError } from "../model/errors.js";
import { readJsonObject } from "./small-object.js";
import { REPORT_FILES, type Layout } from "../storage/layout.js";
import type { ObjectStore } from "../storage/store.js";

/**
 * Drill reports in storage: `<prefix>drills/<plan>/<drill-id>/` holds
 * report.md, report.html, junit.xml and report.json, written in that order:
 * like a backup's manifest, report.json is last, so a drill's record exists
 * only when it is complete. The bucket is the catalog of drills too.
 */
const CONTENT_TYPES: Record<string, string> = {
  "report.json": "application/json",
  "report.md": "text/markdown; charset=utf-8",
  "report.html": "text/html; charset=utf-8",
  "junit.xml": "application/xml",
};

const MAX_REPORT_BYTES = 16 * 1024 * 1024;

export async function storeDrillReport(store: ObjectStore, layout: Layout, report: DrillReport, files: Readonly<Record<string, string>>): Promise<string[]> {
  const keys: string[] = [];
  for (const name of REPORT_FILES) {
    const body = files[name];
    if (body === undefined) throw new LifeboatError("REPORT_INCOMPLETE", `the report of drill ${report.drillId} has no ${name}`, { kind: "run" });
    const key = layout.drillReportKey(report.plan.name, report.drillId, name);
    await store.put(key, Readable.from([Buffer.from(body)]), { contentType: CONTENT_TYPES[name] ?? "application/octet-stream" });
    keys.push(key);
  }
  return keys;
}

export interface StoredReports {
  reports: DrillReport[];
  /** report.json objects that could not be read or failed the schema, with why. */
  problems: Array<{ key: string; message: string }>;
}

/** Every complete drill report of one plan (or of all plans), oldest first. */
export async function listDrillReports(store: ObjectStore, layout: Layout, plan?: string): Promise<StoredReports> {
  const found: Array<{ key: string; drillId: string }> = [];
  for await (const object of store.list(layout.drillsPrefix(plan))) {
    const parsed = layout.parseDrillReportKey(object.key);
    if (parsed && (plan === undefined || parsed.plan === plan)) found.push({ key: object.key, drillId: parsed.drillId });
  }
  const reports: DrillReport[] = [];
  const problems: StoredReports["problems"] = [];
  for (const { key } of found) {
    try {
      const parsed = DrillReportSchema.safeParse(await readJsonObject(store, key, MAX_REPORT_BYTES));
      if (parsed.success) reports.push(parsed.data);
      else problems.push({ key, message: `does not match the report schema: ${parsed.error.issues[0]?.message ?? "invalid"}` });
    } catch (error) {
      problems.push({ key, message: (error as Error).message });
    }
  }
  reports.sort((a, b) => a.t0.localeCompare(b.t0) || a.drillId.localeCompare(b.drillId));
  return { reports, problems };
}

