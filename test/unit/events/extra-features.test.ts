import { describe, expect, it } from 'vitest';
import { spreadExtraFeatures, type SpreadInput } from '../../../src/events/ingest/extra-features.js';
import type { ExtraKeyItem } from '../../../src/events/types.js';

const mm = (identifier: string, offset: number): ExtraKeyItem => ({ kind: 'mm', identifier, offset });
const str = (value: string): ExtraKeyItem => ({ kind: 'string', value });

function input(
  extraKeys: (ExtraKeyItem[] | null)[],
  engineBlockSize: number,
  over: Partial<SpreadInput> = {},
): SpreadInput {
  return {
    carried: [],
    carriedTokens: 0,
    extraKeys,
    engineBlockSize,
    engineBlocks: extraKeys.length,
    loraName: null,
    chainStart: true,
    cacheSalt: null,
    ...over,
  };
}

describe('spreadExtraFeatures', () => {
  it('copies each block list exactly when engine and canonical blocks agree, dropping the LoRA name', () => {
    const r = spreadExtraFeatures(
      input([[str('sql'), mm('img1', 4), str('salt')], [str('sql'), mm('img1', -12), mm('img2', 9)], null], 16, {
        loraName: 'sql',
      }),
      3,
      16,
    );
    expect(r.blocks).toEqual([['img1', 'salt'], ['img1', 'img2'], null]);
    expect(r.leftover).toEqual([]);
  });

  it('merges engine blocks into a larger canonical block, each item once, salt last', () => {
    // 16-token engine blocks, B = 64: image 1 spans engine blocks 0–1, image 2 starts in block 2.
    const r = spreadExtraFeatures(input([[mm('a', 4), str('salt')], [mm('a', -12)], [mm('b', 3)], null], 16), 1, 64);
    expect(r.blocks).toEqual([['a', 'b', 'salt']]);
  });

  it('splits a large engine block by item start (64-token engine blocks, B = 16)', () => {
    // Item starts at offset 20 inside the engine block: canonical blocks 1..3 carry it, block 0 does not.
    const r = spreadExtraFeatures(input([[mm('x', 20)]], 64, { chainStart: false }), 4, 16);
    expect(r.blocks).toEqual([null, ['x'], ['x'], ['x']]);
  });

  it('keeps the features of tokens after the last full canonical block as leftover', () => {
    // 2 engine blocks of 16, B = 64: nothing complete; the item covers [20, 32).
    const r = spreadExtraFeatures(input([null, [mm('x', 4)]], 16, { chainStart: false }), 0, 64);
    expect(r.blocks).toBeNull();
    expect(r.leftover).toEqual([{ start: 20, end: 32, ids: ['x'], itemStarts: [20] }]);
  });

  it('applies carried leftover features to the block they complete', () => {
    const r = spreadExtraFeatures(
      input([[mm('x', -12)], null], 16, {
        chainStart: false,
        carried: [{ start: 20, end: 32, ids: ['x'], itemStarts: [20] }],
        carriedTokens: 32,
      }),
      1,
      64,
    );
    expect(r.blocks).toEqual([['x']]);
  });

  it('folds an SGLang cache salt into block 0 only', () => {
    const r = spreadExtraFeatures(input([null, null], 16, { cacheSalt: 's' }), 2, 16);
    expect(r.blocks).toEqual([['s'], null]);
  });

  it('returns null when there is nothing to fold', () => {
    expect(spreadExtraFeatures(input([null, null], 16), 2, 16)).toEqual({ blocks: null, leftover: [] });
  });
});
