import { existsSync } from "node:fs";
import { configPath } from "../../config/load.js";
import { listScratch, removeScratch, sweepScratch } from "../../scratch/environments.js";
import { LifeboatError } from "../../model/errors.js";
import type { NamedScratch } from "../../model/scratch.js";
import { EXIT } from "../output.js";
import type { CommandContext } from "../context.js";
import type { Command } from "../command.js";
import { renderTable } from "../../report/text-table.js";

/** `lifeboat scratch list | remove ID… | sweep`: the scratch environments on this machine. */
export const scratchCommand: Command = {
  name: "scratch",
  summary: "list, remove or sweep scratch environments on this machine (kept ones and leftovers of interrupted runs)",
  usage: "lifeboat scratch list | remove ID… | sweep",
  options: {},
  async run(ctx, { positionals }) {
    const [action, ...ids] = positionals;
    if (action === "list" && ids.length === 0) {
      const records = await listScratch();
      if (ctx.output.json) {
        ctx.output.printJson(records.map((r) => ({ id: r.id, type: r.type, createdAt: r.createdAt, kept: r.kept, alive: r.alive, connection: r.connection ?? {} })));
      } else if (records.length === 0) {
        ctx.output.out("no scratch environments");
      } else {
        const state = (r: (typeof records)[number]) => (r.kept ? "kept" : r.alive ? `in use (pid ${r.owner.pid})` : "left behind");
        ctx.output.out(renderTable(["ID", "TYPE", "CREATED", "STATE", "CONNECTION"], records.map((r) => [r.id, r.type, r.createdAt, state(r), r.connection?.url ?? r.connection?.directory ?? ""])));
      }
      return EXIT.ok;
    }
    if (action === "remove" && ids.length > 0) {
      for (const id of ids) {
        await removeScratch(id, { log: ctx.log, specs: declared(ctx) });
        if (!ctx.output.json) ctx.output.out(`removed scratch environment ${id}`);
      }
      if (ctx.output.json) ctx.output.printJson({ ok: true, removed: ids });
      return EXIT.ok;
    }
    if (action === "sweep" && ids.length === 0) {
      const swept = await sweepScratch({ log: ctx.log, specs: declared(ctx) });
      if (ctx.output.json) ctx.output.printJson({ ok: true, removed: swept.map((r) => r.id) });
      else ctx.output.out(swept.length ? `removed ${swept.length} leftover scratch environments: ${swept.map((r) => r.id).join(", ")}` : "nothing to sweep");
      return EXIT.ok;
    }
    throw new LifeboatError("USAGE", `usage: ${scratchCommand.usage}`, { kind: "usage" });
  },
};

/** The config's scratch environments, when there is a config (their secrets help remove them). */
function declared(ctx: CommandContext): NamedScratch[] {
  if (!existsSync(configPath(ctx.options.config))) return [];
  try {
    return Object.entries(ctx.loadConfig().scratch).map(([name, spec]) => ({ name, spec }));
  } catch (error) {
    // Cleaning up must not depend on the rest of the config being usable right now.
    ctx.log.warn({ err: (error as Error).message.split("\n")[0] }, "config not loaded; removing scratch environments from their records alone");
    return [];
  }
}
