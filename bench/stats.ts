/**
 * Shared types and small statistics helpers for `npm run bench`.
 * A Figure is one measured quantity on one target, with every run kept.
 */
export interface Figure {
  suite: string;
  name: string;
  target: string;
  unit: string;
  runs: number[];
  median: number;
  min: number;
  max: number;
  note?: string;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** p-th percentile (0..100), linear interpolation between closest ranks */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const idx = (p / 100) * (s.length - 1);
  const lo = Math.floor(idx);
  const hi = Math.ceil(idx);
  return s[lo]! + (s[hi]! - s[lo]!) * (idx - lo);
}

export function figure(
  suite: string,
  name: string,
  target: string,
  unit: string,
  runs: number[],
  note?: string,
): Figure {
  const f: Figure = {
    suite,
    name,
    target,
    unit,
    runs,
    median: median(runs),
    min: runs.length ? Math.min(...runs) : NaN,
    max: runs.length ? Math.max(...runs) : NaN,
  };
  if (note) f.note = note;
  return f;
}

/** number of runs per figure: BENCH_RUNS, or 1 with BENCH_QUICK=1, else `dflt` */
export function runsFor(dflt = 3): number {
  const env = Number(process.env.BENCH_RUNS);
  if (Number.isInteger(env) && env > 0) return env;
  if (quick()) return 1;
  return dflt;
}

export function quick(): boolean {
  return process.env.BENCH_QUICK === '1';
}
