import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { runTool, startTool, startToolChain, toolInput, type RunningTool, type ToolExit } from "../exec/spawn.js";
import { LifeboatError } from "../model/errors.js";
import { settleAll } from "../model/settle.js";
import type { FilesSource } from "../model/job.js";
import type { SourceKind } from "./source.js";
import { createTarGuard } from "./tar-guard.js";

/**
 * `files`: one or more paths archived by GNU tar (POSIX/pax format), each
 * stored under its base name, so `paths: [/srv/uploads]` restores to
 * `<target>/uploads`. Restore streams through the tar guard (no entry may
 * escape the target) into `tar -x` in a staging folder next to the target,
 * which is moved into place only after the stored bytes were verified.
 */
let tarVersion: Promise<string | undefined> | undefined;

export const filesSource: SourceKind<FilesSource> = {
  type: "files",

  parts() {
    return [{ role: "data", format: "tar" }];
  },

  describe(spec) {
    return `files: ${spec.paths.join(", ")}${spec.exclude.length ? ` (excluding ${spec.exclude.join(", ")})` : ""}`;
  },

  toolVersion() {
    tarVersion ??= runTool({ argv: ["tar", "--version"], context: "checking the tar version" }).then(
      (r) => r.stdout.split("\n")[0]?.trim(),
      () => undefined,
    );
    return tarVersion;
  },

  async openDump(spec, context, options) {
    for (const path of spec.paths) {
      const stat = await fs.lstat(path).catch(() => undefined);
      if (!stat) {
        throw new LifeboatError("SOURCE_MISSING", `path "${path}" does not exist (backing up job "${context.job}")`, { kind: "run" });
      }
    }
    const startedAt = context.now?.() ?? new Date();
    const tarSpec = {
      argv: argvWithMembers(spec),
      context: `backing up job "${context.job}"`,
      okExitCodes: [0, 1],
      ...(context.signal ? { signal: context.signal } : {}),
    };
    if (options.through) {
      // tar | zstd, process to process; tar --totals gives the byte count.
      const [producer, consumer] = startToolChain([tarSpec, options.through]) as [RunningTool, RunningTool];
      const done = settleAll(producer.done, [consumer.done]).then(async () => tarOutcome(await producer.done));
      done.catch(() => {});
      return { stream: consumer.stdout!, piped: true, consistentAt: startedAt, done };
    }
    const tool = startTool({ ...tarSpec, stdout: "pipe" });
    return { stream: tool.stdout!, piped: false, consistentAt: startedAt, done: tool.done.then(tarOutcome) };
  },

  async prepareRestore(_spec, target, context) {
    if (!target.location) {
      throw new LifeboatError("RESTORE_NO_TARGET", `restoring job "${context.job}" needs a target folder (--to DIR)`, { kind: "usage" });
    }
    const folder = resolve(target.location);
    const existing = await fs.readdir(folder).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return undefined;
      if (error.code === "ENOTDIR") {
        throw new LifeboatError("RESTORE_TARGET_INVALID", `restore target "${folder}" is not a folder`, { kind: "usage" });
      }
      throw error;
    });
    if (existing && existing.length > 0 && !target.force) {
      throw new LifeboatError("RESTORE_TARGET_NOT_EMPTY", `restore target "${folder}" is not empty`, {
        kind: "usage",
        hint: "restore into a new folder, or pass --force to replace what is there",
      });
    }
    await fs.mkdir(dirname(folder), { recursive: true });
    const staging = join(dirname(folder), `.${basename(folder)}.lifeboat-restore-${randomBytes(4).toString("hex")}`);
    let written = false;

    return {
      description: `folder ${folder}`,
      async write(stream: Readable) {
        await fs.mkdir(staging, { mode: 0o700 });
        written = true;
        const tar = startTool({
          argv: ["tar", "--extract", "--file=-", "--directory", staging, "--no-overwrite-dir", "--delay-directory-restore"],
          context: `restoring job "${context.job}" into ${folder}`,
          stdin: "pipe",
          stdout: "ignore",
          ...(context.signal ? { signal: context.signal } : {}),
        });
        const streamed = pipeline(stream, createTarGuard(), toolInput(tar.stdin!, { afterClose: "discard", toolName: "tar" }));
        const [piped, extracted] = await Promise.allSettled([streamed, tar.done]);
        // The guard's verdict (an unsafe entry) explains tar's exit; report it first.
        if (piped.status === "rejected" && piped.reason instanceof LifeboatError) throw piped.reason;
        if (extracted.status === "rejected") throw extracted.reason;
        if (piped.status === "rejected") throw piped.reason;
      },
      async commit() {
        if (!existing) {
          await fs.rename(staging, folder);
          return;
        }
        for (const name of await fs.readdir(staging)) {
          const destination = join(folder, name);
          await fs.rm(destination, { recursive: true, force: true });
          await fs.rename(join(staging, name), destination);
        }
        await fs.rm(staging, { recursive: true, force: true });
      },
      async discard() {
        if (written) await fs.rm(staging, { recursive: true, force: true });
      },
    };
  },
};

/** Status, warnings and byte count of a finished `tar --create --totals`. */
function tarOutcome({ exitCode, stderrTail }: ToolExit) {
  const lines = stderrTail.split("\n");
  const unreadable = lines.filter((l) => /Cannot (open|stat|read|readlink|savedir)/.test(l));
  const warnings = unreadable.map((l) => l.replace(/^tar: /, ""));
  if (exitCode === 1) warnings.push("some files changed while they were read");
  const totals = /^Total bytes written: (\d+)/m.exec(stderrTail);
  if (!totals) {
    throw new LifeboatError("SOURCE_TAR_TOTALS", "tar did not report how many bytes it wrote (GNU tar is required)", { kind: "run" });
  }
  return { status: unreadable.length > 0 ? ("partial" as const) : ("succeeded" as const), warnings, sizeBytes: Number(totals[1]) };
}

/** tar argv with each path as `-C <parent> <name>`, so it is stored under its base name. */
function argvWithMembers(spec: FilesSource): string[] {
  const argv = ["tar", "--create", "--file=-", "--format=posix", "--totals", "--ignore-failed-read", "--warning=no-file-changed"];
  for (const pattern of spec.exclude) argv.push(`--exclude=${pattern}`);
  for (const path of spec.paths) {
    const name = basename(path);
    // A leading "-" would be read as an option; "./" keeps it a member name.
    argv.push("-C", dirname(path), name.startsWith("-") ? `./${name}` : name);
  }
  return argv;
}
