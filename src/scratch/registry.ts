import { LifeboatError } from "../model/errors.js";
import type { ScratchSpec } from "../model/scratch.js";
import { commandScratch } from "./command.js";
import { directoryScratch } from "./directory.js";
import { mariadbScratch } from "./mariadb.js";
import { postgresScratch } from "./postgres.js";
import type { ScratchKind } from "./scratch.js";

/** Every scratch kind, filled in one place. */
const SCRATCH_KINDS: { [K in ScratchSpec["type"]]: ScratchKind<Extract<ScratchSpec, { type: K }>> } = {
  directory: directoryScratch,
  postgres: postgresScratch,
  mariadb: mariadbScratch,
  command: commandScratch,
};

export const SCRATCH_TYPES = Object.keys(SCRATCH_KINDS) as Array<ScratchSpec["type"]>;

export function scratchKind<S extends ScratchSpec>(spec: Pick<S, "type">): ScratchKind<S> {
  const kind = SCRATCH_KINDS[spec.type as ScratchSpec["type"]];
  if (!kind) {
    throw new LifeboatError("SCRATCH_UNKNOWN_KIND", `unknown scratch type "${String(spec.type)}"; expected one of: ${SCRATCH_TYPES.join(", ")}`, {
      kind: "usage",
    });
  }
  return kind as unknown as ScratchKind<S>;
}
