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
            `lifeboat daemon ${info.instance}: ${info.jobs} jobs and ${info.drills} drills scheduled (${mode}), ${info.catchUp} catch-up runs, ${info.abandoned} abandoned runs marked; ${info.url}/metrics and /healthz; started in ${formatDuration(info.startMs)}`,
          );
      },
    });
    if (ctx.output.json) ctx.output.printJson({ event: "stopped", ...summary });
    else ctx.output.err(`lifeboat daemon stopped: ${summary.runs} runs${summary.aborted ? `, ${summary.aborted} aborted at the end of the grace period` : ""}`);
    return EXIT.ok;
  },
};
