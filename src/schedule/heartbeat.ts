import { Readable } from "node:stream";
import type { Logger } from "../log/logger.js";
import type { Layout } from "../storage/layout.js";
import type { ObjectStore } from "../storage/store.js";
import type { Owner } from "./run-ledger.js";

/**
 * `.lifeboat/daemon/heartbeat.json`: when a daemon last ran, rewritten every
 * minute by every daemon (the last writer wins). On start, a heartbeat older
 * than two intervals means no daemon ran in between: downtime, and the slots
 * that passed in it were missed. Kept in storage so it survives the host.
 */
export interface Heartbeat {
  version: 1;
  lastSeenAt: string;
  instance: string;
  host: string;
  /** True when the daemon stopped on a signal, not by a crash. */
  stoppedCleanly: boolean;
}

export async function readHeartbeat(store: ObjectStore, layout: Layout): Promise<Heartbeat | undefined> {
  const raw = await store.getSmall(layout.daemonHeartbeatKey(), 64 * 1024);
  if (!raw) return undefined;
  const parsed = JSON.parse(raw.bytes.toString("utf8")) as Partial<Heartbeat>;
  if (typeof parsed.lastSeenAt !== "string" || Number.isNaN(Date.parse(parsed.lastSeenAt))) return undefined;
  return parsed as Heartbeat;
}

export function startHeartbeat(store: ObjectStore, layout: Layout, owner: Owner, everyMs: number, log: Logger): { stop(): Promise<void> } {
  const write = async (stoppedCleanly: boolean) => {
    const beat: Heartbeat = { version: 1, lastSeenAt: new Date().toISOString(), instance: owner.instance, host: owner.host, stoppedCleanly };
    try {
      await store.put(layout.daemonHeartbeatKey(), Readable.from([Buffer.from(`${JSON.stringify(beat, null, 2)}\n`)]), { contentType: "application/json" });
    } catch (error) {
      log.warn({ err: (error as Error).message }, "could not write the daemon heartbeat");
    }
  };
  let pending = write(false);
  const timer = setInterval(() => {
    pending = pending.then(() => write(false));
  }, everyMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await pending;
      await write(true);
    },
  };
}
