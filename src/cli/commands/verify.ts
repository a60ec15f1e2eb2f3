import { listBackups } from "../../catalog/catalog.js";
import { verifyBackup } from "../../catalog/verify.js";
import { LifeboatError } from "../../model/errors.js";
import type { Manifest } from "../../model/manifest.js";
import { formatDuration } from "../../model/duration.js";
import { EXIT } from "../output.js";
import type { Command } from "../command.js";

export const verifyCommand: Command = {
  name: "verify",
  summary: "read backups back: size, SHA-256, decryption and decompression",
  usage: "lifeboat verify [JOB] [--id ID | --all]",
  options: { id: { type: "string" }, all: { type: "boolean" } },
  async run(ctx, { values, positionals }) {
    const config = ctx.loadConfig();
    if (positionals.length > 1) throw new LifeboatError("USAGE", "verify takes at most one job", { kind: "usage" });
    if (values.id && positionals.length === 0) throw new LifeboatError("USAGE", "--id needs a job: lifeboat verify JOB --id ID", { kind: "usage" });
    const jobNames = positionals.length ? [ctx.job(positionals[0]!).name] : Object.keys(config.jobs);
    const identities = ctx.identities();
    const outcomes: unknown[] = [];
    let failed = 0;
    let checked = 0;
    for (const name of jobNames) {
      const { store, layout } = await ctx.storeFor(config.jobs[name]!);
      const entries = await listBackups(store, layout, name);
      let targets: Manifest[];
      const invalid = entries.filter((e) => !e.manifest && (values.all || values.id === e.id));
      for (const e of invalid) {
        failed++;
        outcomes.push({ job: name, id: e.id, ok: false, problems: e.problems });
        if (!ctx.output.json) ctx.output.err(`FAILED ${name} ${e.id}: invalid manifest: ${e.problems.join("; ")}`);
      }
      const usable = entries.flatMap((e) => (e.manifest ? [e.manifest] : []));
      if (values.id) {
        targets = usable.filter((m) => m.id === values.id);
        if (targets.length === 0 && invalid.length === 0) throw new LifeboatError("BACKUP_NOT_FOUND", `no backup "${String(values.id)}" of job "${name}"`, { kind: "usage" });
      } else if (values.all) targets = usable;
      else targets = usable.slice(-1);
      for (const manifest of targets) {
        checked++;
        const outcome = await verifyBackup(store, layout, manifest, { identities, signal: ctx.signal, log: ctx.log });
        if (!outcome.ok) failed++;
        outcomes.push({ job: name, id: manifest.id, ok: outcome.ok, decrypted: outcome.decrypted, problems: outcome.problems, durationMs: Math.round(outcome.durationMs) });
        if (!ctx.output.json) {
          if (outcome.ok) {
            const how = manifest.encryption ? (outcome.decrypted ? "size, SHA-256, decryption" : "size, SHA-256 (no identity: decryption not checked)") : "size, SHA-256";
            ctx.output.out(`ok ${name} ${manifest.id}: ${how} in ${formatDuration(outcome.durationMs)}`);
          } else {
            ctx.output.err(`FAILED ${name} ${manifest.id}:`);
            for (const p of outcome.problems) ctx.output.err(`  ${p.message}`);
          }
        }
      }
    }
    if (ctx.output.json) ctx.output.printJson(outcomes);
    else if (checked === 0 && failed === 0) ctx.output.out("no backups to verify");
    return failed > 0 ? EXIT.failed : EXIT.ok;
  },
};
