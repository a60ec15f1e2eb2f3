/**
 * The measurement arithmetic of drills (DESIGN.md "Measurement"), with a fake
 * clock: RTO from t0 to the last passing step, RPO as the worse of metadata
 * and probe readings, targets, verdicts, and the timeline's own sanity checks.
 */
import { describe, expect, it } from "vitest";
import { startTimeline, type Clock } from "../src/measure/clock.js";
import { assertTimeline } from "../src/measure/assert-timeline.js";
import { coveredMs } from "../src/measure/intervals.js";
import { decideVerdict, evaluateTarget, measureRpo, measureRto, type StepTiming } from "../src/measure/targets.js";
import type { StepStatus } from "../src/model/drill-report.js";

/** A clock the test moves by hand; its wall clock can jump (NTP) while the monotonic one does not. */
function fakeClock(startWall = "2026-11-21T12:00:00Z") {
  let mono = 5_000;
  let wall = Date.parse(startWall);
  const clock: Clock = { monotonicMs: () => mono, now: () => new Date(wall) };
  return {
    clock,
    advance(ms: number) {
      mono += ms;
      wall += ms;
    },
    setWall(iso: string) {
      wall = Date.parse(iso);
    },
  };
}

const step = (name: string, status: StepStatus, endMs: number | null, critical = true): StepTiming & { error: null } => ({ name, kind: "verify", critical, status, endMs, error: null });

describe("the drill timeline", () => {
  it("measures elapsed time on the monotonic clock, so a wall-clock jump does not change durations", () => {
    const fake = fakeClock();
    const timeline = startTimeline(fake.clock);
    fake.advance(1_500);
    fake.setWall("2026-11-21T11:00:00Z"); // NTP steps the clock back an hour
    fake.advance(500);
    expect(timeline.elapsedMs()).toBe(2_000);
    expect(timeline.t0.toISOString()).toBe("2026-11-21T12:00:00.000Z");
    expect(timeline.wallAt(2_000).toISOString()).toBe("2026-11-21T12:00:02.000Z");
  });

  it("places readings taken by other code (a restore's phase marks) on the same axis", () => {
    const fake = fakeClock();
    const timeline = startTimeline(fake.clock);
    expect(timeline.at(fake.clock.monotonicMs() + 250)).toBe(250);
  });
});

describe("covered time of overlapping phases", () => {
  it.each([
    ["nothing", [], 0],
    ["one span", [{ startMs: 10, endMs: 30 }], 20],
    ["two apart", [{ startMs: 0, endMs: 10 }, { startMs: 20, endMs: 25 }], 15],
    ["overlapping spans count once", [{ startMs: 0, endMs: 10 }, { startMs: 5, endMs: 20 }, { startMs: 7, endMs: 8 }], 20],
    ["touching spans", [{ startMs: 0, endMs: 10 }, { startMs: 10, endMs: 20 }], 20],
  ])("%s", (_name, spans, expected) => {
    expect(coveredMs(spans)).toBe(expected);
  });
});

describe("RTO actual", () => {
  it("runs from t0 to the end of the last passing step", () => {
    expect(measureRto([step("restore", "passed", 4_000), step("count rows", "passed", 4_500), step("smoke", "passed", 9_000)])).toEqual({ actualMs: 9_000, reachedAt: "smoke" });
  });

  it("is not reached when a critical step failed or never ran", () => {
    expect(measureRto([step("restore", "passed", 4_000), step("count rows", "failed", 4_500)]).actualMs).toBeUndefined();
    expect(measureRto([step("restore", "failed", 4_000), step("count rows", "not-run", null)]).actualMs).toBeUndefined();
  });

  it("still counts when an optional step failed, ending at the last step that passed", () => {
    expect(measureRto([step("restore", "passed", 4_000), step("optional report", "failed", 6_000, false), step("smoke", "passed", 5_000)])).toEqual({ actualMs: 5_000, reachedAt: "smoke" });
  });

  it("treats a manual step skipped by policy as not blocking recovery", () => {
    expect(measureRto([step("restore", "passed", 4_000), step("switch dns", "skipped", 4_001)])).toEqual({ actualMs: 4_000, reachedAt: "restore" });
  });
});

describe("RPO actual", () => {
  const t0 = new Date("2026-11-21T12:00:00Z");

  it("comes from the metadata when there is no probe", () => {
    expect(measureRpo(t0, [new Date("2026-11-21T11:30:00Z")], [])).toEqual({ actualMs: 30 * 60_000, fromMetadataMs: 30 * 60_000, fromProbeMs: undefined, countedFrom: "metadata" });
  });

  it("uses the oldest of several restored backups: the data is only as new as its oldest part", () => {
    expect(measureRpo(t0, [new Date("2026-11-21T11:50:00Z"), new Date("2026-11-21T10:00:00Z")], []).actualMs).toBe(2 * 3_600_000);
  });

  it("counts the probe when the restored data is older than the metadata says", () => {
    const reading = measureRpo(t0, [new Date("2026-11-21T11:50:00Z")], [new Date("2026-11-21T09:00:00Z")]);
    expect(reading).toEqual({ actualMs: 3 * 3_600_000, fromMetadataMs: 10 * 60_000, fromProbeMs: 3 * 3_600_000, countedFrom: "probe" });
  });

  it("keeps the metadata when the probe finds newer data", () => {
    expect(measureRpo(t0, [new Date("2026-11-21T11:00:00Z")], [new Date("2026-11-21T11:59:00Z")]).countedFrom).toBe("metadata");
  });

  it("has no reading when nothing was restored or probed", () => {
    expect(measureRpo(t0, [], []).actualMs).toBeUndefined();
  });
});

describe("targets", () => {
  it.each([
    ["met", 60_000, 59_999, true],
    ["met exactly at the target", 60_000, 60_000, true],
    ["missed", 60_000, 60_001, false],
    ["missed when never reached", 60_000, undefined, false],
    ["not judged without a target", undefined, 1_000, undefined],
  ])("%s", (_name, target, actual, met) => {
    expect(evaluateTarget(target, actual).met).toBe(met);
  });
});

describe("the verdict", () => {
  const met = { targetMs: 10, actualMs: 5, met: true };
  const missed = { targetMs: 10, actualMs: 50, met: false };
  const base = { provisioningFailed: false, interrupted: false, rto: met, rpo: met };

  it("passes when every step passed and both targets were met", () => {
    expect(decideVerdict({ ...base, steps: [step("a", "passed", 1), step("b", "passed", 2)] }).verdict).toBe("passed");
  });

  it("fails when a critical step failed, and says which", () => {
    const verdict = decideVerdict({ ...base, steps: [step("restore", "passed", 1), { ...step("count rows", "failed", 2), error: { code: "CHECK_FAILED", message: "returned 3 rows\nmore" } }] });
    expect(verdict).toEqual({ verdict: "failed", summary: 'critical step "count rows" failed: returned 3 rows' });
  });

  it("fails when a critical step never ran", () => {
    expect(decideVerdict({ ...base, steps: [step("a", "failed", 1, false), step("b", "not-run", null)] }).verdict).toBe("failed");
  });

  it("misses targets when every step passed but recovery took too long", () => {
    expect(decideVerdict({ ...base, rto: missed, steps: [step("a", "passed", 1)] })).toEqual({ verdict: "missed-targets", summary: "every critical step passed, but RTO exceeded its target" });
  });

  it("is partial when only an optional step failed", () => {
    expect(decideVerdict({ ...base, steps: [step("a", "passed", 1), step("notify", "failed", 2, false)] }).verdict).toBe("partial");
  });

  it("ranks a missed target above a failed optional step", () => {
    expect(decideVerdict({ ...base, rpo: missed, steps: [step("a", "passed", 1), step("notify", "failed", 2, false)] }).verdict).toBe("missed-targets");
  });

  it("fails when a scratch environment could not be created, and is interrupted above all", () => {
    expect(decideVerdict({ ...base, provisioningFailed: true, steps: [step("a", "not-run", null)] }).verdict).toBe("failed");
    expect(decideVerdict({ ...base, provisioningFailed: true, interrupted: true, steps: [] }).verdict).toBe("interrupted");
  });
});

describe("timeline assertions", () => {
  const sane = {
    durationMs: 100,
    provisioning: [{ scratch: "db", startMs: 0, endMs: 10 }],
    steps: [
      { name: "a", startMs: 10, endMs: 40, durationMs: 30, attempts: [{ startMs: 10, endMs: 40 }], phases: [{ phase: "fetch", startMs: 11, endMs: 30 }] },
      { name: "b", startMs: 40, endMs: 60, durationMs: 20, attempts: [], phases: [] },
      { name: "c", startMs: null, endMs: null, durationMs: null, attempts: [], phases: [] },
    ],
    teardown: [{ name: "db", startMs: 60, endMs: 90 }],
  } as unknown as Parameters<typeof assertTimeline>[0];

  it("accepts a consistent timeline", () => {
    expect(() => assertTimeline(sane)).not.toThrow();
  });

  it.each([
    ["an end before its start", (r: any) => (r.steps[0].endMs = 5), /ends before it starts/],
    ["a step that starts before the previous one ended", (r: any) => (r.steps[1].startMs = 30), /starts before the previous step ended/],
    ["a negative duration", (r: any) => (r.steps[1].durationMs = -1), /negative duration/],
    ["a start before t0", (r: any) => (r.provisioning[0].startMs = -3), /starts before t0/],
    ["teardown before the last step ended", (r: any) => (r.teardown[0].startMs = 50), /teardown of "db" starts before/],
  ])("rejects %s", (_name, mutate, message) => {
    const broken = structuredClone(sane);
    mutate(broken);
    expect(() => assertTimeline(broken)).toThrow(message);
  });
});
