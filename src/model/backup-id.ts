import { randomBytes } from "node:crypto";

/**
 * Backup ids sort by time: `20261121T190512Z-3f9a` (UTC start time to the second,
 * then 4 random hex digits so two backups started in the same second differ).
 */
export const BACKUP_ID_PATTERN = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-[0-9a-f]{4}$/;

export function newBackupId(startedAt: Date, random: () => string = () => randomBytes(2).toString("hex")): string {
  const stamp = startedAt.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}Z$/, "Z");
  return `${stamp}-${random()}`;
}

export function isBackupId(id: string): boolean {
  return BACKUP_ID_PATTERN.test(id);
}

/** The start time encoded in a backup id, or undefined for a malformed id. */
export function backupIdTime(id: string): Date | undefined {
  const m = BACKUP_ID_PATTERN.exec(id);
  if (!m) return undefined;
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}
