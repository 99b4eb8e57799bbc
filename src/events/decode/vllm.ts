import type { AllBlocksClearedEvent, BlockRemovedEvent, BlockStoredEvent, KvEvent } from '../types.js';
import { readExtraKeys } from './extra-keys.js';
import {
  pick,
  readMedium,
  readNonNegativeInt,
  readOptionalInt,
  readOptionalNonNegativeInt,
  readOptionalString,
  readTokenIds,
  requirePresent,
} from './fields.js';
import { readHashList, readOptionalHash } from './hash.js';
import { unknownTag } from './tags.js';
import type { WireMap } from './wire-values.js';

/**
 * vLLM events (spec/vllm-kv-events.md §2–3). Array positions are the struct's declaration order (tag at 0);
 * positions past the last known field and unknown map keys (locality, ownership, session_id, …) are ignored.
 * The first four BlockStored fields have no default in vLLM's struct, so they are on the wire in every version.
 */

function blockStored(body: unknown[] | WireMap, isArray: boolean, ev: number): BlockStoredEvent {
  const hashesRaw = pick(body, isArray, 1, 'block_hashes');
  const parentRaw = pick(body, isArray, 2, 'parent_block_hash');
  const tokensRaw = pick(body, isArray, 3, 'token_ids');
  const sizeRaw = pick(body, isArray, 4, 'block_size');
  requirePresent(hashesRaw, ev, 'block_hashes');
  requirePresent(parentRaw, ev, 'parent_block_hash');
  requirePresent(tokensRaw, ev, 'token_ids');
  requirePresent(sizeRaw, ev, 'block_size');
  const blockHashes = readHashList(hashesRaw, ev, 'block_hashes');
  return {
    type: 'BlockStored',
    blockHashes,
    parentBlockHash: readOptionalHash(parentRaw, ev, 'parent_block_hash'),
    tokenIds: readTokenIds(tokensRaw, ev, 'token_ids'),
    blockSize: readNonNegativeInt(sizeRaw, ev, 'block_size'),
    loraId: readOptionalInt(pick(body, isArray, 5, 'lora_id'), ev, 'lora_id'),
    medium: readMedium(pick(body, isArray, 6, 'medium'), ev, 'medium'),
    loraName: readOptionalString(pick(body, isArray, 7, 'lora_name'), ev, 'lora_name'),
    extraKeys: readExtraKeys(pick(body, isArray, 8, 'extra_keys'), blockHashes.length, ev),
    groupIdx: readOptionalNonNegativeInt(pick(body, isArray, 9, 'group_idx'), ev, 'group_idx'),
    kvCacheSpecKind: readOptionalString(pick(body, isArray, 10, 'kv_cache_spec_kind'), ev, 'kv_cache_spec_kind'),
    kvCacheSpecSlidingWindow: readOptionalInt(
      pick(body, isArray, 11, 'kv_cache_spec_sliding_window'),
      ev,
      'kv_cache_spec_sliding_window',
    ),
    cacheSalt: null,
  };
}

function blockRemoved(body: unknown[] | WireMap, isArray: boolean, ev: number): BlockRemovedEvent {
  const hashesRaw = pick(body, isArray, 1, 'block_hashes');
  requirePresent(hashesRaw, ev, 'block_hashes');
  return {
    type: 'BlockRemoved',
    blockHashes: readHashList(hashesRaw, ev, 'block_hashes'),
    medium: readMedium(pick(body, isArray, 2, 'medium'), ev, 'medium'),
    groupIdx: readOptionalNonNegativeInt(pick(body, isArray, 3, 'group_idx'), ev, 'group_idx'),
  };
}

export function decodeVllmEvent(tag: string, body: unknown[] | WireMap, isArray: boolean, ev: number): KvEvent {
  switch (tag) {
    case 'BlockStored':
      return blockStored(body, isArray, ev);
    case 'BlockRemoved':
      return blockRemoved(body, isArray, ev);
    case 'AllBlocksCleared':
      return { type: 'AllBlocksCleared' } satisfies AllBlocksClearedEvent;
    default:
      throw unknownTag(tag, ev);
  }
}
