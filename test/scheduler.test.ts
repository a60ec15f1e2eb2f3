import { describe, expect, it } from "vitest";
import { CronSchedule, cronProblem, offsetMinutes } from "../src/schedule/cron.js";
import { catchUpSlots } from "../src/schedule/daemon.js";
import type { JobFreshness } from "../src/schedule/freshness.js";
import { Scheduler, type ScheduledUnit, type SchedulerEvent } from "../src/schedule/scheduler.js";
import { FakeClock } from "./support/fake-clock.js";

const MINUTE = 60_000;

function unit(name: string, expression: string, options: Partial<ScheduledUnit> & { timezone?: string } = {}): ScheduledUnit {
  return { id: `backup:${name}`, kind: "backup", name, schedule: new CronSchedule(expression, options.timezone), overlap: "skip", catchUp: "one", ...options };
}

/** A scheduler on a fake clock whose runs take `durationMs` of fake time each. */
function harness(units: ScheduledUnit[], options: { concurrency?: number; durationMs?: number | ((u: ScheduledUnit) => number); start: string }) {
  const clock = new FakeClock(options.start);
  const events: SchedulerEvent[] = [];
  const runs: Array<{ unit: string; slot: string; startedAt: string; trigger: string }> = [];
  let running = 0;
  let maxRunning = 0;
  const scheduler = new Scheduler(units, {
    concurrency: options.concurrency ?? 10,
    timers: clock,
    onEvent: (e) => events.push(e),
    run: (u, slot, trigger) => {
      runs.push({ unit: u.name, slot: slot.toISOString(), startedAt: clock.now().toISOString(), trigger });
      running++;
      maxRunning = Math.max(maxRunning, running);
      const ms = typeof options.durationMs === "function" ? options.durationMs(u) : (options.durationMs ?? 1000);
      return new Promise<void>((resolve) =>
        clock.setTimeout(() => {
          running--;
          resolve();
        }, ms),
      );
    },
  });
  const count = (type: SchedulerEvent["type"], reason?: string) => events.filter((e) => e.type === type && (reason === undefined || ("reason" in e && e.reason === reason))).length;
  return { clock, scheduler, events, runs, count, maxRunning: () => maxRunning };
}

/** The local calendar date of an instant in a zone, e.g. 2026-03-29. */
function localDate(at: Date, timezone: string): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone: timezone, year: "numeric", month: "2-digit", day: "2-digit" }).format(at);
}

describe("cron schedules in time zones", () => {
  for (const timezone of ["Europe/Berlin", "America/New_York", "Australia/Sydney"]) {
    it(`runs "30 2 * * *" exactly once on every day of 2026 in ${timezone}, spring-forward and fall-back days included`, () => {
      const schedule = new CronSchedule("30 2 * * *", timezone);
      const slots = schedule.between(new Date("2025-12-31T12:00:00Z"), new Date("2027-01-01T12:00:00Z"));
      const perDay = new Map<string, number>();
      for (const slot of slots) perDay.set(localDate(slot, timezone), (perDay.get(localDate(slot, timezone)) ?? 0) + 1);
      const days2026 = [...perDay.entries()].filter(([day]) => day.startsWith("2026-"));
      expect(days2026).toHaveLength(365);
      expect(days2026.filter(([, n]) => n !== 1)).toEqual([]);
    });
  }

  it("runs a slot that falls in the skipped hour at the first instant after the change (Europe/Berlin, 2026-03-29)", () => {
    const schedule = new CronSchedule("30 2 * * *", "Europe/Berlin");
    // 02:00 CET becomes 03:00 CEST at 01:00Z: 02:30 never happens; the run is at 03:00 CEST.
    expect(schedule.next(new Date("2026-03-28T12:00:00Z")).toISOString()).toBe("2026-03-29T01:00:00.000Z");
    expect(offsetMinutes("Europe/Berlin", Date.parse("2026-03-29T01:00:00Z"))).toBe(120);
    // The day after is normal again.
    expect(schedule.next(new Date("2026-03-29T01:00:00Z")).toISOString()).toBe("2026-03-30T00:30:00.000Z");
  });

  it("runs a slot in the repeated hour once, at its second occurrence (Europe/Berlin, 2026-10-25)", () => {
    const schedule = new CronSchedule("30 2 * * *", "Europe/Berlin");
    // 02:30 happens at 00:30Z (CEST) and again at 01:30Z (CET).
    expect(schedule.between(new Date("2026-10-24T12:00:00Z"), new Date("2026-10-25T12:00:00Z")).map((d) => d.toISOString())).toEqual(["2026-10-25T01:30:00.000Z"]);
  });

  it("coalesces every slot of the skipped hour into one run", () => {
    const schedule = new CronSchedule("*/20 * * * *", "Europe/Berlin");
    expect(schedule.between(new Date("2026-03-29T00:30:00Z"), new Date("2026-03-29T01:30:00Z")).map((d) => d.toISOString())).toEqual([
      "2026-03-29T00:40:00.000Z",
      "2026-03-29T01:00:00.000Z",
      "2026-03-29T01:20:00.000Z",
    ]);
  });

  it("reads a schedule without a zone in the machine's zone, and UTC as UTC", () => {
    expect(new CronSchedule("0 3 * * *", "UTC").next(new Date("2026-06-01T12:00:00Z")).toISOString()).toBe("2026-06-02T03:00:00.000Z");
  });

  it("finds the newest slot at or before a time, for frequent and rare schedules", () => {
    expect(new CronSchedule("*/5 * * * *", "UTC").previous(new Date("2026-06-01T12:07:30Z"))?.toISOString()).toBe("2026-06-01T12:05:00.000Z");
    expect(new CronSchedule("0 6 1 1,4,7,10 *", "UTC").previous(new Date("2026-06-01T12:00:00Z"))?.toISOString()).toBe("2026-04-01T06:00:00.000Z");
    expect(new CronSchedule("0 * * * *", "UTC").previous(new Date("2026-06-01T12:00:00Z"))?.toISOString()).toBe("2026-06-01T12:00:00.000Z");
    expect(new CronSchedule("0 0 1 1 *", "UTC").previous(new Date("2026-12-06T12:00:00Z"))?.toISOString()).toBe("2026-01-01T00:00:00.000Z");
    expect(new CronSchedule("0 0 29 2 *", "UTC").previous(new Date("2026-12-06T12:00:00Z"))).toBeUndefined();
  });

  it("explains what is wrong with an expression or a zone", () => {
    expect(cronProblem("61 * * * *")).toMatch(/^is not a valid cron expression/);
    expect(cronProblem("0 * * * *", "Mars/Olympus")).toBe('has an unknown time zone "Mars/Olympus"');
    expect(cronProblem("0 * * * *", "Europe/Berlin")).toBeUndefined();
  });
});

describe("the scheduler", () => {
  it("skips a slot that comes due while the previous run of the job is still going, and counts it", async () => {
    const h = harness([unit("slow", "* * * * *")], { durationMs: 150_000, start: "2026-06-01T12:00:30Z" });
    h.scheduler.start();
    await h.clock.advance(5 * MINUTE);
    // 12:01 runs until 12:03:30; 12:02 and 12:03 are skipped; 12:04 runs; 12:05 is skipped.
    expect(h.runs.map((r) => r.slot)).toEqual(["2026-06-01T12:01:00.000Z", "2026-06-01T12:04:00.000Z"]);
    expect(h.count("skipped", "overlap")).toBe(3);
  });

  it("with queue-one, starts one queued run right after the running one and skips the rest", async () => {
    const h = harness([unit("slow", "* * * * *", { overlap: "queue-one" })], { durationMs: 150_000, start: "2026-06-01T12:00:30Z" });
    h.scheduler.start();
    await h.clock.advance(4 * MINUTE);
    expect(h.runs.map((r) => [r.slot, r.startedAt])).toEqual([
      ["2026-06-01T12:01:00.000Z", "2026-06-01T12:01:00.000Z"],
      ["2026-06-01T12:02:00.000Z", "2026-06-01T12:03:30.000Z"],
    ]);
    expect(h.count("queued", "overlap")).toBe(2);
    expect(h.count("skipped", "overlap")).toBe(1);
  });

  it("never runs more than the concurrency limit at once; the others wait their turn and none is lost", async () => {
    const units = ["a", "b", "c", "d", "e"].map((n) => unit(n, "0 * * * *"));
    const h = harness(units, { concurrency: 2, durationMs: 10 * MINUTE, start: "2026-06-01T11:59:00Z" });
    h.scheduler.start();
    await h.clock.advance(40 * MINUTE);
    expect(h.maxRunning()).toBe(2);
    expect(h.runs.map((r) => r.unit)).toEqual(["a", "b", "c", "d", "e"]);
    expect(h.runs.map((r) => r.startedAt.slice(11, 16))).toEqual(["12:00", "12:00", "12:10", "12:10", "12:20"]);
    expect(h.count("queued", "concurrency")).toBe(3);
  });

  it("after the process slept through several slots, runs the newest once and reports the others missed", async () => {
    const h = harness([unit("hourly", "0 * * * *")], { start: "2026-06-01T11:59:00Z" });
    h.scheduler.start();
    await h.clock.jump(5 * 60 * MINUTE);
    expect(h.runs.map((r) => r.slot)).toEqual(["2026-06-01T16:00:00.000Z"]);
    const missed = h.events.find((e) => e.type === "missed");
    expect(missed && missed.type === "missed" ? missed.slots.map((s) => s.toISOString().slice(11, 16)) : []).toEqual(["12:00", "13:00", "14:00", "15:00"]);
  });

  it("runs a 02:30 job once a day across the spring-forward and fall-back weekends (Europe/Berlin)", async () => {
    for (const start of ["2026-03-27T12:00:00Z", "2026-10-23T12:00:00Z"]) {
      const h = harness([unit("nightly", "30 2 * * *", { timezone: "Europe/Berlin" })], { start });
      h.scheduler.start();
      await h.clock.advance(4 * 24 * 60 * MINUTE);
      const days = h.runs.map((r) => localDate(new Date(r.slot), "Europe/Berlin"));
      expect(days).toHaveLength(4);
      expect(new Set(days).size).toBe(4);
    }
  });

  it("starts catch-up slots at once, through the same limits, and stops taking runs when stopped", async () => {
    const h = harness([unit("a", "0 * * * *"), unit("b", "0 * * * *")], { concurrency: 1, durationMs: MINUTE, start: "2026-06-01T12:30:00Z" });
    h.scheduler.start([
      { unitId: "backup:a", slot: new Date("2026-06-01T12:00:00Z") },
      { unitId: "backup:b", slot: new Date("2026-06-01T12:00:00Z") },
    ]);
    await h.clock.advance(0);
    expect(h.runs.map((r) => [r.unit, r.trigger])).toEqual([["a", "catch-up"]]);
    h.scheduler.stop();
    await h.clock.advance(2 * 60 * MINUTE);
    await h.scheduler.idle();
    expect(h.runs).toHaveLength(1);
    expect(h.count("skipped", "shutting-down")).toBe(1);
  });
});

describe("catch-up on start", () => {
  const now = new Date("2026-06-01T12:30:00Z");
  const fresh = (job: string, consistentAt: string | undefined): JobFreshness => ({
    job,
    storage: "local",
    newest: consistentAt ? { id: "20260601T000000Z-0000", consistentAt, finishedAt: consistentAt, sizeBytes: 1, status: "succeeded" } : undefined,
    exposureMs: null,
    rpoMs: undefined,
    overTarget: undefined,
    nextRun: undefined,
  });

  it("runs a job once, for its newest slot, when a slot passed since its newest backup, and never otherwise", () => {
    const units = [unit("behind", "0 * * * *"), unit("current", "0 * * * *"), unit("never", "0 * * * *"), unit("opted-out", "0 * * * *", { catchUp: "none" })];
    const slots = catchUpSlots(units, [fresh("behind", "2026-06-01T09:00:05Z"), fresh("current", "2026-06-01T12:00:04Z"), fresh("never", undefined), fresh("opted-out", undefined)], now);
    expect(slots.map((s) => [s.unitId, s.slot.toISOString()])).toEqual([
      ["backup:behind", "2026-06-01T12:00:00.000Z"],
      ["backup:never", "2026-06-01T12:00:00.000Z"],
    ]);
  });
});
