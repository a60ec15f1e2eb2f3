import { readFileSync, readlinkSync } from "node:fs";
import { hostname } from "node:os";
import { processExists } from "../exec/process.js";
import { z } from "zod";
import type { Logger } from "../log/logger.js";
import { silentLogger } from "../log/logger.js";
import { isBackupId } from "../model/backup-id.js";
import { LifeboatError } from "../model/errors.js";
import type { Layout, RunKind } from "../storage/layout.js";
import type { ObjectStore } from "../storage/store.js";

/**
 * Who runs what, kept in storage with conditional writes, so that any number
 * of daemons (and `lifeboat run` from an external scheduler) pointed at one
 * bucket run each job once per scheduled time:
 *
 * - the **lease** `.lifeboat/leases/<kind>/<name>.json` says which instance
 *   runs a job (or drill) now, until when. It is created with
 *   `If-None-Match: *`, renewed and released with `If-Match: <etag>`; each new
 *   holder increments its **fencing token**, which the backup's manifest
 *   records. A holder whose renewal fails has lost the job and stops before it
 *   writes a manifest.
 * - the **run record** `.lifeboat/runs/<kind>/<name>/<slot>.json` is created
 *   once per scheduled time (`If-None-Match: *`): the idempotency key of
 *   (job, scheduled time). It ends `succeeded`, `partial`, `failed`,
 *   `interrupted` or, when its holder died, `abandoned`.
 */
export const RUN_RECORD_VERSION = 1;

/** Run records (the idempotency keys of past slots) are kept this long, then pruned with their job. */
export const RUN_RECORDS_KEPT_MS = 30 * 86_400_000;

export type RunStatus = "running" | "succeeded" | "partial" | "failed" | "interrupted" | "abandoned";
export type Trigger = "schedule" | "catch-up" | "external";

const isoTime = z.iso.datetime({ offset: true });
const OwnerSchema = z.object({
  instance: z.string(),
  host: z.string(),
  pid: z.number().int(),
  /** The boot id and pid namespace of the process: a pid is only checked where it means the same process. */
  machine: z.string().optional(),
});

const LeaseSchema = z.object({
  version: z.literal(RUN_RECORD_VERSION),
  kind: z.enum(["backup", "drill"]),
  name: z.string(),
  fencingToken: z.number().int().nonnegative(),
  holder: OwnerSchema.nullable(),
  scheduledAt: isoTime.nullable(),
  acquiredAt: isoTime.nullable(),
  expiresAt: isoTime.nullable(),
});
export type Lease = z.infer<typeof LeaseSchema>;

const RunRecordSchema = z.object({
  version: z.literal(RUN_RECORD_VERSION),
  kind: z.enum(["backup", "drill"]),
  name: z.string(),
  scheduledAt: isoTime,
  trigger: z.enum(["schedule", "catch-up", "external"]),
  status: z.enum(["running", "succeeded", "partial", "failed", "interrupted", "abandoned"]),
  attempt: z.number().int().positive(),
  fencingToken: z.number().int().positive(),
  owner: OwnerSchema,
  startedAt: isoTime,
  finishedAt: isoTime.optional(),
  /** The backup id (backups) or drill id (drills) the run produced or was producing. */
  resultId: z.string().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});
export type RunRecord = z.infer<typeof RunRecordSchema>;

export type Owner = z.infer<typeof OwnerSchema>;

const MAX_RECORD_BYTES = 64 * 1024;

/** Why a trigger did not become a run. */
export type NotClaimed =
  | { claimed: false; reason: "done"; record: RunRecord }
  | { claimed: false; reason: "claimed-elsewhere"; record: RunRecord | undefined; holder: Owner | undefined }
  | { claimed: false; reason: "busy"; holder: Owner; scheduledAt: string | null };

export interface LedgerOptions {
  store: ObjectStore;
  layout: Layout;
  /** How long a lease holds without renewal. */
  leaseMs: number;
  /** This process: a random instance id, the host name and pid. */
  owner?: Owner;
  now?: () => Date;
  log?: Logger;
}

export function newOwner(): Owner {
  const machine = machineIdentity();
  return { instance: `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`, host: hostname(), pid: process.pid, ...(machine ? { machine } : {}) };
}

/**
 * Where a pid means this process: the boot id and the pid namespace (Linux).
 * Two containers on one node can share a host name but not a pid namespace.
 * Undefined elsewhere: then a lease is only ever taken over once it expired.
 */
function machineIdentity(): string | undefined {
  try {
    const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    const pidNamespace = readlinkSync("/proc/self/ns/pid");
    return `${boot}/${pidNamespace}`;
  } catch {
    return undefined;
  }
}

export class RunLedger {
  readonly owner: Owner;
  /** Lease objects found free, by size and time: not read again by a quick sweep until they change. */
  private readonly freeLeases = new Map<string, string>();
  private readonly now: () => Date;
  private readonly log: Logger;

  constructor(private readonly options: LedgerOptions) {
    this.owner = options.owner ?? newOwner();
    this.now = options.now ?? (() => new Date());
    this.log = options.log ?? silentLogger;
  }

  /**
   * Claims (kind, name, scheduledAt): takes the unit's lease, then creates the
   * slot's run record. With `retry`, a slot whose earlier attempt failed,
   * was interrupted or abandoned is run again (external schedulers retry);
   * without it (the daemon), an existing record always means "already handled".
   */
  async claim(kind: RunKind, name: string, scheduledAt: Date, trigger: Trigger, options: { retry?: boolean } = {}): Promise<Claim | NotClaimed> {
    const { store, layout } = this.options;
    const recordKey = layout.runRecordKey(kind, name, scheduledAt);
    const existing = await this.readRecord(recordKey);
    if (existing && !(options.retry && retryable(existing.record.status))) {
      if (existing.record.status === "running") return { claimed: false, reason: "claimed-elsewhere", record: existing.record, holder: existing.record.owner };
      return { claimed: false, reason: "done", record: existing.record };
    }

    const lease = await this.acquireLease(kind, name, scheduledAt);
    if ("claimed" in lease) return lease;

    const record: RunRecord = {
      version: RUN_RECORD_VERSION,
      kind,
      name,
      scheduledAt: scheduledAt.toISOString(),
      trigger,
      status: "running",
      attempt: existing ? existing.record.attempt + 1 : 1,
      fencingToken: lease.lease.fencingToken,
      owner: this.owner,
      startedAt: this.now().toISOString(),
    };
    try {
      const written = await store.putConditional(recordKey, encode(record), existing ? { ifMatch: existing.etag } : { ifNoneMatch: "*" });
      return new Claim(this, recordKey, record, written.etag, lease.key, lease.lease, lease.etag);
    } catch (error) {
      await this.releaseLease(lease.key, lease.lease, lease.etag).catch(() => {});
      if (isPreconditionFailed(error)) {
        const now = await this.readRecord(recordKey);
        return { claimed: false, reason: "claimed-elsewhere", record: now?.record, holder: now?.record.owner };
      }
      throw error;
    }
  }

  /**
   * Marks the runs whose holder is gone as `abandoned` and frees their leases:
   * a lease that expired, or one held by a process of this machine that no
   * longer exists (so a SIGKILLed daemon's run is found at the next start,
   * without waiting for the lease to run out). Returns the records it marked.
   *
   * A `quick` sweep (the daemon's periodic one) reads only the leases that may
   * need it: a live holder renews its lease every third of the lease time, so
   * a lease written less than a lease ago is left alone (a dead holder's lease
   * is found once it is that old), and one found free before is not read again
   * until it changes.
   */
  async sweepAbandoned(options: { quick?: boolean } = {}): Promise<RunRecord[]> {
    const { store, layout } = this.options;
    const marked: RunRecord[] = [];
    const now = this.now().getTime();
    for await (const object of store.list(layout.leasesPrefix())) {
      if (!layout.parseLeaseKey(object.key)) continue;
      const stamp = `${object.sizeBytes}:${object.lastModified?.getTime() ?? ""}`;
      if (options.quick) {
        if (this.freeLeases.get(object.key) === stamp) continue;
        if (object.lastModified && now - object.lastModified.getTime() < this.options.leaseMs) continue;
      }
      const current = await this.readLease(object.key);
      if (!current) continue;
      if (!current.lease.holder) {
        this.freeLeases.set(object.key, stamp);
        continue;
      }
      if (!this.holderIsGone(current.lease)) continue;
      const freed = await this.writeLease(object.key, freeLease(current.lease), current.etag);
      if (freed === undefined) continue;
      const record = await this.abandonRunOf(current.lease);
      if (record) marked.push(record);
    }
    return marked;
  }

  /**
   * The run record of a lease whose holder is gone, marked `abandoned` when it
   * still says `running` under that holder's fencing token.
   */
  private async abandonRunOf(lease: Lease): Promise<RunRecord | undefined> {
    if (!lease.holder || !lease.scheduledAt) return undefined;
    const recordKey = this.options.layout.runRecordKey(lease.kind, lease.name, new Date(lease.scheduledAt));
    const record = await this.readRecord(recordKey);
    if (!record || record.record.status !== "running" || record.record.fencingToken !== lease.fencingToken) return undefined;
    const holder = lease.holder;
    const abandoned: RunRecord = {
      ...record.record,
      status: "abandoned",
      finishedAt: this.now().toISOString(),
      error: {
        code: "RUN_ABANDONED",
        message: `the run stopped without finishing: its holder ${holder.instance} (pid ${holder.pid} on ${holder.host}) is gone`,
      },
    };
    try {
      await this.options.store.putConditional(recordKey, encode(abandoned), { ifMatch: record.etag });
      this.log.warn({ kind: lease.kind, name: lease.name, scheduledAt: abandoned.scheduledAt, holder: holder.instance }, "run marked abandoned");
      return abandoned;
    } catch (error) {
      if (isPreconditionFailed(error)) return undefined;
      throw error;
    }
  }

  /** The run record of one slot, if any. */
  async record(kind: RunKind, name: string, scheduledAt: Date): Promise<RunRecord | undefined> {
    return (await this.readRecord(this.options.layout.runRecordKey(kind, name, scheduledAt)))?.record;
  }

  /**
   * The backup folders of runs in progress right now, by live holders (prune
   * must not touch them): of one job, or of every job.
   */
  async activeBackupFolders(job?: string): Promise<Set<string>> {
    const { store, layout } = this.options;
    const folders = new Set<string>();
    const leaseKeys: string[] = [];
    if (job !== undefined) leaseKeys.push(layout.leaseKey("backup", job));
    else for await (const object of store.list(layout.leasesPrefix())) if (layout.parseLeaseKey(object.key)?.kind === "backup") leaseKeys.push(object.key);
    for (const key of leaseKeys) {
      const lease = await this.readLease(key);
      // A holder that is gone left debris, not a run: its objects are orphans (removed after the grace period).
      if (!lease?.lease.holder || !lease.lease.scheduledAt || this.holderIsGone(lease.lease)) continue;
      const name = lease.lease.name;
      const record = await this.readRecord(layout.runRecordKey("backup", name, new Date(lease.lease.scheduledAt)));
      if (record?.record.status === "running" && record.record.resultId && isBackupId(record.record.resultId)) folders.add(layout.backupFolder(name, record.record.resultId));
    }
    return folders;
  }

  /**
   * Deletes the run records of one unit older than `olderThan` (their slots are
   * long past; none can still be running once its lease expired and was swept).
   * The slot is in the key, so nothing is read. Returns how many went.
   */
  async forgetRunRecords(kind: RunKind, name: string, olderThan: Date): Promise<number> {
    const { store, layout } = this.options;
    const old: string[] = [];
    for await (const object of store.list(layout.runsPrefix(kind, name))) {
      const slot = layout.parseRunRecordKey(object.key)?.scheduledAt;
      if (slot && slot.getTime() < olderThan.getTime()) old.push(object.key);
    }
    if (old.length > 0) await store.delete(old);
    return old.length;
  }

  // ---- internals used by Claim ----

  warn(fields: Record<string, unknown>, message: string): void {
    this.log.warn(fields, message);
  }

  leaseExpiry(): string {
    return new Date(this.now().getTime() + this.options.leaseMs).toISOString();
  }

  async writeLease(key: string, lease: Lease, etag: string | undefined): Promise<string | undefined> {
    try {
      const written = await this.options.store.putConditional(key, encode(lease), etag === undefined ? { ifNoneMatch: "*" } : { ifMatch: etag });
      return written.etag;
    } catch (error) {
      if (isPreconditionFailed(error)) return undefined;
      throw error;
    }
  }

  async writeRecord(key: string, record: RunRecord, etag: string): Promise<string> {
    const written = await this.options.store.putConditional(key, encode(record), { ifMatch: etag });
    return written.etag;
  }

  async releaseLease(key: string, lease: Lease, etag: string): Promise<void> {
    await this.writeLease(key, freeLease(lease), etag);
  }

  async readLease(key: string): Promise<{ lease: Lease; etag: string } | undefined> {
    const raw = await this.options.store.getSmall(key, MAX_RECORD_BYTES);
    if (!raw) return undefined;
    return { lease: parse(LeaseSchema, raw.bytes, key), etag: raw.etag };
  }

  private async acquireLease(kind: RunKind, name: string, scheduledAt: Date): Promise<{ key: string; lease: Lease; etag: string } | NotClaimed> {
    const key = this.options.layout.leaseKey(kind, name);
    const current = await this.readLease(key);
    if (current?.lease.holder && !this.holderIsGone(current.lease)) {
      if (current.lease.scheduledAt === scheduledAt.toISOString()) return { claimed: false, reason: "claimed-elsewhere", record: undefined, holder: current.lease.holder };
      return { claimed: false, reason: "busy", holder: current.lease.holder, scheduledAt: current.lease.scheduledAt };
    }
    // Taking over from a holder that is gone: its run is abandoned, never left `running`.
    if (current?.lease.holder) await this.abandonRunOf(current.lease);
    const lease: Lease = {
      version: RUN_RECORD_VERSION,
      kind,
      name,
      fencingToken: (current?.lease.fencingToken ?? 0) + 1,
      holder: this.owner,
      scheduledAt: scheduledAt.toISOString(),
      acquiredAt: this.now().toISOString(),
      expiresAt: this.leaseExpiry(),
    };
    const etag = await this.writeLease(key, lease, current?.etag);
    if (etag === undefined) {
      const now = await this.readLease(key);
      return { claimed: false, reason: "claimed-elsewhere", record: undefined, holder: now?.lease.holder ?? undefined };
    }
    return { key, lease, etag };
  }

  private holderIsGone(lease: Lease): boolean {
    if (!lease.holder) return true;
    if (lease.expiresAt && Date.parse(lease.expiresAt) < this.now().getTime()) return true;
    if (lease.holder.instance === this.owner.instance) return false;
    const sameMachine = lease.holder.machine !== undefined && lease.holder.machine === this.owner.machine;
    return sameMachine && !processExists(lease.holder.pid);
  }

  private async readRecord(key: string): Promise<{ record: RunRecord; etag: string } | undefined> {
    const raw = await this.options.store.getSmall(key, MAX_RECORD_BYTES);
    if (!raw) return undefined;
    return { record: parse(RunRecordSchema, raw.bytes, key), etag: raw.etag };
  }
}

/**
 * A claimed run: the lease is renewed in the background until `finish`. When a
 * renewal finds the lease taken over, `lost` fires (the caller aborts the run)
 * and `fence()` rejects, so no manifest is written by a stale holder.
 */
export class Claim {
  readonly claimed = true;
  private timer: NodeJS.Timeout | undefined;
  private lostError: LifeboatError | undefined;
  private renewing: Promise<void> = Promise.resolve();
  /** Writes of the run record, one after the other (each needs the etag of the one before). */
  private recordWrites: Promise<unknown> = Promise.resolve();
  private readonly lostListeners: Array<(error: LifeboatError) => void> = [];

  constructor(
    private readonly ledger: RunLedger,
    private readonly recordKey: string,
    public record: RunRecord,
    private recordEtag: string,
    private readonly leaseKey: string,
    private lease: Lease,
    private leaseEtag: string,
  ) {}

  get fencingToken(): number {
    return this.lease.fencingToken;
  }

  /** Renews the lease every `everyMs` until `finish` (a tick is skipped while a renewal is still on its way). */
  keepAlive(everyMs: number): void {
    let inFlight = false;
    this.timer = setInterval(() => {
      if (inFlight) return;
      inFlight = true;
      this.renewSerially()
        .catch(() => {})
        .finally(() => (inFlight = false));
    }, everyMs);
    this.timer.unref();
  }

  onLost(listener: (error: LifeboatError) => void): void {
    this.lostListeners.push(listener);
  }

  /** Records what the run is producing (the backup id), so prune leaves its objects alone. */
  setResultId(id: string): Promise<void> {
    return this.writeRecord({ ...this.record, resultId: id });
  }

  private writeRecord(record: RunRecord): Promise<void> {
    const write = this.recordWrites.catch(() => {}).then(async () => {
      this.recordEtag = await this.ledger.writeRecord(this.recordKey, record, this.recordEtag);
      this.record = record;
    });
    this.recordWrites = write;
    return write;
  }

  /** Renews the lease now; resolves with the fencing token, rejects when the lease was lost. */
  async fence(): Promise<number> {
    await this.renewSerially();
    return this.lease.fencingToken;
  }

  /** Renewals one after the other: each needs the etag the one before wrote. */
  private renewSerially(): Promise<void> {
    const next = this.renewing.catch(() => {}).then(() => this.renew());
    this.renewing = next;
    return next;
  }

  private async renew(): Promise<void> {
    if (this.lostError) throw this.lostError;
    const renewed: Lease = { ...this.lease, expiresAt: this.ledger.leaseExpiry() };
    let etag = await this.ledger.writeLease(this.leaseKey, renewed, this.leaseEtag);
    if (etag === undefined) {
      // A 412 can also answer a retried request whose first attempt was stored: if the lease
      // still names this holder and token, it is still ours.
      const current = await this.ledger.readLease(this.leaseKey).catch(() => undefined);
      if (current?.lease.holder?.instance === this.lease.holder?.instance && current?.lease.fencingToken === this.lease.fencingToken) {
        this.lease = current!.lease;
        this.leaseEtag = current!.etag;
        etag = await this.ledger.writeLease(this.leaseKey, renewed, this.leaseEtag);
      }
    }
    if (etag === undefined) {
      this.lostError = new LifeboatError("RUN_LEASE_LOST", `another instance took over ${this.record.kind} "${this.record.name}" (lease token ${this.lease.fencingToken})`, {
        kind: "run",
        hint: "the lease expired before it was renewed: is the store slow, or was this process paused? raise daemon.lease",
      });
      for (const listener of this.lostListeners) listener(this.lostError);
      throw this.lostError;
    }
    this.lease = renewed;
    this.leaseEtag = etag;
  }

  /**
   * Writes the run's outcome, then releases the lease (a lost lease is left to
   * its new holder). Rejects only when the outcome could not be written; a
   * lease that could not be released is logged and simply expires.
   */
  async finish(outcome: { status: Exclude<RunStatus, "running" | "abandoned">; resultId?: string | undefined; error?: { code: string; message: string } | undefined; finishedAt: Date }): Promise<RunRecord> {
    if (this.timer) clearInterval(this.timer);
    await this.renewing.catch(() => {});
    await this.recordWrites.catch(() => {});
    await this.writeRecord({
      ...this.record,
      status: outcome.status,
      finishedAt: outcome.finishedAt.toISOString(),
      ...(outcome.resultId ? { resultId: outcome.resultId } : {}),
      ...(outcome.error ? { error: outcome.error } : {}),
    });
    if (!this.lostError) {
      await this.ledger.releaseLease(this.leaseKey, this.lease, this.leaseEtag).catch((error: unknown) => {
        this.ledger.warn({ kind: this.record.kind, name: this.record.name, err: (error as Error).message }, "could not release the lease; it expires by itself");
      });
    }
    return this.record;
  }
}

function freeLease(lease: Lease): Lease {
  return { ...lease, holder: null, scheduledAt: null, acquiredAt: null, expiresAt: null };
}

function retryable(status: RunStatus): boolean {
  return status === "failed" || status === "interrupted" || status === "abandoned";
}

export function isPreconditionFailed(error: unknown): boolean {
  return error instanceof LifeboatError && error.code === "STORAGE_PRECONDITION_FAILED";
}

function encode(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value, null, 2)}\n`);
}

function parse<T>(schema: z.ZodType<T>, bytes: Buffer, key: string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw new LifeboatError("RUN_RECORD_INVALID", `"${key}" is not JSON`, { kind: "run", hint: "delete the object; lifeboat recreates it" });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new LifeboatError("RUN_RECORD_INVALID", `"${key}" is not a valid lifeboat record: ${parsed.error.issues[0]?.message ?? "invalid"}`, { kind: "run", hint: "delete the object; lifeboat recreates it" });
  }
  return parsed.data;
}
