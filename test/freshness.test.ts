import { describe, expect, it } from "vitest";
import { rpoExposure } from "../src/model/freshness.js";

const now = new Date("2026-03-01T12:00:00Z");
const hour = 3_600_000;

describe("RPO exposure", () => {
  it.each([
    { name: "a backup within its target is not over", at: "2026-03-01T11:55:00Z", rpo: hour, exposureMs: 5 * 60_000, overTarget: false },
    { name: "a backup older than its target is over", at: "2026-03-01T09:50:00Z", rpo: hour, exposureMs: 2 * hour + 10 * 60_000, overTarget: true },
    { name: "an exposure equal to the target is still within it", at: "2026-03-01T11:00:00Z", rpo: hour, exposureMs: hour, overTarget: false },
    { name: "a job without a target is never over or within", at: "2026-03-01T11:55:00Z", rpo: undefined, exposureMs: 5 * 60_000, overTarget: undefined },
    { name: "a backup dated after now (clock skew) reads negative and is within", at: "2026-03-01T12:00:30Z", rpo: hour, exposureMs: -30_000, overTarget: false },
  ])("$name", ({ at, rpo, exposureMs, overTarget }) => {
    expect(rpoExposure(new Date(at), now, rpo)).toEqual({ exposureMs, overTarget });
  });

  it("a job that never succeeded has no exposure figure and is over any target it has", () => {
    expect(rpoExposure(undefined, now, hour)).toEqual({ exposureMs: null, overTarget: true });
    expect(rpoExposure(undefined, now, 0)).toEqual({ exposureMs: null, overTarget: true });
  });

  it("a job that never succeeded and has no target is neither over nor within", () => {
    expect(rpoExposure(undefined, now, undefined)).toEqual({ exposureMs: null, overTarget: undefined });
  });
});
