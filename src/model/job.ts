/**
 * A backup job as the engines see it: validated, references resolved, paths
 * absolute. Built by `config/`, consumed by `backup/`, `catalog/`, `sources/`.
 */
export type CompressionKind = "zstd" | "gzip" | "none";

export interface FilesSource {
  type: "files";
  /** Absolute paths; each is stored in the archive under its base name. */
  paths: string[];
  exclude: string[];
}

export interface CommandSource {
  type: "command";
  command: string[];
  restore?: string[] | undefined;
  env: Record<string, string>;
}

/**
 * Where a database is. The password never travels with the rest: it reaches
 * the tools through their environment (PGPASSWORD) or a 0600 option file.
 */
export interface DatabaseConnection {
  host: string | undefined;
  port: number | undefined;
  /** A Unix socket directory (PostgreSQL) or socket file (MariaDB) instead of host/port. */
  socket: string | undefined;
  user: string | undefined;
  password: string | undefined;
  database: string;
  /** Extra client options, e.g. sslmode for PostgreSQL. Never secrets. */
  options: Record<string, string>;
}

export interface PostgresSource {
  type: "postgres";
  connection: DatabaseConnection;
  /** Also dump roles and tablespaces (pg_dumpall --globals-only) as a second object. */
  globals: boolean;
  /** Restore with --no-owner --no-privileges (default: when the backup has no globals). */
  noOwner: boolean | undefined;
  /** pg_restore --jobs for a restore staged to a file first. */
  restoreJobs: number;
  /** Backups whose dump is at least this large are staged to a file and restored in parallel (Infinity: never). */
  stageAboveBytes: number;
  /** The folder holding pg_dump, pg_restore and psql (default: PATH, then pg_config --bindir). */
  bin: string | undefined;
}

export interface MariadbSource {
  type: "mariadb";
  connection: DatabaseConnection;
  /** The folder holding mariadb-dump/mysqldump and mariadb/mysql (default: PATH). */
  bin: string | undefined;
}

export type SourceSpec = FilesSource | CommandSource | PostgresSource | MariadbSource;

export interface RetentionPolicy {
  keepLast?: number | undefined;
  keepHourly?: number | undefined;
  keepDaily?: number | undefined;
  keepWeekly?: number | undefined;
  keepMonthly?: number | undefined;
  keepYearly?: number | undefined;
  keepWithin?: string | undefined;
}

export interface BackupJob {
  name: string;
  source: SourceSpec;
  /** Name of the storage entry the job writes to. */
  storage: string;
  schedule?: string | undefined;
  compression: CompressionKind;
  compressionLevel?: number | undefined;
  /** Encrypt with age to the configured recipients. */
  encrypt: boolean;
  allowEmpty: boolean;
  retention?: RetentionPolicy | undefined;
  rpoMs?: number | undefined;
  /** IANA time zone the schedule is read in (undefined: the machine's). */
  timezone?: string | undefined;
  /** A run due while the previous one still runs: skipped, or one queued behind it. */
  overlap: OverlapPolicy;
  /** On daemon start: run once when the newest backup is older than one schedule interval. */
  catchUp: CatchUpPolicy;
}

export type OverlapPolicy = "skip" | "queue-one";
export type CatchUpPolicy = "none" | "one";
