import { describe, expect, it } from 'vitest';
import { judgeLeak, linearSlope } from '../../../bench/leak-verdict.js';

/** One sample per second for `seconds`; heap after GC every 10 s; both as functions of t (seconds). */
function run(seconds: number, rss: (t: number) => number, heap: (t: number) => number) {
  return Array.from({ length: seconds }, (_, i) => {
    const t = i + 1;
    return { t, rssMiB: rss(t), ...(t % 10 === 0 ? { heapAfterGcMiB: heap(t) } : {}) };
  });
}

describe('the soak leak verdict', () => {
  it('fits a least-squares slope with its standard error', () => {
    expect(
      linearSlope([
        { x: 0, y: 1 },
        { x: 1, y: 3 },
        { x: 2, y: 5 },
      ]),
    ).toEqual({ slope: 2, standardError: 0 });
    // y = 0, 1, 0, 1: slope 0.2; fitted 0.2, 0.4, 0.6, 0.8; residuals² sum 0.8, over n − 2 = 2 and Sxx = 5 → √0.08
    const { slope, standardError } = linearSlope([
      { x: 0, y: 0 },
      { x: 1, y: 1 },
      { x: 2, y: 0 },
      { x: 3, y: 1 },
    ]);
    expect(slope).toBeCloseTo(0.2, 12);
    expect(standardError).toBeCloseTo(Math.sqrt(0.08), 12);
  });

  it('finds no leak in flat memory, judging only the second half (warm-up growth ignored)', () => {
    // 10 minutes: RSS and heap climb for the first 4 minutes, then stay flat.
    const v = judgeLeak(
      run(
        600,
        (t) => 200 + Math.min(t, 240) / 2,
        (t) => 40 + Math.min(t, 240) / 10,
      ),
      10,
    );
    expect(v.verdict).toBe('no leak');
    expect(v.window).toEqual({ fromSecond: 300, toSecond: 600 });
    expect([v.heapAfterGc.slopeMiBPerMinute, v.heapAfterGc.points, v.rss.slopeMiBPerMinute, v.rss.points]).toEqual([
      0, 31, 0, 301,
    ]);
  });

  it('calls a live heap growing 1.1 MiB per minute a leak, and 0.9 not', () => {
    const leaking = judgeLeak(
      run(
        600,
        () => 300,
        (t) => 50 + (1.1 * t) / 60,
      ),
      10,
    );
    expect(leaking.verdict).toBe('leak');
    expect(leaking.reason).toBe('heap after GC grows 1.10 MiB/min (limit 1)');
    expect(
      judgeLeak(
        run(
          600,
          () => 300,
          (t) => 50 + (0.9 * t) / 60,
        ),
        10,
      ).verdict,
    ).toBe('no leak');
  });

  it('calls RSS growing 4.5 MiB per minute a leak even when the heap is flat (native memory)', () => {
    const v = judgeLeak(
      run(
        300,
        (t) => 200 + (4.5 * t) / 60,
        () => 50,
      ),
      5,
    );
    expect([v.verdict, v.reason]).toEqual(['leak', 'RSS grows 4.50 MiB/min (limit 4)']);
  });

  it('does not judge runs shorter than 5 minutes, however steep', () => {
    const v = judgeLeak(
      run(
        270,
        (t) => 200 + t,
        (t) => 50 + t,
      ),
      4.5,
    );
    expect([v.verdict, v.reason]).toEqual(['too short to judge', 'runs shorter than 5 minutes are not judged']);
    expect(
      judgeLeak(
        run(
          15,
          (t) => 200 + t,
          (t) => 50 + t,
        ),
        0.25,
      ).verdict,
    ).toBe('too short to judge');
  });
});
