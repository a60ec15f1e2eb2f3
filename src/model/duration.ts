/**
 * Durations as users write them: `90s`, `15m`, `1h`, `1h30m`, `7d`, `2w`.
 * Pure functions, no I/O.
 */

const UNIT_MS = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
} as const;

type Unit = keyof typeof UNIT_MS;

const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/y;

/** Parses a duration; returns undefined when `text` is not one (e.g. `1x`, `-5m`, ``). */
export function parseDurationMs(text: string): number | undefined {
  const source = text.trim();
  if (source === "") return undefined;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < source.length) {
    const at = PART.lastIndex;
    const match = PART.exec(source);
    if (!match || match.index !== at) return undefined;
    total += Number(match[1]) * UNIT_MS[match[2] as Unit];
  }
  return total;
}

/** Renders a duration compactly for people: `1h 5m`, `3.2s`, `450ms`, `2d 4h`. */
export function formatDuration(durationMs: number): string {
  const sign = durationMs < 0 ? "-" : "";
  const ms = Math.abs(durationMs);
  if (ms < 1_000) return `${sign}${Math.round(ms)}ms`;
  if (ms < 60_000) return `${sign}${(ms / 1_000).toFixed(ms < 10_000 ? 1 : 0)}s`;
  const parts: string[] = [];
  let rest = Math.floor(ms / 1_000);
  for (const [unit, seconds] of [["d", 86_400], ["h", 3_600], ["m", 60], ["s", 1]] as const) {
    const n = Math.floor(rest / seconds);
    rest -= n * seconds;
    if (n > 0) parts.push(`${n}${unit}`);
    if (parts.length === 2) break;
  }
  return sign + parts.join(" ");
}
