import { runTool } from "../exec/spawn.js";
import { LifeboatError } from "../model/errors.js";
import type { CommandScratch } from "../model/scratch.js";
import type { ScratchConnection, ScratchKind, ScratchResource } from "./scratch.js";

/**
 * `command`: the user's own `up` and `down` argv commands (Docker, Kubernetes,
 * Terraform…). `up` receives LIFEBOAT_SCRATCH_ID (tag resources with it) and
 * LIFEBOAT_SCRATCH_DIR, and prints one JSON object of string values: the
 * connection details (`url`, `directory`, anything else). `down` receives the
 * same two variables plus each detail as LIFEBOAT_SCRATCH_<KEY>. Details whose
 * key mentions a password, secret or token are never written to disk, so a
 * `down` run by the sweep after a crash does not get them.
 */
export const commandScratch: ScratchKind<CommandScratch> = {
  type: "command",

  describe(spec) {
    return `command: ${spec.up[0]}`;
  },

  async provision(spec, context) {
    const base = { LIFEBOAT_SCRATCH_ID: `${context.runId}-${context.name}`, LIFEBOAT_SCRATCH_DIR: context.dir };
    // Recorded before `up` runs: if we die while it runs, the sweep still calls `down`.
    await context.record({ down: JSON.stringify(spec.down), details: "{}" });
    const result = await runTool({
      argv: spec.up,
      env: { ...spec.env, ...base },
      context: `starting scratch environment "${context.name}"`,
      ...(context.signal ? { signal: context.signal } : {}),
    });
    const connection = parseDetails(result.stdout, spec.up[0] ?? "up", context.name);
    await context.record({ down: JSON.stringify(spec.down), details: JSON.stringify(withoutSecrets(connection)) });
    return { connection, connectHint: connection.url ?? connection.directory };
  },

  async remove(resource, context) {
    const down = context.spec?.down ?? parseArgv(resource.down);
    if (!down) return; // `up` never got recorded: nothing was created
    const details = { ...parseRecorded(resource.details) };
    const env: Record<string, string> = { ...context.spec?.env, LIFEBOAT_SCRATCH_ID: context.dir.split("/").pop() ?? "", LIFEBOAT_SCRATCH_DIR: context.dir };
    for (const [key, value] of Object.entries(details)) env[`LIFEBOAT_SCRATCH_${key.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`] = value;
    await runTool({ argv: down, env, context: `removing scratch environment "${env.LIFEBOAT_SCRATCH_ID}"` });
  },
};

function parseDetails(stdout: string, tool: string, name: string): ScratchConnection {
  const fail = (why: string) =>
    new LifeboatError("SCRATCH_UP_OUTPUT", `${tool} (scratch "${name}" up) ${why}`, {
      kind: "run",
      hint: 'print one JSON object of strings, e.g. {"url": "postgresql://…"}',
    });
  let value: unknown;
  try {
    value = JSON.parse(stdout.trim() || "null");
  } catch {
    throw fail("did not print JSON on stdout");
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) throw fail("must print a JSON object");
  const details: ScratchConnection = {};
  for (const [key, v] of Object.entries(value)) {
    if (!/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(key)) throw fail(`printed an invalid key "${key.slice(0, 64)}"`);
    if (typeof v !== "string") throw fail(`printed a non-string value for "${key}"`);
    details[key] = v;
  }
  return details;
}

function withoutSecrets(details: ScratchConnection): ScratchConnection {
  return Object.fromEntries(Object.entries(details).filter(([key]) => !/pass|secret|token/i.test(key)).map(([k, v]) => [k, v.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*):[^/@]*@/i, "$1@")]));
}

function parseArgv(value: ScratchResource[string] | undefined): string[] | undefined {
  if (typeof value !== "string") return undefined;
  const argv = JSON.parse(value) as unknown;
  return Array.isArray(argv) && argv.length > 0 && argv.every((a) => typeof a === "string") ? argv : undefined;
}

function parseRecorded(value: ScratchResource[string] | undefined): ScratchConnection {
  if (typeof value !== "string") return {};
  try {
    return JSON.parse(value) as ScratchConnection;
  } catch {
    return {};
  }
}
