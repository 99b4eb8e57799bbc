import { describe, expect, it } from 'vitest';
import { decodeEventBatch } from '../../../src/events/decode/index.js';

/**
 * Payloads written by msgspec 0.22 (the library vLLM and SGLang publish with), from structs declared like the
 * engines' own: vLLM ≤ 0.22 (array_like events), vLLM ≥ 0.23 (tagged-map events with omit_defaults, plus
 * locality/ownership/session_id) and SGLang (array_like, no omit_defaults, BlockStoredWithMetadata).
 */
const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));

const ARRAY_ERA = hex(
  '93cb41d999a660100000959cab426c6f636b53746f72656493cfffffffffffffffffcf8000000000000000cd3039c09c6465666768696a6b6c6d6e6f04c0a3475055c0c0c0c0c09cab426c6f636b53746f72656492ff07cd30399801020304050607080403a3637075a873716c2d6c6f72619293a873716c2d6c6f726192a5696d672d61fda673616c742d31c0c0c0c094ac426c6f636b52656d6f76656491cd3039a3435055c094ac426c6f636b52656d6f7665649107c0c091b0416c6c426c6f636b73436c656172656401',
);
const MAP_ERA = hex(
  '93cb41d999a660600000948ca474797065ab426c6f636b53746f726564ac626c6f636b5f68617368657392c420b8c6f33f1780d30977c5e964f62e7959102a3694f1c28ae0834ab12f98a3dcb0c4100102030405060708090a0b0c0d0e0f10b1706172656e745f626c6f636b5f68617368c0a9746f6b656e5f696473dc00200909090909090909090909090909090909090909090909090909090909090909aa626c6f636b5f73697a6510a66d656469756da3475055aa65787472615f6b6579739291a96d6d2d686173682d3191c420804e6a0a978d599015792e2aed8279eefe7a9ca6b81f572c31da48fe2d2c0fa9a967726f75705f69647800b26b765f63616368655f737065635f6b696e64ae66756c6c5f617474656e74696f6ea86c6f63616c697479a56c6f63616ca96f776e657273686970a56f776e6572aa73657373696f6e5f6964a3732d3186a474797065ab426c6f636b53746f726564ac626c6f636b5f68617368657391cf8000000000000005b1706172656e745f626c6f636b5f68617368fea9746f6b656e5f69647390aa626c6f636b5f73697a6500a66d656469756da753544f5241474583a474797065ac426c6f636b52656d6f766564ac626c6f636b5f68617368657391c420b8c6f33f1780d30977c5e964f62e7959102a3694f1c28ae0834ab12f98a3dcb0a86c6f63616c697479a672656d6f746581a474797065b0416c6c426c6f636b73436c6561726564c0',
);
const SGLANG = hex(
  '93cb41d999a6608000009397ab426c6f636b53746f72656491d3c000000000000000c092050602c0c098ab426c6f636b53746f726564912ad3c00000000000000092070802c0aa4350555f50494e4e454481aa63616368655f73616c74a874656e616e742d6193ac426c6f636b52656d6f766564912aa44449534b02',
);

const NULLS = { groupIdx: null, kvCacheSpecKind: null, kvCacheSpecSlidingWindow: null, cacheSalt: null };

describe('msgspec-written payloads', () => {
  it('vLLM ≤ 0.22 array-form events', () => {
    const batch = decodeEventBatch(ARRAY_ERA);
    expect(batch.ts).toBe(1718000000.25);
    expect(batch.dataParallelRank).toBe(1);
    expect(batch.issues).toEqual([]);
    expect(batch.events).toStrictEqual([
      {
        type: 'BlockStored',
        blockHashes: new BigUint64Array([18446744073709551615n, 9223372036854775808n, 12345n]),
        parentBlockHash: null,
        tokenIds: new Uint32Array([100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111]),
        blockSize: 4,
        loraId: null,
        medium: 'GPU',
        loraName: null,
        extraKeys: null,
        ...NULLS,
      },
      {
        type: 'BlockStored',
        blockHashes: new BigUint64Array([18446744073709551615n, 7n]),
        parentBlockHash: 12345n,
        tokenIds: new Uint32Array([1, 2, 3, 4, 5, 6, 7, 8]),
        blockSize: 4,
        loraId: 3,
        medium: 'CPU',
        loraName: 'sql-lora',
        extraKeys: [
          [
            { kind: 'string', value: 'sql-lora' },
            { kind: 'mm', identifier: 'img-a', offset: -3 },
            { kind: 'string', value: 'salt-1' },
          ],
          null,
        ],
        ...NULLS,
      },
      { type: 'BlockRemoved', blockHashes: new BigUint64Array([12345n]), medium: 'CPU', groupIdx: null },
      { type: 'BlockRemoved', blockHashes: new BigUint64Array([7n]), medium: 'GPU', groupIdx: null },
      { type: 'AllBlocksCleared' },
    ]);
  });

  it('vLLM ≥ 0.23 map-form events with bytes hashes, omitted defaults and unknown keys', () => {
    const batch = decodeEventBatch(MAP_ERA);
    expect(batch.ts).toBe(1718000001.5);
    expect(batch.dataParallelRank).toBeNull();
    expect(batch.issues).toEqual([]);
    // sha256("block-0") ends in 83 4a b1 2f 98 a3 dc b0; the 16-byte hash is 01..10, so its last 8 are 09..10.
    expect(batch.events).toStrictEqual([
      {
        type: 'BlockStored',
        blockHashes: new BigUint64Array([0x834ab12f98a3dcb0n, 0x090a0b0c0d0e0f10n]),
        parentBlockHash: null,
        tokenIds: new Uint32Array(32).fill(9),
        blockSize: 16,
        loraId: null,
        medium: 'GPU',
        loraName: null,
        extraKeys: [
          [{ kind: 'string', value: 'mm-hash-1' }],
          [{ kind: 'embeds', hex: '804e6a0a978d599015792e2aed8279eefe7a9ca6b81f572c31da48fe2d2c0fa9' }],
        ],
        groupIdx: 0,
        kvCacheSpecKind: 'full_attention',
        kvCacheSpecSlidingWindow: null,
        cacheSalt: null,
        // locality "local" is vLLM's LOCAL (case-insensitive); ownership kept as sent; session_id not read.
        locality: 'LOCAL',
        ownership: 'owner',
      },
      {
        type: 'BlockStored',
        blockHashes: new BigUint64Array([9223372036854775813n]),
        parentBlockHash: 18446744073709551614n,
        tokenIds: new Uint32Array(0),
        blockSize: 0,
        loraId: null,
        medium: 'STORAGE',
        loraName: null,
        extraKeys: null,
        ...NULLS,
      },
      // locality "remote": the removal is of the block's REMOTE tier (placement.ts), never of this pod's GPU copy.
      {
        type: 'BlockRemoved',
        blockHashes: new BigUint64Array([0x834ab12f98a3dcb0n]),
        medium: 'GPU_REMOTE',
        groupIdx: null,
        locality: 'REMOTE',
      },
      { type: 'AllBlocksCleared' },
    ]);
  });

  it('SGLang array form, including BlockStoredWithMetadata', () => {
    const batch = decodeEventBatch(SGLANG, 'sglang');
    expect(batch.ts).toBe(1718000002);
    expect(batch.dataParallelRank).toBe(2);
    expect(batch.issues).toEqual([]);
    const sglangStored = { loraId: null, loraName: null, extraKeys: null, ...NULLS };
    expect(batch.events).toStrictEqual([
      {
        type: 'BlockStored',
        // signed int64 -2^62 → 2^64 - 2^62
        blockHashes: new BigUint64Array([13835058055282163712n]),
        parentBlockHash: null,
        tokenIds: new Uint32Array([5, 6]),
        blockSize: 2,
        medium: 'GPU',
        ...sglangStored,
      },
      {
        type: 'BlockStored',
        blockHashes: new BigUint64Array([42n]),
        parentBlockHash: 13835058055282163712n,
        tokenIds: new Uint32Array([7, 8]),
        blockSize: 2,
        medium: 'CPU_PINNED',
        ...sglangStored,
        cacheSalt: 'tenant-a',
      },
      { type: 'BlockRemoved', blockHashes: new BigUint64Array([42n]), medium: 'DISK', groupIdx: null },
    ]);
  });
});
