import { parseDurationMs } from "./duration.js";
import { LifeboatError } from "./errors.js";
import type { RetentionPolicy } from "./job.js";

/**
 * Which backups a retention policy keeps, with restic `forget` semantics
 * (https://restic.readthedocs.io/en/stable/060_forget.html). Pure: data in,
 * decision out; the caller passes the clock.
 *
 * Backups are walked newest first (by `time`, the manifest's `consistentAt`;
 * ties broken by id, newest id first). A backup is kept when any rule keeps
 * it (the rules are ORed):
 *
 * - `keepLast n`: the n newest backups.
 * - `keepHourly|Daily|Weekly|Monthly|Yearly n`: for the n most recent hours /
 *   days / ISO weeks (Monday to Sunday) / months / years that have at least
 *   one backup, the newest backup of each. Buckets are calendar periods in the
 *   job's time zone (UTC when it has none), not periods relative to now.
 *   When the walk reaches the oldest backup and a rule still has buckets left,
 *   the oldest backup is kept too ("oldest daily …"): restic's rule that
 *   maximises the history kept while the policy is not yet full.
 * - `keepWithin d`: every backup strictly newer than the newest backup's time
 *   minus d (relative to the newest backup, not to now, so a job that stopped
 *   backing up does not lose its history). Backups dated after `now` are never
 *   the reference point.
 *
 * Safety rules:
 * - no policy, or one whose counts are all 0 and has no `keepWithin`, keeps
 *   every backup (restic refuses to act on an empty policy);
 * - the newest backup is always kept, whatever the policy says.
 */
export interface RetentionCandidate {
  id: string;
  time: Date;
}

export interface RetentionDecision {
  /** Newest first, each with every reason it is kept. */
  keep: Array<{ id: string; reasons: string[] }>;
  /** Newest first. */
  forget: Array<{ id: string }>;
}

export interface RetentionOptions {
  /** IANA time zone the calendar buckets are computed in (default UTC). */
  timezone?: string | undefined;
  /** Backups dated after this are not used as the newest for `keepWithin` (default: not checked). */
  now?: Date | undefined;
}

type BucketRule = { name: "hourly" | "daily" | "weekly" | "monthly" | "yearly"; count: number; bucket: (parts: LocalParts) => string };

const BUCKET_RULES: ReadonlyArray<{ key: keyof RetentionPolicy; name: BucketRule["name"]; bucket: BucketRule["bucket"] }> = [
  { key: "keepHourly", name: "hourly", bucket: (p) => `${p.date}T${pad(p.hour)}` },
  { key: "keepDaily", name: "daily", bucket: (p) => p.date },
  { key: "keepWeekly", name: "weekly", bucket: (p) => isoWeek(p) },
  { key: "keepMonthly", name: "monthly", bucket: (p) => p.date.slice(0, 7) },
  { key: "keepYearly", name: "yearly", bucket: (p) => p.date.slice(0, 4) },
];

/** True when the policy would keep everything (absent, or nothing set above 0). */
export function isEmptyPolicy(policy: RetentionPolicy | undefined): boolean {
  if (!policy) return true;
  const counts = [policy.keepLast, policy.keepHourly, policy.keepDaily, policy.keepWeekly, policy.keepMonthly, policy.keepYearly];
  return counts.every((n) => !n) && policy.keepWithin === undefined;
}

export function applyRetention(backups: readonly RetentionCandidate[], policy: RetentionPolicy | undefined, options: RetentionOptions = {}): RetentionDecision {
  const sorted = [...backups].sort((a, b) => b.time.getTime() - a.time.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  if (isEmptyPolicy(policy)) {
    const reason = policy ? "retention policy is empty" : "no retention policy";
    return { keep: sorted.map((b) => ({ id: b.id, reasons: [reason] })), forget: [] };
  }
  const p = policy!;
  const withinMs = p.keepWithin === undefined ? undefined : parseDurationMs(p.keepWithin);
  if (p.keepWithin !== undefined && (withinMs === undefined || withinMs <= 0)) {
    throw new LifeboatError("RETENTION_INVALID", `keepWithin "${p.keepWithin}" is not a positive duration`, { kind: "usage" });
  }
  const parts = localParts(options.timezone);
  const newest = sorted.find((b) => options.now === undefined || b.time.getTime() <= options.now.getTime()) ?? sorted[0];

  let lastLeft = p.keepLast ?? 0;
  const rules = BUCKET_RULES.flatMap((r) => ((p[r.key] as number | undefined) ?? 0) > 0 ? [{ ...r, left: p[r.key] as number, last: undefined as string | undefined }] : []);

  const decision: RetentionDecision = { keep: [], forget: [] };
  sorted.forEach((backup, index) => {
    const reasons: string[] = [];
    const oldest = index === sorted.length - 1;
    if (lastLeft > 0) {
      reasons.push(`last ${(p.keepLast ?? 0) - lastLeft + 1} of ${p.keepLast}`);
      lastLeft--;
    }
    const local = parts(backup.time);
    for (const rule of rules) {
      if (rule.left <= 0) continue;
      const bucket = rule.bucket(local);
      if (bucket !== rule.last) {
        reasons.push(`${rule.name} ${bucket}`);
        rule.last = bucket;
        rule.left--;
      } else if (oldest) {
        reasons.push(`oldest ${rule.name} ${bucket}`);
        rule.left--;
      }
    }
    if (withinMs !== undefined && newest && backup.time.getTime() > newest.time.getTime() - withinMs) {
      reasons.push(`within ${p.keepWithin} of the newest`);
    }
    if (index === 0 && reasons.length === 0) reasons.push("newest backup (always kept)");
    if (reasons.length) decision.keep.push({ id: backup.id, reasons });
    else decision.forget.push({ id: backup.id });
  });
  return decision;
}

interface LocalParts {
  /** YYYY-MM-DD in the time zone. */
  date: string;
  year: number;
  month: number;
  day: number;
  hour: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function localParts(timezone: string | undefined): (time: Date) => LocalParts {
  const zone = timezone ?? "UTC";
  let format = formatters.get(zone);
  if (!format) {
    try {
      format = new Intl.DateTimeFormat("en-US", { timeZone: zone, year: "numeric", month: "numeric", day: "numeric", hour: "numeric", hourCycle: "h23" });
    } catch (cause) {
      throw new LifeboatError("RETENTION_INVALID", `unknown time zone "${zone}"`, { kind: "usage", cause });
    }
    formatters.set(zone, format);
  }
  const f = format;
  return (time) => {
    const all = f.formatToParts(time);
    const get = (type: string) => Number(all.find((x) => x.type === type)?.value);
    const year = get("year");
    const month = get("month");
    const day = get("day");
    const hour = get("hour") % 24;
    return { date: `${String(year).padStart(4, "0")}-${pad(month)}-${pad(day)}`, year, month, day, hour };
  };
}

/** `YYYY-Www`: the ISO 8601 week (weeks start on Monday; week 1 holds the year's first Thursday). */
function isoWeek(p: LocalParts): string {
  const date = new Date(Date.UTC(p.year, p.month - 1, p.day));
  const weekday = date.getUTCDay() || 7;
  date.setUTCDate(date.getUTCDate() + 4 - weekday);
  const weekYear = date.getUTCFullYear();
  const week = Math.ceil(((date.getTime() - Date.UTC(weekYear, 0, 1)) / 86_400_000 + 1) / 7);
  return `${weekYear}-W${pad(week)}`;
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}
