import { listBackups, type CatalogEntry } from "../../catalog/catalog.js";
import { formatBytes } from "../../model/size.js";
import { formatDuration } from "../../model/duration.js";
import { EXIT } from "../output.js";
import type { Command } from "../command.js";
import { renderTable } from "../../report/text-table.js";

export const listCommand: Command = {
  name: "list",
  summary: "the catalog: every complete backup, its age against the RPO target, its verification state",
  usage: "lifeboat list [JOB]",
  options: {},
  async run(ctx, { positionals }) {
    const config = ctx.loadConfig();
    const jobNames = positionals.length ? positionals.map((n) => ctx.job(n).name) : Object.keys(config.jobs);
    const storages = [...new Set(jobNames.map((n) => config.jobs[n]!.storage))];
    const entries: CatalogEntry[] = [];
    for (const storage of storages) {
      const { store, layout } = await ctx.storeNamed(storage);
      const all = await listBackups(store, layout, positionals.length === 1 ? positionals[0] : undefined);
      entries.push(...all.filter((e) => jobNames.includes(e.job) && config.jobs[e.job]!.storage === storage));
    }
    const now = Date.now();
    const rows = entries.map((e) => {
      const m = e.manifest;
      const rpoMs = config.jobs[e.job]?.rpoMs;
      const ageMs = m ? now - Date.parse(m.consistentAt) : undefined;
      return {
        id: e.id,
        job: e.job,
        consistentAt: m?.consistentAt ?? null,
        sizeBytes: m ? m.objects.reduce((s, o) => s + o.sizeBytes, 0) : null,
        sourceBytes: m ? m.objects.reduce((s, o) => s + o.sourceBytes, 0) : null,
        status: m ? m.status : "invalid",
        ageMs: ageMs ?? null,
        rpoMs: rpoMs ?? null,
        withinRpo: ageMs === undefined || rpoMs === undefined ? null : ageMs <= rpoMs,
        verification: e.verification ? (e.verification.ok ? "verified" : "failed") : "stored-checked",
        verifiedAt: e.verification?.verifiedAt ?? null,
        encrypted: m ? m.encryption !== null : null,
        problems: e.problems,
      };
    });
    if (ctx.output.json) {
      ctx.output.printJson(rows);
      return EXIT.ok;
    }
    if (rows.length === 0) {
      ctx.output.out("no backups yet");
      return EXIT.ok;
    }
    ctx.output.out(
      renderTable(
        ["JOB", "ID", "TIME (UTC)", "SIZE", "AGE", "RPO", "STATUS", "VERIFIED"],
        rows.map((r) => [
          r.job,
          r.id,
          r.consistentAt ? r.consistentAt.replace("T", " ").replace(/\.\d+Z$/, "Z") : "-",
          r.sizeBytes === null ? "-" : formatBytes(r.sizeBytes),
          r.ageMs === null ? "-" : formatDuration(r.ageMs),
          r.rpoMs === null ? "-" : `${formatDuration(r.rpoMs)}${r.withinRpo === false ? " (exceeded)" : ""}`,
          r.status,
          r.verification === "stored-checked" ? "at backup" : `${r.verification} ${r.verifiedAt?.slice(0, 16).replace("T", " ") ?? ""}`,
        ]),
      ),
    );
    for (const r of rows.filter((r) => r.problems.length)) ctx.output.err(`warning: backup ${r.id} of job "${r.job}" is unusable: ${r.problems.join("; ")}`);
    return EXIT.ok;
  },
};
