import type { CatchUpPolicy, OverlapPolicy } from "../model/job.js";
import type { RunKind } from "../storage/layout.js";
import type { CronSchedule } from "./cron.js";
import type { Trigger } from "./run-ledger.js";

/**
 * Turns schedules into runs. One timer for the whole daemon, armed for the
 * earliest next slot of any unit (so 1,000 jobs cost one timer, not 1,000),
 * and three rules:
 *
 * - **overlap**: a slot that comes due while the unit's previous run is still
 *   going is skipped (`skip`), or queued to start right after it (`queue-one`:
 *   one queued run at most; later slots are skipped);
 * - **concurrency**: at most `concurrency` runs at once across all units; a
 *   slot that finds no free place waits for one, in order (never dropped);
 * - **coalescing**: when the process slept through several slots of a unit
 *   (a suspended VM, a stalled event loop), only the newest runs and the
 *   others are reported as missed, never a burst.
 *
 * The scheduler never touches storage: `run` does (claims, backups, drills).
 * Time comes from `timers`, so tests drive it with a fake clock.
 */
export interface ScheduledUnit {
  /** `<kind>:<name>`, unique among units. */
  id: string;
  kind: RunKind;
  name: string;
  schedule: CronSchedule;
  overlap: OverlapPolicy;
  catchUp: CatchUpPolicy;
}

export interface Timers {
  now(): Date;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  now: () => new Date(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export type SchedulerEvent =
  | { type: "started"; unit: ScheduledUnit; slot: Date; trigger: Trigger; latenessMs: number }
  | { type: "finished"; unit: ScheduledUnit; slot: Date; trigger: Trigger }
  | { type: "skipped"; unit: ScheduledUnit; slot: Date; reason: "overlap" | "shutting-down" }
  | { type: "queued"; unit: ScheduledUnit; slot: Date; reason: "overlap" | "concurrency" }
  | { type: "missed"; unit: ScheduledUnit; slots: Date[] };

export interface SchedulerOptions {
  concurrency: number;
  /** Runs one slot of a unit; must not reject (the scheduler logs nothing itself). */
  run(unit: ScheduledUnit, slot: Date, trigger: Trigger): Promise<void>;
  timers?: Timers;
  onEvent?(event: SchedulerEvent): void;
}

interface UnitState {
  unit: ScheduledUnit;
  next: Date;
  /** Running, or waiting for a place under the concurrency limit. */
  active: boolean;
  queued: { slot: Date; trigger: Trigger } | undefined;
}

/** setTimeout's limit is 2^31-1 ms; longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class Scheduler {
  private readonly timers: Timers;
  private readonly states: UnitState[] = [];
  private readonly waiting: Array<{ state: UnitState; slot: Date; trigger: Trigger }> = [];
  private readonly inFlight = new Set<Promise<void>>();
  private timer: unknown;
  private stopped = true;
  private runningCount = 0;

  constructor(
    units: readonly ScheduledUnit[],
    private readonly options: SchedulerOptions,
  ) {
    this.timers = options.timers ?? realTimers;
    const now = this.timers.now();
    for (const unit of units) this.states.push({ unit, next: unit.schedule.next(now), active: false, queued: undefined });
  }

  /** Starts the clock; `catchUp` slots are dispatched at once (through the same rules). */
  start(catchUp: ReadonlyArray<{ unitId: string; slot: Date }> = []): void {
    this.stopped = false;
    for (const { unitId, slot } of catchUp) {
      const state = this.states.find((s) => s.unit.id === unitId);
      if (state) this.dispatch(state, slot, "catch-up");
    }
    this.arm();
  }

  /** No new runs start: the timer stops and queued slots are dropped (reported as skipped). */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    for (const state of this.states) {
      if (state.queued) this.emit({ type: "skipped", unit: state.unit, slot: state.queued.slot, reason: "shutting-down" });
      state.queued = undefined;
    }
    for (const { state, slot } of this.waiting.splice(0)) {
      state.active = false;
      this.emit({ type: "skipped", unit: state.unit, slot, reason: "shutting-down" });
    }
  }

  /** Resolves when no run is in flight. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  get running(): number {
    return this.runningCount;
  }

  /** The next slot of every unit, for status and tests. */
  nextSlots(): Array<{ unitId: string; next: Date }> {
    return this.states.map((s) => ({ unitId: s.unit.id, next: s.next }));
  }

  private arm(): void {
    if (this.stopped) return;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    let earliest = Number.POSITIVE_INFINITY;
    for (const state of this.states) earliest = Math.min(earliest, state.next.getTime());
    if (!Number.isFinite(earliest)) return;
    const delay = Math.min(Math.max(0, earliest - this.timers.now().getTime()), MAX_TIMER_MS);
    this.timer = this.timers.setTimeout(() => this.tick(), delay);
  }

  private tick(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const now = this.timers.now();
    for (const state of this.states) {
      if (state.next.getTime() > now.getTime()) continue;
      // Every slot that came due while we were away: the newest runs, the rest were missed.
      const due = [state.next, ...state.unit.schedule.between(state.next, now, 10_000)];
      const slot = due[due.length - 1]!;
      if (due.length > 1) this.emit({ type: "missed", unit: state.unit, slots: due.slice(0, -1) });
      state.next = state.unit.schedule.next(now);
      this.dispatch(state, slot, "schedule");
    }
    this.arm();
  }

  private dispatch(state: UnitState, slot: Date, trigger: Trigger): void {
    if (this.stopped) {
      this.emit({ type: "skipped", unit: state.unit, slot, reason: "shutting-down" });
      return;
    }
    if (state.active) {
      if (state.unit.overlap === "queue-one" && !state.queued) {
        state.queued = { slot, trigger };
        this.emit({ type: "queued", unit: state.unit, slot, reason: "overlap" });
      } else {
        this.emit({ type: "skipped", unit: state.unit, slot, reason: "overlap" });
      }
      return;
    }
    state.active = true;
    if (this.runningCount >= this.options.concurrency) {
      this.waiting.push({ state, slot, trigger });
      this.emit({ type: "queued", unit: state.unit, slot, reason: "concurrency" });
      return;
    }
    this.begin(state, slot, trigger);
  }

  private begin(state: UnitState, slot: Date, trigger: Trigger): void {
    this.runningCount++;
    this.emit({ type: "started", unit: state.unit, slot, trigger, latenessMs: this.timers.now().getTime() - slot.getTime() });
    const run = Promise.resolve()
      .then(() => this.options.run(state.unit, slot, trigger))
      .catch(() => {})
      .finally(() => {
        this.runningCount--;
        state.active = false;
        this.inFlight.delete(run);
        this.emit({ type: "finished", unit: state.unit, slot, trigger });
        const queued = state.queued;
        state.queued = undefined;
        if (queued) this.dispatch(state, queued.slot, queued.trigger);
        this.pump();
      });
    this.inFlight.add(run);
  }

  /** Starts waiting slots while there is room. */
  private pump(): void {
    while (!this.stopped && this.runningCount < this.options.concurrency && this.waiting.length > 0) {
      const { state, slot, trigger } = this.waiting.shift()!;
      this.begin(state, slot, trigger);
    }
  }

  private emit(event: SchedulerEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch {
      // A listener that throws must never stop the scheduler.
    }
  }
}
