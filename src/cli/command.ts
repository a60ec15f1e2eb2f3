import type { ParseArgsConfig } from "node:util";
import type { CommandContext } from "./context.js";

/** One CLI command: its usage line, its own options, and how it runs. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig["options"]>;
  /**
   * The command treats SIGINT/SIGTERM as a normal way to stop (the daemon):
   * its own exit code stands instead of 130.
   */
  stopsOnSignal?: boolean;
  /** Whether the command needs a config file (schema and keygen do not). */
  run(ctx: CommandContext, args: { values: Record<string, unknown>; positionals: string[] }): Promise<number>;
}
