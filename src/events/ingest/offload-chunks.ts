/**
 * Key-only offload removals (vLLM RFC vllm-project/vllm#49413; Dynamo normalises them in ai-dynamo/dynamo#11930):
 * the offloading connector stores a lower-tier chunk as one self-describing BlockStored (token ids included,
 * vllm-project/vllm#43468) listing every engine block of the chunk, and removes it with a BlockRemoved that carries
 * only the chunk key, i.e. the hash of the chunk's LAST block. Ingest remembers, per tier below GPU, each such
 * multi-block store's blocks under its last block, so that such a removal releases the whole chunk. A removal that
 * lists other blocks of the chunk too is block-wise and only ends the record. Placeholder stores (no tokens, the
 * older offload shape) are not chunks: their blocks are evicted and removed one by one.
 */
interface Chunk {
  members: BigUint64Array;
  /** Stores of this chunk not yet removed (a chunk stored twice needs two removals). */
  times: number;
}

export class OffloadChunks {
  /** tier id → last block's engine key → chunk. */
  private readonly byTier = new Map<number, Map<bigint, Chunk>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get byteLength(): number {
    let bytes = 0;
    for (const chunks of this.byTier.values()) for (const c of chunks.values()) bytes += 96 + c.members.byteLength;
    return bytes;
  }

  /** A store of `hashes` (chain order, ≥ 2) on a lower tier. */
  stored(tier: number, hashes: BigUint64Array): void {
    let chunks = this.byTier.get(tier);
    if (!chunks) this.byTier.set(tier, (chunks = new Map()));
    const last = hashes[hashes.length - 1];
    const known = chunks.get(last);
    if (known && known.members.length === hashes.length) known.times++;
    else {
      if (!known) this.count++;
      chunks.set(last, { members: hashes.slice(), times: 1 });
    }
  }

  /**
   * For a removal on `tier` naming `hash` (`inEvent` tells the event's other hashes): the chunk's blocks when this is a
   * key-only removal of a chunk (its other blocks are not in the event), else null. Either way the record of the
   * chunk is used up once.
   */
  keyOnly(tier: number, hash: bigint, inEvent: (key: bigint) => boolean): BigUint64Array | null {
    if (this.count === 0) return null;
    const chunks = this.byTier.get(tier);
    const chunk = chunks?.get(hash);
    if (!chunks || !chunk) return null;
    if (--chunk.times === 0) {
      chunks.delete(hash);
      this.count--;
    }
    for (const m of chunk.members) if (m !== hash && inEvent(m)) return null;
    return chunk.members;
  }

  /** The engine key left the bridge: chunks it ends are gone. */
  forget(hash: bigint): void {
    if (this.count === 0) return;
    for (const chunks of this.byTier.values()) if (chunks.delete(hash)) this.count--;
  }

  clear(): void {
    this.byTier.clear();
    this.count = 0;
  }
}
