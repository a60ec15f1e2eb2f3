import { listBackups } from "../../catalog/catalog.js";
import { verifyBackup } from "../../catalog/verify.js";
import { LifeboatError } from "../../model/errors.js";
import { mapLimit } from "../../model/map-limit.js";
import type { Manifest } from "../../model/manifest.js";
import { formatDuration } from "../../model/duration.js";
import { EXIT } from "../output.js";
import type { Command } from "../command.js";
import type { CommandContext } from "../context.js";
import type { ImmutabilityProof } from "../../storage/store.js";

export const verifyCommand: Command = {
  name: "verify",
  summary: "read backups back: size, SHA-256, decryption and decompression; or prove that Object Lock holds",
  usage: "lifeboat verify [JOB] [--id ID | --all] | lifeboat verify [JOB] --immutability",
  options: { id: { type: "string" }, all: { type: "boolean" }, immutability: { type: "boolean" } },
  async run(ctx, { values, positionals }) {
    const config = ctx.loadConfig();
    if (positionals.length > 1) throw new LifeboatError("USAGE", "verify takes at most one job", { kind: "usage" });
    if (values.id && positionals.length === 0) throw new LifeboatError("USAGE", "--id needs a job: lifeboat verify JOB --id ID", { kind: "usage" });
    const jobNames = positionals.length ? [ctx.job(positionals[0]!).name] : Object.keys(config.jobs);
    if (values.immutability) return verifyImmutability(ctx, jobNames, values.id as string | undefined);
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

interface NotLocked {
  key: string;
  /** "missing", "no retention date" or "retention ended <date>". */
  why: string;
}

/**
 * `verify --immutability`: per storage, a locked canary that the store must
 * refuse to delete; per listed backup, every object (data and manifest) must
 * carry a retention date in the future. Exit 0 only when all of that holds.
 */
async function verifyImmutability(ctx: CommandContext, jobNames: string[], id: string | undefined): Promise<number> {
  const config = ctx.loadConfig();
  const byStorage = new Map<string, string[]>();
  for (const name of jobNames) {
    const storage = config.jobs[name]!.storage;
    byStorage.set(storage, [...(byStorage.get(storage) ?? []), name]);
  }
  if (jobNames.length === 0) for (const storage of Object.keys(config.storage)) byStorage.set(storage, []);

  const storages: Array<{ storage: string } & ImmutabilityProof> = [];
  const backups: Array<{ job: string; id: string; storage: string; locked: boolean; objects: number; lockedUntil: string | undefined; notLocked: NotLocked[] }> = [];
  const now = Date.now();
  for (const [storage, jobs] of byStorage) {
    const { store, layout } = await ctx.storeNamed(storage);
    const proof = await store.proveImmutability(layout.immutabilityPrefix());
    storages.push({ storage, ...proof });
    if (!ctx.output.json) {
      if (proof.held) ctx.output.out(`held storage "${storage}": ${proof.reason}`);
      else ctx.output.err(`NOT HELD storage "${storage}": ${proof.reason}`);
    }
    for (const job of jobs) {
      const entries = (await listBackups(store, layout, job)).filter((e) => id === undefined || e.id === id);
      if (id !== undefined && entries.length === 0) throw new LifeboatError("BACKUP_NOT_FOUND", `no backup "${id}" of job "${job}"`, { kind: "usage" });
      for (const entry of entries) {
        const keys = [...(entry.manifest?.objects ?? []).map((o) => layout.objectKey(job, entry.id, o.key)), entry.manifestKey];
        const heads = await mapLimit(keys, 8, async (key) => ({ key, info: await store.head(key) }));
        const notLocked: NotLocked[] = [];
        let earliest: Date | undefined;
        for (const { key, info } of heads) {
          const until = info?.retainUntil;
          if (!info) notLocked.push({ key, why: "missing" });
          else if (!until) notLocked.push({ key, why: "no retention date" });
          else if (until.getTime() <= now) notLocked.push({ key, why: `retention ended ${until.toISOString()}` });
          if (until && (!earliest || until < earliest)) earliest = until;
        }
        const locked = notLocked.length === 0;
        backups.push({ job, id: entry.id, storage, locked, objects: keys.length, lockedUntil: locked ? earliest?.toISOString() : undefined, notLocked });
        if (!ctx.output.json) {
          if (locked) ctx.output.out(`locked ${job} ${entry.id}: ${keys.length} objects until ${earliest!.toISOString()}`);
          else {
            ctx.output.err(`NOT LOCKED ${job} ${entry.id}: ${notLocked.length} of ${keys.length} objects`);
            for (const n of notLocked) ctx.output.err(`  ${n.key}: ${n.why}`);
          }
        }
      }
    }
  }
  const ok = storages.every((s) => s.held) && backups.every((b) => b.locked);
  if (ctx.output.json) {
    ctx.output.printJson({
      ok,
      storages: storages.map((s) => ({ ...s, retainUntil: s.retainUntil?.toISOString() })),
      backups,
    });
  } else if (storages.length === 0) ctx.output.out("no storage to check");
  return ok ? EXIT.ok : EXIT.failed;
}
