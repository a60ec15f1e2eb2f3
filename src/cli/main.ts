#!/usr/bin/env node
import { parseArgs } from "node:util";
import { LifeboatError } from "../model/errors.js";
import { LIFEBOAT_VERSION } from "../version.js";
import type { Command } from "./command.js";
import { backupCommand } from "./commands/backup.js";
import { daemonCommand } from "./commands/daemon.js";
import { runCommand } from "./commands/run.js";
import { drillCommand } from "./commands/drill.js";
import { keygenCommand } from "./commands/keygen.js";
import { listCommand } from "./commands/list.js";
import { notifyCommand } from "./commands/notify.js";
import { probeCommand } from "./commands/probe.js";
import { pruneCommand } from "./commands/prune.js";
import { reportCommand } from "./commands/report.js";
import { restoreCommand } from "./commands/restore.js";
import { schemaCommand } from "./commands/schema.js";
import { scratchCommand } from "./commands/scratch.js";
import { statusCommand } from "./commands/status.js";
import { validateCommand } from "./commands/validate.js";
import { verifyCommand } from "./commands/verify.js";
import { createContext } from "./context.js";
import { EXIT, createOutput, exitCodeFor, reportError } from "./output.js";

const COMMANDS: Command[] = [validateCommand, backupCommand, listCommand, statusCommand, verifyCommand, pruneCommand, restoreCommand, drillCommand, reportCommand, scratchCommand, daemonCommand, runCommand, probeCommand, notifyCommand, schemaCommand, keygenCommand];

const GLOBAL_OPTIONS = {
  config: { type: "string", short: "c" },
  json: { type: "boolean" },
  verbose: { type: "boolean", short: "v" },
  help: { type: "boolean", short: "h" },
} as const;

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `lifeboat ${LIFEBOAT_VERSION}: streaming, encrypted, verified backups to S3-compatible storage`,
    "",
    "usage: lifeboat [-c FILE] [--json] [--verbose] COMMAND [ARGS]",
    "",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "config: -c FILE, else $LIFEBOAT_CONFIG, else ./lifeboat.yaml",
    "exit codes: 0 ok, 1 drill failed or missed its targets, verification failed, 2 invalid config or usage, 3 run failed, 130 interrupted",
  ].join("\n");
}

async function main(argv: string[]): Promise<number> {
  const commandIndex = findCommand(argv);
  const name = commandIndex === undefined ? undefined : argv[commandIndex];
  const command = COMMANDS.find((c) => c.name === name);
  const bare = createOutput({ json: argv.includes("--json"), verbose: argv.includes("--verbose") });

  if (argv.includes("--version")) {
    bare.out(LIFEBOAT_VERSION);
    return EXIT.ok;
  }
  if (!command) {
    if (name === undefined || name === "help" || argv.includes("--help") || argv.includes("-h")) {
      bare.out(usage());
      return name === undefined && !argv.includes("--help") && !argv.includes("-h") ? EXIT.usage : EXIT.ok;
    }
    bare.err(`error: unknown command "${name}"; expected one of: ${COMMANDS.map((c) => c.name).join(", ")}`);
    return EXIT.usage;
  }

  let parsed;
  try {
    const rest = argv.filter((_, i) => i !== commandIndex);
    parsed = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...command.options }, allowPositionals: true, strict: true });
  } catch (error) {
    bare.err(`error: ${(error as Error).message.replace(/\.$/, "")}\nusage: ${command.usage}`);
    return EXIT.usage;
  }
  const values = parsed.values as Record<string, unknown>;
  if (values.help) {
    bare.out(`usage: ${command.usage}\n\n${command.summary}`);
    return EXIT.ok;
  }
  const options = { config: values.config as string | undefined, json: values.json === true, verbose: values.verbose === true };
  const output = createOutput(options);

  // SIGINT/SIGTERM abort the run: uploads are aborted, staging removed, exit 130.
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts++;
    if (interrupts > 1) process.exit(EXIT.interrupted);
    output.err(command.stopsOnSignal ? `${signal}: stopping (again to quit at once)` : `\n${signal}: stopping (press again to quit at once)`);
    controller.abort(new LifeboatError("INTERRUPTED", `interrupted by ${signal}`, { kind: "interrupted" }));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  try {
    const ctx = createContext(options, output, controller.signal);
    const code = await command.run(ctx, { values, positionals: parsed.positionals });
    return controller.signal.aborted && !command.stopsOnSignal ? EXIT.interrupted : code;
  } catch (error) {
    reportError(output, error);
    return controller.signal.aborted && !command.stopsOnSignal ? EXIT.interrupted : exitCodeFor(error);
  }
}

/** The index of the command word: the first argument that is not a global option or its value. */
function findCommand(argv: string[]): number | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-c" || arg === "--config") {
      i++;
      continue;
    }
    if (arg.startsWith("-")) continue;
    return i;
  }
  return undefined;
}

let finished = false;
// If the event loop empties while the command is still pending, a stream or a
// tool never completed: that is a bug, and it must never look like success.
process.on("beforeExit", () => {
  if (finished) return;
  finished = true;
  process.stderr.write("internal error: lifeboat stopped before the command finished (a stream or tool never completed)\n");
  process.exitCode = EXIT.run;
});

main(process.argv.slice(2)).then(
  (code) => {
    finished = true;
    process.exitCode = code;
  },
  (error: unknown) => {
    finished = true;
    process.stderr.write(`internal error: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exitCode = EXIT.run;
  },
);
