import { isBackupId } from "../model/backup-id.js";
import { isValidName } from "../model/names.js";
import { LifeboatError } from "../model/errors.js";

/**
 * The only place object keys are built. Everything Lifeboat stores lives under
 * the storage's prefix:
 *
 *   <prefix><job>/<backup-id>/<object>        data objects of a backup
 *   <prefix><job>/<backup-id>/manifest.json   written last: the backup exists
 *   <prefix><job>/<backup-id>/verification.json  the latest `verify` result
 *   <prefix>drills/<plan>/<drill-id>/…        drill reports; report.json written last
 *   <prefix>.lifeboat/probe/…                 capability probes (short-lived)
 *   <prefix>.lifeboat/immutability/…          Object Lock canaries (tiny; they stay until their retention ends)
 *   <prefix>.lifeboat/leases/<kind>/<name>.json   who runs a job or drill now (conditional writes)
 *   <prefix>.lifeboat/runs/<kind>/<name>/<slot>.json  one record per scheduled run: the idempotency key
 *   <prefix>.lifeboat/daemon/heartbeat.json   when a daemon last ran (downtime detection)
 */
export const MANIFEST_NAME = "manifest.json";
export const VERIFICATION_NAME = "verification.json";
export const DRILL_REPORT_NAME = "report.json";
/** The files of a drill report, report.json last (a drill's report exists when it does). */
export const REPORT_FILES: readonly string[] = ["report.md", "report.html", "junit.xml", DRILL_REPORT_NAME];

/** What a lease or run record is for: a backup job or a scheduled drill. */
export type RunKind = "backup" | "drill";
const RUN_KINDS: readonly RunKind[] = ["backup", "drill"];

/** `20261121T190500Z`: a scheduled time to the second, as it appears in keys. */
export function compactTime(at: Date): string {
  return at.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}Z$/, "Z");
}

/** Job names that would collide with Lifeboat's own folders. */
const RESERVED = new Set(["drills", ".lifeboat"]);

export class Layout {
  constructor(readonly prefix: string) {}

  /** `<prefix><job>/` */
  jobFolder(job: string): string {
    if (!isValidName(job) || RESERVED.has(job)) {
      throw new LifeboatError("LAYOUT_INVALID_NAME", `invalid job name "${job}"`, { kind: "usage" });
    }
    return `${this.prefix}${job}/`;
  }

  /** `<prefix><job>/<id>/` */
  backupFolder(job: string, id: string): string {
    if (!isBackupId(id)) throw new LifeboatError("LAYOUT_INVALID_ID", `invalid backup id "${id}"`, { kind: "usage" });
    return `${this.jobFolder(job)}${id}/`;
  }

  objectKey(job: string, id: string, name: string): string {
    if (!/^[a-z0-9][a-z0-9._-]{0,127}$/.test(name)) {
      throw new LifeboatError("LAYOUT_INVALID_NAME", `invalid object name "${name}"`, { kind: "usage" });
    }
    return `${this.backupFolder(job, id)}${name}`;
  }

  manifestKey(job: string, id: string): string {
    return this.objectKey(job, id, MANIFEST_NAME);
  }

  verificationKey(job: string, id: string): string {
    return this.objectKey(job, id, VERIFICATION_NAME);
  }

  /** The prefix to list to find every manifest (of one job, or of all). */
  listPrefix(job?: string): string {
    return job === undefined ? this.prefix : this.jobFolder(job);
  }

  /** `<prefix>drills/` or `<prefix>drills/<plan>/`: where drill reports are listed. */
  drillsPrefix(plan?: string): string {
    if (plan !== undefined && !isValidName(plan)) throw new LifeboatError("LAYOUT_INVALID_NAME", `invalid plan name "${plan}"`, { kind: "usage" });
    return `${this.prefix}drills/${plan === undefined ? "" : `${plan}/`}`;
  }

  /** `<prefix>drills/<plan>/<drill-id>/<name>` */
  drillReportKey(plan: string, drillId: string, name: string): string {
    if (!isBackupId(drillId)) throw new LifeboatError("LAYOUT_INVALID_ID", `invalid drill id "${drillId}"`, { kind: "usage" });
    if (!REPORT_FILES.includes(name)) throw new LifeboatError("LAYOUT_INVALID_NAME", `invalid report file "${name}"`, { kind: "usage" });
    return `${this.drillsPrefix(plan)}${drillId}/${name}`;
  }

  /** Recognises `<prefix>drills/<plan>/<drill-id>/report.json`. */
  parseDrillReportKey(key: string): { plan: string; drillId: string } | undefined {
    if (!key.startsWith(`${this.prefix}drills/`)) return undefined;
    const parts = key.slice(`${this.prefix}drills/`.length).split("/");
    if (parts.length !== 3 || parts[2] !== DRILL_REPORT_NAME) return undefined;
    const [plan, drillId] = parts as [string, string, string];
    return isValidName(plan) && isBackupId(drillId) ? { plan, drillId } : undefined;
  }

  probePrefix(): string {
    return `${this.prefix}.lifeboat/probe/`;
  }

  /** Where `verify --immutability` writes its locked canaries. */
  immutabilityPrefix(): string {
    return `${this.prefix}.lifeboat/immutability/`;
  }

  /** `<prefix>.lifeboat/leases/` or one unit's lease object. */
  leaseKey(kind: RunKind, name: string): string {
    return `${this.leasesPrefix()}${kind}/${this.checkedName(name)}.json`;
  }

  leasesPrefix(): string {
    return `${this.prefix}.lifeboat/leases/`;
  }

  /** Recognises `<prefix>.lifeboat/leases/<kind>/<name>.json`. */
  parseLeaseKey(key: string): { kind: RunKind; name: string } | undefined {
    if (!key.startsWith(this.leasesPrefix())) return undefined;
    const parts = key.slice(this.leasesPrefix().length).split("/");
    if (parts.length !== 2 || !RUN_KINDS.includes(parts[0] as RunKind) || !parts[1]!.endsWith(".json")) return undefined;
    const name = parts[1]!.slice(0, -".json".length);
    return isValidName(name) ? { kind: parts[0] as RunKind, name } : undefined;
  }

  /** `<prefix>.lifeboat/runs/<kind>/<name>/<slot>.json`, the slot as a compact UTC time. */
  runRecordKey(kind: RunKind, name: string, scheduledAt: Date): string {
    return `${this.runsPrefix(kind, name)}${compactTime(scheduledAt)}.json`;
  }

  runsPrefix(kind?: RunKind, name?: string): string {
    const base = `${this.prefix}.lifeboat/runs/`;
    if (kind === undefined) return base;
    return name === undefined ? `${base}${kind}/` : `${base}${kind}/${this.checkedName(name)}/`;
  }

  /** Recognises `<prefix>.lifeboat/runs/<kind>/<name>/<slot>.json`. */
  parseRunRecordKey(key: string): { kind: RunKind; name: string; scheduledAt: Date } | undefined {
    const base = this.runsPrefix();
    if (!key.startsWith(base)) return undefined;
    const parts = key.slice(base.length).split("/");
    if (parts.length !== 3 || !RUN_KINDS.includes(parts[0] as RunKind) || !isValidName(parts[1]!)) return undefined;
    const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z\.json$/.exec(parts[2]!);
    if (!m) return undefined;
    return { kind: parts[0] as RunKind, name: parts[1]!, scheduledAt: new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)) };
  }

  /** `<prefix>.lifeboat/health/`: listed (never written) by /healthz to see that the store answers. */
  healthPrefix(): string {
    return `${this.prefix}.lifeboat/health/`;
  }

  daemonHeartbeatKey(): string {
    return `${this.prefix}.lifeboat/daemon/heartbeat.json`;
  }

  private checkedName(name: string): string {
    if (!isValidName(name)) throw new LifeboatError("LAYOUT_INVALID_NAME", `invalid name "${name}"`, { kind: "usage" });
    return name;
  }

  /**
   * Recognises `<prefix><job>/<id>/manifest.json`; returns undefined for any
   * other key (data objects, foreign files, malformed names).
   */
  parseManifestKey(key: string): { job: string; id: string } | undefined {
    if (!key.startsWith(this.prefix)) return undefined;
    const parts = key.slice(this.prefix.length).split("/");
    if (parts.length !== 3 || parts[2] !== MANIFEST_NAME) return undefined;
    const [job, id] = parts as [string, string, string];
    return isValidName(job) && !RESERVED.has(job) && isBackupId(id) ? { job, id } : undefined;
  }
}
