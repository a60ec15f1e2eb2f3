import { describe, expect, it } from "vitest";
import { backupIdTime, isBackupId, newBackupId } from "../src/model/backup-id.js";
import { formatDuration, parseDurationMs } from "../src/model/duration.js";
import { checkManifest, type Manifest } from "../src/model/manifest.js";
import { isValidName } from "../src/model/names.js";
import { LifeboatError } from "../src/model/errors.js";
import { settleAll } from "../src/model/settle.js";
import { formatBytes } from "../src/model/size.js";

describe("durations", () => {
  it.each([
    ["90s", 90_000],
    ["15m", 900_000],
    ["1h", 3_600_000],
    ["1h30m", 5_400_000],
    ["7d", 604_800_000],
    ["2w", 1_209_600_000],
    ["250ms", 250],
    ["1.5h", 5_400_000],
  ])("%s is %i ms", (text, ms) => expect(parseDurationMs(text)).toBe(ms));

  it.each([[""], ["1"], ["1 hour"], ["-5m"], ["5x"], ["m5"], ["1h 30m"]])("%j is not a duration", (text) => expect(parseDurationMs(text)).toBeUndefined());

  it.each([
    [450, "450ms"],
    [3_200, "3.2s"],
    [65_000, "1m 5s"],
    [3_600_000 + 5 * 60_000, "1h 5m"],
    [2 * 86_400_000 + 4 * 3_600_000, "2d 4h"],
  ])("%i ms reads as %s", (ms, text) => expect(formatDuration(ms)).toBe(text));
});

describe("backup ids", () => {
  it("sort by start time and carry it", () => {
    const early = newBackupId(new Date("2026-11-21T19:05:12.345Z"), () => "ffff");
    const late = newBackupId(new Date("2026-11-21T19:05:13Z"), () => "0000");
    expect(early).toBe("20261121T190512Z-ffff");
    expect([late, early].sort()).toEqual([early, late]);
    expect(backupIdTime(early)?.toISOString()).toBe("2026-11-21T19:05:12.000Z");
  });

  it.each([["20261121T190512Z-3f9a", true], ["20261121T190512Z-3F9A", false], ["../20261121T190512Z-3f9a", false], ["latest", false]])("%s is an id: %s", (id, ok) =>
    expect(isBackupId(id)).toBe(ok),
  );
});

describe("names", () => {
  it.each([["orders-db", true], ["a", true], ["db.v2_x", true], ["Orders", false], ["-x", false], ["a..b", false], ["a/b", false], ["x".repeat(65), false]])(
    "%j is a valid name: %s",
    (name, ok) => expect(isValidName(name)).toBe(ok),
  );
});

describe("sizes", () => {
  it.each([[0, "0 B"], [1023, "1023 B"], [1536, "1.50 KiB"], [25.7 * 1024, "25.7 KiB"], [5 * 1024 ** 3, "5.00 GiB"]])("%i bytes read as %s", (n, text) =>
    expect(formatBytes(n)).toBe(text),
  );
});

describe("manifests", () => {
  const good: Manifest = {
    version: 1,
    id: "20261121T190512Z-3f9a",
    job: "uploads",
    status: "succeeded",
    source: { kind: "files", tool: "tar (GNU tar) 1.34" },
    startedAt: "2026-11-21T19:05:12.000Z",
    finishedAt: "2026-11-21T19:05:20.000Z",
    consistentAt: "2026-11-21T19:05:12.000Z",
    codec: ["tar", "zstd", "age"],
    objects: [{ key: "data.tar.zst.age", role: "data", sizeBytes: 10, sha256: "a".repeat(64), sourceBytes: 20 }],
    encryption: { format: "age-v1", recipients: ["age1ygx8awt55289g3thpfg9y4m0ks0hwguxff75ds3h80vluvn86f6s4erjwq"] },
    warnings: [],
    lifeboat: { version: "0.1.0" },
  };
  const expected = { job: "uploads", id: good.id };

  it("accepts a complete, consistent manifest", () => expect(checkManifest(good, expected)).toEqual({ ok: true, manifest: good }));

  it.each([
    ["an object key that leaves the backup folder", { objects: [{ ...good.objects[0]!, key: "../other/data" }] }, "objects.0.key"],
    ["a manifest stored under another job", { job: "orders" }, 'stored under job "uploads"'],
    ["a manifest stored under another id", { id: "20261121T190513Z-0000" }, "stored under id"],
    ["a malformed hash", { objects: [{ ...good.objects[0]!, sha256: "xyz" }] }, "objects.0.sha256"],
    ["an unknown field", { extra: true }, "extra"],
    ["an unknown version", { version: 2 }, "version"],
    ["age in the codec but no recipients", { encryption: null }, "disagree"],
    ["an object named like the manifest", { objects: [{ ...good.objects[0]!, key: "manifest.json" }] }, "collides"],
    ["time running backwards", { finishedAt: "2026-11-21T19:00:00.000Z" }, "before startedAt"],
  ])("rejects %s", (_label, change, problem) => {
    const result = checkManifest({ ...good, ...change }, expected);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.problems.join("\n")).toContain(problem);
  });
});

describe("settling concurrent steps", () => {
  const toolFailed = new LifeboatError("TOOL_FAILED", "tar failed with exit code 2");
  const interrupted = new LifeboatError("INTERRUPTED", "interrupted", { kind: "interrupted" });
  const sigpipe = new LifeboatError("TOOL_KILLED", "zstd was killed by SIGPIPE", { details: { signal: "SIGPIPE" } });
  const streamError = new Error("Premature close");

  it("resolves when every step succeeded", async () => {
    await expect(settleAll(Promise.resolve(1), [Promise.resolve(2)])).resolves.toBeUndefined();
  });

  it.each([
    ["a tool's own error over the echo it caused in a neighbour", [sigpipe, toolFailed], toolFailed],
    ["a tool's own error over a generic stream error", [streamError, toolFailed], toolFailed],
    ["an interruption over a generic stream error", [streamError, interrupted], interrupted],
    ["a generic stream error over a SIGPIPE echo", [sigpipe, streamError], streamError],
  ])("reports %s", async (_label, errors, expected) => {
    const [first, ...others] = errors.map((e) => Promise.reject(e));
    await expect(settleAll(first!, others)).rejects.toBe(expected);
  });

  it("waits for the slowest step before reporting", async () => {
    let finished = false;
    const slow = new Promise((resolve) => setTimeout(() => resolve((finished = true)), 30));
    await expect(settleAll(Promise.reject(toolFailed), [slow])).rejects.toBe(toolFailed);
    expect(finished).toBe(true);
  });
});
