import { promises as fs } from "node:fs";
import { join } from "node:path";
import type { DirectoryScratch } from "../model/scratch.js";
import type { ScratchKind } from "./scratch.js";

/** `directory`: a fresh empty folder inside the environment's own folder. */
export const directoryScratch: ScratchKind<DirectoryScratch> = {
  type: "directory",

  describe() {
    return "a fresh temporary folder";
  },

  async provision(_spec, context) {
    const directory = join(context.dir, "files");
    await fs.mkdir(directory, { mode: 0o700 });
    return { connection: { directory }, connectHint: `cd ${directory}` };
  },

  // The folder is the environment's own and goes with it.
  async remove() {},
};
