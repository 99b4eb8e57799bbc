import { rankIdentity } from '../../events/wire/topic.js';
import { encodeBatch, type SimEvent, type WireStyle } from './encode.js';
import type { SimBlock } from './block-pool.js';
import { SimEngine, type SimRequest } from './sim-engine.js';

export interface SimEndpointConfig {
  /** `<ip>:<port>` as the topic names it. */
  endpoint: string;
  model: string;
  /** Data-parallel ranks, each with its own cache and sequence counter (default 1). */
  ranks?: number;
  gpuBlocks: number;
  /** CPU offload tier size in blocks (0/absent: none). */
  cpuBlocks?: number;
  style: WireStyle;
}

/** One published batch of one rank. */
export interface SimBatch {
  identity: string;
  endpoint: string;
  rank: number;
  topic: string;
  seq: bigint;
  /** Publisher time, seconds (virtual). */
  ts: number;
  payload: Uint8Array;
  events: SimEvent[];
}

export interface SimRank {
  config: SimEndpointConfig;
  rank: number;
  engine: SimEngine;
  seq: bigint;
}

/** What the index must say about one request on one endpoint (computed from the engine's own cache, not from ingest). */
export interface ExpectedMatch {
  matchedBlocks: number;
  blocksByTier: Record<string, number>;
}

/**
 * A fleet of simulated vLLM endpoints on a virtual clock. serve() runs requests on an engine; step() ends the engine
 * step: every rank with events publishes one batch (seq + 1). The engines' caches are the ground truth.
 */
export class SimFleet {
  readonly ranks = new Map<string, SimRank>();
  readonly blockSize: number;
  private time: number;
  private readonly stepSeconds: number;

  constructor(
    configs: readonly SimEndpointConfig[],
    options: { blockSize?: number; t0?: number; stepSeconds?: number } = {},
  ) {
    this.blockSize = options.blockSize ?? 16;
    this.time = options.t0 ?? 1_763_700_000;
    this.stepSeconds = options.stepSeconds ?? 0.05;
    for (const config of configs) {
      for (let r = 0; r < (config.ranks ?? 1); r++) {
        const engine = new SimEngine({
          blockSize: this.blockSize,
          gpuBlocks: config.gpuBlocks,
          cpuBlocks: config.cpuBlocks ?? 0,
        });
        this.ranks.set(rankIdentity(config.endpoint, r), { config, rank: r, engine, seq: 0n });
      }
    }
  }

  identities(): string[] {
    return [...this.ranks.keys()];
  }

  get now(): number {
    return this.time;
  }

  private get(identity: string): SimRank {
    const r = this.ranks.get(identity);
    if (!r) throw new Error(`unknown simulated endpoint ${identity}`);
    return r;
  }

  serve(identity: string, req: SimRequest, blocks?: readonly SimBlock[]): void {
    this.get(identity).engine.serve(req, blocks);
  }

  resetCache(identity: string): void {
    this.get(identity).engine.resetCache();
  }

  /** A new engine process on that rank: empty cache, sequence from 0. */
  restart(identity: string): void {
    const r = this.get(identity);
    r.engine.restart();
    r.seq = 0n;
  }

  /** Ends one engine step on every rank; returns the batches published (ranks without events publish nothing). */
  step(): SimBatch[] {
    this.time += this.stepSeconds;
    const out: SimBatch[] = [];
    for (const [identity, r] of this.ranks) {
      const events = r.engine.takeEvents();
      if (events.length === 0) continue;
      const ts = Math.round(this.time * 1000) / 1000;
      out.push({
        identity,
        endpoint: r.config.endpoint,
        rank: r.rank,
        topic: `kv@${r.config.endpoint}@${r.config.model}`,
        seq: r.seq++,
        ts,
        payload: encodeBatch(ts, events, r.rank, r.config.style),
        events,
      });
    }
    return out;
  }

  /** Resident blocks by tier (what the index must hold for that endpoint, one entry per block and tier). */
  blocksByTier(identity: string): Record<string, number> {
    const e = this.get(identity).engine;
    const out: Record<string, number> = {};
    if (e.gpu.size > 0) out.GPU = e.gpu.size;
    if (e.cpu && e.cpu.size > 0) out.CPU = e.cpu.size;
    return out;
  }

  /** Consecutive blocks of the request cached on the endpoint, each counted on its best tier (GPU before CPU). */
  expectedMatch(identity: string, req: SimRequest, blocks?: readonly SimBlock[]): ExpectedMatch {
    const e = this.get(identity).engine;
    const byTier: Record<string, number> = {};
    let matched = 0;
    for (const b of blocks ?? e.blocksOf(req)) {
      const tier = e.gpu.has(b.key) ? 'GPU' : e.cpu?.has(b.key) ? 'CPU' : null;
      if (tier === null) break;
      matched++;
      byTier[tier] = (byTier[tier] ?? 0) + 1;
    }
    return { matchedBlocks: matched, blocksByTier: byTier };
  }
}
