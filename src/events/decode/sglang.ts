import type { AllBlocksClearedEvent, BlockRemovedEvent, BlockStoredEvent, KvEvent } from '../types.js';
import { FieldError } from './errors.js';
import { pick, readEventTokens, readMedium, readNonNegativeInt, readOptionalInt, requirePresent } from './fields.js';
import { readHashList, readOptionalHash } from './hash.js';
import { fieldPath } from './paths.js';
import { unknownTag } from './tags.js';
import { expected, isWireMap, type WireMap } from './wire-values.js';

/**
 * SGLang events (spec/vllm-kv-events.md §5): BlockStored is `block_hashes, parent_block_hash, token_ids,
 * block_size, lora_id, medium, cache_salt, session_id`; no lora_name, extra_keys or KV-group fields.
 * SGLang's own `BlockStoredWithMetadata` puts a `{cache_salt}` struct (a map) where the spec has the bare
 * string, under the key `metadata` in map form; both are accepted. session_id is not needed and ignored.
 * With EAGLE-family speculative decoding `token_ids` come as pairs (token-pairs.ts).
 */

function readCacheSalt(value: unknown, ev: number, name: string): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (isWireMap(value)) {
    const salt = value.cache_salt;
    if (salt === null || salt === undefined || typeof salt === 'string') return salt ?? null;
    throw new FieldError('bad_field_type', fieldPath(ev, `${name}.cache_salt`), expected('string or nil', salt));
  }
  throw new FieldError('bad_field_type', fieldPath(ev, name), expected('string, {cache_salt} map or nil', value));
}

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
  const parentBlockHash = readOptionalHash(parentRaw, ev, 'parent_block_hash');
  const tokens = readEventTokens(tokensRaw, ev, 'token_ids');
  const blockSize = readNonNegativeInt(sizeRaw, ev, 'block_size');
  const loraId = readOptionalInt(pick(body, isArray, 5, 'lora_id'), ev, 'lora_id');
  const medium = readMedium(pick(body, isArray, 6, 'medium'), ev, 'medium');
  const saltRaw = pick(body, isArray, 7, 'cache_salt');
  const cacheSalt =
    saltRaw === undefined && !isArray
      ? readCacheSalt((body as WireMap).metadata, ev, 'metadata')
      : readCacheSalt(saltRaw, ev, 'cache_salt');
  // Same property order as the vLLM decoder's events, so consumers see one object shape.
  const event: BlockStoredEvent = {
    type: 'BlockStored',
    blockHashes,
    parentBlockHash,
    tokenIds: tokens.tokens,
    blockSize,
    loraId,
    medium,
    loraName: null,
    extraKeys: null,
    groupIdx: null,
    kvCacheSpecKind: null,
    kvCacheSpecSlidingWindow: null,
    cacheSalt,
  };
  if (tokens.lookahead !== null) event.bigramLookahead = tokens.lookahead;
  return event;
}

function blockRemoved(body: unknown[] | WireMap, isArray: boolean, ev: number): BlockRemovedEvent {
  const hashesRaw = pick(body, isArray, 1, 'block_hashes');
  requirePresent(hashesRaw, ev, 'block_hashes');
  return {
    type: 'BlockRemoved',
    blockHashes: readHashList(hashesRaw, ev, 'block_hashes'),
    medium: readMedium(pick(body, isArray, 2, 'medium'), ev, 'medium'),
    groupIdx: null,
  };
}

export function decodeSglangEvent(tag: string, body: unknown[] | WireMap, isArray: boolean, ev: number): KvEvent {
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
