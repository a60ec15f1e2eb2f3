import cron from "node-cron";
import { LifeboatError } from "../model/errors.js";

/**
 * Cron expressions, read in a time zone. The only `node-cron` import: node-cron
 * parses and validates expressions and finds the next matching instant in a
 * zone; this module adds what node-cron lacks, the DST rule Lifeboat documents:
 *
 * - **spring forward** (a wall-clock hour does not exist, e.g. 02:00–03:00 in
 *   Europe/Berlin on the last Sunday of March): a slot that falls in the
 *   missing hour runs once, at the first instant after the change (03:00), like
 *   Vixie cron and cronie. node-cron alone skips it, so that day would have no run;
 * - **fall back** (a wall-clock hour happens twice): a slot in the repeated hour
 *   runs once, at its second occurrence (node-cron's choice).
 *
 * So `30 2 * * *` runs exactly once on every day of the year in every zone.
 */
export class CronSchedule {
  private readonly matcher: { getNextMatch(date: Date): Date };
  private readonly fields: WallFields | undefined;

  constructor(
    readonly expression: string,
    readonly timezone: string | undefined,
  ) {
    const problem = cronProblem(expression, timezone);
    if (problem) throw new LifeboatError("SCHEDULE_INVALID", `cron expression "${expression}" ${problem}`, { kind: "usage" });
    // createTask builds node-cron's TimeMatcher without arming any timer.
    const task = cron.createTask(expression, () => {}, timezone ? { timezone } : {}) as unknown as { timeMatcher?: { getNextMatch(date: Date): Date } };
    if (!task.timeMatcher || typeof task.timeMatcher.getNextMatch !== "function") {
      throw new LifeboatError("SCHEDULE_UNSUPPORTED", "internal error: node-cron no longer exposes its time matcher; pin a compatible node-cron version");
    }
    this.matcher = task.timeMatcher;
    // Only the matcher is used: take the task out of node-cron's global registry.
    void (task as unknown as { destroy(): void | Promise<void> }).destroy();
    this.fields = wallFields(expression);
  }

  private static readonly parsed = new Map<string, CronSchedule>();

  /** The schedule for an expression and zone, parsed once per process (they are immutable). */
  static of(expression: string, timezone: string | undefined): CronSchedule {
    const key = `${timezone ?? ""} ${expression}`;
    let schedule = CronSchedule.parsed.get(key);
    if (!schedule) {
      schedule = new CronSchedule(expression, timezone);
      CronSchedule.parsed.set(key, schedule);
    }
    return schedule;
  }

  /** The first slot strictly after `after`. */
  next(after: Date): Date {
    const matched = this.matcher.getNextMatch(after);
    const gapSlot = this.slotInSpringForwardGap(after, matched);
    return gapSlot ?? matched;
  }

  /** The newest slot at or before `at`, or undefined when there is none in the last 400 days. */
  previous(at: Date): Date | undefined {
    // Search windows that grow from a minute to 400 days: cheap for frequent and rare schedules alike.
    const longest = 400 * 86_400_000;
    for (let windowMs = 60_000; ; windowMs = Math.min(windowMs * 4, longest)) {
      let newest: Date | undefined;
      for (let slot = this.next(new Date(at.getTime() - windowMs)); slot.getTime() <= at.getTime(); slot = this.next(slot)) newest = slot;
      if (newest || windowMs === longest) return newest;
    }
  }

  /** The slots in (after, until], oldest first, at most `limit`. */
  between(after: Date, until: Date, limit = 1000): Date[] {
    const slots: Date[] = [];
    for (let at = this.next(after); at.getTime() <= until.getTime() && slots.length < limit; at = this.next(at)) slots.push(at);
    return slots;
  }

  /**
   * When an offset change that skips wall-clock time lies in (after, matched),
   * and the expression matches a skipped wall-clock time, the instant right
   * after the change is a slot.
   */
  private slotInSpringForwardGap(after: Date, matched: Date): Date | undefined {
    if (!this.timezone || !this.fields) return undefined;
    for (const change of offsetChanges(this.timezone, after.getTime(), matched.getTime())) {
      if (change.toMinutes <= change.fromMinutes) continue;
      // Wall-clock times [at + from, at + to) never happened.
      const wallStart = change.atMs + change.fromMinutes * 60_000;
      const wallEnd = change.atMs + change.toMinutes * 60_000;
      const step = this.fields.seconds.length === 1 && this.fields.seconds[0] === 0 ? 60_000 : 1_000;
      for (let wall = wallStart; wall < wallEnd; wall += step) {
        if (matchesWall(this.fields, new Date(wall))) return change.atMs > after.getTime() ? new Date(change.atMs) : undefined;
      }
    }
    return undefined;
  }
}

/** Why an expression (in a zone) cannot be used, or undefined when it can. */
export function cronProblem(expression: string, timezone?: string): string | undefined {
  const checked = cron.validateDetailed(expression);
  if (!checked.valid) {
    const first = checked.errors[0];
    const field = first?.field ? FIELD_NAMES[first.field] ?? first.field : undefined;
    return field && first?.value !== undefined ? `is not a valid cron expression: the ${field} field "${first.value}" is invalid` : "is not a valid cron expression";
  }
  if (timezone !== undefined) {
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: timezone });
    } catch {
      return `has an unknown time zone "${timezone}"`;
    }
  }
  return undefined;
}

const FIELD_NAMES: Record<string, string> = { second: "second", minute: "minute", hour: "hour", dayOfMonth: "day-of-month", month: "month", dayOfWeek: "day-of-week" };

interface WallFields {
  seconds: number[];
  minutes: number[];
  hours: number[];
  days: number[];
  months: number[];
  weekdays: number[];
}

/** The expression's fields as plain numbers, or undefined when it uses forms (L, #) this module does not evaluate. */
function wallFields(expression: string): WallFields | undefined {
  const parsed = cron.parse(expression);
  const numbers = (values: Array<number | string>) => (values.every((v) => typeof v === "number") ? (values as number[]) : undefined);
  const days = numbers(parsed.dayOfMonth);
  const weekdays = numbers(parsed.dayOfWeek);
  if (!days || !weekdays) return undefined;
  return { seconds: parsed.second, minutes: parsed.minute, hours: parsed.hour, days, months: parsed.month, weekdays: weekdays.map((d) => d % 7) };
}

const ALL_DAYS = 31;
const ALL_WEEKDAYS = 7;

/** Matches a wall-clock time, given as a Date whose UTC fields are the wall-clock fields. */
function matchesWall(fields: WallFields, wall: Date): boolean {
  if (!fields.seconds.includes(wall.getUTCSeconds()) || !fields.minutes.includes(wall.getUTCMinutes()) || !fields.hours.includes(wall.getUTCHours())) return false;
  if (!fields.months.includes(wall.getUTCMonth() + 1)) return false;
  // Classic cron: when both day fields are restricted, either may match.
  const dayRestricted = fields.days.length < ALL_DAYS;
  const weekdayRestricted = new Set(fields.weekdays).size < ALL_WEEKDAYS;
  const dayOk = fields.days.includes(wall.getUTCDate());
  const weekdayOk = fields.weekdays.includes(wall.getUTCDay());
  if (dayRestricted && weekdayRestricted) return dayOk || weekdayOk;
  return dayOk && weekdayOk;
}

interface OffsetChange {
  /** The first instant with the new offset. */
  atMs: number;
  fromMinutes: number;
  toMinutes: number;
}

const offsetFormatters = new Map<string, Intl.DateTimeFormat>();

/** The zone's UTC offset at an instant, in minutes (east positive). */
export function offsetMinutes(timezone: string, atMs: number): number {
  let format = offsetFormatters.get(timezone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", { timeZone: timezone, year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric", hourCycle: "h23" });
    offsetFormatters.set(timezone, format);
  }
  const parts: Record<string, number> = {};
  for (const p of format.formatToParts(new Date(atMs))) if (p.type !== "literal") parts[p.type] = Number(p.value);
  const asUtc = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!);
  return Math.round((asUtc - Math.floor(atMs / 1000) * 1000) / 60_000);
}

const STEP_MS = 86_400_000; // zones change offset at most a few times a year, never twice a day

/** Offset changes in (fromMs, toMs], found by daily steps and a binary search to the second. */
function offsetChanges(timezone: string, fromMs: number, toMs: number): OffsetChange[] {
  const changes: OffsetChange[] = [];
  let previous = offsetMinutes(timezone, fromMs);
  for (let at = fromMs; at < toMs; ) {
    const stepEnd = Math.min(at + STEP_MS, toMs);
    const offset = offsetMinutes(timezone, stepEnd);
    if (offset !== previous) {
      let lo = at;
      let hi = stepEnd;
      while (hi - lo > 1000) {
        const mid = Math.floor((lo + hi) / 2000) * 1000;
        if (mid <= lo || mid >= hi) break;
        if (offsetMinutes(timezone, mid) === previous) lo = mid;
        else hi = mid;
      }
      changes.push({ atMs: hi, fromMinutes: previous, toMinutes: offset });
      previous = offset;
    }
    at = stepEnd;
  }
  return changes;
}
