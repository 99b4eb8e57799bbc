import { BlockPool, type SimBlock } from './block-pool.js';
import { engineBlockHash, hashToUint64 } from './engine-hash.js';
import type { SimEvent } from './encode.js';

/** A multimodal item in a request: its placeholder tokens occupy [offset, offset + length). */
export interface SimItem {
  identifier: string;
  offset: number;
  length: number;
}

export interface SimRequest {
  tokens: number[];
  loraName?: string | null;
  items?: readonly SimItem[];
}

export interface SimEngineOptions {
  blockSize: number;
  /** GPU blocks; the LRU evicts beyond it (memory pressure). */
  gpuBlocks: number;
  /** CPU offload blocks (0 = no offload tier). GPU victims are offloaded there before being removed. */
  cpuBlocks: number;
}

/**
 * One engine rank's prefix cache, faithful to what vLLM publishes: only full blocks, one BlockStored per request
 * step covering its newly cached blocks (parent = the block before, nil at the start), LRU eviction with one
 * BlockRemoved per block, offload to CPU as a placeholder store (no tokens, block_size 0) emitted before the GPU
 * removal, CPU hits loaded back and re-stored on GPU, AllBlocksCleared on a cache reset. Events accumulate until
 * takeEvents() (one engine step = one batch).
 */
export class SimEngine {
  readonly gpu: BlockPool;
  readonly cpu: BlockPool | null;
  private events: SimEvent[] = [];

  constructor(readonly options: SimEngineOptions) {
    this.gpu = new BlockPool(options.gpuBlocks);
    this.cpu = options.cpuBlocks > 0 ? new BlockPool(options.cpuBlocks) : null;
  }

  /** The blocks of a request (hash chain), without touching the cache. */
  blocksOf(req: SimRequest): SimBlock[] {
    const B = this.options.blockSize;
    const n = Math.floor(req.tokens.length / B);
    const out: SimBlock[] = [];
    let parent: Uint8Array | null = null;
    for (let i = 0; i < n; i++) {
      const tokens = req.tokens.slice(i * B, (i + 1) * B);
      const extra: (string | [string, number])[] = [];
      if (req.loraName) extra.push(req.loraName);
      for (const item of req.items ?? []) {
        if (item.offset < (i + 1) * B && item.offset + item.length > i * B)
          extra.push([item.identifier, item.offset - i * B]);
      }
      const extraOrNull = extra.length > 0 ? extra : null;
      const hash = engineBlockHash(parent, tokens, extraOrNull);
      out.push({ key: hashToUint64(hash), hash, parent, tokens, extra: extraOrNull, loraName: req.loraName ?? null });
      parent = hash;
    }
    return out;
  }

  /**
   * Serves a request: hits the cached prefix, loads/computes and stores the rest (at most what fits), evicting under
   * pressure. Blocks already resident past the first miss are touched, not stored twice; each run of newly stored
   * blocks is one BlockStored whose parent is the block before it. `known`: the request's blocksOf(), when the
   * caller has them already.
   */
  serve(req: SimRequest, known?: readonly SimBlock[]): void {
    const all = known ?? this.blocksOf(req);
    const blocks = all.slice(0, Math.min(all.length, this.gpu.capacity));
    const pinned = new Set(blocks.map((b) => b.key));
    let run: SimBlock[] = [];
    const flush = () => {
      if (run.length === 0) return;
      this.events.push({
        type: 'BlockStored',
        hashes: run.map((b) => b.hash),
        parent: run[0].parent,
        tokens: run.flatMap((b) => b.tokens),
        blockSize: this.options.blockSize,
        medium: null,
        loraName: req.loraName ?? null,
        extraKeys: run.some((b) => b.extra) ? run.map((b) => b.extra) : null,
      });
      run = [];
    };
    for (const b of blocks) {
      if (this.gpu.has(b.key)) {
        flush();
        this.gpu.touch(b.key);
        continue;
      }
      if (this.gpu.size >= this.gpu.capacity) this.evictGpu(pinned);
      this.gpu.insert(b);
      this.cpu?.touch(b.key);
      run.push(b);
    }
    flush();
  }

  /** `/reset_prefix_cache`: everything dropped, one AllBlocksCleared. */
  resetCache(): void {
    this.gpu.clear();
    this.cpu?.clear();
    this.events.push({ type: 'AllBlocksCleared' });
  }

  /** A new engine process: empty cache, nothing published about it. */
  restart(): void {
    this.gpu.clear();
    this.cpu?.clear();
    this.events = [];
  }

  takeEvents(): SimEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }

  private evictGpu(pinned: ReadonlySet<bigint>): void {
    const victim = this.gpu.victim(pinned);
    if (!victim) throw new Error('GPU pool too small for one request');
    if (this.cpu && !this.cpu.has(victim.key)) {
      if (this.cpu.size >= this.cpu.capacity) {
        const cpuVictim = this.cpu.victim(new Set())!;
        this.cpu.delete(cpuVictim.key);
        this.events.push({ type: 'BlockRemoved', hashes: [cpuVictim.hash], medium: 'CPU' });
      }
      this.cpu.insert(victim);
      this.events.push({
        type: 'BlockStored',
        hashes: [victim.hash],
        parent: victim.parent,
        tokens: [],
        blockSize: 0,
        medium: 'CPU',
        loraName: victim.loraName,
        extraKeys: null,
      });
    }
    this.gpu.delete(victim.key);
    this.events.push({ type: 'BlockRemoved', hashes: [victim.hash], medium: null });
  }
}
