import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  dimensionImageTokens,
  gemma4ImageTokens,
  qwenImageTokens,
  roundHalfEven,
  smartResize,
} from '../../../src/prompt/index.js';

const QWEN25 = { factor: 28, minPixels: 3136, maxPixels: 12845056 };
const QWEN3 = { factor: 32, minPixels: 65536, maxPixels: 16777216 };

describe('Python rounding', () => {
  it('rounds halves to even, like round() in Python', () => {
    expect([0.5, 1.5, 2.5, 3.5, 4.5, -0.5, -1.5, -2.5].map(roundHalfEven)).toEqual([0, 2, 2, 4, 4, -0, -2, -2]);
    expect([2.4999, 2.5001, 17.142857, 36.571428].map(roundHalfEven)).toEqual([2, 3, 17, 37]);
  });

  it('differs from Math.round only on odd-floor halves', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1_000_000 }), fc.boolean(), (n, half) => {
        const x = half ? n + 0.5 : n + 0.25;
        const expected = half ? (n % 2 === 0 ? n : n + 1) : n;
        expect(roundHalfEven(x)).toBe(expected);
      }),
    );
  });
});

describe('Qwen smart_resize token counts (spec examples)', () => {
  it.each([
    [640, 480, 391],
    [1024, 768, 999],
    [100, 100, 16],
    [70, 70, 4], // 70/28 = 2.5 rounds to 2 (half-up would give 9)
  ])('Qwen2.5-VL %i×%i → %i', (w, h, n) => {
    expect(qwenImageTokens(w, h, QWEN25)).toBe(n);
  });

  it.each([
    [1024, 768, 768],
    [640, 480, 300],
    [100, 100, 64],
  ])('Qwen3-VL %i×%i → %i', (w, h, n) => {
    expect(qwenImageTokens(w, h, QWEN3)).toBe(n);
  });

  it('more round-half-even cases: 42 = 1.5·28 rounds to 56, 126 = 4.5·28 rounds to 112', () => {
    expect(smartResize(42, 126, QWEN25)).toEqual([56, 112]); // half-up would give [56, 140]
    expect(qwenImageTokens(126, 42, QWEN25)).toBe(8);
    expect(smartResize(80, 80, QWEN3)).toEqual([256, 256]); // 2.5 → 2, then scaled up to min_pixels
  });

  it('scales down over max_pixels and up under min_pixels', () => {
    expect(smartResize(8000, 8000, QWEN25)).toEqual([3584, 3584]);
    expect(qwenImageTokens(8000, 8000, QWEN25)).toBe(16384);
    expect(qwenImageTokens(4000, 3000, { factor: 28, minPixels: 3136, maxPixels: 1003520 })).toBe(1230); // class default cap (values from Python)
    expect(smartResize(10, 10, QWEN25)).toEqual([56, 56]);
  });

  it('rejects an aspect ratio over 200', () => {
    expect(() => smartResize(10, 2001, QWEN25)).toThrow(/aspect ratio/);
    expect(smartResize(10, 2000, QWEN25)).toEqual([28, 812]);
  });

  it('always yields multiples of the factor within the pixel bounds (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20000 }), fc.integer({ min: 1, max: 20000 }), (h, w) => {
        fc.pre(Math.max(h, w) / Math.min(h, w) <= 200);
        const [hb, wb] = smartResize(h, w, QWEN25);
        expect(hb % 28).toBe(0);
        expect(wb % 28).toBe(0);
        expect(hb * wb).toBeLessThanOrEqual(QWEN25.maxPixels);
      }),
    );
  });
});

describe('Gemma 4 budgets', () => {
  it('1024×768 with budgets 70/140/280/560/1120 → 63/130/266/540/1064', () => {
    expect([70, 140, 280, 560, 1120].map((b) => gemma4ImageTokens(1024, 768, b))).toEqual([63, 130, 266, 540, 1064]);
  });

  it('scales small images up and large ones down to the budget (values from Python)', () => {
    expect(gemma4ImageTokens(16, 16, 280)).toBe(256);
    expect(gemma4ImageTokens(8000, 8000, 280)).toBe(256);
    expect(gemma4ImageTokens(640, 480, 280)).toBe(266);
    expect(gemma4ImageTokens(4000, 20, 70)).toBe(70);
  });
});

describe('generic strategies', () => {
  it('dimension-based rounds up', () => {
    expect(dimensionImageTokens(1024, 768, 1024)).toBe(768);
    expect(dimensionImageTokens(100, 100, 784)).toBe(13);
    expect(dimensionImageTokens(28, 28, 784)).toBe(1);
  });
});
