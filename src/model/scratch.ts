import type { DatabaseConnection } from "./job.js";

/**
 * Scratch environments: created for one restore (or drill), always torn down
 * after it unless the user keeps them. Built by `config/`, run by `scratch/`.
 */
export interface DirectoryScratch {
  type: "directory";
}

export interface PostgresScratch {
  type: "postgres";
  /**
   * An existing server to create a uniquely named scratch database on. When
   * absent, an ephemeral cluster is created (initdb) on a free loopback port.
   */
  server: DatabaseConnection | undefined;
  /** The unprivileged user an ephemeral cluster runs as when Lifeboat runs as root. */
  runAs: string;
  /** The folder holding initdb, pg_ctl and psql (default: PATH, then pg_config --bindir). */
  bin: string | undefined;
}

export interface MariadbScratch {
  type: "mariadb";
  /** The unprivileged user the ephemeral server runs as when Lifeboat runs as root. */
  runAs: string;
  /** The folder holding mariadb-install-db, mariadbd and mariadb (default: PATH). */
  bin: string | undefined;
}

export interface CommandScratch {
  type: "command";
  /** Creates the environment and prints its connection details as one JSON object on stdout. */
  up: string[];
  /** Removes it; receives the details from `up` as LIFEBOAT_SCRATCH_* variables. */
  down: string[];
  env: Record<string, string>;
}

export type ScratchSpec = DirectoryScratch | PostgresScratch | MariadbScratch | CommandScratch;

/** A named scratch environment: from config (`scratch:`), a plan, or `--to scratch:KIND`. */
export interface NamedScratch {
  name: string;
  spec: ScratchSpec;
}

/** Which scratch kinds can hold which source kinds (`command` scratch holds whatever it reports a location for). */
export const SCRATCH_FITS: Record<"files" | "command" | "postgres" | "mariadb", ReadonlyArray<ScratchSpec["type"]>> = {
  files: ["directory", "command"],
  postgres: ["postgres", "command"],
  mariadb: ["mariadb", "command"],
  command: ["directory", "postgres", "mariadb", "command"],
};

/** The keys `${scratch.NAME.KEY}` may use for each kind (a command kind's keys are whatever its `up` prints). */
export const SCRATCH_CONNECTION_KEYS: Record<Exclude<ScratchSpec["type"], "command">, readonly string[]> = {
  directory: ["directory"],
  postgres: ["url", "host", "port", "user", "database", "socket", "password"],
  mariadb: ["url", "host", "port", "user", "database", "socket"],
};
