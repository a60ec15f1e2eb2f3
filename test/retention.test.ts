import { describe, expect, it } from "vitest";
import { applyRetention } from "../src/model/retention.js";
import type { RetentionPolicy } from "../src/model/job.js";

/** Backups named by their UTC time, so expectations read as times. */
function backups(...times: string[]): Array<{ id: string; time: Date }> {
  return times.map((t) => ({ id: t, time: new Date(t) }));
}

interface Case {
  name: string;
  times: string[];
  policy: RetentionPolicy | undefined;
  timezone?: string;
  now?: string;
  keep: Record<string, string[]>;
}

// The restic documentation's example: one backup every Sunday for 12 weeks, `forget --keep-daily 4`.
const SUNDAYS = Array.from({ length: 12 }, (_, i) => new Date(Date.UTC(2019, 8, 1 + 7 * i, 11)).toISOString());

const cases: Case[] = [
  {
    name: "a job without a retention policy keeps every backup",
    times: ["2026-11-20T10:00:00.000Z", "2026-11-19T10:00:00.000Z"],
    policy: undefined,
    keep: { "2026-11-20T10:00:00.000Z": ["no retention policy"], "2026-11-19T10:00:00.000Z": ["no retention policy"] },
  },
  {
    name: "a policy whose counts are all zero keeps every backup",
    times: ["2026-11-20T10:00:00.000Z", "2026-11-19T10:00:00.000Z"],
    policy: { keepLast: 0, keepDaily: 0 },
    keep: { "2026-11-20T10:00:00.000Z": ["retention policy is empty"], "2026-11-19T10:00:00.000Z": ["retention policy is empty"] },
  },
  {
    name: "keepLast keeps the n newest whatever order they come in",
    times: ["2026-11-18T10:00:00.000Z", "2026-11-20T10:00:00.000Z", "2026-11-17T10:00:00.000Z", "2026-11-19T10:00:00.000Z"],
    policy: { keepLast: 2 },
    keep: { "2026-11-20T10:00:00.000Z": ["last 1 of 2"], "2026-11-19T10:00:00.000Z": ["last 2 of 2"] },
  },
  {
    name: "keepDaily 4 on twelve Sunday backups keeps the last four Sundays (the restic documentation's example)",
    times: SUNDAYS,
    policy: { keepDaily: 4 },
    keep: {
      "2019-11-17T11:00:00.000Z": ["daily 2019-11-17"],
      "2019-11-10T11:00:00.000Z": ["daily 2019-11-10"],
      "2019-11-03T11:00:00.000Z": ["daily 2019-11-03"],
      "2019-10-27T11:00:00.000Z": ["daily 2019-10-27"],
    },
  },
  {
    name: "two backups in the same day count as one day and only the newer is kept",
    times: ["2026-11-20T18:00:00.000Z", "2026-11-20T06:00:00.000Z", "2026-11-19T18:00:00.000Z", "2026-11-19T06:00:00.000Z", "2026-11-18T18:00:00.000Z"],
    policy: { keepDaily: 2 },
    keep: { "2026-11-20T18:00:00.000Z": ["daily 2026-11-20"], "2026-11-19T18:00:00.000Z": ["daily 2026-11-19"] },
  },
  {
    name: "the oldest backup is kept too while a rule still has buckets left (restic's oldest rule)",
    times: ["2026-11-20T10:00:00.000Z", "2026-11-20T09:00:00.000Z", "2026-11-19T10:00:00.000Z", "2026-11-19T08:00:00.000Z"],
    policy: { keepDaily: 7 },
    keep: {
      "2026-11-20T10:00:00.000Z": ["daily 2026-11-20"],
      "2026-11-19T10:00:00.000Z": ["daily 2026-11-19"],
      "2026-11-19T08:00:00.000Z": ["oldest daily 2026-11-19"],
    },
  },
  {
    name: "ISO weeks run Monday to Sunday across a year boundary (2027-01-03 is in week 53 of 2026)",
    times: ["2027-01-05T12:00:00.000Z", "2027-01-03T12:00:00.000Z", "2026-12-28T12:00:00.000Z", "2026-12-27T12:00:00.000Z", "2026-12-20T12:00:00.000Z"],
    policy: { keepWeekly: 3 },
    keep: {
      "2027-01-05T12:00:00.000Z": ["weekly 2027-W01"],
      "2027-01-03T12:00:00.000Z": ["weekly 2026-W53"],
      "2026-12-27T12:00:00.000Z": ["weekly 2026-W52"],
    },
  },
  {
    name: "a Tuesday at the end of December can belong to the next ISO year (2024-12-31 is 2025-W01)",
    times: ["2025-01-02T12:00:00.000Z", "2024-12-31T12:00:00.000Z", "2024-12-29T12:00:00.000Z", "2024-12-22T12:00:00.000Z"],
    policy: { keepWeekly: 2 },
    keep: { "2025-01-02T12:00:00.000Z": ["weekly 2025-W01"], "2024-12-29T12:00:00.000Z": ["weekly 2024-W52"] },
  },
  {
    name: "without a time zone day buckets are UTC days",
    times: ["2026-11-20T23:30:00.000Z", "2026-11-20T20:00:00.000Z", "2026-11-19T12:00:00.000Z"],
    policy: { keepDaily: 2 },
    keep: { "2026-11-20T23:30:00.000Z": ["daily 2026-11-20"], "2026-11-19T12:00:00.000Z": ["daily 2026-11-19"] },
  },
  {
    name: "the job's time zone moves a late-evening UTC backup into the next local day",
    times: ["2026-11-20T23:30:00.000Z", "2026-11-20T20:00:00.000Z", "2026-11-19T12:00:00.000Z"],
    policy: { keepDaily: 2 },
    timezone: "Europe/Berlin",
    keep: { "2026-11-20T23:30:00.000Z": ["daily 2026-11-21"], "2026-11-20T20:00:00.000Z": ["daily 2026-11-20"] },
  },
  {
    name: "hourly, monthly and yearly buckets are local hours, months and years",
    times: ["2026-03-01T00:30:00.000Z", "2026-02-28T23:10:00.000Z", "2026-02-28T23:00:00.000Z", "2025-12-31T23:00:00.000Z", "2025-06-01T00:00:00.000Z"],
    policy: { keepHourly: 2, keepMonthly: 3, keepYearly: 2 },
    keep: {
      "2026-03-01T00:30:00.000Z": ["hourly 2026-03-01T00", "monthly 2026-03", "yearly 2026"],
      "2026-02-28T23:10:00.000Z": ["hourly 2026-02-28T23", "monthly 2026-02"],
      "2025-12-31T23:00:00.000Z": ["monthly 2025-12", "yearly 2025"],
    },
  },
  {
    name: "keepWithin is measured from the newest backup, not from now",
    times: ["2026-11-10T12:00:00.000Z", "2026-11-05T12:00:00.000Z", "2026-11-03T12:00:01.000Z", "2026-11-03T12:00:00.000Z", "2026-10-01T12:00:00.000Z"],
    policy: { keepWithin: "7d" },
    now: "2027-06-01T00:00:00.000Z",
    keep: {
      "2026-11-10T12:00:00.000Z": ["within 7d of the newest"],
      "2026-11-05T12:00:00.000Z": ["within 7d of the newest"],
      "2026-11-03T12:00:01.000Z": ["within 7d of the newest"],
    },
  },
  {
    name: "a backup dated in the future is kept but is not the reference for keepWithin",
    times: ["2030-01-01T00:00:00.000Z", "2026-11-10T12:00:00.000Z", "2026-11-09T12:00:00.000Z", "2026-11-01T12:00:00.000Z"],
    policy: { keepWithin: "2d" },
    now: "2026-11-11T00:00:00.000Z",
    keep: {
      "2030-01-01T00:00:00.000Z": ["within 2d of the newest"],
      "2026-11-10T12:00:00.000Z": ["within 2d of the newest"],
      "2026-11-09T12:00:00.000Z": ["within 2d of the newest"],
    },
  },
  {
    name: "rules are ORed and a backup lists every rule that keeps it",
    times: ["2026-11-20T10:00:00.000Z", "2026-11-20T09:00:00.000Z", "2026-11-19T10:00:00.000Z", "2026-11-18T10:00:00.000Z"],
    policy: { keepLast: 2, keepDaily: 2 },
    keep: {
      "2026-11-20T10:00:00.000Z": ["last 1 of 2", "daily 2026-11-20"],
      "2026-11-20T09:00:00.000Z": ["last 2 of 2"],
      "2026-11-19T10:00:00.000Z": ["daily 2026-11-19"],
    },
  },
];

describe("applyRetention", () => {
  for (const c of cases) {
    it(c.name, () => {
      const decision = applyRetention(backups(...c.times), c.policy, { timezone: c.timezone, now: c.now === undefined ? undefined : new Date(c.now) });
      expect(Object.fromEntries(decision.keep.map((k) => [k.id, k.reasons]))).toEqual(c.keep);
      const expectedForget = c.times.filter((t) => !(t in c.keep)).sort().reverse();
      expect(decision.forget.map((f) => f.id)).toEqual(expectedForget);
      // Every backup is decided exactly once, newest first.
      expect([...decision.keep.map((k) => k.id), ...decision.forget.map((f) => f.id)].sort()).toEqual([...c.times].sort());
      expect(decision.keep.map((k) => k.id)).toEqual(Object.keys(c.keep).sort().reverse());
    });
  }

  it("backups with the same time are ordered by id and only one of them fills the bucket", () => {
    const time = new Date("2026-11-20T10:00:00.000Z");
    const list = [
      { id: "20261120T100000Z-aaaa", time },
      { id: "20261120T100000Z-bbbb", time },
      { id: "20261120T090000Z-cccc", time: new Date("2026-11-20T09:00:00.000Z") },
      { id: "20261119T100000Z-dddd", time: new Date("2026-11-19T10:00:00.000Z") },
    ];
    const decision = applyRetention(list, { keepHourly: 2 }, {});
    expect(decision.keep).toEqual([
      { id: "20261120T100000Z-bbbb", reasons: ["hourly 2026-11-20T10"] },
      { id: "20261120T090000Z-cccc", reasons: ["hourly 2026-11-20T09"] },
    ]);
    expect(decision.forget).toEqual([{ id: "20261120T100000Z-aaaa" }, { id: "20261119T100000Z-dddd" }]);
  });

  it("the newest backup is kept by every non-empty policy", () => {
    for (const policy of [{ keepLast: 1 }, { keepHourly: 1 }, { keepWeekly: 1 }, { keepYearly: 1 }, { keepWithin: "1h" }] satisfies RetentionPolicy[]) {
      const decision = applyRetention(backups("2026-11-20T10:00:00.000Z", "2020-01-01T00:00:00.000Z"), policy, {});
      expect(decision.keep[0]!.id, JSON.stringify(policy)).toBe("2026-11-20T10:00:00.000Z");
    }
  });

  it("no backups means nothing to keep or forget", () => {
    expect(applyRetention([], { keepLast: 3 }, {})).toEqual({ keep: [], forget: [] });
  });

  it("rejects an unknown time zone with a usage error", () => {
    expect(() => applyRetention(backups("2026-11-20T10:00:00.000Z"), { keepDaily: 1 }, { timezone: "Mars/Olympus" })).toThrow(/unknown time zone "Mars\/Olympus"/);
  });
});
