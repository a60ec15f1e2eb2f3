import { LifeboatError } from "../../model/errors.js";
import { createNotifier, type DeliveryResult } from "../../schedule/notifications.js";
import { EXIT } from "../output.js";
import type { Command } from "../command.js";

/** `lifeboat notify test [CHANNEL]`: sends a test event to every notification channel, or the named one. */
export const notifyCommand: Command = {
  name: "notify",
  summary: "send a test notification to every configured channel (or one) and show what each receiver answered",
  usage: "lifeboat notify test [CHANNEL]",
  options: {},
  async run(ctx, { positionals }) {
    const [action, ...rest] = positionals;
    if (action !== "test" || rest.length > 1) {
      throw new LifeboatError("USAGE", action === undefined ? "missing action" : `unknown action "${positionals.join(" ")}"`, {
        kind: "usage",
        hint: "usage: lifeboat notify test [CHANNEL]",
      });
    }
    const only = rest[0];
    const channels = ctx.loadConfig().notifications;
    if (Object.keys(channels).length === 0) {
      throw new LifeboatError("NOTIFICATIONS_NONE", "no notification channels are configured", {
        kind: "usage",
        hint: "declare one under notifications: in lifeboat.yaml (type: webhook or slack)",
      });
    }
    const notifier = createNotifier(channels, { log: ctx.log, ...(only === undefined ? {} : { only }) });
    const results = await notifier.notify({ type: "test", message: "sent by `lifeboat notify test`; if you can read this, the channel works" });
    const ok = results.every((r) => r.ok);
    if (ctx.output.json) ctx.output.printJson({ ok, event: "test", results });
    else for (const r of results) ctx.output.out(describe(r));
    return ok ? EXIT.ok : EXIT.run;
  },
};

function plural(n: number): string {
  return `${n} attempt${n === 1 ? "" : "s"}`;
}

/** `ops: delivered (HTTP 200, 1 attempt)` / `ops: failed after 5 attempts: HTTP 500`. */
function describe(r: DeliveryResult): string {
  if (r.ok) return `${r.channel}: delivered (HTTP ${r.status}, ${plural(r.attempts)})`;
  return `${r.channel}: failed after ${plural(r.attempts)}: ${r.error ?? "unknown error"}`;
}
