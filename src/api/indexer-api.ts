import type { Index, TierRegistry } from '../index/index.js';
import { formatKey, type BlockHasher } from '../keys/index.js';
import { Scorer, type ScoreResult, type TierWeights } from '../scoring/index.js';
import { ApiError, invalid } from './errors.js';
import type { AddEndpointRequest, Fleet } from './fleet.js';
import { toEndpointMsg } from './endpoint-msg.js';
import type {
  FingerprintMsg,
  ItemInfoMsg,
  LookupImagesRequestMsg,
  LookupRequestMsg,
  PromptFields,
  ScoreRequestMsg,
  ScoreResponseMsg,
} from './messages.js';
import { preparePrompt, type InputKind, type PreparedPrompt } from './prepare.js';
import type { Cancellation, PromptFrontend, PromptItem } from './prompt-frontend.js';
import { SpeculationQuota } from './speculation-quota.js';
import { formatHostPort, parseEndpointIdentity } from '../common/index.js';
import {
  checkCandidates,
  checkCandidateShaped,
  checkEndpoint,
  checkModel,
  checkTierWeights,
  parseBlockKeys,
} from './validate.js';
import { checkHttpUrl, checkStoreBound, checkZmqAddress } from './endpoint-checks.js';
import { addImagesSeen, lookupImages, type ResidencyView } from './image-residency.js';

export interface ApiLimits {
  maxCandidates: number;
  maxPromptTokens: number;
  /** Multimodal items per tokens request. */
  maxItems: number;
  speculativeTtlMs: number;
  /** Backend failure → zero scores flagged degraded (unless the request is strict), instead of UNAVAILABLE. */
  failOpen: boolean;
  /** Accept host names (not only IP literals) as endpoints of AddEndpoint, Reserve and Score.speculate (default false). */
  allowHostnameEndpoints?: boolean;
  /** Speculative entries one caller may hold (0 = no bound; default 100000). */
  maxSpeculativePerCaller?: number;
  /** Set when AddEndpoint/RemoveEndpoint/ClearEndpoint need the admin token (then AddEndpoint may name hosts). */
  adminTokenFile?: string;
}

/** Speculative entries one caller may hold when api.maxSpeculativePerCaller is not given. */
export const DEFAULT_MAX_SPECULATIVE_PER_CALLER = 100_000;

/** Hooks for metrics; all optional. */
export interface ApiObserver {
  scored?(kind: InputKind, seconds: number, totalBlocks: number, bestMatched: number): void;
  /** Time to turn the request's prompt into block keys (render + tokenize + expand + hash for chat). */
  prepared?(kind: InputKind, seconds: number): void;
  degraded?(reason: string): void;
  /** The multimodal items of a prepared request (identifier sources, URL fetch outcomes). */
  items?(items: readonly PromptItem[]): void;
  /** A Score named a model no followed endpoint has published (ScoreResponse.unknown_model). */
  unknownModel?(model: string): void;
}

export interface IndexerApiDeps {
  index: Index;
  tiers: TierRegistry;
  hasher: BlockHasher;
  weights: TierWeights;
  prompts: PromptFrontend | null;
  fleet: Fleet;
  limits: ApiLimits;
  version: string;
  /** Write-path counters for GetStats. */
  ingestStats(): {
    eventsReceived: number;
    blocksStored: number;
    blocksRemoved: number;
    groupWithoutKind?: number;
    boundDrops?: number;
    keyOnlyRemovals?: number;
  };
  observer?: ApiObserver;
  /** Encoder residency (images_seen in Score, LookupImages); absent = nobody has seen anything. */
  residency?: ResidencyView;
}

/** The service's operations, independent of the transport (gRPC maps onto these one to one). */
export class IndexerApi {
  private readonly scorer: Scorer;
  /** Per-caller bound on speculative entries, shared with Select's reservations (select.ts). */
  readonly quota: SpeculationQuota;

  constructor(private readonly deps: IndexerApiDeps) {
    this.scorer = new Scorer(deps.index, deps.tiers, deps.weights);
    this.quota = new SpeculationQuota(deps.limits.maxSpeculativePerCaller ?? DEFAULT_MAX_SPECULATIVE_PER_CALLER);
  }

  get fingerprint(): FingerprintMsg {
    const f = this.deps.hasher.fingerprint;
    return { scheme: f.scheme, hashSeed: f.hashSeed, blockSize: f.blockSize };
  }

  /** `caller`: who asks (the peer's address), for the per-caller bound on speculative entries. */
  async score(req: ScoreRequestMsg, signal?: Cancellation, caller = ''): Promise<ScoreResponseMsg> {
    const started = process.hrtime.bigint();
    const candidates = checkCandidates(req.candidates ?? [], this.deps.limits.maxCandidates);
    const tierWeights = checkTierWeights(req.tierWeights ?? {});
    const speculate = req.speculate?.endpoint ? this.checkSpeculate(req.speculate) : null;
    const prepared = await this.prepare(req, signal);
    this.deps.observer?.prepared?.(prepared.kind, Number(process.hrtime.bigint() - started) / 1e9);
    checkDeadline(signal);

    let result: ScoreResult;
    let degradedReason = '';
    try {
      result = await this.scorer.score(prepared.keys, {
        candidates,
        tierWeights,
        maxBlocks: req.maxBlocks || undefined,
      });
      if (speculate) {
        this.quota.take(caller, prepared.keys.length, speculate.ttlMs, 'speculate');
        await this.deps.index.reserve(speculate.endpoint, prepared.keys, speculate.ttlMs);
      }
    } catch (err) {
      if (err instanceof ApiError) throw err;
      degradedReason = `index backend failed: ${(err as Error).message}`;
      if (!this.deps.limits.failOpen || req.strict) throw new ApiError('unavailable', '', degradedReason);
      this.deps.observer?.degraded?.('backend');
      result = zeroResult(prepared.keys.length, req.maxBlocks, candidates);
    }
    if (prepared.items.length > 0 && this.deps.residency)
      addImagesSeen(this.deps.residency, result.scores, prepared.items);
    const best = result.scores.reduce((m, s) => Math.max(m, s.matchedBlocks), 0);
    // Block-key input may leave the model empty: nothing to check then.
    const unknownModel = !!req.model && this.deps.fleet.publishes?.(req.model) === false;
    if (unknownModel) this.deps.observer?.unknownModel?.(req.model);
    this.deps.observer?.scored?.(
      prepared.kind,
      Number(process.hrtime.bigint() - started) / 1e9,
      result.totalBlocks,
      best,
    );
    return {
      totalBlocks: result.totalBlocks,
      blockSize: this.deps.hasher.blockSize,
      tokenCount: prepared.tokenCount,
      scores: result.scores,
      items: prepared.items.map(toItemMsg),
      fingerprint: this.fingerprint,
      blockKeys: req.returnBlockKeys ? Array.from(prepared.keys, formatKey) : [],
      degraded: degradedReason !== '',
      degradedReason,
      unknownModel,
    };
  }

  async computeBlockKeys(req: PromptFields, signal?: Cancellation) {
    const prepared = await this.prepare(req, signal, false);
    return {
      tokenIds: prepared.tokenIds ? Array.from(prepared.tokenIds) : [],
      items: prepared.items.map(toItemMsg),
      blockKeys: Array.from(prepared.keys, formatKey),
      fingerprint: this.fingerprint,
      tokenCount: prepared.tokenCount,
    };
  }

  async render(req: PromptFields, signal?: Cancellation) {
    if (req.input !== 'chat' && req.input !== 'prompt') throw invalid('input', 'one of chat or prompt is required');
    const prepared = await this.prepare(req, signal);
    return { text: prepared.text, tokenIds: Array.from(prepared.tokenIds ?? []), items: prepared.items.map(toItemMsg) };
  }

  async lookup(req: LookupRequestMsg) {
    const keys = parseBlockKeys(
      'block_keys',
      req.blockKeys ?? [],
      Math.floor(this.deps.limits.maxPromptTokens / this.deps.hasher.blockSize),
    );
    const candidates = checkCandidates(req.candidates ?? [], this.deps.limits.maxCandidates);
    const result = await this.scorer.score(keys, {
      candidates,
      tierWeights: checkTierWeights(req.tierWeights ?? {}),
      maxBlocks: req.maxBlocks || undefined,
    });
    return { totalBlocks: result.totalBlocks, scores: result.scores };
  }

  /** Which endpoints have recently processed each image (encoder residency), most recent first. */
  async lookupImages(req: LookupImagesRequestMsg) {
    return lookupImages(this.deps.residency, req, this.deps.limits);
  }

  async reserve(req: { endpoint: string; blockKeys: string[]; ttlMs: number }, caller = '') {
    const endpoint = checkCandidateShaped('endpoint', req.endpoint, this.deps.limits.allowHostnameEndpoints ?? false);
    const keys = this.keysOf(req.blockKeys);
    const ttl = this.checkTtl(req.ttlMs);
    this.quota.take(caller, keys.length, ttl, 'block_keys');
    await this.deps.index.reserve(endpoint, keys, ttl);
    return { reservedBlocks: keys.length };
  }

  async release(req: { endpoint: string; blockKeys: string[] }, caller = '') {
    const endpoint = checkEndpoint('endpoint', req.endpoint);
    const released = await this.deps.index.release(endpoint, this.keysOf(req.blockKeys));
    this.quota.giveBack(caller, released);
    return { releasedBlocks: released };
  }

  async listEndpoints() {
    return { endpoints: (await this.deps.fleet.list()).map(toEndpointMsg) };
  }

  async addEndpoint(req: {
    endpoint: string;
    zmqAddress: string;
    replayAddress: string;
    ranks?: number;
    rankEndpoints?: string[];
    servingPortRanks?: boolean;
    discoveryUrl?: string;
    maxBlocks?: string;
    ttlSeconds?: number;
    metricsUrl?: string;
  }) {
    // Without an admin token anyone may call this: only IP literals, never a name the service would resolve.
    const hosts = (this.deps.limits.allowHostnameEndpoints ?? false) || !!this.deps.limits.adminTokenFile;
    const endpoint = checkCandidateShaped('endpoint', req.endpoint, hosts);
    const discoveryUrl = req.discoveryUrl ? checkHttpUrl('discovery_url', req.discoveryUrl, hosts) : null;
    if (discoveryUrl && req.zmqAddress) throw invalid('zmq_address', 'give zmq_address or discovery_url, not both');
    if (discoveryUrl && req.replayAddress)
      throw invalid('replay_address', 'the replay sockets are listed by discovery_url');
    if (discoveryUrl && req.ranks) throw invalid('ranks', 'the ranks are listed by discovery_url');
    const ranks = req.ranks ? req.ranks : 1;
    if (!Number.isInteger(ranks) || ranks < 1 || ranks > 64) throw invalid('ranks', `must be 1..64, got ${ranks}`);
    const rankEndpoints = req.rankEndpoints ?? [];
    if (rankEndpoints.length > 0 && req.servingPortRanks)
      throw invalid('rank_endpoints', 'give rank_endpoints or serving_port_ranks, not both');
    if (rankEndpoints.length > 64) throw invalid('rank_endpoints', `at most 64, got ${rankEndpoints.length}`);
    rankEndpoints.forEach((e, i) => checkCandidateShaped(`rank_endpoints[${i}]`, e, hosts));
    if (rankEndpoints.length > 0 && !discoveryUrl && rankEndpoints.length !== ranks) {
      throw invalid('rank_endpoints', `${rankEndpoints.length} identities for ${ranks} rank(s)`);
    }
    const request: AddEndpointRequest = {
      endpoint,
      zmqAddress: discoveryUrl ? null : checkZmqAddress('zmq_address', req.zmqAddress, hosts),
      replayAddress: req.replayAddress ? checkZmqAddress('replay_address', req.replayAddress, hosts) : null,
      ranks,
      rankIdentities:
        rankEndpoints.length > 0
          ? { kind: 'explicit', endpoints: rankEndpoints }
          : req.servingPortRanks
            ? { kind: 'serving', endpoint }
            : undefined,
      discoveryUrl,
      storeBound: checkStoreBound(req.maxBlocks, req.ttlSeconds),
      metricsUrl: req.metricsUrl ? checkHttpUrl('metrics_url', req.metricsUrl, hosts) : null,
    };
    return { endpoint: toEndpointMsg(await this.deps.fleet.add(request)) };
  }

  async removeEndpoint(req: { endpoint: string }) {
    return { clearedEntries: String(await this.deps.fleet.remove(checkEndpoint('endpoint', req.endpoint))) };
  }

  async clearEndpoint(req: { endpoint: string }) {
    return { clearedEntries: String(await this.deps.fleet.clear(checkEndpoint('endpoint', req.endpoint))) };
  }

  async getInfo() {
    return {
      version: this.deps.version,
      fingerprint: this.fingerprint,
      tierWeights: this.deps.weights.toJSON(),
      backend: this.deps.index.backend,
      models: this.deps.prompts?.models() ?? [],
    };
  }

  async getStats() {
    const s = await this.deps.index.stats();
    const ingest = this.deps.ingestStats();
    const mem = process.memoryUsage();
    return {
      indexEntries: String(s.entries),
      indexKeys: String(s.keys),
      indexBytes: String(s.bytes),
      speculativeEntries: String(s.speculativeEntries),
      evictions: String(s.evictions),
      endpoints: String(s.endpoints),
      eventsReceived: String(ingest.eventsReceived),
      blocksStored: String(ingest.blocksStored),
      blocksRemoved: String(ingest.blocksRemoved),
      rssBytes: String(mem.rss),
      heapUsedBytes: String(mem.heapUsed),
      blocksRefusedGroupWithoutKind: String(ingest.groupWithoutKind ?? 0),
      blocksDroppedByStoreBound: String(ingest.boundDrops ?? 0),
      keyOnlyChunkRemovals: String(ingest.keyOnlyRemovals ?? 0),
      encoderResidencyEntries: String(this.deps.residency?.entries ?? 0),
      encoderResidencyEndpoints: String(this.deps.residency?.endpointCount ?? 0),
      encoderResidencyEvictions: String(this.deps.residency?.evictionsTotal ?? 0),
    };
  }

  /** llm-d's indexer.v1 GetPodScores: completion text in, raw weighted block count per pod out. */
  async getPodScores(req: { prompt: string; modelName: string; podIdentifiers: string[] }, signal?: Cancellation) {
    const model = checkModel(req.modelName, 'model_name');
    const candidates = checkCandidates(req.podIdentifiers ?? [], this.deps.limits.maxCandidates, 'pod_identifiers');
    const prepared = await this.prepare({ model, input: 'prompt', prompt: req.prompt }, signal);
    const result = await this.scorer.score(prepared.keys, { candidates });
    return {
      scores: result.scores.map((s) => {
        const id = parseEndpointIdentity(s.endpoint);
        return id.ok && id.value.rank > 0
          ? { pod: formatHostPort(id.value), score: s.weighted, dataParallelRank: id.value.rank }
          : { pod: s.endpoint, score: s.weighted };
      }),
    };
  }

  private async prepare(req: PromptFields, signal?: Cancellation, allowKeys = true): Promise<PreparedPrompt> {
    const prepared = await preparePrompt(
      {
        hasher: this.deps.hasher,
        prompts: this.deps.prompts,
        maxPromptTokens: this.deps.limits.maxPromptTokens,
        maxItems: this.deps.limits.maxItems,
      },
      req,
      signal,
      allowKeys,
    );
    if (prepared.items.length > 0) this.deps.observer?.items?.(prepared.items);
    return prepared;
  }

  private keysOf(values: string[]): BigUint64Array {
    const max = Math.floor(this.deps.limits.maxPromptTokens / this.deps.hasher.blockSize);
    const keys = parseBlockKeys('block_keys', values ?? [], max);
    if (keys.length === 0) throw invalid('block_keys', 'is required');
    return keys;
  }

  private checkTtl(ttlMs: number): number {
    if (!ttlMs) return this.deps.limits.speculativeTtlMs;
    if (ttlMs > 600_000) throw invalid('ttl_ms', `must be at most 600000, got ${ttlMs}`);
    return ttlMs;
  }

  private checkSpeculate(s: { endpoint: string; ttlMs: number }) {
    const endpoint = checkCandidateShaped(
      'speculate.endpoint',
      s.endpoint,
      this.deps.limits.allowHostnameEndpoints ?? false,
    );
    return { endpoint, ttlMs: this.checkTtl(s.ttlMs) };
  }
}

function checkDeadline(signal?: Cancellation): void {
  if (signal?.aborted) throw new ApiError('deadline_exceeded', '', 'the call was cancelled or its deadline passed');
}

function zeroResult(blocks: number, maxBlocks: number, candidates?: readonly string[]): ScoreResult {
  const totalBlocks = maxBlocks ? Math.min(blocks, maxBlocks) : blocks;
  return {
    totalBlocks,
    scores: (candidates ?? []).map((endpoint) => ({
      endpoint,
      matchedBlocks: 0,
      weighted: 0,
      normalized: 0,
      blocksByTier: {},
      speculativeBlocks: 0,
    })),
  };
}

function toItemMsg(i: PromptItem): ItemInfoMsg {
  return {
    offset: i.offset,
    length: i.length,
    identifier: i.identifier,
    estimated: i.estimated,
    identifierSource: i.identifierSource ?? '',
    fetchOutcome: i.fetchOutcome ?? '',
  };
}
