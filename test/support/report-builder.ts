import type { DrillReport, StepReport, Verdict } from "../../src/model/drill-report.js";

/**
 * A realistic drill report (plan "orders-restore", verdict partial): two
 * scratch environments, two restore steps with their stream phases (the
 * first after rejecting a corrupt newer backup), a retried readiness check,
 * a row count, an rpo-probe, an optional run step that failed and a manual
 * step skipped without a terminal, then teardown in reverse order.
 */
export function sampleReport(overrides: Partial<DrillReport> = {}): DrillReport {
  return { ...baseReport(), ...overrides };
}

const T0 = "2026-11-21T19:05:12.000Z";

function baseReport(): DrillReport {
  return {
    version: 1,
    drillId: "20261121T190512Z-d41c",
    plan: { name: "orders-restore", file: "plans/orders-restore.yaml", sha256: "5d1f0c2b9e4a7781c3a0e6f2d94b1a5c7e8f3d2c1b0a99887766554433221100" },
    verdict: "partial",
    summary: 'recovery verified in 8m 2s (target 15m), but optional step "smoke-report" failed',
    t0: T0,
    finishedAt: "2026-11-21T19:15:17.400Z",
    durationMs: 605_400,
    recoveryPoint: { mode: "latest", at: null, withinMs: null },
    rto: { targetMs: 900_000, actualMs: 482_000, met: true, reachedAt: "probe-newest-order" },
    rpo: { targetMs: 7_200_000, actualMs: 3_992_000, met: true, fromMetadataMs: 3_912_000, fromProbeMs: 3_992_000, countedFrom: "probe" },
    phases: { provisionMs: 12_400, fetchMs: 367_400 + 60_000, decodeMs: 372_300 + 61_000, restoreMs: 389_600 + 68_000, verifyMs: 10_700 },
    provisioning: [
      { scratch: "db", type: "postgres", status: "ready", startMs: 0, endMs: 12_000, error: null, versions: { postgres: "15.8" } },
      { scratch: "files", type: "directory", status: "ready", startMs: 12_000, endMs: 12_400, error: null, versions: {} },
    ],
    steps: [
      step({
        index: 0,
        name: "restore-orders",
        kind: "restore",
        startMs: 12_500,
        endMs: 402_500,
        note: "restored 20261121T180000Z-3f9a after rejecting 20261121T183000Z-77c1",
        output: "pg_restore: creating TABLE public.orders\npg_restore: creating INDEX orders_created_at_idx\n",
        phases: [
          { phase: "fetch", startMs: 12_600, endMs: 380_000 },
          { phase: "decode", startMs: 12_700, endMs: 385_000 },
          { phase: "restore", startMs: 12_800, endMs: 402_400 },
        ],
      }),
      step({
        index: 1,
        name: "restore-uploads",
        kind: "restore",
        startMs: 402_600,
        endMs: 471_000,
        phases: [
          { phase: "fetch", startMs: 402_700, endMs: 462_700 },
          { phase: "decode", startMs: 402_800, endMs: 463_800 },
          { phase: "restore", startMs: 402_900, endMs: 470_900 },
        ],
      }),
      step({
        index: 2,
        name: "wait-ready",
        kind: "verify",
        startMs: 471_100,
        endMs: 478_300,
        attempts: [
          { startMs: 471_100, endMs: 473_100, ok: false, error: { code: "E_CHECK", message: 'connection refused (scratch "db")' } },
          { startMs: 475_100, endMs: 478_300, ok: true },
        ],
        note: "accepting connections",
      }),
      step({ index: 3, name: "check-orders", kind: "verify", startMs: 478_400, endMs: 481_200, note: "returned 1200 rows", output: " count\n-------\n  1200\n(1 row)\n" }),
      step({
        index: 4,
        name: "probe-newest-order",
        kind: "rpo-probe",
        startMs: 481_300,
        endMs: 482_000,
        probe: { value: "2026-11-21T17:58:40.000Z", rpoMs: 3_992_000 },
        output: "2026-11-21 17:58:40+00\n",
      }),
      step({
        index: 5,
        name: "smoke-report",
        kind: "run",
        critical: false,
        onError: "continue",
        status: "failed",
        startMs: 482_100,
        endMs: 602_100,
        error: { code: "E_TIMEOUT", message: 'timed out after 2m (step "smoke-report")', hint: "raise the step's timeout or make the report query faster" },
        output:
          "building nightly report & totals\n<script>alert('pwned')</script>\n\u001b[31mERROR\u001b[0m see https://runbooks.example.com/orders for the runbook\r\nwaiting for lock on orders...\n",
      }),
      step({
        index: 6,
        name: "confirm-dashboard",
        kind: "manual",
        status: "skipped",
        startMs: null,
        endMs: null,
        note: "no terminal to confirm at: skipped by policy",
      }),
    ],
    backups: [
      {
        step: "restore-orders",
        job: "orders-db",
        id: "20261121T180000Z-3f9a",
        consistentAt: "2026-11-21T18:00:00.000Z",
        ageMs: 3_912_000,
        sizeBytes: 1_288_490_189,
        codec: ["pg_dump-custom", "zstd", "age"],
        objects: [{ key: "prod/orders-db/20261121T180000Z-3f9a/data.dump.zst.age", sizeBytes: 1_288_490_189, sha256: "9f2c4e1a0b7d3c5e8f6a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e" }],
        fallbackFrom: [
          {
            id: "20261121T183000Z-77c1",
            consistentAt: "2026-11-21T18:30:00.000Z",
            code: "E_INTEGRITY",
            message: "sha256 mismatch in data.dump.zst.age: expected 03ab…, got 7c11…",
          },
        ],
      },
      {
        step: "restore-uploads",
        job: "uploads",
        id: "20261121T183000Z-b210",
        consistentAt: "2026-11-21T18:30:00.000Z",
        ageMs: 2_112_000,
        sizeBytes: 48_234_496,
        codec: ["tar", "zstd", "age"],
        objects: [
          { key: "prod/uploads/20261121T183000Z-b210/data.tar.zst.age", sizeBytes: 48_234_496, sha256: "0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d" },
        ],
        fallbackFrom: [],
      },
    ],
    teardown: [
      { name: "files", what: "scratch", status: "removed", startMs: 602_300, endMs: 602_500, error: null },
      { name: "db", what: "scratch", status: "removed", startMs: 602_500, endMs: 605_400, error: null },
    ],
    environment: {
      lifeboat: "0.1.0",
      node: "v20.19.0",
      platform: "linux",
      arch: "x64",
      host: "drill-runner-1",
      cpus: 8,
      tools: { pg_restore: "15.8", psql: "15.8", tar: "1.34", zstd: "1.5.4", age: "1.1.1" },
    },
  };
}

/** A passed step unless told otherwise; its one attempt spans the step. */
function step(fields: Partial<StepReport> & Pick<StepReport, "index" | "name" | "kind" | "startMs" | "endMs">): StepReport {
  const { startMs, endMs } = fields;
  const ran = startMs !== null && endMs !== null;
  return {
    critical: true,
    onError: "fail",
    status: "passed",
    durationMs: ran ? endMs - startMs : null,
    attempts: ran ? [{ startMs, endMs, ok: fields.status !== "failed", ...(fields.error ? { error: fields.error } : {}) }] : [],
    error: null,
    note: null,
    output: null,
    phases: [],
    probe: null,
    ...fields,
  };
}

/** The sample with some steps changed, by name. */
export function withSteps(report: DrillReport, changes: Record<string, Partial<StepReport>>): DrillReport {
  return { ...report, steps: report.steps.map((s) => ({ ...s, ...changes[s.name] })) };
}

/** Teardown starting right after `lastStepEndMs`, and the drill's end with it. */
function endingAfter(lastStepEndMs: number): Pick<DrillReport, "teardown" | "durationMs" | "finishedAt"> {
  const start = lastStepEndMs + 200;
  return {
    teardown: [
      { name: "files", what: "scratch", status: "removed", startMs: start, endMs: start + 200, error: null },
      { name: "db", what: "scratch", status: "removed", startMs: start + 200, endMs: start + 3_100, error: null },
    ],
    durationMs: start + 3_100,
    finishedAt: new Date(Date.parse(T0) + start + 3_100).toISOString(),
  };
}

const notReached = (after: string): Partial<StepReport> => ({
  status: "not-run",
  startMs: null,
  endMs: null,
  durationMs: null,
  attempts: [],
  output: null,
  probe: null,
  note: `not reached: step "${after}" stopped the drill`,
});

/** A consistent report for each verdict, built from the sample. */
export function drillWithVerdict(verdict: Verdict): DrillReport {
  const base = sampleReport();
  const allPassed = withSteps(base, {
    "smoke-report": { status: "passed", error: null, attempts: [{ startMs: 482_100, endMs: 602_100, ok: true }], output: "report built: 1200 orders\n" },
    "confirm-dashboard": { status: "passed", startMs: 602_150, endMs: 602_250, durationMs: 100, attempts: [{ startMs: 602_150, endMs: 602_250, ok: true }], note: "confirmed by the operator" },
  });
  switch (verdict) {
    case "partial":
      return base;
    case "passed":
      return { ...allPassed, verdict, summary: "every step passed; RTO 10m 2s and RPO 1h 6m within targets", rto: { ...base.rto, actualMs: 602_250, reachedAt: "confirm-dashboard" } };
    case "missed-targets":
      return {
        ...allPassed,
        verdict,
        summary: "every step passed, but RTO 10m 2s missed the target 5m and RPO 1h 6m missed the target 1h",
        rto: { targetMs: 300_000, actualMs: 602_250, met: false, reachedAt: "confirm-dashboard" },
        rpo: { ...base.rpo, targetMs: 3_600_000, met: false },
      };
    case "failed":
      return {
        ...withSteps(base, {
          "check-orders": {
            status: "failed",
            note: null,
            output: " count\n-------\n     0\n(1 row)\n",
            error: { code: "E_VERIFY", message: "expected at least 1000 rows in orders, found 0", hint: "the dump may be empty: list the backup's contents with lifeboat verify --id" },
            attempts: [{ startMs: 478_400, endMs: 481_200, ok: false }],
          },
          "probe-newest-order": notReached("check-orders"),
          "smoke-report": notReached("check-orders"),
          "confirm-dashboard": notReached("check-orders"),
        }),
        ...endingAfter(481_200),
        verdict,
        summary: 'step "check-orders" failed: expected at least 1000 rows in orders, found 0',
        rto: { ...base.rto, actualMs: null, met: null, reachedAt: null },
        rpo: { ...base.rpo, actualMs: 3_912_000, fromProbeMs: null, countedFrom: "metadata" },
      };
    case "interrupted":
      return {
        ...withSteps(base, {
          "restore-uploads": {
            status: "interrupted",
            endMs: 430_000,
            durationMs: 27_400,
            attempts: [{ startMs: 402_600, endMs: 430_000, ok: false }],
            phases: [
              { phase: "fetch", startMs: 402_700, endMs: 430_000 },
              { phase: "decode", startMs: 402_800, endMs: 430_000 },
              { phase: "restore", startMs: 402_900, endMs: 430_000 },
            ],
            error: { code: "E_INTERRUPTED", message: "interrupted by SIGINT" },
          },
          ...Object.fromEntries(["wait-ready", "check-orders", "probe-newest-order", "smoke-report", "confirm-dashboard"].map((name) => [name, notReached("restore-uploads")])),
        }),
        ...endingAfter(430_000),
        verdict,
        summary: "interrupted by SIGINT during step \"restore-uploads\"; scratch torn down",
        backups: base.backups.slice(0, 1),
        rto: { ...base.rto, actualMs: null, met: null, reachedAt: null },
        rpo: { ...base.rpo, actualMs: 3_912_000, fromProbeMs: null, countedFrom: "metadata" },
      };
  }
}

/** One past drill of the plan for the history: started at `t0`, with these actuals. */
export function pastDrill(t0: string, rtoActualMs: number | null, rpoActualMs: number, verdict: Verdict = "passed"): DrillReport {
  const base = sampleReport();
  return {
    ...base,
    drillId: `${t0.replace(/[-:]|\.\d+/g, "")}-7e01`,
    t0,
    verdict,
    rto: { ...base.rto, actualMs: rtoActualMs, met: rtoActualMs === null ? null : rtoActualMs <= base.rto.targetMs! },
    rpo: { ...base.rpo, actualMs: rpoActualMs, met: rpoActualMs <= base.rpo.targetMs! },
  };
}
