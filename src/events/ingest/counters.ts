import type { CounterFamily } from '../../common/index.js';

/** What ingest did and skipped, by reason. Plain numbers: metrics read them, tests assert them. */
export class IngestCounters {
  batches = 0;
  storedEvents = 0;
  removedEvents = 0;
  clearedEvents = 0;
  /** Engine blocks whose store was applied (new engine keys and repeated stores alike). */
  blocksStored = 0;
  /** Engine blocks whose removal was applied. */
  blocksRemoved = 0;
  /** Stores of an engine key already held on that tier (idempotent re-emits, duplicate blocks). */
  duplicateStores = 0;
  /** Engine blocks skipped because their parent engine key is unknown (the chain cannot be placed). */
  parentUnknown = 0;
  /** Offload-tier placeholder stores (no tokens) of engine keys never stored with tokens. */
  offloadUnknown = 0;
  /** Removals of engine keys (or tiers) not held. */
  removedUnknown = 0;
  /**
   * Engine blocks of stores with group_idx > 0 and no kv_cache_spec_kind: a KV-cache group vLLM could not describe,
   * refused (as llm-d and Dynamo do).
   */
  groupWithoutKind = 0;
  /** Engine blocks dropped (on every tier) by an endpoint's store bound: over its max blocks, or past its TTL. */
  boundDrops = 0;
  /** Key-only removals of lower-tier chunks (one removal = one chunk, all its blocks released). */
  keyOnlyRemovals = 0;
  /** Store events whose token count is not block_size × blocks. */
  tokenCountMismatch = 0;
  /** Engine blocks of KV-cache groups that are not indexed, by kv_cache_spec_kind. */
  readonly skippedByKind = new Map<string, number>();
  /** Request keys added to / removed from the index (after engine-key counting). */
  requestKeysAdded = 0;
  requestKeysRemoved = 0;

  skipKind(kind: string, blocks: number): void {
    this.skippedByKind.set(kind, (this.skippedByKind.get(kind) ?? 0) + blocks);
  }
}

/** The ingestor's counts on /metrics (registered by service/write-path-metrics.ts). */
export const INGEST_COUNTER_FAMILIES: readonly CounterFamily<IngestCounters>[] = [
  {
    name: 'events_total',
    help: 'Events applied, by type',
    label: 'type',
    read: (c) => ({ BlockStored: c.storedEvents, BlockRemoved: c.removedEvents, AllBlocksCleared: c.clearedEvents }),
  },
  {
    name: 'blocks_total',
    help: 'Engine blocks applied, by operation',
    label: 'op',
    read: (c) => ({ stored: c.blocksStored, removed: c.blocksRemoved }),
  },
  {
    name: 'store_bound_dropped_blocks_total',
    help: 'Engine blocks dropped by endpoint store bounds (max blocks or TTL)',
    label: null,
    read: (c) => ({ '': c.boundDrops }),
  },
  {
    name: 'key_only_chunk_removals_total',
    help: 'Lower-tier chunks removed by their key alone (all their blocks released)',
    label: null,
    read: (c) => ({ '': c.keyOnlyRemovals }),
  },
  {
    name: 'ingest_skipped_blocks_total',
    help: 'Engine blocks not indexed, by reason',
    label: 'reason',
    read: (c) => ({
      parent_unknown: c.parentUnknown,
      offload_unknown: c.offloadUnknown,
      removed_unknown: c.removedUnknown,
      group_without_kind: c.groupWithoutKind,
      ...Object.fromEntries([...c.skippedByKind].map(([kind, n]) => [`kind_${kind}`, n])),
    }),
  },
];
