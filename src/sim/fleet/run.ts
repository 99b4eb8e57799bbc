import type { SimBlock } from '../publisher/block-pool.js';
import { encodeBatch, type WireStyle } from '../publisher/encode.js';
import { SimFleet } from '../publisher/fleet.js';
import { SimPublisher } from '../publisher/publisher.js';
import { blockExtras } from '../../keys/extras.js';
import { BlockHasher } from '../../keys/index.js';
import type { MemoryIndex, RedisIndex } from '../../index/index.js';
import type { Config } from '../../ops/index.js';
import { DEFAULT_COST_MODEL, EndpointQueues, type CostModelOptions } from './cost-model.js';
import { IndexerClient } from './indexer-client.js';
import { createPolicy, type PolicyName, type PolicyOptions } from './policies.js';
import { APPROXIMATE_DEFAULTS } from './text-chunks.js';
import type { SimulatedRequest } from './workloads.js';

export interface FleetOptions {
  endpoints: number;
  /** KV blocks per endpoint (its GPU prefix cache; LRU beyond). */
  gpuBlocks: number;
  blockSize: number;
  model: string;
}

export interface SimulationOptions {
  fleet: FleetOptions;
  cost: CostModelOptions;
  seed: number;
  loadGuardSeconds: number;
  /** The approximate policy's LRU size per endpoint in 64-character chunks (default: the endpoint's real capacity). */
  approximateCapacity?: number;
  /** Router replicas, each with its own approximate state (the precise index is shared). */
  routerReplicas: number;
}

export const DEFAULT_SIMULATION: SimulationOptions = {
  fleet: { endpoints: 8, gpuBlocks: 2048, blockSize: 16, model: 'Qwen/Qwen2.5-VL-7B-Instruct' },
  cost: DEFAULT_COST_MODEL,
  seed: 42,
  loadGuardSeconds: 0.5,
  routerReplicas: 1,
};

export interface PolicyResult {
  policy: PolicyName;
  requests: number;
  promptTokens: number;
  /** Prompt tokens found in the chosen endpoint's prefix cache. */
  cachedTokens: number;
  hitRate: number;
  /** Prompt tokens the fleet had to compute. */
  prefillTokens: number;
  ttftSeconds: { mean: number; p50: number; p90: number; p99: number };
  /** Busiest endpoint's prefill work over the mean. */
  imbalance: number;
  /**
   * Encoder runs (E/P/D): of the requests' `images`, the `runs` whose placeholder tokens were not all in the chosen
   * endpoint's cached prefix, so its vision encoder had to run again (a prefix hit skips it).
   */
  imageEncodes: { runs: number; images: number };
  requestsPerEndpoint: number[];
  /** After quiescence: does the service's index hold exactly the blocks the simulated endpoints hold? */
  index: { exact: boolean; entries: number; engineBlocks: number; problems: string[] };
  eventBatches: number;
}

const STYLE: WireStyle = { encoding: 'map', hashes: 'int' };

/** Engine blocks per request, shared by every run over the same requests (blocks are immutable). */
const BLOCKS = new WeakMap<SimulatedRequest, SimBlock[]>();

/** What the engine serves for a request: the prompt, then the reply it generates (cached as well). */
function servedRequest(request: SimulatedRequest) {
  return { tokens: request.prompt.tokens.concat(request.output), items: request.prompt.items, loraName: null };
}

/** A fleet of simulated endpoints publishing over real ZMQ into a real indexer, and the request keys of their blocks. */
export class SimulatedFleet {
  readonly endpoints: string[];
  readonly fleet: SimFleet;
  readonly publishers = new Map<string, SimPublisher>();
  private readonly published = new Map<string, bigint>();
  /** Engine block key → request key (both are deterministic per block content). */
  private readonly requestKeys = new Map<bigint, bigint>();
  private readonly hasher: BlockHasher;
  private readonly learned = new WeakSet<SimulatedRequest>();
  /** Engine-step batches published (the warm-up batches of start() depend on timing and are not counted). */
  batches = 0;

  constructor(
    readonly indexer: SimulationIndexer,
    readonly options: FleetOptions,
  ) {
    this.endpoints = Array.from({ length: options.endpoints }, (_, i) => `10.0.${i >> 8}.${(i & 255) + 1}:8000`);
    this.fleet = new SimFleet(
      this.endpoints.map((endpoint) => ({
        endpoint,
        model: options.model,
        gpuBlocks: options.gpuBlocks,
        style: STYLE,
      })),
      { blockSize: options.blockSize },
    );
    this.hasher = new BlockHasher(indexer.service.config.keys);
  }

  /** Binds every endpoint's PUB and replay ROUTER, registers it with AddEndpoint, and waits until its events arrive. */
  async start(): Promise<void> {
    for (const endpoint of this.endpoints) {
      const pub = new SimPublisher({
        topic: `kv@${endpoint}@${this.options.model}`,
        endpoint: 'tcp://127.0.0.1:*',
        replayEndpoint: 'tcp://127.0.0.1:*',
      });
      await pub.start();
      this.publishers.set(endpoint, pub);
      await this.indexer.client.addEndpoint(endpoint, pub.pubAddress!, pub.replayAddress!);
    }
    // A SUB that connects misses what was published before its subscription arrived: send empty batches until one
    // is applied, so the first real batch is never lost (a later one would be replayed, but this keeps runs quiet).
    for (const endpoint of this.endpoints) {
      const deadline = Date.now() + 10_000;
      while (this.indexer.lastSeq(endpoint) === null) {
        if (Date.now() > deadline) throw new Error(`the indexer never received events from ${endpoint}`);
        await this.publish(endpoint, encodeBatch(this.fleet.now, [], 0, STYLE));
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }

  /** Prompt tokens the endpoint's engine holds in its prefix cache for the request. */
  cachedTokens(endpoint: string, request: SimulatedRequest): number {
    const promptBlocks = Math.floor(request.prompt.tokens.length / this.options.blockSize);
    return (
      this.fleet.expectedMatch(endpoint, request.prompt, this.servedBlocks(request).slice(0, promptBlocks))
        .matchedBlocks * this.options.blockSize
    );
  }

  /** Serves a request (prompt + reply) on an endpoint's engine and publishes the engine step's events. */
  async serve(endpoint: string, request: SimulatedRequest): Promise<void> {
    this.fleet.serve(endpoint, servedRequest(request), this.servedBlocks(request));
    for (const batch of this.fleet.step()) {
      await this.publish(batch.endpoint, batch.payload);
      this.batches++;
    }
  }

  /** Waits until the indexer has applied every batch published so far. */
  async quiesce(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const [endpoint, seq] of this.published) {
      for (;;) {
        const applied = this.indexer.lastSeq(endpoint);
        if (applied !== null && applied >= seq) break;
        if (Date.now() > deadline)
          throw new Error(`the indexer has not applied ${endpoint} up to seq ${seq} (at ${applied})`);
        await new Promise((r) => setImmediate(r));
      }
    }
  }

  /** Compares the indexer's entries with the engines' caches, block by block. */
  async verifyIndex(): Promise<PolicyResult['index']> {
    const problems: string[] = [];
    let entries = 0;
    let engineBlocks = 0;
    const index = this.indexer.service.index;
    for (const endpoint of this.endpoints) {
      const counts = await index.endpointEntries(endpoint);
      const held = Object.values(counts).reduce((a, b) => a + b, 0);
      const engine = this.fleet.ranks.get(endpoint)!.engine;
      entries += held;
      engineBlocks += engine.gpu.size;
      if (held !== engine.gpu.size || (counts.GPU ?? 0) !== engine.gpu.size)
        problems.push(`${endpoint}: index holds ${JSON.stringify(counts)}, engine ${engine.gpu.size} GPU blocks`);
      let missing = 0;
      for (const engineKey of engine.gpu.keys()) {
        const key = this.requestKeys.get(engineKey);
        const found = key === undefined ? [] : await index.lookup(BigUint64Array.of(key), { candidates: [endpoint] });
        if (found.length !== 1 || found[0].matchedBlocks !== 1) missing++;
      }
      if (missing > 0) problems.push(`${endpoint}: ${missing} resident blocks not in the index`);
    }
    return { exact: problems.length === 0, entries, engineBlocks, problems };
  }

  async close(): Promise<void> {
    for (const pub of this.publishers.values()) await pub.close();
  }

  private async publish(endpoint: string, payload: Uint8Array): Promise<void> {
    const pub = this.publishers.get(endpoint)!;
    this.published.set(endpoint, await pub.publish(payload));
  }

  /** The engine blocks of prompt + reply (the same on every endpoint), computed once per request. */
  private servedBlocks(request: SimulatedRequest): SimBlock[] {
    let blocks = BLOCKS.get(request);
    if (!blocks) {
      const served = servedRequest(request);
      blocks = this.fleet.ranks.get(this.endpoints[0])!.engine.blocksOf(served);
      BLOCKS.set(request, blocks);
    }
    if (!this.learned.has(request)) {
      this.learned.add(request);
      const served = servedRequest(request);
      const keys = this.hasher.keysFor(
        this.options.model,
        served.tokens,
        blockExtras(served.items, served.tokens.length, this.options.blockSize),
      );
      for (let i = 0; i < blocks.length; i++) this.requestKeys.set(blocks[i].key, keys[i]);
    }
    return blocks;
  }
}

/**
 * What the fleet simulator needs of the indexer under test: its gRPC client, its config and index, and the last seq it
 * applied per endpoint. The caller starts it (`simulate` starts the real service: embedded-indexer.ts), so that a run
 * can be pointed at any indexer that offers these.
 */
export interface SimulationIndexer {
  readonly client: IndexerClient;
  readonly service: { readonly config: Config; readonly index: MemoryIndex | RedisIndex };
  lastSeq(endpoint: string): bigint | null;
  stop(): Promise<void>;
}

/**
 * Starts a fresh indexer for one run, with the fleet's block size and its prefill throughput (what Select's cost model
 * assumes for every endpoint, as the simulator's cost model charges it).
 */
export type StartIndexer = (blockSize: number, prefillTokensPerSecond: number) => Promise<SimulationIndexer>;

/** Runs one policy over a workload on a fresh fleet and a fresh indexer. */
export async function runPolicy(
  requests: readonly SimulatedRequest[],
  policyName: PolicyName,
  options: SimulationOptions,
  startIndexer: StartIndexer,
): Promise<PolicyResult> {
  const { fleet: fleetOptions } = options;
  const indexer = await startIndexer(fleetOptions.blockSize, options.cost.prefillTokensPerSecond);
  const sim = new SimulatedFleet(indexer, fleetOptions);
  try {
    await sim.start();
    const policyOptions: PolicyOptions = {
      seed: options.seed,
      loadGuardSeconds: options.loadGuardSeconds,
      // The endpoint's cache in characters (4 per token) over the chunk size: an estimate sized to the real cache.
      approximateCapacity:
        options.approximateCapacity ??
        Math.ceil((fleetOptions.gpuBlocks * fleetOptions.blockSize * 4) / APPROXIMATE_DEFAULTS.chunkChars),
      approximate: APPROXIMATE_DEFAULTS,
      routerReplicas: options.routerReplicas,
    };
    const policy = createPolicy(
      policyName,
      policyOptions,
      (request, candidates) =>
        indexer.client.matchedBlocks(fleetOptions.model, request.prompt.tokens, request.prompt.items, candidates),
      {
        select: (request, candidates, name) =>
          indexer.client.select(fleetOptions.model, request.prompt.tokens, request.prompt.items, candidates, name),
        prefillDone: (id, cached) => indexer.client.prefillDone(id, cached),
      },
    );
    const queues = new EndpointQueues(sim.endpoints, options.cost);
    const ttft: number[] = [];
    // Prefills in flight, by the virtual time they finish: told to the policy (Select's reservations) as time passes.
    const inFlight: { at: number; request: SimulatedRequest; cached: number }[] = [];
    let promptTokens = 0;
    let cachedTokens = 0;
    const imageEncodes = { runs: 0, images: 0 };
    for (const request of requests) {
      if (policy.readsIndex) await sim.quiesce();
      const now = request.arrival;
      if (policy.prefillDone) {
        inFlight.sort((a, b) => a.at - b.at || a.request.id - b.request.id);
        while (inFlight.length > 0 && inFlight[0].at <= now) {
          const done = inFlight.shift()!;
          await policy.prefillDone(done.request, done.cached);
        }
      }
      const endpoint = await policy.choose({
        request,
        endpoints: sim.endpoints,
        backlog: (e) => queues.backlog(e, now),
        routedTo: (e) => queues.requests.get(e) ?? 0,
      });
      const tokens = request.prompt.tokens.length;
      const cached = Math.min(tokens, sim.cachedTokens(endpoint, request));
      promptTokens += tokens;
      cachedTokens += cached;
      for (const item of request.prompt.items) {
        imageEncodes.images++;
        if (item.offset + item.length > cached) imageEncodes.runs++;
      }
      const dispatched = queues.dispatch(endpoint, now, tokens - cached);
      ttft.push(dispatched.ttftSeconds);
      if (policy.prefillDone) inFlight.push({ at: now + dispatched.ttftSeconds, request, cached });
      policy.routed(request, endpoint);
      await sim.serve(endpoint, request);
    }
    await sim.quiesce();
    const sorted = Float64Array.from(ttft).sort();
    const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
    return {
      policy: policyName,
      requests: requests.length,
      promptTokens,
      cachedTokens,
      hitRate: promptTokens === 0 ? 0 : cachedTokens / promptTokens,
      prefillTokens: promptTokens - cachedTokens,
      ttftSeconds: { mean: ttft.reduce((a, b) => a + b, 0) / ttft.length, p50: at(0.5), p90: at(0.9), p99: at(0.99) },
      imbalance: queues.imbalance(),
      imageEncodes,
      requestsPerEndpoint: sim.endpoints.map((e) => queues.requests.get(e) ?? 0),
      index: await sim.verifyIndex(),
      eventBatches: sim.batches,
    };
  } finally {
    await sim.close();
    await indexer.stop();
  }
}
