/**
 * Reading the timestamp an rpo-probe prints (the newest point in time the
 * restored data holds). Pure; accepts, after trimming whitespace:
 *
 * - ISO 8601 date and time, with `T` (any case) or a space between them:
 *   `2026-11-21T19:42:32Z`, `2026-11-21 19:42:32.385123+00` (psql's
 *   timestamptz), `2026-11-21 19:42:32` (psql's timestamp, MariaDB's
 *   DATETIME). Seconds are optional; the fraction may have any number of
 *   digits and is truncated to milliseconds (a Date's resolution), so the
 *   reading is never later than the data.
 * - an offset `Z`, ` UTC`, `±HH`, `±HHMM` or `±HH:MM`, optionally after one
 *   space (`2026-11-21 19:42:32 +0000`, as `date` and git print it).
 *   **A value without an offset is read as UTC**: print timestamps with an
 *   offset, or in UTC (Lifeboat runs probe queries with the session time
 *   zone set to UTC, so `now()::timestamp` and MariaDB TIMESTAMP columns
 *   print in UTC).
 * - Unix time as an integer or decimal: 10 integer digits are seconds
 *   (`1763754152`, `1763754152.385`), 13 are milliseconds (`1763754152385`).
 *   Other lengths are ambiguous and refused.
 *
 * Anything else is `undefined`: empty text, `NULL`, a date without a time,
 * `infinity`, BC dates, impossible dates (`2026-02-30`, `24:00`, leap
 * seconds).
 */
export function parseTimestamp(text: string): Date | undefined {
  const value = text.trim();
  return parseEpoch(value) ?? parseIso(value);
}

const EPOCH = /^(\d{10}|\d{13})(?:\.(\d+))?$/;

function parseEpoch(value: string): Date | undefined {
  const m = EPOCH.exec(value);
  if (!m) return undefined;
  const whole = Number(m[1]);
  const fraction = Number(`0.${m[2] ?? "0"}`);
  const ms = m[1]!.length === 10 ? Math.floor((whole + fraction) * 1000) : Math.floor(whole + fraction);
  return validDate(ms);
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(?: ?(Z|UTC|[+-]\d{2}(?::?\d{2})?))?$/i;

function parseIso(value: string): Date | undefined {
  const m = ISO.exec(value);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? "0"].map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const offsetMinutes = parseOffset(m[8]);
  if (offsetMinutes === undefined) return undefined;
  const ms = Number((m[7] ?? "").padEnd(3, "0").slice(0, 3));
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not read years 0–99 as 1900–1999.
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, ms);
  return validDate(date.getTime() - offsetMinutes * 60_000);
}

/** Minutes east of UTC; undefined for an impossible offset. No offset means UTC. */
function parseOffset(text: string | undefined): number | undefined {
  if (!text || /^(z|utc)$/i.test(text)) return 0;
  const digits = text.slice(1).replace(":", "");
  const hours = Number(digits.slice(0, 2));
  const minutes = Number(digits.slice(2) || "0");
  if (hours > 23 || minutes > 59) return undefined;
  return (text.startsWith("-") ? -1 : 1) * (hours * 60 + minutes);
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

function validDate(ms: number): Date | undefined {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
