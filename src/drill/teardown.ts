import type { Problem } from "../model/drill-report.js";
import type { Timeline } from "../measure/clock.js";

/**
 * Everything a drill creates registers how to remove it here; teardown runs
 * them last-in-first-out and runs every one, even when one fails
 * (graphile-worker's `withReleasers`). Each removal is timed: teardown is
 * reported separately and is not part of the RTO.
 */
export interface TeardownRecord {
  name: string;
  what: "scratch" | "process";
  status: "removed" | "failed";
  startMs: number;
  endMs: number;
  error: Problem | null;
}

interface Releaser {
  name: string;
  what: TeardownRecord["what"];
  release(): Promise<void>;
}

export class TeardownStack {
  private readonly releasers: Releaser[] = [];

  push(name: string, what: TeardownRecord["what"], release: () => Promise<void>): void {
    this.releasers.push({ name, what, release });
  }

  get size(): number {
    return this.releasers.length;
  }

  /** Releases everything, newest first; reports each one through `onEach` as it finishes. */
  async releaseAll(timeline: Timeline, onEach?: (record: TeardownRecord) => void): Promise<TeardownRecord[]> {
    const records: TeardownRecord[] = [];
    while (this.releasers.length) {
      const releaser = this.releasers.pop()!;
      const startMs = timeline.elapsedMs();
      let error: Problem | null = null;
      try {
        await releaser.release();
      } catch (e) {
        error = { code: (e as { code?: string }).code ?? "TEARDOWN_FAILED", message: (e as Error).message ?? String(e) };
      }
      const record: TeardownRecord = { name: releaser.name, what: releaser.what, status: error ? "failed" : "removed", startMs, endMs: timeline.elapsedMs(), error };
      records.push(record);
      onEach?.(record);
    }
    return records;
  }
}
