import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import { join } from "node:path";
import { processExists } from "../exec/process.js";
import { LifeboatError } from "../model/errors.js";

/**
 * Confirmations of manual steps from another terminal or a chat-ops bot:
 * `lifeboat drill --ack STEP` writes a file that the waiting drill sees.
 * Each running drill has a folder `<root>/<drill-id>/` holding `waiting.json`
 * while a manual step waits, and `ack-<hash of the step name>` once confirmed.
 */
export interface WaitingRecord {
  drillId: string;
  plan: string;
  step: string;
  instructions: string;
  pid: number;
  since: string;
}

export function drillStateRoot(scratchRoot: string): string {
  return join(scratchRoot, ".drills");
}

function ackName(step: string): string {
  return `ack-${createHash("sha256").update(step).digest("hex").slice(0, 16)}`;
}

export async function announceWaiting(root: string, record: WaitingRecord): Promise<void> {
  const dir = join(root, record.drillId);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.writeFile(join(dir, "waiting.json"), `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
}

/** Resolves when the step is acknowledged; polls (files are the only channel every platform shares). */
export async function waitForAck(root: string, drillId: string, step: string, signal: AbortSignal): Promise<void> {
  const path = join(root, drillId, ackName(step));
  while (!signal.aborted) {
    if (await fs.stat(path).then(() => true, () => false)) return;
    // A ref'd timer: while a person is awaited, nothing else may keep the process alive.
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw signal.reason ?? new LifeboatError("INTERRUPTED", "interrupted", { kind: "interrupted" });
}

export async function clearDrillState(root: string, drillId: string): Promise<void> {
  await fs.rm(join(root, drillId), { recursive: true, force: true });
}

/** Removes the folders of drills that were killed while a manual step waited. */
export async function sweepDrillState(root: string): Promise<void> {
  for (const name of await fs.readdir(root).catch(() => [] as string[])) {
    try {
      const record = JSON.parse(await fs.readFile(join(root, name, "waiting.json"), "utf8")) as WaitingRecord;
      if (processExists(record.pid)) continue;
    } catch {
      // no record: a drill that never waited, or one that is writing it right now
      continue;
    }
    await fs.rm(join(root, name), { recursive: true, force: true });
  }
}

/**
 * Acknowledges a waiting manual step of a running drill (`lifeboat drill
 * --ack STEP [--drill ID]`). Fails when no drill waits for that step, or
 * when several do and no drill id says which.
 */
export async function acknowledge(root: string, step: string, drillId?: string): Promise<WaitingRecord> {
  const names = await fs.readdir(root).catch(() => [] as string[]);
  const waiting: WaitingRecord[] = [];
  for (const name of names) {
    if (drillId !== undefined && name !== drillId) continue;
    try {
      const record = JSON.parse(await fs.readFile(join(root, name, "waiting.json"), "utf8")) as WaitingRecord;
      if (record.step === step && processExists(record.pid)) waiting.push(record);
    } catch {
      // not waiting
    }
  }
  if (waiting.length === 0) {
    throw new LifeboatError("ACK_NOTHING_WAITING", `no running drill${drillId ? ` "${drillId}"` : ""} waits for step "${step}"`, {
      kind: "usage",
      hint: "the step name must match the plan exactly; the drill prints it while it waits",
    });
  }
  if (waiting.length > 1) {
    throw new LifeboatError("ACK_AMBIGUOUS", `${waiting.length} drills wait for step "${step}": ${waiting.map((w) => w.drillId).join(", ")}`, {
      kind: "usage",
      hint: "say which with --drill ID",
    });
  }
  const record = waiting[0]!;
  await fs.writeFile(join(root, record.drillId, ackName(step)), `${new Date().toISOString()}\n`, { mode: 0o600 });
  return record;
}
