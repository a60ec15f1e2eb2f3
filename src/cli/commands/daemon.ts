import { runDaemon } from "../../schedule/daemon.js";
import { formatDuration } from "../../model/duration.js";
import type { Command } from "../command.js";
import { EXIT } from "../output.js";

export const daemonCommand: Command = {
  name: "daemon",
  summary: "the scheduler: scheduled backups and drills, pruning, RPO alerts, /metrics and /healthz",
  usage: "lifeboat daemon",
  options: {},
  stopsOnSignal: true,
  async run(ctx) {
    const config = ctx.loadConfig();
    const summary = await runDaemon({
      config,
      stores: (name) => ctx.storeNamed(name),
      identities: ctx.identities(),
      log: ctx.log,
      shutdown: ctx.signal,
      ready: (info) => {
        const mode = info.multiInstance ? "multi-instance" : "single-instance";
        if (ctx.output.json) ctx.output.printJson({ event: "ready", ...info });
        else
          ctx.output.err(
            `lifeboat daemon ${info.instance}: ${count(info.jobs, "job")} and ${count(info.drills, "drill")} scheduled (${mode}), ${count(info.catchUp, "catch-up run")}, ${count(info.abandoned, "abandoned run")} marked; ${info.url}/metrics and /healthz; started in ${formatDuration(info.startMs)}`,
          );
      },
    });
    if (ctx.output.json) ctx.output.printJson({ event: "stopped", ...summary });
    else ctx.output.err(`lifeboat daemon stopped: ${count(summary.runs, "run")}${summary.aborted ? `, ${summary.aborted} aborted at the end of the grace period` : ""}`);
    return EXIT.ok;
  },
};

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
