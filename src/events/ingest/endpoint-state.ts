import { EngineKeyMap } from './engine-key-map.js';
import { OffloadChunks } from './offload-chunks.js';
import { SpanTable } from './spans.js';
import { StoreAges, type StoreBound } from './store-bound.js';

/**
 * What ingest keeps per endpoint: the engine-key bridge, the canonical blocks made of several engine blocks, the
 * lower-tier chunks (for key-only removals) and, when the endpoint has a store bound, its store order.
 */
export class EndpointState {
  readonly map: EngineKeyMap;
  readonly spans: SpanTable;
  readonly chunks = new OffloadChunks();
  ages: StoreAges | null = null;

  constructor(trackAnchors: boolean, bound: StoreBound | null, now: number) {
    this.map = new EngineKeyMap(trackAnchors);
    this.spans = new SpanTable(trackAnchors);
    this.setBound(bound, now);
  }

  setBound(bound: StoreBound | null, now: number): void {
    const active = bound !== null && (bound.maxBlocks !== null || bound.ttlMs !== null);
    this.ages = active ? new StoreAges(bound) : null;
    // Keys already held start their age now (their store times were not kept).
    if (this.ages) this.map.forEachKey((lo, hi) => this.ages!.touch(lo, hi, now));
  }

  get byteLength(): number {
    return this.map.byteLength + this.spans.byteLength + this.chunks.byteLength + (this.ages?.byteLength ?? 0);
  }

  clear(): void {
    this.map.clear();
    this.spans.clear();
    this.chunks.clear();
    this.ages?.clear();
  }
}
