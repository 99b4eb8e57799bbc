import type { Index, TierRegistry } from '../index/index.js';
import { formatKey, type BlockHasher } from '../keys/index.js';
import { Scorer, type ScoreResult, type TierWeights } from '../scoring/index.js';
import { ApiError, invalid } from './errors.js';
import type { AddEndpointRequest, EndpointInfo, Fleet } from './fleet.js';
import type {
  EndpointInfoMsg,
  FingerprintMsg,
  ItemInfoMsg,
  LookupRequestMsg,
  PromptFields,
  ScoreRequestMsg,
  ScoreResponseMsg,
} from './messages.js';
import { preparePrompt, type InputKind, type PreparedPrompt } from './prepare.js';
import type { Cancellation, PromptFrontend } from './prompt-frontend.js';
import { SpeculationQuota } from './speculation-quota.js';
import { checkCandidates, checkCandidateShaped, checkEndpoint, checkModel, checkTierWeights, parseBlockKeys } from './validate.js';

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
  ingestStats(): { eventsReceived: number; blocksStored: number; blocksRemoved: number };
  observer?: ApiObserver;
}

/** The service's operations, independent of the transport (gRPC maps onto these one to one). */
export class IndexerApi {
  private readonly scorer: Scorer;
  private readonly quota: SpeculationQuota;

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
      result = await this.scorer.score(prepared.keys, { candidates, tierWeights, maxBlocks: req.maxBlocks || undefined });
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
    const best = result.scores.reduce((m, s) => Math.max(m, s.matchedBlocks), 0);
    // Block-key input may leave the model empty: nothing to check then.
    const unknownModel = !!req.model && this.deps.fleet.publishes?.(req.model) === false;
    if (unknownModel) this.deps.observer?.unknownModel?.(req.model);
    this.deps.observer?.scored?.(prepared.kind, Number(process.hrtime.bigint() - started) / 1e9, result.totalBlocks, best);
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
    const keys = parseBlockKeys('block_keys', req.blockKeys ?? [], Math.floor(this.deps.limits.maxPromptTokens / this.deps.hasher.blockSize));
    const candidates = checkCandidates(req.candidates ?? [], this.deps.limits.maxCandidates);
    const result = await this.scorer.score(keys, {
      candidates,
      tierWeights: checkTierWeights(req.tierWeights ?? {}),
      maxBlocks: req.maxBlocks || undefined,
    });
    return { totalBlocks: result.totalBlocks, scores: result.scores };
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

  async addEndpoint(req: { endpoint: string; zmqAddress: string; replayAddress: string }) {
    // Without an admin token anyone may call this: only IP literals, never a name the service would resolve.
    const hosts = (this.deps.limits.allowHostnameEndpoints ?? false) || !!this.deps.limits.adminTokenFile;
    const request: AddEndpointRequest = {
      endpoint: checkCandidateShaped('endpoint', req.endpoint, hosts),
      zmqAddress: checkZmqAddress('zmq_address', req.zmqAddress, hosts),
      replayAddress: req.replayAddress ? checkZmqAddress('replay_address', req.replayAddress, hosts) : null,
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
        const dp = /@dp(\d+)$/.exec(s.endpoint);
        return dp
          ? { pod: s.endpoint.slice(0, dp.index), score: s.weighted, dataParallelRank: Number(dp[1]) }
          : { pod: s.endpoint, score: s.weighted };
      }),
    };
  }

  private prepare(req: PromptFields, signal?: Cancellation, allowKeys = true): Promise<PreparedPrompt> {
    return preparePrompt(
      { hasher: this.deps.hasher, prompts: this.deps.prompts, maxPromptTokens: this.deps.limits.maxPromptTokens, maxItems: this.deps.limits.maxItems },
      req,
      signal,
      allowKeys,
    );
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
    const endpoint = checkCandidateShaped('speculate.endpoint', s.endpoint, this.deps.limits.allowHostnameEndpoints ?? false);
    return { endpoint, ttlMs: this.checkTtl(s.ttlMs) };
  }
}

function checkDeadline(signal?: Cancellation): void {
  if (signal?.aborted) throw new ApiError('deadline_exceeded', '', 'the call was cancelled or its deadline passed');
}

function checkZmqAddress(field: string, value: string, allowHostnames: boolean): string {
  if (!/^tcp:\/\/[^\s/]+:\d{1,5}$/.test(value ?? '')) throw invalid(field, `"${value}" is not tcp://<host>:<port>`);
  if (!allowHostnames) checkCandidateShaped(field, value.slice('tcp://'.length), false);
  return value;
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

function toItemMsg(i: { offset: number; length: number; identifier: string; estimated: boolean }): ItemInfoMsg {
  return { offset: i.offset, length: i.length, identifier: i.identifier, estimated: i.estimated };
}

function toEndpointMsg(e: EndpointInfo): EndpointInfoMsg {
  return {
    endpoint: e.endpoint,
    models: e.models,
    blocksByTier: Object.fromEntries(Object.entries(e.blocksByTier).map(([t, n]) => [t, String(n)])),
    lastSeq: e.lastSeq === null ? '0' : e.lastSeq.toString(),
    gaps: String(e.gaps),
    replays: String(e.replays),
    lastEventAgeSeconds: e.lastEventAgeSeconds ?? -1,
    state: e.state,
  };
}
