import { z } from "zod";
import { argv, duration, name, nonEmpty, ScratchSchema } from "./schema.js";

/**
 * The shape of a restore plan (`plans/*.yaml`), after `${env:…}`/`${file:…}`
 * references are resolved. `${scratch.NAME.KEY}` stays as text here; the
 * loader parses it into templates. Strict objects: unknown keys are errors.
 *
 * A step is a mapping with its name, exactly one action key (`restore`,
 * `verify`, `rpo-probe`, `run`, `manual`) and its options; the options may
 * also be written inside the action (`run: { command: […], timeout: 2m }`).
 */

const time = z
  .string()
  .refine((v) => /^\d{4}-\d{2}-\d{2}T/.test(v) && !Number.isNaN(new Date(v).getTime()), {
    message: "must be an ISO 8601 time like 2026-11-21T06:00:00Z",
  })
  .describe("an ISO 8601 time, e.g. 2026-11-21T06:00:00Z");

const pick = z
  .strictObject({ "random-within": duration.describe("a random recovery point no older than this, like AWS Backup restore testing") })
  .describe("choose the recovery point at random");

const env = z.record(z.string(), z.string()).describe("extra environment; values may use ${scratch.NAME.KEY}, ${env:NAME}, ${file:PATH}");

export const STEP_OPTION_KEYS = ["timeout", "retries", "retryDelay", "onError", "critical"] as const;

const stepOptions = {
  timeout: duration.optional().describe("limit per attempt (default: none for restore and manual steps, 10m for the others)"),
  retries: z.number().int().min(0).max(100).optional().describe("extra attempts after a failure (for readiness checks)"),
  retryDelay: duration.optional().describe("pause between attempts (default 2s)"),
  onError: z.enum(["fail", "continue"]).optional().describe("after a failure: stop the drill (fail) or go on (continue); default fail, continue for optional steps"),
  critical: z.boolean().optional().describe("false: a failure makes the drill partial instead of failed (default true)"),
};

const RestoreActionSchema = z
  .strictObject({
    job: name.describe("the backup job to restore"),
    into: name.describe("the scratch environment to restore into"),
    id: nonEmpty.optional().describe("this backup id"),
    at: time.optional().describe("the newest backup consistent at or before this time"),
    pick: pick.optional(),
    fallback: z.number().int().min(0).max(20).optional().describe("older backups to try when one fails its integrity check (default 3)"),
    ...stepOptions,
  })
  .describe("restore a job's backup into a scratch environment");

const VerifyActionSchema = z
  .strictObject({
    sql: nonEmpty.optional().describe("a query that must return true (or see rows/equals)"),
    on: name.optional().describe("the scratch environment the check looks at"),
    rows: z
      .strictObject({ min: z.number().int().min(0).optional(), max: z.number().int().min(0).optional() })
      .optional()
      .describe("the query must return a row count in this range"),
    equals: z.union([z.string(), z.number(), z.boolean()]).optional().describe("the query's single value must equal this"),
    command: argv.optional(),
    env: env.optional(),
    cwd: nonEmpty.optional().describe("working folder of the command (relative to the plan file)"),
    stdoutContains: z.string().optional().describe("the command's output must contain this"),
    http: nonEmpty.optional().describe("URL that must answer (may use ${scratch.NAME.KEY})"),
    method: z.enum(["GET", "HEAD", "POST"]).optional(),
    status: z.union([z.number().int().min(100).max(599), z.array(z.number().int().min(100).max(599)).min(1)]).optional().describe("accepted status codes (default 200)"),
    bodyContains: z.string().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    files: z
      .strictObject({
        exist: z.array(nonEmpty).optional().describe("paths (relative to the scratch folder) that must exist"),
        sha256: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/i, "must be a SHA-256 in hex")).optional().describe("path → expected SHA-256"),
      })
      .optional(),
    ...stepOptions,
  })
  .describe("a check on the restored data: sql, command, http or files");

const ProbeActionSchema = z
  .strictObject({
    sql: nonEmpty.optional().describe("a query returning the newest timestamp in the restored data"),
    on: name.optional(),
    command: argv.optional().describe("a command printing the newest timestamp as its last line"),
    env: env.optional(),
    cwd: nonEmpty.optional(),
    ...stepOptions,
  })
  .describe("measures the RPO from the restored data itself");

const RunActionSchema = z
  .strictObject({
    command: argv,
    env: env.optional(),
    cwd: nonEmpty.optional(),
    background: z.boolean().optional().describe("keep it running (e.g. the application) until teardown"),
    ...stepOptions,
  })
  .describe("run a command, e.g. start the application against the restored database");

const ManualActionSchema = z.union([
  nonEmpty.describe("what a person has to do"),
  z.strictObject({
    instructions: nonEmpty,
    nonInteractive: z.enum(["skip", "wait", "fail"]).optional().describe("without a terminal: skip (default), wait for `lifeboat drill --ack`, or fail"),
    ...stepOptions,
  }),
]);

export const StepSchema = z.strictObject({
  name: nonEmpty.max(120).describe("unique within the plan; shown in reports"),
  restore: RestoreActionSchema.optional(),
  verify: VerifyActionSchema.optional(),
  "rpo-probe": ProbeActionSchema.optional(),
  run: RunActionSchema.optional(),
  manual: ManualActionSchema.optional(),
  ...stepOptions,
});

export const ACTION_KEYS = ["restore", "verify", "rpo-probe", "run", "manual"] as const;

export const PlanSchema = z
  .strictObject({
    name: name.describe("the plan's name: reports are stored under drills/<name>/"),
    targets: z
      .strictObject({ rto: duration.optional().describe("recovery time objective"), rpo: duration.optional().describe("recovery point objective") })
      .default({}),
    at: time.optional().describe("one recovery point shared by every restore step"),
    pick: pick.optional(),
    storage: name.optional().describe("where reports are stored (default: the storage of the first restored job)"),
    manual: z.enum(["skip", "wait", "fail"]).default("skip").describe("what manual steps do without a terminal"),
    scratch: z.record(name, ScratchSchema).default({}).describe("scratch environments created for the drill and always torn down"),
    steps: z.array(StepSchema).min(1, "needs at least one step"),
  })
  .describe("a Lifeboat restore plan");

export type RawPlan = z.output<typeof PlanSchema>;
export type RawStep = z.output<typeof StepSchema>;

export function planJsonSchema(): unknown {
  return z.toJSONSchema(PlanSchema, { io: "input", unrepresentable: "any" });
}
