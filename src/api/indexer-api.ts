import type { Index, TierRegistry } from '../index/index.js';
import { formatKey, type BlockHasher } from '../keys/index.js';
import { Scorer, type ScoreResult, type TierWeights } from '../scoring/index.js';
import { ApiError, invalid } from './errors.js';
import type { AddEndpointRequest, Fleet } from './fleet.js';
import { toEndpointMsg } from './endpoint-msg.js';
import type {
  FingerprintMsg,
  LookupImagesRequestMsg,
  LookupRequestMsg,
  PromptFields,
  ScoreRequestMsg,
  ScoreResponseMsg,
} from './messages.js';
import { preparePrompt, prepareTokens, type InputKind, type PrepareContext, type PreparedPrompt } from './prepare.js';
import type { Cancellation, PromptFrontend, PromptItem } from './prompt-frontend.js';
import { SpeculationQuota, speculateHere, type Speculate } from './speculation-quota.js';
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
import { checkDeadline, toItemMsg, zeroResult } from './score-answer.js';

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
  /** Where Score's `speculate` entries go when every replica must see them (speculation-quota.ts); absent: here. */
  speculate?: Speculate;
}

/** The service's operations, independent of the transport (gRPC maps onto these one to one). */
export class IndexerApi {
  private readonly scorer: Scorer;
  /** Per-caller bound on speculative entries, shared with Select's reservations (select.ts). */
  readonly quota: SpeculationQuota;
  /** Reserve's entries, always this process's own (under api.processes the primary brings Reserve to each). */
  private readonly reserveHere: Speculate;
  /** Score's `speculate` entries: here, or to every replica (the deps' hook). */
  private readonly speculate: Speculate;

  private readonly prepareContext: PrepareContext;
  /** The same on every response: built once, frozen as it is shared. */
  readonly fingerprint: FingerprintMsg;

  constructor(private readonly deps: IndexerApiDeps) {
    this.scorer = new Scorer(deps.index, deps.tiers, deps.weights);
    this.quota = new SpeculationQuota(deps.limits.maxSpeculativePerCaller ?? DEFAULT_MAX_SPECULATIVE_PER_CALLER);
    this.reserveHere = speculateHere(this.quota, deps.index);
    this.speculate = deps.speculate ?? this.reserveHere;
    const { hasher, prompts, limits } = deps;
    this.prepareContext = { hasher, prompts, maxPromptTokens: limits.maxPromptTokens, maxItems: limits.maxItems };
    const f = hasher.fingerprint;
    this.fingerprint = Object.freeze({ scheme: f.scheme, hashSeed: f.hashSeed, blockSize: f.blockSize });
  }

  /**
   * `caller`: who asks (the peer's address), for the per-caller bound on speculative entries.
   *
   * A tokens-in request without speculation against the memory index waits for nothing: it is answered by scoreNow,
   * with no promise per step (prepare, lookup), only the one the caller gets (issue 16: per-call CPU and garbage).
   * Everything else (chat and prompt rendering, Redis, speculation's index write) goes through scoreAsync.
   */
  score(req: ScoreRequestMsg, signal?: Cancellation, caller = ''): Promise<ScoreResponseMsg> {
    if (req.input === 'tokens' && !req.speculate?.endpoint && this.scorer.synchronous) {
      try {
        return Promise.resolve(this.scoreNow(req, signal));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.scoreAsync(req, signal, caller);
  }

  /** scoreAsync's steps in the same order, none of them waiting (see score). */
  private scoreNow(req: ScoreRequestMsg, signal: Cancellation | undefined): ScoreResponseMsg {
    const started = performance.now();
    const candidates = checkCandidates(req.candidates ?? [], this.deps.limits.maxCandidates);
    const tierWeights = checkTierWeights(req.tierWeights ?? {});
    const prepared = prepareTokens(this.prepareContext, req);
    if (prepared.items.length > 0) this.deps.observer?.items?.(prepared.items);
    this.deps.observer?.prepared?.(prepared.kind, (performance.now() - started) / 1000);
    checkDeadline(signal);
    let result: ScoreResult;
    let degradedReason = '';
    try {
      result = this.scorer.scoreNow(prepared.keys, { candidates, tierWeights, maxBlocks: req.maxBlocks || undefined });
    } catch (err) {
      degradedReason = this.backendFailed(err, req);
      result = zeroResult(prepared.keys.length, req.maxBlocks, candidates);
    }
    return this.respond(req, prepared, result, degradedReason, started);
  }

  private async scoreAsync(req: ScoreRequestMsg, signal?: Cancellation, caller = ''): Promise<ScoreResponseMsg> {
    const started = performance.now();
    const candidates = checkCandidates(req.candidates ?? [], this.deps.limits.maxCandidates);
    const tierWeights = checkTierWeights(req.tierWeights ?? {});
    const speculate = req.speculate?.endpoint ? this.checkSpeculate(req.speculate) : null;
    const prepared = await this.prepare(req, signal);
    this.deps.observer?.prepared?.(prepared.kind, (performance.now() - started) / 1000);
    checkDeadline(signal);

    let result: ScoreResult;
    let degradedReason = '';
    try {
      result = await this.scorer.score(prepared.keys, {
        candidates,
        tierWeights,
        maxBlocks: req.maxBlocks || undefined,
      });
      // A prompt shorter than a block has nothing to speculate.
      if (speculate && prepared.keys.length > 0)
        await this.speculate(caller, speculate.endpoint, prepared.keys, speculate.ttlMs, 'speculate');
    } catch (err) {
      degradedReason = this.backendFailed(err, req);
      result = zeroResult(prepared.keys.length, req.maxBlocks, candidates);
    }
    return this.respond(req, prepared, result, degradedReason, started);
  }

  /** A failed index read or write: rethrown (UNAVAILABLE) unless fail-open applies; then the reason to report. */
  private backendFailed(err: unknown, req: ScoreRequestMsg): string {
    if (err instanceof ApiError) throw err;
    const reason = `index backend failed: ${(err as Error).message}`;
    if (!this.deps.limits.failOpen || req.strict) throw new ApiError('unavailable', '', reason);
    this.deps.observer?.degraded?.('backend');
    return reason;
  }

  /** The response of a scored request, and its metrics (`started`: performance.now() at the call's start). */
  private respond(
    req: ScoreRequestMsg,
    prepared: PreparedPrompt,
    result: ScoreResult,
    degradedReason: string,
    started: number,
  ): ScoreResponseMsg {
    if (prepared.items.length > 0 && this.deps.residency)
      addImagesSeen(this.deps.residency, result.scores, prepared.items);
    let best = 0;
    for (let i = 0; i < result.scores.length; i++) best = Math.max(best, result.scores[i].matchedBlocks);
    // Block-key input may leave the model empty: nothing to check then.
    const unknownModel = !!req.model && this.deps.fleet.publishes?.(req.model) === false;
    if (unknownModel) this.deps.observer?.unknownModel?.(req.model);
    this.deps.observer?.scored?.(prepared.kind, (performance.now() - started) / 1000, result.totalBlocks, best);
    return {
      totalBlocks: result.totalBlocks,
      blockSize: this.deps.hasher.blockSize,
      tokenCount: prepared.tokenCount,
      scores: result.scores,
      items: prepared.items.length === 0 ? [] : prepared.items.map(toItemMsg),
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
    await this.reserveHere(caller, endpoint, keys, ttl, 'block_keys');
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
    const prepared = await preparePrompt(this.prepareContext, req, signal, allowKeys);
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
