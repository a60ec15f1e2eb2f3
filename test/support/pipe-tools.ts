import { spawn } from "node:child_process";
import { createReadStream, createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";

/**
 * Runs the standard tools the way a person restoring by hand would, without
 * Lifeboat and without a shell: `argv[0] | argv[1] | …`, the first reading
 * the file `input`, the last writing to the file `output` (or nowhere).
 */
export async function pipeTools(input: string, stages: string[][], output?: string): Promise<void> {
  const children = stages.map(([cmd, ...args]) => spawn(cmd!, args, { stdio: ["pipe", "pipe", "inherit"] }));
  const exits = children.map((c, i) => new Promise<void>((resolve, reject) => c.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${stages[i]![0]} exited with ${code}`))))));
  const flows: Promise<void>[] = [pipeline(createReadStream(input), children[0]!.stdin)];
  for (let i = 0; i + 1 < children.length; i++) flows.push(pipeline(children[i]!.stdout, children[i + 1]!.stdin));
  const last = children[children.length - 1]!.stdout;
  flows.push(output ? pipeline(last, createWriteStream(output)) : new Promise((r) => last.on("end", () => r()).resume()));
  const labelled = flows.map((f, i) => f.catch((e: Error) => Promise.reject(new Error(`stage ${i} of ${stages.map((s) => s[0]).join(" | ")}: ${e.message}`))));
  await Promise.all([...labelled, ...exits]);
}

