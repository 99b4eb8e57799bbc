import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { decodeEventBatch } from '../../../src/events/decode/index.js';
import { Ingestor } from '../../../src/events/index.js';
import { MemoryIndex, TierRegistry } from '../../../src/index/index.js';
import { BlockHasher } from '../../../src/keys/index.js';

/**
 * SGLang with EAGLE-family speculative decoding publishes `token_ids` as pairs (issue 13 item 2).
 * Facts the vectors are built from:
 * - sgl-project/sglang python/sglang/srt/mem_cache/events.py `record_store`: page position j is `(raw[j], raw[j+1])`,
 *   `block_size = len(page_tokens)` (pairs per page), one BlockStored per page, coalesced onto the previous event when
 *   its parent is that event's last hash (token_ids extended).
 * - ai-dynamo/dynamo#6872: `[(1,2),(2,3),(3,4)]` stands for `[1,2,3,4]`.
 * Before this change every such event was refused as `bad_token_ids`.
 */
const pack = (v: unknown) => encode(v, { useBigInt64: true });

/** SGLang's array-form BlockStored for pages of `pageSize` over raw tokens, pairs as record_store builds them. */
function sglangPages(raw: number[], pageSize: number, hashes: number[]): unknown[] {
  const pairs: number[][] = [];
  for (let j = 0; j + 1 < raw.length; j++) pairs.push([raw[j], raw[j + 1]]);
  return ['BlockStored', hashes, null, pairs, pageSize, null, 'GPU'];
}

describe('token pairs decode to the tokens they stand for', () => {
  it("Dynamo's vector: [(1,2),(2,3),(3,4)] holds positions 1,2,3 with look-ahead 4", () => {
    const batch = decodeEventBatch(
      pack([
        0,
        [
          [
            'BlockStored',
            [9],
            null,
            [
              [1, 2],
              [2, 3],
              [3, 4],
            ],
            3,
            null,
            'GPU',
          ],
        ],
        0,
      ]),
      'sglang',
    );
    expect(batch.issues).toEqual([]);
    expect(batch.events[0]).toMatchObject({ tokenIds: new Uint32Array([1, 2, 3]), blockSize: 3, bigramLookahead: 4 });
  });

  it('two coalesced SGLang pages (page size 4): 8 pairs over raw tokens 10..18', () => {
    const raw = [10, 11, 12, 13, 14, 15, 16, 17, 18];
    const batch = decodeEventBatch(pack([0, [sglangPages(raw, 4, [-5, 6])], 0]), 'sglang');
    expect(batch.issues).toEqual([]);
    expect(batch.events).toHaveLength(1);
    expect(batch.events[0]).toMatchObject({
      blockHashes: new BigUint64Array([18446744073709551611n, 6n]),
      tokenIds: new Uint32Array([10, 11, 12, 13, 14, 15, 16, 17]),
      blockSize: 4,
      bigramLookahead: 18,
    });
  });

  it('the same pairs on the vLLM wire (an SGLang publisher read as vLLM) and in map form', () => {
    const pairs = [
      [7, 8],
      [8, 4294967295],
    ];
    const array = decodeEventBatch(pack([0, [['BlockStored', [1], null, pairs, 2, null, 'GPU']]]));
    const map = decodeEventBatch(
      pack([0, [{ type: 'BlockStored', block_hashes: [1], parent_block_hash: null, token_ids: pairs, block_size: 2 }]]),
    );
    for (const b of [array, map]) {
      expect(b.issues).toEqual([]);
      expect(b.events[0]).toMatchObject({ tokenIds: new Uint32Array([7, 8]), bigramLookahead: 4294967295 });
    }
  });

  it('a plain token list carries no look-ahead (the object keeps its usual shape)', () => {
    const [ev] = decodeEventBatch(pack([0, [['BlockStored', [1], null, [1, 2], 2]]])).events;
    expect(ev).not.toHaveProperty('bigramLookahead');
  });
});

describe('malformed pairs: a named, counted reason and nothing from that event', () => {
  const cases: [string, unknown[], string, string][] = [
    [
      'a triple',
      [
        [1, 2],
        [2, 3, 4],
      ],
      'events[0].token_ids[1]',
      'expected a [token, next token] pair, got a list of 3',
    ],
    ['a single', [[1]], 'events[0].token_ids[0]', 'expected a [token, next token] pair, got a list of 1'],
    [
      'a flat token after a pair',
      [[1, 2], 2],
      'events[0].token_ids[1]',
      'expected a [token, next token] pair, got int (2)',
    ],
    ['a string token', [[1, 'x']], 'events[0].token_ids[0]', 'expected uint32 token ids in the pair, got string'],
    ['a negative token', [[-1, 2]], 'events[0].token_ids[0]', 'expected uint32 token ids in the pair, got int (-1)'],
    [
      'a token beyond uint32',
      [[1, 4294967296]],
      'events[0].token_ids[0]',
      'expected uint32 token ids in the pair, got int (4294967296)',
    ],
    [
      'a broken chain',
      [
        [1, 2],
        [3, 4],
      ],
      'events[0].token_ids[1]',
      'pair starts with token 3 but the previous pair ended with 2: not one token sequence',
    ],
  ];
  for (const [name, pairs, field, message] of cases) {
    it(name, () => {
      const batch = decodeEventBatch(
        pack([0, [['BlockStored', [1, 2], null, pairs, 1], ['AllBlocksCleared']], 0]),
        'sglang',
      );
      expect(batch.issues).toStrictEqual([{ reason: 'bad_token_pairs', eventIndex: 0, field, message }]);
      expect(batch.events).toEqual([{ type: 'AllBlocksCleared' }]);
    });
  }
});

describe('pairs are hashed as the positions the page holds', () => {
  function ingestOne(format: 'vllm' | 'sglang', event: unknown[]) {
    const tiers = new TierRegistry();
    const index = new MemoryIndex({ tiers, shards: 2 });
    const hasher = new BlockHasher({ blockSize: 4, hashSeed: '' });
    const ingestor = new Ingestor({ hasher, writer: index, tiers });
    const batch = decodeEventBatch(pack([0, [event], 0]), format);
    ingestor.applySync('10.0.0.1:8000', 'm', batch.events);
    return { index, hasher };
  }

  it('a bigram event indexes exactly the request keys of its first elements (what a prompt block covers)', async () => {
    const raw = [10, 11, 12, 13, 14, 15, 16, 17, 18];
    const { index, hasher } = ingestOne('sglang', sglangPages(raw, 4, [1, 2]));
    const { index: flat } = ingestOne('sglang', ['BlockStored', [1, 2], null, raw.slice(0, 8), 4, null, 'GPU']);
    const promptKeys = hasher.keysFor('m', Uint32Array.from(raw.slice(0, 8)));
    expect(promptKeys).toHaveLength(2);
    const bigram = await index.lookup(promptKeys, {});
    expect(bigram.map((m) => [m.endpoint, m.matchedBlocks])).toEqual([['10.0.0.1:8000', 2]]);
    expect(await flat.lookup(promptKeys, {})).toEqual(bigram);
    expect(index.endpointEntriesSync('10.0.0.1:8000')).toEqual({ GPU: 2 });
  });
});
