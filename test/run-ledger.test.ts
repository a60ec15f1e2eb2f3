import { describe, expect, it } from "vitest";
import { hostname } from "node:os";
import { Layout } from "../src/storage/layout.js";
import { RunLedger, newOwner, type Claim, type NotClaimed, type Owner } from "../src/schedule/run-ledger.js";
import { storesUnderTest } from "./support/stores.js";

const layout = new Layout("ledger/");
const SLOT = new Date("2026-12-06T02:30:00Z");

const THIS_MACHINE = newOwner().machine;

function owner(name: string, pid = process.pid, machine = THIS_MACHINE): Owner {
  return { instance: name, host: hostname(), pid, ...(machine ? { machine } : {}) };
}

function isClaim(result: Claim | NotClaimed): result is Claim {
  return result.claimed;
}

/** A pid that is certainly not running (the highest pid Linux hands out is far below). */
const DEAD_PID = 2 ** 30;

// The lease and the run records need a store that enforces conditional writes:
// the filesystem store and Ceph RGW (both checksum modes).
const strict = storesUnderTest().filter((s) => s.strict);

describe.each(strict)("the run ledger on $name", (kind) => {
  it("lets exactly one of two instances claim a scheduled time, however they race", async () => {
    const { store, cleanup } = await kind.open();
    try {
      const a = new RunLedger({ store, layout, leaseMs: 60_000, owner: owner("a") });
      const b = new RunLedger({ store, layout, leaseMs: 60_000, owner: owner("b") });
      for (let i = 0; i < 5; i++) {
        const slot = new Date(SLOT.getTime() + i * 60_000);
        const results = await Promise.all([a.claim("backup", "orders", slot, "schedule"), b.claim("backup", "orders", slot, "schedule")]);
        const winners = results.filter(isClaim);
        expect(winners).toHaveLength(1);
        const loser = results.find((r) => !r.claimed) as NotClaimed;
        expect(["claimed-elsewhere", "busy"]).toContain(loser.reason);
        await winners[0]!.finish({ status: "succeeded", resultId: `run-${i}`, finishedAt: new Date() });
      }
    } finally {
      cleanup();
    }
  });

  it("does not run a finished slot again, and says how it ended", async () => {
    const { store, cleanup } = await kind.open();
    try {
      const ledger = new RunLedger({ store, layout, leaseMs: 60_000, owner: owner("a") });
      const claim = await ledger.claim("backup", "orders", SLOT, "external");
      expect(claim.claimed).toBe(true);
      await (claim as Claim).finish({ status: "succeeded", resultId: "20261206T023000Z-abcd", finishedAt: new Date() });
      const again = await ledger.claim("backup", "orders", SLOT, "external", { retry: true });
      expect(again).toMatchObject({ claimed: false, reason: "done", record: { status: "succeeded", resultId: "20261206T023000Z-abcd", attempt: 1 } });
    } finally {
      cleanup();
    }
  });

  it("retries a failed slot when asked (external schedulers), with a new attempt and a higher fencing token", async () => {
    const { store, cleanup } = await kind.open();
    try {
      const ledger = new RunLedger({ store, layout, leaseMs: 60_000, owner: owner("a") });
      const first = (await ledger.claim("backup", "orders", SLOT, "external")) as Claim;
      await first.finish({ status: "failed", error: { code: "SOURCE_FAILED", message: "boom" }, finishedAt: new Date() });
      expect(await ledger.claim("backup", "orders", SLOT, "schedule")).toMatchObject({ claimed: false, reason: "done" });
      const second = await ledger.claim("backup", "orders", SLOT, "external", { retry: true });
      expect(second.claimed).toBe(true);
      expect((second as Claim).record).toMatchObject({ attempt: 2, fencingToken: first.fencingToken + 1, status: "running" });
      await (second as Claim).finish({ status: "succeeded", finishedAt: new Date() });
    } finally {
      cleanup();
    }
  });

  it("keeps a job to one run at a time: another slot finds the job busy", async () => {
    const { store, cleanup } = await kind.open();
    try {
      const a = new RunLedger({ store, layout, leaseMs: 60_000, owner: owner("a") });
      const b = new RunLedger({ store, layout, leaseMs: 60_000, owner: owner("b") });
      const running = (await a.claim("backup", "orders", SLOT, "schedule")) as Claim;
      const next = await b.claim("backup", "orders", new Date(SLOT.getTime() + 3_600_000), "schedule");
      expect(next).toMatchObject({ claimed: false, reason: "busy", holder: { instance: "a" } });
      await running.finish({ status: "succeeded", finishedAt: new Date() });
      const later = await b.claim("backup", "orders", new Date(SLOT.getTime() + 3_600_000), "schedule");
      expect(later.claimed).toBe(true);
      await (later as Claim).finish({ status: "succeeded", finishedAt: new Date() });
    } finally {
      cleanup();
    }
  });

  it("fences a holder whose lease expired and was taken over: its next renewal fails, so it writes no manifest", async () => {
    const { store, cleanup } = await kind.open();
    try {
      let now = Date.parse("2026-12-06T02:30:00Z");
      const clock = () => new Date(now);
      const a = new RunLedger({ store, layout, leaseMs: 10_000, owner: owner("a"), now: clock });
      const b = new RunLedger({ store, layout, leaseMs: 10_000, owner: owner("b"), now: clock });
      const stale = (await a.claim("backup", "orders", SLOT, "schedule")) as Claim;
      expect(await stale.fence()).toBe(1);
      let lost: Error | undefined;
      stale.onLost((error) => (lost = error));
      now += 60_000; // a paused for a minute: its lease ran out
      const marked = await b.sweepAbandoned();
      expect(marked.map((r) => [r.name, r.status, r.fencingToken])).toEqual([["orders", "abandoned", 1]]);
      const fresh = (await b.claim("backup", "orders", new Date(SLOT.getTime() + 60_000), "schedule")) as Claim;
      expect(fresh.fencingToken).toBe(2);
      await expect(stale.fence()).rejects.toMatchObject({ code: "RUN_LEASE_LOST" });
      expect(lost).toBeDefined();
      await fresh.finish({ status: "succeeded", finishedAt: new Date(now) });
    } finally {
      cleanup();
    }
  });

  it("abandons the run of a holder it takes over from, so no record stays running forever", async () => {
    const { store, cleanup } = await kind.open();
    try {
      let now = Date.parse("2026-12-06T02:30:00Z");
      const clock = () => new Date(now);
      const gone = new RunLedger({ store, layout, leaseMs: 10_000, owner: owner("gone", process.pid, "another-machine"), now: clock });
      await gone.claim("backup", "orders", SLOT, "schedule");
      now += 60_000;
      const next = new RunLedger({ store, layout, leaseMs: 10_000, owner: owner("next"), now: clock });
      // No sweep first: the takeover itself settles the old slot.
      const later = (await next.claim("backup", "orders", new Date(SLOT.getTime() + 60_000), "schedule")) as Claim;
      expect(later.fencingToken).toBe(2);
      expect(await next.record("backup", "orders", SLOT)).toMatchObject({ status: "abandoned", error: { code: "RUN_ABANDONED" } });
      const retried = await next.claim("backup", "orders", SLOT, "external", { retry: true });
      expect(retried).toMatchObject({ claimed: false, reason: "busy" });
      await later.finish({ status: "succeeded", finishedAt: clock() });
      expect((await next.claim("backup", "orders", SLOT, "external", { retry: true })).claimed).toBe(true);
    } finally {
      cleanup();
    }
  });

  it("renews one lease at a time: overlapping renewals never make a holder lose its own lease", async () => {
    const { store, cleanup } = await kind.open();
    try {
      const ledger = new RunLedger({ store, layout, leaseMs: 60_000, owner: owner("a") });
      const claim = (await ledger.claim("backup", "orders", SLOT, "schedule")) as Claim;
      let lost = false;
      claim.onLost(() => (lost = true));
      const tokens = await Promise.all([claim.fence(), claim.fence(), claim.fence()]);
      expect(tokens).toEqual([1, 1, 1]);
      expect(lost).toBe(false);
      await claim.finish({ status: "succeeded", finishedAt: new Date() });
    } finally {
      cleanup();
    }
  });

  it("never takes over a live lease of a process with the same pid on another machine (a container with the same host name)", async () => {
    const { store, cleanup } = await kind.open();
    try {
      const elsewhere = new RunLedger({ store, layout, leaseMs: 3_600_000, owner: owner("twin", DEAD_PID, "other-boot/pid:[1]") });
      await elsewhere.claim("backup", "orders", SLOT, "schedule");
      const here = new RunLedger({ store, layout, leaseMs: 3_600_000, owner: owner("here") });
      expect(await here.sweepAbandoned()).toEqual([]);
      expect(await here.claim("backup", "orders", new Date(SLOT.getTime() + 60_000), "schedule")).toMatchObject({ claimed: false, reason: "busy" });
    } finally {
      cleanup();
    }
  });

  it("forgets run records older than a cut-off, reading nothing", async () => {
    const { store, cleanup } = await kind.open();
    try {
      const ledger = new RunLedger({ store, layout, leaseMs: 60_000, owner: owner("a") });
      for (const day of [1, 2, 3]) {
        const claim = (await ledger.claim("backup", "orders", new Date(`2026-11-0${day}T02:30:00Z`), "schedule")) as Claim;
        await claim.finish({ status: "succeeded", finishedAt: new Date() });
      }
      expect(await ledger.forgetRunRecords("backup", "orders", new Date("2026-11-02T12:00:00Z"))).toBe(2);
      expect(await ledger.record("backup", "orders", new Date("2026-11-01T02:30:00Z"))).toBeUndefined();
      expect(await ledger.record("backup", "orders", new Date("2026-11-03T02:30:00Z"))).toMatchObject({ status: "succeeded" });
    } finally {
      cleanup();
    }
  });

  it("marks the run of a process that died on this host abandoned at once, without waiting for the lease", async () => {
    const { store, cleanup } = await kind.open();
    try {
      const dead = new RunLedger({ store, layout, leaseMs: 3_600_000, owner: owner("killed", DEAD_PID) });
      const claim = (await dead.claim("backup", "orders", SLOT, "schedule")) as Claim;
      await claim.setResultId("20261206T023000Z-dead");
      const next = new RunLedger({ store, layout, leaseMs: 3_600_000, owner: owner("next") });
      expect(await next.activeBackupFolders()).toEqual(new Set());
      const marked = await next.sweepAbandoned();
      expect(marked).toHaveLength(1);
      expect(await next.record("backup", "orders", SLOT)).toMatchObject({ status: "abandoned", resultId: "20261206T023000Z-dead", error: { code: "RUN_ABANDONED" } });
      // A live holder's run is left alone and its folder is protected from prune.
      const live = (await next.claim("backup", "orders", new Date(SLOT.getTime() + 60_000), "schedule")) as Claim;
      await live.setResultId("20261206T023100Z-beef");
      expect(await new RunLedger({ store, layout, leaseMs: 3_600_000, owner: owner("third") }).sweepAbandoned()).toEqual([]);
      expect(await next.activeBackupFolders()).toEqual(new Set(["ledger/orders/20261206T023100Z-beef/"]));
      await live.finish({ status: "succeeded", finishedAt: new Date() });
    } finally {
      cleanup();
    }
  });
});

describe("conditional writes on a store that ignores them", () => {
  it("is detected by the probe (s3rver overwrites despite If-None-Match)", async () => {
    const lenient = storesUnderTest().find((s) => !s.strict)!;
    const { store } = await lenient.open();
    expect((await store.probe(layout.probePrefix())).conditionalWrites).toBe(false);
  });
});
