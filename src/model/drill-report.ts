import { z } from "zod";

/**
 * `report.json`: the canonical record of one drill, stored under
 * `<prefix>drills/<plan>/<drill-id>/` and rendered into Markdown, HTML and
 * JUnit. Versioned: readers accept `version: 1` only.
 *
 * Times on the timeline (`startMs`, `endMs`) are milliseconds after t0 on a
 * monotonic clock; `t0` and `finishedAt` are wall-clock ISO 8601 times.
 * Every duration is in milliseconds and named `…Ms`.
 */
export const DRILL_REPORT_VERSION = 1;

const ms = z.number().nonnegative();
const iso = z.iso.datetime({ offset: true });

export const ProblemSchema = z.object({
  code: z.string(),
  message: z.string(),
  hint: z.string().optional(),
});

export const VerdictSchema = z.enum(["passed", "failed", "missed-targets", "partial", "interrupted"]);

export const StepStatusSchema = z.enum([
  /** did what it should */
  "passed",
  "failed",
  /** not run on purpose: a manual step without a terminal (skipped by policy) */
  "skipped",
  /** not reached: an earlier step stopped the drill, or provisioning failed */
  "not-run",
  /** stopped by SIGINT/SIGTERM */
  "interrupted",
]);

export const PhaseNameSchema = z.enum(["fetch", "decode", "restore"]);

export const StepReportSchema = z.object({
  index: z.number().int().nonnegative(),
  name: z.string(),
  kind: z.enum(["restore", "verify", "rpo-probe", "run", "manual"]),
  critical: z.boolean(),
  onError: z.enum(["fail", "continue"]),
  status: StepStatusSchema,
  startMs: ms.nullable(),
  endMs: ms.nullable(),
  /** From the first attempt's start to the last one's end, pauses between retries included. */
  durationMs: ms.nullable(),
  attempts: z.array(z.object({ startMs: ms, endMs: ms, ok: z.boolean(), error: ProblemSchema.optional() })),
  error: ProblemSchema.nullable(),
  /** Why a step was skipped or not run, or what a check observed ("returned 1200 rows"). */
  note: z.string().nullable(),
  /** The end of the step's output (stdout and stderr), redacted. */
  output: z.string().nullable(),
  /** Restore steps: when each stage of the stream was active. In a stream they overlap. */
  phases: z.array(z.object({ phase: PhaseNameSchema, startMs: ms, endMs: ms })),
  /** rpo-probe steps: the newest timestamp found in the restored data. */
  probe: z.object({ value: iso, rpoMs: z.number() }).nullable(),
});

export const BackupUsedSchema = z.object({
  step: z.string(),
  job: z.string(),
  id: z.string(),
  consistentAt: iso,
  /** t0 − consistentAt: the recovery point's age when the drill started. */
  ageMs: z.number(),
  sizeBytes: z.number().int().nonnegative(),
  codec: z.array(z.string()),
  objects: z.array(z.object({ key: z.string(), sizeBytes: z.number().int().nonnegative(), sha256: z.string() })),
  /** Newer backups tried first and rejected (integrity check failed), newest first. */
  fallbackFrom: z.array(z.object({ id: z.string(), consistentAt: iso.nullable(), code: z.string(), message: z.string() })),
});

export const DrillReportSchema = z.object({
  version: z.literal(DRILL_REPORT_VERSION),
  drillId: z.string(),
  plan: z.object({ name: z.string(), file: z.string(), sha256: z.string() }),
  verdict: VerdictSchema,
  /** One sentence: why the verdict is what it is. */
  summary: z.string(),
  t0: iso,
  finishedAt: iso,
  /** t0 → the end of teardown. */
  durationMs: ms,
  recoveryPoint: z.object({
    mode: z.enum(["latest", "id", "at", "random-within"]),
    at: iso.nullable(),
    withinMs: ms.nullable(),
  }),
  rto: z.object({
    targetMs: ms.nullable(),
    /** t0 → the end of the last passing step; null when recovery was not reached. */
    actualMs: ms.nullable(),
    met: z.boolean().nullable(),
    /** The step whose end is the RTO. */
    reachedAt: z.string().nullable(),
  }),
  rpo: z.object({
    targetMs: ms.nullable(),
    /** The worse of the two readings. RPO readings are plain numbers: data dated after t0 (clock skew) reads negative. */
    actualMs: z.number().nullable(),
    met: z.boolean().nullable(),
    /** t0 − the oldest consistentAt among the backups restored. */
    fromMetadataMs: z.number().nullable(),
    /** t0 − the oldest timestamp the rpo-probes found. */
    fromProbeMs: z.number().nullable(),
    countedFrom: z.enum(["metadata", "probe"]).nullable(),
  }),
  /**
   * Totals per phase: provision (scratch environments), fetch, decode (decrypt
   * + decompress) and restore (of restore steps), verify (verify and rpo-probe
   * steps). fetch, decode and restore overlap in a stream, so they do not add up.
   */
  phases: z.object({ provisionMs: ms, fetchMs: ms, decodeMs: ms, restoreMs: ms, verifyMs: ms }),
  provisioning: z.array(
    z.object({
      scratch: z.string(),
      type: z.string(),
      status: z.enum(["ready", "failed", "not-run"]),
      startMs: ms.nullable(),
      endMs: ms.nullable(),
      error: ProblemSchema.nullable(),
      versions: z.record(z.string(), z.string()),
    }),
  ),
  steps: z.array(StepReportSchema),
  backups: z.array(BackupUsedSchema),
  /** Runs after the steps, in reverse order of creation; not part of the RTO. */
  teardown: z.array(
    z.object({
      name: z.string(),
      what: z.enum(["scratch", "process"]),
      status: z.enum(["removed", "failed"]),
      startMs: ms,
      endMs: ms,
      error: ProblemSchema.nullable(),
    }),
  ),
  environment: z.object({
    lifeboat: z.string(),
    node: z.string(),
    platform: z.string(),
    arch: z.string(),
    host: z.string(),
    cpus: z.number().int(),
    /** Versions of the tools and servers involved (pg_restore, the scratch server…). */
    tools: z.record(z.string(), z.string()),
  }),
});

export type DrillReport = z.infer<typeof DrillReportSchema>;
export type StepReport = z.infer<typeof StepReportSchema>;
export type BackupUsed = z.infer<typeof BackupUsedSchema>;
export type Verdict = z.infer<typeof VerdictSchema>;
export type StepStatus = z.infer<typeof StepStatusSchema>;
export type Problem = z.infer<typeof ProblemSchema>;

/** The JSON Schema of report.json (`lifeboat schema --report`). */
export function drillReportJsonSchema(): unknown {
  return z.toJSONSchema(DrillReportSchema, { io: "output" });
}
