/** Axes for the SVG charts: durations on a linear scale with round tick steps. */

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const TICK_STEPS_MS = [
  1, 2, 5, 10, 20, 50, 100, 200, 500,
  SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR,
  DAY, 2 * DAY, 7 * DAY, 14 * DAY, 28 * DAY,
];

/** Round ticks from 0 up to `maxMs`, at most `maxTicks` steps apart. */
export function durationTicks(maxMs: number, maxTicks = 10): number[] {
  const step = TICK_STEPS_MS.find((s) => maxMs / s <= maxTicks) ?? Math.ceil(maxMs / maxTicks / DAY) * DAY;
  const ticks: number[] = [];
  for (let t = 0; t <= maxMs; t += step) ticks.push(t);
  return ticks;
}

/** Maps [0, domainMax] onto [start, start + length] in whole pixels. */
export function linearScale(domainMax: number, start: number, length: number): (value: number) => number {
  const max = domainMax > 0 ? domainMax : 1;
  return (value) => Math.round(start + (Math.min(Math.max(value, 0), max) / max) * length);
}
