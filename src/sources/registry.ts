import { LifeboatError } from "../model/errors.js";
import type { SourceSpec } from "../model/job.js";
import { commandSource } from "./command.js";
import { filesSource } from "./files.js";
import { mariadbSource } from "./mariadb.js";
import { postgresSource } from "./postgres.js";
import type { SourceKind } from "./source.js";

/** Every source kind, filled in one place. */
const SOURCE_KINDS: { [K in SourceSpec["type"]]: SourceKind<Extract<SourceSpec, { type: K }>> } = {
  files: filesSource,
  command: commandSource,
  postgres: postgresSource,
  mariadb: mariadbSource,
};

export function sourceKind<S extends SourceSpec>(spec: S): SourceKind<S> {
  const kind = SOURCE_KINDS[spec.type as SourceSpec["type"]];
  if (!kind) {
    throw new LifeboatError("SOURCE_UNKNOWN_KIND", `unknown source type "${String(spec.type)}"; expected one of: ${Object.keys(SOURCE_KINDS).join(", ")}`, {
      kind: "usage",
    });
  }
  return kind as unknown as SourceKind<S>;
}
