/**
 * Decoded KV-cache events, normalised across every vLLM wire version (and SGLang). Produced by the decoder
 * (decode/), consumed by ingest/. Hashes are engine keys normalised to uint64 (spec/vllm-kv-events.md §2).
 */

/** One classified element of a block's `extra_keys` list (spec/vllm-kv-events.md §3), in wire order. */
export type ExtraKeyItem =
  /** vLLM ≥ 0.19: `[identifier, item_offset - block_start]` (the offset may be negative). */
  | { kind: 'mm'; identifier: string; offset: number }
  /** A bare string: LoRA name (when equal to the event's lora_name), a ≤ 0.18 multimodal identifier, or cache_salt. */
  | { kind: 'string'; value: string }
  /** Very old vLLM: the LoRA int id. */
  | { kind: 'lora-id'; id: number }
  /** Prompt-embeddings digest (raw bytes), carried as lowercase hex. */
  | { kind: 'embeds'; hex: string };

export interface BlockStoredEvent {
  type: 'BlockStored';
  /** Engine keys, chain order, normalised to uint64. */
  blockHashes: BigUint64Array;
  /** Engine key of the block before blockHashes[0]; null = start of a sequence. */
  parentBlockHash: bigint | null;
  /** Token ids of the stored blocks; may be empty (offload placeholders). */
  tokenIds: Uint32Array;
  /** Engine tokens per block for this event; 0 for offload placeholders. */
  blockSize: number;
  loraId: number | null;
  /**
   * Index tier: the wire medium upper-cased (`GPU` when nil), suffixed `_REMOTE` when `locality` is REMOTE
   * (decode/placement.ts) so that another pod's storage is never credited as this one's.
   */
  medium: string;
  loraName: string | null;
  /** One entry per block (null = plain block), or null when the event carries none. */
  extraKeys: (ExtraKeyItem[] | null)[] | null;
  groupIdx: number | null;
  kvCacheSpecKind: string | null;
  kvCacheSpecSlidingWindow: number | null;
  /** SGLang only: the request's cache salt (vLLM carries it inside extra_keys). */
  cacheSalt: string | null;
  /**
   * vLLM ≥ 0.26: LOCAL / REMOTE relative to the publisher; absent = unspecified. The three fields below are set only
   * when the wire carries them, so the common event keeps one object shape (and older fixtures compare equal).
   */
  locality?: 'LOCAL' | 'REMOTE';
  /** vLLM: the secondary offloading tier that emitted the event, if one did. */
  ownership?: string;
  /**
   * SGLang speculative decoding sent `token_ids` as pairs (decode/token-pairs.ts): the token after the last stored
   * position, which the engine keyed that position with.
   */
  bigramLookahead?: number;
}

export interface BlockRemovedEvent {
  type: 'BlockRemoved';
  blockHashes: BigUint64Array;
  /** Index tier, as for BlockStoredEvent.medium (a REMOTE removal leaves the `_REMOTE` tier). */
  medium: string;
  groupIdx: number | null;
  /** As on BlockStoredEvent: set only when the wire carries them. */
  locality?: 'LOCAL' | 'REMOTE';
  ownership?: string;
}

export interface AllBlocksClearedEvent {
  type: 'AllBlocksCleared';
}

export type KvEvent = BlockStoredEvent | BlockRemovedEvent | AllBlocksClearedEvent;

/** Why an event (or a whole payload) was rejected: a stable code for metrics plus a precise message. */
export interface DecodeIssue {
  /** Stable reason code, e.g. `bad_field_type`, `unknown_tag`, `bad_batch`. */
  reason: string;
  /** Index of the event in the batch, or -1 for the batch itself. */
  eventIndex: number;
  /** Field path, e.g. `events[3].block_hashes[2]`. */
  field: string;
  message: string;
}

export interface EventBatch {
  /** Publisher timestamp, seconds since the epoch (float). */
  ts: number;
  events: KvEvent[];
  /** vLLM data-parallel rank (SGLang: attn_dp_rank); null when absent. */
  dataParallelRank: number | null;
  /** Events that were skipped: unknown tags and malformed events. The rest of the batch still applies. */
  issues: DecodeIssue[];
  /** Skipped events past the first 1000 (decode/batch.ts MAX_LISTED_ISSUES), counted by reason only; absent when none. */
  unlistedIssues?: Record<string, number>;
}
