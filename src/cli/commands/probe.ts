import { EXIT } from "../output.js";
import type { Command } from "../command.js";
import { renderTable } from "../../report/text-table.js";

export const probeCommand: Command = {
  name: "probe",
  summary: "check each storage is reachable and what it enforces (conditional writes, multipart abort)",
  usage: "lifeboat probe [STORAGE…]",
  options: {},
  async run(ctx, { positionals }) {
    const config = ctx.loadConfig();
    const names = positionals.length ? positionals : Object.keys(config.storage);
    const rows = [];
    for (const name of names) {
      const { store, layout } = await ctx.storeNamed(name);
      const capabilities = await store.probe(layout.probePrefix());
      rows.push({ storage: name, kind: store.kind, description: store.description, reachable: true, ...capabilities });
    }
    if (ctx.output.json) {
      ctx.output.printJson(rows);
      return EXIT.ok;
    }
    const yesNo = (value: boolean, missing: string) => (value ? "yes" : `no (${missing})`);
    ctx.output.out(
      renderTable(
        ["STORAGE", "KIND", "REACHABLE", "CONDITIONAL WRITES", "MULTIPART ABORT"],
        rows.map((r) => [
          r.storage,
          r.kind,
          "yes",
          yesNo(r.conditionalWrites, "If-None-Match is ignored: multi-instance locking cannot work"),
          yesNo(r.multipartAbort, "interrupted uploads keep their parts until pruned"),
        ]),
      ),
    );
    return EXIT.ok;
  },
};
