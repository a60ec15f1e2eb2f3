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

export type SourceSpec = FilesSource | CommandSource;

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
}
