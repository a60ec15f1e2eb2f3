import { randomBytes } from "node:crypto";
import { promises as fs, readFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "../log/logger.js";
import { LifeboatError } from "../model/errors.js";
import type { NamedScratch, ScratchSpec } from "../model/scratch.js";
import { scratchKind } from "./registry.js";
import type { ScratchConnection, ScratchResource } from "./scratch.js";

/**
 * The lifecycle of scratch environments and the ledger that makes them
 * sweepable. Every environment gets a folder `<root>/<id>/` and a record
 * `<root>/<id>.json` written before anything is created. The record names
 * the process that owns the environment; when that process is gone (it was
 * killed) and the environment was not kept on purpose, the next start's
 * sweep removes it. Removal deletes the record last, so a removal that is
 * itself interrupted is finished by the next sweep.
 */
export interface ScratchEnvironment {
  /** `<runId>-<name>`: unique, and what `lifeboat scratch remove` takes. */
  id: string;
  name: string;
  type: ScratchSpec["type"];
  runId: string;
  connection: ScratchConnection;
  connectHint: string | undefined;
  versions: Record<string, string>;
  /** Removes the environment; idempotent, and never cut short by the run's abort signal. */
  teardown(): Promise<void>;
  /** Keeps the environment after this process exits: the sweep leaves it alone. */
  keep(): Promise<void>;
}

export interface ScratchRecord {
  version: 1;
  id: string;
  runId: string;
  name: string;
  type: ScratchSpec["type"];
  owner: { pid: number; startTicks: string | null; host: string };
  createdAt: string;
  kept: boolean;
  resource: ScratchResource;
  /** How to reach it (no secrets), for `lifeboat scratch list`. */
  connection?: ScratchConnection | undefined;
}

export interface ScratchOptions {
  /** Where environments live; default LIFEBOAT_SCRATCH_DIR or `<tmp>/lifeboat-scratch`. */
  root?: string | undefined;
  log: Logger;
  signal?: AbortSignal | undefined;
}

const RECORD_VERSION = 1;

export function defaultScratchRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.LIFEBOAT_SCRATCH_DIR || join(tmpdir(), "lifeboat-scratch");
}

/** A run id for scratch resources: time-sortable, lower case (it ends up in database names). */
export function newRunId(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}Z$/, "").toLowerCase();
  return `${stamp}-${randomBytes(2).toString("hex")}`;
}

export async function provisionScratch(named: NamedScratch, runId: string, options: ScratchOptions): Promise<ScratchEnvironment> {
  const root = await ensureRoot(options.root);
  const kind = scratchKind(named.spec);
  const id = `${runId}-${named.name}`;
  const dir = join(root, id);
  const log = options.log.child({ scratch: named.name, scratchId: id });
  const record: ScratchRecord = {
    version: RECORD_VERSION,
    id,
    runId,
    name: named.name,
    type: named.spec.type,
    owner: currentOwner(),
    createdAt: new Date().toISOString(),
    kept: false,
    resource: {},
  };
  await writeRecord(root, record);
  await fs.mkdir(dir, { mode: 0o700 });

  const remove = async () => {
    await kind.remove(record.resource, { dir, spec: named.spec, log });
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rm(recordPath(root, id), { force: true });
  };

  let provisioned;
  try {
    provisioned = await kind.provision(named.spec, {
      runId,
      name: named.name,
      dir,
      log,
      signal: options.signal,
      async record(resource) {
        record.resource = resource;
        await writeRecord(root, record);
      },
    });
  } catch (error) {
    await remove().catch((e: unknown) => log.warn({ err: (e as Error).message }, "could not remove a scratch environment that failed to start; the next sweep will"));
    throw error;
  }
  record.connection = publicConnection(provisioned.connection);
  await writeRecord(root, record);
  log.info({ type: named.spec.type, description: kind.describe(named.spec) }, "scratch environment ready");

  let removed: Promise<void> | undefined;
  return {
    id,
    name: named.name,
    type: named.spec.type,
    runId,
    connection: provisioned.connection,
    connectHint: provisioned.connectHint,
    versions: provisioned.versions ?? {},
    teardown() {
      removed ??= remove().then(() => log.info("scratch environment removed"));
      return removed;
    },
    async keep() {
      record.kept = true;
      await writeRecord(root, record);
    },
  };
}

/** Every recorded environment, with whether its owner is still running. */
export async function listScratch(options: { root?: string | undefined } = {}): Promise<Array<ScratchRecord & { alive: boolean }>> {
  const root = options.root ?? defaultScratchRoot();
  const names = await fs.readdir(root).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return [] as string[];
    throw error;
  });
  const records: Array<ScratchRecord & { alive: boolean }> = [];
  for (const name of names.filter((n) => n.endsWith(".json")).sort()) {
    const record = readRecord(join(root, name));
    if (record) records.push({ ...record, alive: isAlive(record.owner) });
  }
  return records;
}

/** Removes one recorded environment (kept or orphaned). Refuses one whose owner still runs. */
export async function removeScratch(id: string, options: ScratchOptions & { specs?: readonly NamedScratch[] | undefined }): Promise<ScratchRecord> {
  const root = options.root ?? defaultScratchRoot();
  const record = (await listScratch({ root })).find((r) => r.id === id);
  if (!record) {
    throw new LifeboatError("SCRATCH_NOT_FOUND", `no scratch environment "${id}" in ${root}`, { kind: "usage", hint: 'run "lifeboat scratch list" to see them' });
  }
  if (record.alive && !record.kept) {
    throw new LifeboatError("SCRATCH_IN_USE", `scratch environment "${id}" belongs to a running lifeboat (pid ${record.owner.pid})`, { kind: "usage" });
  }
  await removeRecorded(root, record, options);
  return record;
}

/**
 * Removes the environments of runs that died (their owner process is gone and
 * they were not kept). Runs at the start of every command that creates
 * scratch environments. A leftover that cannot be removed is reported and
 * left for the next sweep; it never fails the command.
 */
export async function sweepScratch(options: ScratchOptions & { specs?: readonly NamedScratch[] | undefined }): Promise<ScratchRecord[]> {
  const root = options.root ?? defaultScratchRoot();
  const swept: ScratchRecord[] = [];
  for (const record of await listScratch({ root })) {
    if (record.alive || record.kept) continue;
    try {
      await removeRecorded(root, record, options);
      options.log.warn({ scratchId: record.id, type: record.type, owner: record.owner.pid }, "removed a scratch environment left behind by an interrupted run");
      swept.push(record);
    } catch (error) {
      options.log.warn({ scratchId: record.id, err: (error as Error).message }, "could not remove a leftover scratch environment; will retry at the next start");
    }
  }
  return swept;
}

async function removeRecorded(root: string, record: ScratchRecord, options: ScratchOptions & { specs?: readonly NamedScratch[] | undefined }): Promise<void> {
  const spec = options.specs?.find((s) => s.name === record.name && s.spec.type === record.type)?.spec;
  const dir = join(root, record.id);
  await scratchKind({ type: record.type } as ScratchSpec).remove(record.resource, { dir, spec, log: options.log.child({ scratchId: record.id }) });
  await fs.rm(dir, { recursive: true, force: true });
  await fs.rm(recordPath(root, record.id), { force: true });
}

async function ensureRoot(root: string | undefined): Promise<string> {
  const dir = root ?? defaultScratchRoot();
  // Traversable by the unprivileged user an ephemeral server runs as; not listable by others.
  await fs.mkdir(dir, { recursive: true, mode: 0o711 });
  return dir;
}

function recordPath(root: string, id: string): string {
  return join(root, `${id}.json`);
}

async function writeRecord(root: string, record: ScratchRecord): Promise<void> {
  const path = recordPath(root, record.id);
  const temp = `${path}.${randomBytes(4).toString("hex")}.tmp`;
  await fs.writeFile(temp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  await fs.rename(temp, path);
}

function readRecord(path: string): ScratchRecord | undefined {
  try {
    const record = JSON.parse(readFileSync(path, "utf8")) as ScratchRecord;
    return record.version === RECORD_VERSION && typeof record.id === "string" && record.owner ? record : undefined;
  } catch {
    return undefined;
  }
}

/** Keeps only what a person needs to connect; a URL's password is dropped. */
function publicConnection(connection: ScratchConnection): ScratchConnection {
  const out: ScratchConnection = {};
  for (const [key, value] of Object.entries(connection)) {
    if (/pass|secret|token/i.test(key)) continue;
    out[key] = value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*):[^/@]*@/i, "$1@");
  }
  return out;
}

function currentOwner(): ScratchRecord["owner"] {
  return { pid: process.pid, startTicks: processStartTicks(process.pid), host: hostname() };
}

/** The process start time in clock ticks since boot (Linux), so a recycled pid is not mistaken for the owner. */
function processStartTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 2 (comm) may contain spaces and parentheses; fields after the last ")" are fixed.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

function isAlive(owner: ScratchRecord["owner"]): boolean {
  if (owner.host !== hostname()) return true; // another machine's run: never ours to judge
  if (owner.startTicks !== null) {
    const now = processStartTicks(owner.pid);
    if (now !== null || process.platform === "linux") return now === owner.startTicks;
  }
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
