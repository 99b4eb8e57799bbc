import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { decodeEventBatch } from '../../../src/events/decode/index.js';
import type { BlockStoredEvent } from '../../../src/events/types.js';
import { storedEvent } from '../../support/events.js';

const pack = (value: unknown) => encode(value, { useBigInt64: true });

/** A BlockStored as decoded when only the four required fields were on the wire. */
const stored = storedEvent;

describe('batch shapes', () => {
  it('3-element array batch', () => {
    const batch = decodeEventBatch(pack([1.5, [['AllBlocksCleared']], 3]));
    expect(batch).toStrictEqual({ ts: 1.5, events: [{ type: 'AllBlocksCleared' }], dataParallelRank: 3, issues: [] });
  });

  it('2-element array batch (very old vLLM) has no rank', () => {
    const batch = decodeEventBatch(pack([1700000000.125, []]));
    expect(batch).toStrictEqual({ ts: 1700000000.125, events: [], dataParallelRank: null, issues: [] });
  });

  it('nil rank, int ts, bigint ts', () => {
    expect(decodeEventBatch(pack([42, [], null])).ts).toBe(42);
    expect(decodeEventBatch(pack([42, [], null])).dataParallelRank).toBeNull();
    expect(decodeEventBatch(pack([1700000000n, [], 0n])).ts).toBe(1700000000);
    expect(decodeEventBatch(pack([1700000000n, [], 0n])).dataParallelRank).toBe(0);
  });

  it('map batch', () => {
    const batch = decodeEventBatch(pack({ ts: 2.25, events: [{ type: 'AllBlocksCleared' }], data_parallel_rank: 1 }));
    expect(batch).toStrictEqual({ ts: 2.25, events: [{ type: 'AllBlocksCleared' }], dataParallelRank: 1, issues: [] });
    expect(decodeEventBatch(pack({ ts: 2.25, events: [] })).dataParallelRank).toBeNull();
  });

  it('positions after the rank are ignored', () => {
    expect(decodeEventBatch(pack([1, [], 2, 'future'])).dataParallelRank).toBe(2);
  });
});

describe('BlockStored, array form (vLLM ≤ 0.22)', () => {
  it('decodes the four required fields; absent trailing fields take their defaults', () => {
    const batch = decodeEventBatch(pack([0, [['BlockStored', [1, 2n], null, [10, 11, 12, 13], 2]]]));
    expect(batch.events).toStrictEqual([
      stored({ blockHashes: new BigUint64Array([1n, 2n]), tokenIds: new Uint32Array([10, 11, 12, 13]), blockSize: 2 }),
    ]);
  });

  it('reads every position in declaration order (locality 12, ownership 13, session_id 14) and ignores positions past the last known one', () => {
    const event = [
      'BlockStored',
      [18446744073709551615n, -1n],
      9223372036854775808n,
      [0, 4294967295],
      1,
      7,
      'cpu',
      'my-lora',
      [null, []],
      2,
      'sliding_window',
      4096,
      'LOCAL',
      'cpu-tier-1',
      'session-a',
      { nested: true },
    ];
    expect(decodeEventBatch(pack([0, [event]])).events).toStrictEqual([
      stored({
        blockHashes: new BigUint64Array([18446744073709551615n, 18446744073709551615n]),
        parentBlockHash: 9223372036854775808n,
        tokenIds: new Uint32Array([0, 4294967295]),
        blockSize: 1,
        loraId: 7,
        medium: 'CPU',
        loraName: 'my-lora',
        extraKeys: [null, null],
        groupIdx: 2,
        kvCacheSpecKind: 'sliding_window',
        kvCacheSpecSlidingWindow: 4096,
        locality: 'LOCAL',
        ownership: 'cpu-tier-1',
      }),
    ]);
  });

  it('nil in an optional position means the default', () => {
    const event = ['BlockStored', [5], 4, [], 0, null, null, null, null, null, null, null];
    expect(decodeEventBatch(pack([0, [event]])).events).toStrictEqual([
      stored({ blockHashes: new BigUint64Array([5n]), parentBlockHash: 4n }),
    ]);
  });
});

describe('BlockStored, map form (vLLM ≥ 0.23)', () => {
  it('omitted defaults, locality/ownership read, session_id and unknown keys ignored', () => {
    const event = {
      type: 'BlockStored',
      block_hashes: [9223372036854775808n],
      parent_block_hash: null,
      token_ids: [1, 2, 3],
      block_size: 3,
      locality: 'local',
      ownership: 'shared',
      session_id: 'abc',
      some_future_key: [1, 2, 3],
    };
    expect(decodeEventBatch(pack([0, [event], null])).events).toStrictEqual([
      stored({
        blockHashes: new BigUint64Array([9223372036854775808n]),
        tokenIds: new Uint32Array([1, 2, 3]),
        blockSize: 3,
        locality: 'LOCAL',
        ownership: 'shared',
      }),
    ]);
  });

  it('all fields by name, in any key order', () => {
    const event = {
      kv_cache_spec_sliding_window: 128,
      kv_cache_spec_kind: 'full_attention',
      group_idx: 1,
      extra_keys: [[['img', 0]]],
      lora_name: 'l',
      medium: 'fs',
      lora_id: 2,
      block_size: 16,
      token_ids: [],
      parent_block_hash: -5n,
      block_hashes: [Uint8Array.from([0xab, 0xcd])],
      type: 'BlockStored',
    };
    expect(decodeEventBatch(pack([0, [event]])).events).toStrictEqual([
      stored({
        blockHashes: new BigUint64Array([0xabcdn]),
        parentBlockHash: 18446744073709551611n,
        blockSize: 16,
        loraId: 2,
        medium: 'FS',
        loraName: 'l',
        extraKeys: [[{ kind: 'mm', identifier: 'img', offset: 0 }]],
        groupIdx: 1,
        kvCacheSpecKind: 'full_attention',
        kvCacheSpecSlidingWindow: 128,
      }),
    ]);
  });
});

describe('extra_keys', () => {
  const decodeExtras = (extraKeys: unknown[], hashes: unknown[]) =>
    decodeEventBatch(pack([0, [['BlockStored', hashes, null, [], 0, null, null, 'sql-lora', extraKeys]]]));

  it('classifies every item shape, in wire order', () => {
    const embeds = new Uint8Array(32);
    for (let i = 0; i < 32; i++) embeds[i] = 255 - i;
    const batch = decodeExtras(
      [
        ['sql-lora', ['img-1', -7], ['img-2', 9007199254740991n], 'salt'],
        ['old-style-identifier', 3],
        [embeds],
        null,
        [],
      ],
      [1, 2, 3, 4, 5],
    );
    expect(batch.issues).toStrictEqual([]);
    expect((batch.events[0] as BlockStoredEvent).extraKeys).toStrictEqual([
      [
        { kind: 'string', value: 'sql-lora' },
        { kind: 'mm', identifier: 'img-1', offset: -7 },
        { kind: 'mm', identifier: 'img-2', offset: 9007199254740991 },
        { kind: 'string', value: 'salt' },
      ],
      [
        { kind: 'string', value: 'old-style-identifier' },
        { kind: 'lora-id', id: 3 },
      ],
      [{ kind: 'embeds', hex: 'fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0efeeedecebeae9e8e7e6e5e4e3e2e1e0' }],
      null,
      null,
    ]);
  });

  it('one entry per block, else the event is rejected', () => {
    const batch = decodeExtras([null], [1, 2]);
    expect(batch.events).toStrictEqual([]);
    expect(batch.issues).toStrictEqual([
      {
        reason: 'bad_extra_keys',
        eventIndex: 0,
        field: 'events[0].extra_keys',
        message: 'expected 2 entries (one per block), got 1',
      },
    ]);
  });

  it('rejects unknown item shapes with the item path', () => {
    const cases: [unknown[], string, string][] = [
      [[['a', { x: 1 }]], 'events[0].extra_keys[0][1]', 'expected [string, int], string, int or bytes, got map'],
      [
        [['a', ['b', 1, 2]]],
        'events[0].extra_keys[0][1]',
        'expected [string, int], string, int or bytes, got array of 3',
      ],
      [[[[1, 2]]], 'events[0].extra_keys[0][0]', 'expected [string, int], string, int or bytes, got array of 2'],
      [[[['img', 'x']]], 'events[0].extra_keys[0][0][1]', 'expected int offset, got string'],
      [[[['img', 0.5]]], 'events[0].extra_keys[0][0][1]', 'expected int offset, got float (0.5)'],
      [[[true]], 'events[0].extra_keys[0][0]', 'expected [string, int], string, int or bytes, got bool'],
      [[[1n << 60n]], 'events[0].extra_keys[0][0]', 'expected int LoRA id, got int (1152921504606846976)'],
      [['abc'], 'events[0].extra_keys[0]', 'expected array or nil, got string'],
    ];
    for (const [extraKeys, field, message] of cases) {
      expect(decodeExtras(extraKeys, [1]).issues).toStrictEqual([
        { reason: 'bad_extra_keys', eventIndex: 0, field, message },
      ]);
    }
    const notAList = decodeEventBatch(
      pack([
        0,
        [
          {
            type: 'BlockStored',
            block_hashes: [1],
            parent_block_hash: null,
            token_ids: [],
            block_size: 0,
            extra_keys: 'x',
          },
        ],
      ]),
    );
    expect(notAList.issues).toStrictEqual([
      {
        reason: 'bad_extra_keys',
        eventIndex: 0,
        field: 'events[0].extra_keys',
        message: 'expected array or nil, got string',
      },
    ]);
  });
});

describe('BlockRemoved and AllBlocksCleared', () => {
  it('BlockRemoved with and without medium and group', () => {
    const batch = decodeEventBatch(
      pack([
        0,
        [
          ['BlockRemoved', [18446744073709551615n]],
          ['BlockRemoved', [1, 2], 'cpu_pinned', 3, 'local', 'tier-2', 'past-the-last'],
          { type: 'BlockRemoved', block_hashes: [-1], medium: 'STORAGE', locality: 'REMOTE', ownership: 'y' },
          { type: 'BlockRemoved', block_hashes: [7], medium: 'CPU', group_idx: 0 },
        ],
      ]),
    );
    expect(batch.issues).toStrictEqual([]);
    expect(batch.events).toStrictEqual([
      { type: 'BlockRemoved', blockHashes: new BigUint64Array([18446744073709551615n]), medium: 'GPU', groupIdx: null },
      {
        type: 'BlockRemoved',
        blockHashes: new BigUint64Array([1n, 2n]),
        medium: 'CPU_PINNED',
        groupIdx: 3,
        locality: 'LOCAL',
        ownership: 'tier-2',
      },
      {
        type: 'BlockRemoved',
        blockHashes: new BigUint64Array([18446744073709551615n]),
        medium: 'STORAGE_REMOTE',
        groupIdx: null,
        locality: 'REMOTE',
        ownership: 'y',
      },
      { type: 'BlockRemoved', blockHashes: new BigUint64Array([7n]), medium: 'CPU', groupIdx: 0 },
    ]);
  });

  it('AllBlocksCleared in both forms', () => {
    const batch = decodeEventBatch(
      pack([0, [['AllBlocksCleared'], { type: 'AllBlocksCleared' }, ['AllBlocksCleared', 'x']]]),
    );
    expect(batch.events).toStrictEqual([
      { type: 'AllBlocksCleared' },
      { type: 'AllBlocksCleared' },
      { type: 'AllBlocksCleared' },
    ]);
  });

  it('an unknown tag is skipped and counted; the rest of the batch applies', () => {
    const batch = decodeEventBatch(
      pack([
        0,
        [['BlockRemoved', [1]], ['BlockInactive', [2]], { type: 'BlockTransferred', x: 1 }, ['BlockRemoved', [3]]],
      ]),
    );
    expect(batch.events).toStrictEqual([
      { type: 'BlockRemoved', blockHashes: new BigUint64Array([1n]), medium: 'GPU', groupIdx: null },
      { type: 'BlockRemoved', blockHashes: new BigUint64Array([3n]), medium: 'GPU', groupIdx: null },
    ]);
    expect(batch.issues).toStrictEqual([
      { reason: 'unknown_tag', eventIndex: 1, field: 'events[1].type', message: 'unknown event tag "BlockInactive"' },
      {
        reason: 'unknown_tag',
        eventIndex: 2,
        field: 'events[2].type',
        message: 'unknown event tag "BlockTransferred"',
      },
    ]);
  });
});
