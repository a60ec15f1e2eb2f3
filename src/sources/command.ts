import type { Readable } from "node:stream";
import { feedTool, startTool } from "../exec/spawn.js";
import { LifeboatError } from "../model/errors.js";
import type { CommandSource } from "../model/job.js";
import type { SourceKind } from "./source.js";

/**
 * `command`: the stdout of an argv command is the backup; restore pipes the
 * data into another argv command's stdin. The restore target given with
 * `--to` reaches that command as LIFEBOAT_RESTORE_TARGET. No shell is involved.
 */
export const commandSource: SourceKind<CommandSource> = {
  type: "command",

  parts() {
    return [{ role: "data", format: "stream" }];
  },

  describe(spec) {
    return `command: ${spec.command[0]}`;
  },

  async toolVersion(spec) {
    return spec.command[0];
  },

  async openDump(spec, context) {
    const startedAt = context.now?.() ?? new Date();
    const tool = startTool({
      argv: spec.command,
      env: spec.env,
      context: `backing up job "${context.job}"`,
      stdout: "pipe",
      ...(context.signal ? { signal: context.signal } : {}),
    });
    // Command output always passes through Node: its bytes are counted there
    // (an empty dump must be noticed), so `through` is not used.
    return {
      stream: tool.stdout!,
      piped: false,
      consistentAt: startedAt,
      done: tool.done.then(() => ({ status: "succeeded" as const, warnings: [] })),
    };
  },

  async prepareRestore(spec, target, context) {
    const argv = spec.restore;
    if (!argv) {
      throw new LifeboatError("RESTORE_NO_COMMAND", `job "${context.job}" has no restore command (source.restore)`, {
        kind: "usage",
        hint: "add source.restore: [program, args…] that reads the backup on stdin",
      });
    }
    return {
      description: `command ${argv[0]}`,
      async write(stream: Readable) {
        await feedTool(stream, {
          argv,
          env: { ...spec.env, ...(target.location ? { LIFEBOAT_RESTORE_TARGET: target.location } : {}) },
          context: `restoring job "${context.job}"`,
          ...(context.signal ? { signal: context.signal } : {}),
        });
      },
      async commit() {},
      async discard() {},
    };
  },
};
