/**
 * The soak's leak verdict: least-squares slopes of the live heap (heap used right after a forced full GC) and of RSS
 * over the second half of the run, when the index is full and every pool has reached its steady size.
 *
 * Thresholds (MiB per minute of wall time):
 * - heap after GC < 1: the soak's state is bounded (the simulated fleet holds at most ~5k blocks; the index, the
 *   engine-key bridge and the metrics label sets stop growing within the first minute), so the live heap of a
 *   healthy service is flat. The load is ~55 batches/s and ~3–4k Score calls/s: a leak of one small object
 *   (~300 B) per batch or of ~5 B per Score call already reaches 1 MiB/min. A forced GC's heap measurement varies
 *   by well under 1 MiB, so over a ≥ 2.5-minute window (a 5-minute run's second half, ≥ 15 points) a slope of
 *   1 MiB/min stands out from the noise.
 * - RSS < 4: RSS also holds native memory (ZeroMQ and HTTP/2 buffers, malloc arenas, V8's page pool) that a heap
 *   measure misses, and it moves in steps as V8 and the allocator grow and release pages; a few MiB of such drift per
 *   minute is not a leak. A native leak faster than 4 MiB/min (240 MiB an hour) fails.
 * Runs shorter than MIN_JUDGED_MINUTES are "too short to judge": the second half would still be warming up.
 * "No leak" means no leak at this resolution: a slower one needs a longer run (the slope's resolution improves with
 * the window), which is why the slopes' standard errors are reported.
 */

export const MIN_JUDGED_MINUTES = 5;
export const HEAP_AFTER_GC_LIMIT_MIB_PER_MINUTE = 1;
export const RSS_LIMIT_MIB_PER_MINUTE = 4;

export interface MemorySample {
  /** Seconds since the start. */
  t: number;
  rssMiB: number;
  heapAfterGcMiB?: number;
}

export interface Slope {
  /** Least-squares slope, MiB per minute. */
  slopeMiBPerMinute: number;
  /** Its standard error (NaN with fewer than 3 points). */
  standardErrorMiBPerMinute: number;
  points: number;
  limitMiBPerMinute: number;
}

export interface LeakVerdict {
  verdict: 'no leak' | 'leak' | 'too short to judge';
  reason: string;
  /** The window the slopes were fitted on: the second half of the run, in seconds since the start. */
  window: { fromSecond: number; toSecond: number };
  heapAfterGc: Slope;
  rss: Slope;
}

/** Least-squares fit y = a + b·x; returns b and its standard error. */
export function linearSlope(points: readonly { x: number; y: number }[]): { slope: number; standardError: number } {
  const n = points.length;
  if (n < 2) return { slope: 0, standardError: NaN };
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const sxx = points.reduce((a, p) => a + (p.x - mx) ** 2, 0);
  if (sxx === 0) return { slope: 0, standardError: NaN };
  const slope = points.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0) / sxx;
  if (n < 3) return { slope, standardError: NaN };
  const residuals = points.reduce((a, p) => a + (p.y - my - slope * (p.x - mx)) ** 2, 0);
  return { slope, standardError: Math.sqrt(residuals / (n - 2) / sxx) };
}

function fit(points: { x: number; y: number }[], limit: number): Slope {
  // Seconds → minutes on the x axis, so the slope is MiB per minute.
  const { slope, standardError } = linearSlope(points.map((p) => ({ x: p.x / 60, y: p.y })));
  return {
    slopeMiBPerMinute: slope,
    standardErrorMiBPerMinute: standardError,
    points: points.length,
    limitMiBPerMinute: limit,
  };
}

/** Judges the samples of a run of `minutes` (the run's requested length). */
export function judgeLeak(samples: readonly MemorySample[], minutes: number): LeakVerdict {
  const end = samples.at(-1)?.t ?? 0;
  const from = end / 2;
  const half = samples.filter((s) => s.t >= from);
  const heapAfterGc = fit(
    half.filter((s) => s.heapAfterGcMiB !== undefined).map((s) => ({ x: s.t, y: s.heapAfterGcMiB as number })),
    HEAP_AFTER_GC_LIMIT_MIB_PER_MINUTE,
  );
  const rss = fit(
    half.map((s) => ({ x: s.t, y: s.rssMiB })),
    RSS_LIMIT_MIB_PER_MINUTE,
  );
  const window = { fromSecond: from, toSecond: end };
  if (minutes < MIN_JUDGED_MINUTES || heapAfterGc.points < 3) {
    return {
      verdict: 'too short to judge',
      reason: `runs shorter than ${MIN_JUDGED_MINUTES} minutes are not judged`,
      window,
      heapAfterGc,
      rss,
    };
  }
  const over = [
    heapAfterGc.slopeMiBPerMinute >= heapAfterGc.limitMiBPerMinute
      ? `heap after GC grows ${heapAfterGc.slopeMiBPerMinute.toFixed(2)} MiB/min (limit ${heapAfterGc.limitMiBPerMinute})`
      : '',
    rss.slopeMiBPerMinute >= rss.limitMiBPerMinute
      ? `RSS grows ${rss.slopeMiBPerMinute.toFixed(2)} MiB/min (limit ${rss.limitMiBPerMinute})`
      : '',
  ].filter(Boolean);
  if (over.length > 0) return { verdict: 'leak', reason: over.join('; '), window, heapAfterGc, rss };
  return {
    verdict: 'no leak',
    reason: `second half: heap after GC ${heapAfterGc.slopeMiBPerMinute.toFixed(2)} MiB/min (limit ${heapAfterGc.limitMiBPerMinute}), RSS ${rss.slopeMiBPerMinute.toFixed(2)} MiB/min (limit ${rss.limitMiBPerMinute})`,
    window,
    heapAfterGc,
    rss,
  };
}
