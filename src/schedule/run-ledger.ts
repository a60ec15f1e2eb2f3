import { hostname } from "node:os";
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

export type RunStatus = "running" | "succeeded" | "partial" | "failed" | "interrupted" | "abandoned";
export type Trigger = "schedule" | "catch-up" | "external";

const isoTime = z.iso.datetime({ offset: true });
const OwnerSchema = z.object({ instance: z.string(), host: z.string(), pid: z.number().int() });

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
  return { instance: `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`, host: hostname(), pid: process.pid };
}

export class RunLedger {
  readonly owner: Owner;
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
   * a lease that expired, or one held by a process of this host that no longer
   * exists (so a SIGKILLed daemon's run is found at the next start, without
   * waiting for the lease to run out). Returns the records it marked.
   */
  async sweepAbandoned(): Promise<RunRecord[]> {
    const { store, layout } = this.options;
    const marked: RunRecord[] = [];
    for await (const object of store.list(layout.leasesPrefix())) {
      const unit = layout.parseLeaseKey(object.key);
      if (!unit) continue;
      const current = await this.readLease(object.key);
      if (!current?.lease.holder || !current.lease.scheduledAt) continue;
      if (!this.holderIsGone(current.lease)) continue;
      const took = await this.writeLease(object.key, { ...current.lease, holder: null, scheduledAt: null, acquiredAt: null, expiresAt: null }, current.etag);
      if (!took) continue;
      const recordKey = layout.runRecordKey(unit.kind, unit.name, new Date(current.lease.scheduledAt));
      const record = await this.readRecord(recordKey);
      if (record && record.record.status === "running" && record.record.fencingToken === current.lease.fencingToken) {
        const holder = current.lease.holder;
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
          await store.putConditional(recordKey, encode(abandoned), { ifMatch: record.etag });
          marked.push(abandoned);
          this.log.warn({ kind: unit.kind, name: unit.name, scheduledAt: abandoned.scheduledAt, holder: holder.instance }, "run marked abandoned");
        } catch (error) {
          if (!isPreconditionFailed(error)) throw error;
        }
      }
    }
    return marked;
  }

  /** The run record of one slot, if any. */
  async record(kind: RunKind, name: string, scheduledAt: Date): Promise<RunRecord | undefined> {
    return (await this.readRecord(this.options.layout.runRecordKey(kind, name, scheduledAt)))?.record;
  }

  /** The backup folders of runs in progress right now, by live holders (prune must not touch them). */
  async activeBackupFolders(): Promise<Set<string>> {
    const { store, layout } = this.options;
    const folders = new Set<string>();
    for await (const object of store.list(layout.leasesPrefix())) {
      const unit = layout.parseLeaseKey(object.key);
      if (unit?.kind !== "backup") continue;
      const lease = await this.readLease(object.key);
      // A holder that is gone left debris, not a run: its objects are orphans (removed after the grace period).
      if (!lease?.lease.holder || !lease.lease.scheduledAt || this.holderIsGone(lease.lease)) continue;
      const record = await this.readRecord(layout.runRecordKey("backup", unit.name, new Date(lease.lease.scheduledAt)));
      if (record?.record.status === "running" && record.record.resultId && isBackupId(record.record.resultId)) folders.add(layout.backupFolder(unit.name, record.record.resultId));
    }
    return folders;
  }

  // ---- internals used by Claim ----

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
    await this.writeLease(key, { ...lease, holder: null, scheduledAt: null, acquiredAt: null, expiresAt: null }, etag);
  }

  private async acquireLease(kind: RunKind, name: string, scheduledAt: Date): Promise<{ key: string; lease: Lease; etag: string } | NotClaimed> {
    const key = this.options.layout.leaseKey(kind, name);
    const current = await this.readLease(key);
    if (current?.lease.holder && !this.holderIsGone(current.lease)) {
      if (current.lease.scheduledAt === scheduledAt.toISOString()) return { claimed: false, reason: "claimed-elsewhere", record: undefined, holder: current.lease.holder };
      return { claimed: false, reason: "busy", holder: current.lease.holder, scheduledAt: current.lease.scheduledAt };
    }
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
    return lease.holder.host === this.owner.host && !processExists(lease.holder.pid);
  }

  private async readLease(key: string): Promise<{ lease: Lease; etag: string } | undefined> {
    const raw = await this.options.store.getSmall(key, MAX_RECORD_BYTES);
    if (!raw) return undefined;
    return { lease: parse(LeaseSchema, raw.bytes, key), etag: raw.etag };
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

  /** Renews the lease every `everyMs` until `finish`. */
  keepAlive(everyMs: number): void {
    this.timer = setInterval(() => {
      this.renewing = this.renew().catch(() => {});
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
    await this.renewing;
    await this.renew();
    return this.lease.fencingToken;
  }

  private async renew(): Promise<void> {
    if (this.lostError) throw this.lostError;
    const renewed: Lease = { ...this.lease, expiresAt: this.ledger.leaseExpiry() };
    const etag = await this.ledger.writeLease(this.leaseKey, renewed, this.leaseEtag);
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

  /** Writes the run's outcome and releases the lease (a lost lease is left to its new holder). */
  async finish(outcome: { status: Exclude<RunStatus, "running" | "abandoned">; resultId?: string | undefined; error?: { code: string; message: string } | undefined; finishedAt: Date }): Promise<RunRecord> {
    if (this.timer) clearInterval(this.timer);
    await this.renewing;
    await this.recordWrites.catch(() => {});
    await this.writeRecord({
      ...this.record,
      status: outcome.status,
      finishedAt: outcome.finishedAt.toISOString(),
      ...(outcome.resultId ? { resultId: outcome.resultId } : {}),
      ...(outcome.error ? { error: outcome.error } : {}),
    });
    if (!this.lostError) await this.ledger.releaseLease(this.leaseKey, this.lease, this.leaseEtag);
    return this.record;
  }
}

function retryable(status: RunStatus): boolean {
  return status === "failed" || status === "interrupted" || status === "abandoned";
}

export function isPreconditionFailed(error: unknown): boolean {
  return error instanceof LifeboatError && error.code === "STORAGE_PRECONDITION_FAILED";
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
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
