import { describe, expect, it } from 'vitest';
import { expandPlaceholders, PromptError, type ExpansionIds } from '../../../src/prompt/index.js';

const QWEN: ExpansionIds = { target: 151655, prefix: [], repeat: 151655, suffix: [], newlines: null };
// Gemma 3 ids: "\n" 107, "\n\n" 108, "\n\n\n" 109, "\n\n\n\n" 110; boi 255999, soft 262144, eoi 256000.
const GEMMA: ExpansionIds = {
  target: 255999,
  prefix: [108, 255999],
  repeat: 262144,
  suffix: [256000, 108],
  newlines: [107, 108, 109, 110],
};
const ids = (...xs: number[]) => Uint32Array.from(xs);

describe('placeholder expansion', () => {
  it('expands each pad in place; ranges cover only the pads (Qwen)', () => {
    const { tokens, ranges } = expandPlaceholders(
      ids(1, 151652, 151655, 151653, 2, 151652, 151655, 151653),
      QWEN,
      [3, 2],
    );
    expect([...tokens]).toEqual([1, 151652, 151655, 151655, 151655, 151653, 2, 151652, 151655, 151655, 151653]);
    expect(ranges).toEqual([
      { offset: 2, length: 3 },
      { offset: 8, length: 2 },
    ]);
  });

  it('fails when the template emitted a different number of placeholders than images', () => {
    expect(() => expandPlaceholders(ids(1, 151655, 2), QWEN, [4, 4])).toThrow(PromptError);
    expect(() => expandPlaceholders(ids(1, 2), QWEN, [4])).toThrow(/0 image placeholder\(s\) for 1 image/);
  });

  it('Gemma 3: wraps in "\\n\\n" and merges with neighbouring newlines; the range keeps its length', () => {
    // "user\n" <boi> "text": [\n] + [\n\n] → [\n\n\n]; the range starts at the merged token.
    const { tokens, ranges } = expandPlaceholders(ids(2, 105, 2364, 107, 255999, 1000, 106), GEMMA, [3]);
    expect([...tokens]).toEqual([2, 105, 2364, 109, 255999, 262144, 262144, 262144, 256000, 108, 1000, 106]);
    expect(ranges).toEqual([{ offset: 3, length: 7 }]);
  });

  it('Gemma 3: "\\n\\n" before and "\\n" after merge too, in vLLM order', () => {
    // [\n\n] + [\n\n, boi …] → \n\n\n\n; [… eoi, \n\n] + [\n] → \n\n\n
    const { tokens, ranges } = expandPlaceholders(ids(5, 108, 255999, 107, 6), GEMMA, [1]);
    expect([...tokens]).toEqual([5, 110, 255999, 262144, 256000, 109, 6]);
    expect(ranges).toEqual([{ offset: 1, length: 5 }]);
  });

  it('Gemma 3: two adjacent images merge their newlines into one "\\n\\n\\n\\n"', () => {
    const { tokens, ranges } = expandPlaceholders(ids(5, 255999, 255999, 6), GEMMA, [1, 1]);
    expect([...tokens]).toEqual([5, 108, 255999, 262144, 256000, 110, 255999, 262144, 256000, 108, 6]);
    expect(ranges).toEqual([
      { offset: 1, length: 5 },
      { offset: 5, length: 5 },
    ]);
  });
});
