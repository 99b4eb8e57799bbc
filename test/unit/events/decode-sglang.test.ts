import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { decodeEventBatch } from '../../../src/events/decode/index.js';
import type { BlockStoredEvent } from '../../../src/events/types.js';
import { storedEvent } from '../../support/events.js';

const pack = (value: unknown) => encode(value, { useBigInt64: true });

const sglangStored = storedEvent;

describe('SGLang', () => {
  it('array form: signed int64 hashes, cache_salt and session_id positions, attn_dp_rank', () => {
    const batch = decodeEventBatch(
      pack([
        10.5,
        [
          ['BlockStored', [-9223372036854775808n], -1n, [1, 2, 3, 4], 4, null, 'DISK', 'salt-9', 'session-1'],
          ['BlockStored', [3], null, [5], 1, 2],
          ['BlockRemoved', [-9223372036854775808n], 'EXTERNAL'],
          ['BlockRemoved', [3]],
          ['AllBlocksCleared'],
        ],
        1,
      ]),
      'sglang',
    );
    expect(batch.issues).toStrictEqual([]);
    expect(batch.dataParallelRank).toBe(1);
    expect(batch.events).toStrictEqual([
      sglangStored({
        blockHashes: new BigUint64Array([9223372036854775808n]),
        parentBlockHash: 18446744073709551615n,
        tokenIds: new Uint32Array([1, 2, 3, 4]),
        blockSize: 4,
        medium: 'DISK',
        cacheSalt: 'salt-9',
      }),
      sglangStored({ blockHashes: new BigUint64Array([3n]), tokenIds: new Uint32Array([5]), blockSize: 1, loraId: 2 }),
      {
        type: 'BlockRemoved',
        blockHashes: new BigUint64Array([9223372036854775808n]),
        medium: 'EXTERNAL',
        groupIdx: null,
      },
      { type: 'BlockRemoved', blockHashes: new BigUint64Array([3n]), medium: 'GPU', groupIdx: null },
      { type: 'AllBlocksCleared' },
    ]);
  });

  it('map form: cache_salt by name, or inside the metadata struct; session_id ignored', () => {
    const batch = decodeEventBatch(
      pack({
        ts: 3,
        attn_dp_rank: 0,
        events: [
          {
            type: 'BlockStored',
            block_hashes: [77],
            parent_block_hash: 76,
            token_ids: [9, 9],
            block_size: 2,
            lora_id: null,
            medium: 'cpu_pinned',
            cache_salt: 'tenant',
            session_id: 's',
          },
          {
            type: 'BlockStored',
            block_hashes: [78],
            parent_block_hash: 77,
            token_ids: [],
            block_size: 0,
            metadata: { cache_salt: 'm' },
          },
          { type: 'BlockRemoved', block_hashes: [77] },
        ],
      }),
      'sglang',
    );
    expect(batch.issues).toStrictEqual([]);
    expect(batch.dataParallelRank).toBe(0);
    expect(batch.events).toStrictEqual([
      sglangStored({
        blockHashes: new BigUint64Array([77n]),
        parentBlockHash: 76n,
        tokenIds: new Uint32Array([9, 9]),
        blockSize: 2,
        medium: 'CPU_PINNED',
        cacheSalt: 'tenant',
      }),
      sglangStored({ blockHashes: new BigUint64Array([78n]), parentBlockHash: 77n, cacheSalt: 'm' }),
      { type: 'BlockRemoved', blockHashes: new BigUint64Array([77n]), medium: 'GPU', groupIdx: null },
    ]);
  });

  it('does not read vLLM-only fields: position 7 is cache_salt, not lora_name', () => {
    const batch = decodeEventBatch(
      pack([0, [['BlockStored', [1], null, [], 0, null, null, 'salt', 'sess', [[1]]]]]),
      'sglang',
    );
    expect((batch.events[0] as BlockStoredEvent).loraName).toBeNull();
    expect((batch.events[0] as BlockStoredEvent).extraKeys).toBeNull();
    expect((batch.events[0] as BlockStoredEvent).cacheSalt).toBe('salt');
  });

  it('rejects a bad cache_salt with its path', () => {
    const batch = decodeEventBatch(
      pack([
        0,
        [
          ['BlockStored', [1], null, [], 0, null, null, 5],
          {
            type: 'BlockStored',
            block_hashes: [1],
            parent_block_hash: null,
            token_ids: [],
            block_size: 0,
            metadata: { cache_salt: 1 },
          },
        ],
      ]),
      'sglang',
    );
    expect(batch.issues).toStrictEqual([
      {
        reason: 'bad_field_type',
        eventIndex: 0,
        field: 'events[0].cache_salt',
        message: 'expected string, {cache_salt} map or nil, got int (5)',
      },
      {
        reason: 'bad_field_type',
        eventIndex: 1,
        field: 'events[1].metadata.cache_salt',
        message: 'expected string or nil, got int (1)',
      },
    ]);
  });

  it('the rank field of SGLang batches is attn_dp_rank', () => {
    expect(() => decodeEventBatch(pack([0, [], 'x']), 'sglang')).toThrow(
      expect.objectContaining({ reason: 'bad_batch', field: 'attn_dp_rank' }),
    );
  });
});
