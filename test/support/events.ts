import type { BlockRemovedEvent, BlockStoredEvent, ExtraKeyItem } from '../../src/events/types.js';

/** Builders for decoded events (what the decoder hands to ingest). */

/** A BlockStored event with every field at its wire default, overridden by `fields`. */
export function storedEvent(fields: Partial<BlockStoredEvent>): BlockStoredEvent {
  return {
    type: 'BlockStored',
    blockHashes: new BigUint64Array(0),
    parentBlockHash: null,
    tokenIds: new Uint32Array(0),
    blockSize: 0,
    loraId: null,
    medium: 'GPU',
    loraName: null,
    extraKeys: null,
    groupIdx: null,
    kvCacheSpecKind: null,
    kvCacheSpecSlidingWindow: null,
    cacheSalt: null,
    ...fields,
  };
}

export function stored(
  hashes: (number | bigint)[],
  parent: number | bigint | null,
  tokens: number[],
  blockSize: number,
  more: Partial<BlockStoredEvent> = {},
): BlockStoredEvent {
  return storedEvent({
    blockHashes: BigUint64Array.from(hashes.map(BigInt)),
    parentBlockHash: parent === null ? null : BigInt(parent),
    tokenIds: Uint32Array.from(tokens),
    blockSize,
    ...more,
  });
}

export function removed(hashes: (number | bigint)[], medium = 'GPU'): BlockRemovedEvent {
  return { type: 'BlockRemoved', blockHashes: BigUint64Array.from(hashes.map(BigInt)), medium, groupIdx: null };
}

export function placeholder(hashes: (number | bigint)[], medium: string): BlockStoredEvent {
  return stored(hashes, null, [], 0, { medium });
}

export const mm = (identifier: string, offset: number): ExtraKeyItem => ({ kind: 'mm', identifier, offset });
export const str = (value: string): ExtraKeyItem => ({ kind: 'string', value });

/** Tokens 1..n (or from `start`). */
export function seq(n: number, start = 1): number[] {
  return Array.from({ length: n }, (_, i) => start + i);
}
