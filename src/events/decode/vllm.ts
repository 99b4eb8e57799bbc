import type { AllBlocksClearedEvent, BlockRemovedEvent, BlockStoredEvent, KvEvent } from '../types.js';
import { readExtraKeys } from './extra-keys.js';
import {
  pick,
  readMedium,
  readNonNegativeInt,
  readOptionalInt,
  readOptionalNonNegativeInt,
  readEventTokens,
  readOptionalString,
  requirePresent,
} from './fields.js';
import { readHashList, readOptionalHash } from './hash.js';
import { placementTier, readLocality } from './placement.js';
import { readSglangMetadata, refuseMultimodalKeys } from './publisher-extras.js';
import { unknownTag } from './tags.js';
import { isWireMap, type WireMap } from './wire-values.js';

/**
 * vLLM events (spec/vllm-kv-events.md §2–3, §6). Array positions are the struct's declaration order (tag at 0):
 * BlockStored `…, group_idx 9, kv_cache_spec_kind 10, kv_cache_spec_sliding_window 11, locality 12, ownership 13,
 * session_id 14`; BlockRemoved `block_hashes 1, medium 2, group_idx 3, locality 4, ownership 5`
 * (vllm/distributed/kv_events.py). Positions past the last known field and unknown map keys are ignored;
 * `session_id` is request context and is not read. The first four BlockStored fields have no default in vLLM's
 * struct, so they are on the wire in every version. Other publishers on this wire (publisher-extras.ts): SGLang's
 * metadata map at position 7 and TensorRT-LLM's `mm_keys`.
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
  const tokens = readEventTokens(tokensRaw, ev, 'token_ids');
  const locality = readLocality(pick(body, isArray, 12, 'locality'), ev, 'locality');
  // SGLang ≥ 0.5.18 puts its metadata map where vLLM has lora_name (array form) or under `metadata` (map form).
  const loraRaw = pick(body, isArray, 7, 'lora_name');
  const metadataRaw = isArray ? loraRaw : (body as WireMap).metadata;
  const metadata = isWireMap(metadataRaw)
    ? readSglangMetadata(metadataRaw, ev, isArray ? 'lora_name' : 'metadata')
    : null;
  if (!isArray) refuseMultimodalKeys((body as WireMap).mm_keys, ev);
  const event: BlockStoredEvent = {
    type: 'BlockStored',
    blockHashes,
    parentBlockHash: readOptionalHash(parentRaw, ev, 'parent_block_hash'),
    tokenIds: tokens.tokens,
    blockSize: readNonNegativeInt(sizeRaw, ev, 'block_size'),
    loraId: readOptionalInt(pick(body, isArray, 5, 'lora_id'), ev, 'lora_id'),
    medium: placementTier(readMedium(pick(body, isArray, 6, 'medium'), ev, 'medium'), locality),
    loraName: isArray && metadata !== null ? null : readOptionalString(loraRaw, ev, 'lora_name'),
    extraKeys: readExtraKeys(pick(body, isArray, 8, 'extra_keys'), blockHashes.length, ev),
    groupIdx: readOptionalNonNegativeInt(pick(body, isArray, 9, 'group_idx'), ev, 'group_idx'),
    kvCacheSpecKind: readOptionalString(pick(body, isArray, 10, 'kv_cache_spec_kind'), ev, 'kv_cache_spec_kind'),
    kvCacheSpecSlidingWindow: readOptionalInt(
      pick(body, isArray, 11, 'kv_cache_spec_sliding_window'),
      ev,
      'kv_cache_spec_sliding_window',
    ),
    cacheSalt: metadata?.cacheSalt ?? null,
  };
  const ownership = readOptionalString(pick(body, isArray, 13, 'ownership'), ev, 'ownership');
  if (locality !== null) event.locality = locality;
  if (ownership !== null) event.ownership = ownership;
  if (tokens.lookahead !== null) event.bigramLookahead = tokens.lookahead;
  return event;
}

function blockRemoved(body: unknown[] | WireMap, isArray: boolean, ev: number): BlockRemovedEvent {
  const hashesRaw = pick(body, isArray, 1, 'block_hashes');
  requirePresent(hashesRaw, ev, 'block_hashes');
  const locality = readLocality(pick(body, isArray, 4, 'locality'), ev, 'locality');
  const event: BlockRemovedEvent = {
    type: 'BlockRemoved',
    blockHashes: readHashList(hashesRaw, ev, 'block_hashes'),
    medium: placementTier(readMedium(pick(body, isArray, 2, 'medium'), ev, 'medium'), locality),
    groupIdx: readOptionalNonNegativeInt(pick(body, isArray, 3, 'group_idx'), ev, 'group_idx'),
  };
  const ownership = readOptionalString(pick(body, isArray, 5, 'ownership'), ev, 'ownership');
  if (locality !== null) event.locality = locality;
  if (ownership !== null) event.ownership = ownership;
  return event;
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
