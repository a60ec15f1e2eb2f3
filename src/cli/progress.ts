import { formatBytes } from "../model/size.js";

/**
 * A one-line progress bar on stderr when it is a terminal: bytes, rate and,
 * when the total is known, a bar and percentage. Redrawn at most 10 times a
 * second; cleared when done. Does nothing when stderr is not a TTY.
 */
export class ProgressBar {
  private readonly enabled: boolean;
  private readonly startedAt = performance.now();
  private lastDraw = 0;
  private drawn = false;

  constructor(private readonly label: string, enabled = process.stderr.isTTY === true) {
    this.enabled = enabled;
  }

  update(bytes: number, totalBytes?: number): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const seconds = Math.max((now - this.startedAt) / 1000, 0.001);
    const rate = `${formatBytes(bytes / seconds)}/s`;
    let line = `${this.label} ${formatBytes(bytes)} ${rate}`;
    if (totalBytes && totalBytes > 0) {
      const ratio = Math.min(1, bytes / totalBytes);
      const width = 24;
      const filled = Math.round(ratio * width);
      line = `${this.label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${Math.round(ratio * 100)}% ${formatBytes(bytes)}/${formatBytes(totalBytes)} ${rate}`;
    }
    const width = lineWidth();
    process.stderr.write(`\r${line.slice(0, width).padEnd(width)}`);
    this.drawn = true;
  }

  done(): void {
    if (this.enabled && this.drawn) process.stderr.write(`\r${" ".repeat(lineWidth())}\r`);
    this.drawn = false;
  }
}

/** Usable width of the terminal line; some terminals report 0 columns. */
function lineWidth(): number {
  const columns = process.stderr.columns;
  return Math.max(20, Math.min((columns && columns > 1 ? columns : 80) - 1, 100));
}
