import type { ImageResidency, Index, TierRegistry } from '../index/index.js';
import type { BlockHasher } from '../keys/index.js';
import { Scorer, type TierWeights } from '../scoring/index.js';
import {
  checkCount,
  decide,
  LedgerError,
  MAX_RESERVATION_TTL_MS,
  MAX_TOKEN_COUNT,
  POLICIES,
  requestDigest,
  type CostInput,
  type CostParams,
  type ImageCost,
  type InflightLedger,
  type LoadSource,
  type Policy,
  type ThroughputTable,
} from '../scoring/load/index.js';
import { ApiError, invalid } from './errors.js';
import type { ApiLimits } from './indexer-api.js';
import { preparePrompt } from './prepare.js';
import type { Cancellation, PromptFrontend, PromptItem } from './prompt-frontend.js';
import type {
  CandidateCostMsg,
  PrefillCompleteRequestMsg,
  ReleaseReservationRequestMsg,
  SelectRequestMsg,
  SelectResponseMsg,
  SelectStatsMsg,
} from './select-messages.js';
import { speculateHere, type Speculate, type SpeculationQuota } from './speculation-quota.js';
import { checkCandidates, checkCandidateShaped, checkTierWeights } from './validate.js';

/** The `select.*` settings Select reads (src/ops/select-config.ts). */
export interface SelectSettings {
  defaultPolicy: Policy;
  reservationTtlMs: number;
  decodePenaltyMs: number;
  meanPromptTokens: number;
  kvUsageGate: number;
  encodeTokensPerSecond: number;
  defaultOutputTokens: number;
}

/** Metrics hooks (src/ops/select-metrics.ts); optional. */
export interface SelectObserver {
  selected?(policy: string, outcome: string): void;
  calibrated?(predictedCachedTokens: number, actualCachedTokens: number, promptTokens: number): void;
}

export interface SelectApiDeps {
  index: Index;
  tiers: TierRegistry;
  hasher: BlockHasher;
  weights: TierWeights;
  prompts: PromptFrontend | null;
  limits: ApiLimits;
  settings: SelectSettings;
  ledger: InflightLedger;
  throughput: ThroughputTable;
  /** Per-caller bound on speculative entries, shared with Score.speculate and Reserve. */
  quota: SpeculationQuota;
  /** Scraped load per endpoint (Prometheus scraper); absent = none. */
  loads?: LoadSource;
  /** Encoder residency (which endpoints have seen which images); absent = none has seen any. */
  residency?: Pick<ImageResidency, 'imagesSeen'>;
  observer?: SelectObserver;
  /** Where a reservation's speculative entries go when every replica must see them (speculation-quota.ts); absent: here. */
  speculate?: Speculate;
}

const RESERVATION_ID = /^[0-9a-f]{32}$/;
/** A text prompt's images, shared: no array per candidate on the common path. */
const NO_IMAGES: ImageCost[] = [];
/** A prefill longer than an hour is not a timing to learn from. */
const MAX_PREFILL_MS = 3_600_000;

/**
 * Select, PrefillComplete and ReleaseReservation (docs/api.md, "Select"): the Score path (prompt → block keys →
 * per-candidate cached blocks), priced by the cost model (src/scoring/load/cost-model.ts) with the in-flight ledger
 * and the scraped load, and the reservation lifecycle that feeds the ledger back.
 */
export class SelectApi {
  private readonly scorer: Scorer;
  private readonly counters = { selects: 0, calibrated: 0, predicted: 0, actual: 0 };
  private readonly speculate: Speculate;

  constructor(private readonly deps: SelectApiDeps) {
    this.scorer = new Scorer(deps.index, deps.tiers, deps.weights);
    this.speculate = deps.speculate ?? speculateHere(deps.quota, deps.index);
  }

  async select(req: SelectRequestMsg, signal?: Cancellation, caller = ''): Promise<SelectResponseMsg> {
    let policy: string = req.policy || this.deps.settings.defaultPolicy;
    try {
      policy = checkPolicy(req.policy, this.deps.settings.defaultPolicy);
      const res = await this.run(req, policy as Policy, signal, caller);
      this.counters.selects++;
      this.deps.observer?.selected?.(policy, res.reservationId ? 'reserved' : 'chosen');
      return res;
    } catch (err) {
      const code = err instanceof ApiError ? err.code : 'internal';
      this.deps.observer?.selected?.(POLICIES.includes(policy as Policy) ? policy : 'invalid', code);
      throw err;
    }
  }

  async prefillComplete(req: PrefillCompleteRequestMsg) {
    const id = checkReservationId(req.reservationId);
    const cached =
      req.cachedTokens === undefined || req.cachedTokens === null ? null : checkCachedTokens(req.cachedTokens);
    const prefillMs = req.prefillMs === undefined || req.prefillMs === null ? null : checkPrefillMs(req.prefillMs);
    // Everything is checked before the ledger changes: a refused call retires nothing.
    const res = await ledgerCall(() => this.deps.ledger.prefillComplete(id));
    const prefilled = cached === null ? res.uncachedPrefillTokens : Math.max(0, res.promptTokens - cached);
    const throughput =
      prefillMs === null
        ? this.deps.throughput.get(res.endpoint)
        : this.deps.throughput.observe(res.endpoint, prefilled, prefillMs);
    if (cached !== null) {
      this.counters.calibrated++;
      this.counters.predicted += res.predictedCachedTokens;
      this.counters.actual += cached;
      this.deps.observer?.calibrated?.(res.predictedCachedTokens, cached, res.promptTokens);
    }
    return {
      endpoint: res.endpoint,
      predictedCachedTokens: res.predictedCachedTokens,
      prefillTokensPerSecond: throughput,
    };
  }

  async releaseReservation(req: ReleaseReservationRequestMsg) {
    const id = checkReservationId(req.reservationId);
    const res = await ledgerCall(() => this.deps.ledger.release(id));
    return { endpoint: res.endpoint, prefillCompleted: res.prefillDone };
  }

  /** The request's images as `endpoint` would see them (seen = in its encoder residency); none for a text prompt. */
  private imagesOf(items: readonly PromptItem[], endpoint: string): ImageCost[] {
    if (items.length === 0) return NO_IMAGES;
    const residency = this.deps.residency;
    return items.map((item) => ({
      offset: item.offset,
      length: item.length,
      seen: residency !== undefined && residency.imagesSeen(endpoint, [item.identifier]) > 0,
    }));
  }

  /** GetStatsResponse fields 30–34. */
  stats(): SelectStatsMsg {
    const c = this.counters;
    return {
      inflightReservations: String(this.deps.ledger.size()),
      selectCalls: String(c.selects),
      calibratedPrefills: String(c.calibrated),
      cachedTokensPredicted: String(c.predicted),
      cachedTokensActual: String(c.actual),
    };
  }

  private async run(
    req: SelectRequestMsg,
    policy: Policy,
    signal: Cancellation | undefined,
    caller: string,
  ): Promise<SelectResponseMsg> {
    const { limits, settings, hasher } = this.deps;
    if (!req.candidates || req.candidates.length === 0)
      throw invalid('candidates', 'is required (Select picks one of them)');
    const candidates = checkCandidates(req.candidates, limits.maxCandidates)!;
    // Reserving inserts speculative entries for the chosen candidate: the same IP-literal rule as Score.speculate.
    if (req.reserve)
      candidates.forEach((c, i) => checkCandidateShaped(`candidates[${i}]`, c, limits.allowHostnameEndpoints ?? false));
    const tierWeights = checkTierWeights(req.tierWeights ?? {});
    const outputTokens = req.expectedOutputTokens ?? settings.defaultOutputTokens;
    if (outputTokens > MAX_TOKEN_COUNT)
      throw invalid('expected_output_tokens', `${outputTokens} is absurd (at most ${MAX_TOKEN_COUNT})`);
    const ttlMs = req.reservationTtlMs || settings.reservationTtlMs;
    if (ttlMs > MAX_RESERVATION_TTL_MS)
      throw invalid('reservation_ttl_ms', `must be at most ${MAX_RESERVATION_TTL_MS}, got ${ttlMs}`);

    const prepared = await preparePrompt(
      { hasher, prompts: this.deps.prompts, maxPromptTokens: limits.maxPromptTokens, maxItems: limits.maxItems },
      req,
      signal,
    );
    if (signal?.aborted) throw new ApiError('deadline_exceeded', '', 'the call was cancelled or its deadline passed');
    // No fail-open here: zero scores would price every candidate as cold, a decision worse than the picker's own.
    // The ledger read goes out with the index lookup, not after it (scores come one per candidate, in their order):
    // with both in Redis the two scripts share the connection and their round trips overlap.
    const [scored, inflight] = await Promise.all([
      this.scorer.score(prepared.keys, { candidates, tierWeights }),
      this.deps.ledger.loads(candidates),
    ]).catch(backendFailure);
    const inputs: CostInput[] = scored.scores.map((s, i) => ({
      endpoint: s.endpoint,
      cachedBlocks: s.matchedBlocks,
      inflight: inflight[i],
      scraped: this.freshLoad(s.endpoint),
      prefillTokensPerSecond: this.deps.throughput.get(s.endpoint),
      images: this.imagesOf(prepared.items, s.endpoint),
    }));
    const params: CostParams = {
      blockSize: hasher.blockSize,
      decodePenaltyMs: settings.decodePenaltyMs,
      meanPromptTokens: settings.meanPromptTokens,
      kvUsageGate: settings.kvUsageGate,
      encodeTokensPerSecond: settings.encodeTokensPerSecond,
    };
    const decision = decide(
      policy,
      prepared.tokenCount,
      requestDigest(prepared.keys, prepared.tokenCount),
      inputs,
      params,
    );
    const chosen = decision.costs[decision.chosen];

    let reservationId = '';
    if (req.reserve) {
      reservationId = await this.reserve(caller, prepared.keys, {
        endpoint: chosen.endpoint,
        uncachedPrefillTokens: chosen.uncachedPrefillTokens,
        expectedDecodeBlocks: Math.ceil(outputTokens / hasher.blockSize),
        ttlMs,
        predictedCachedTokens: chosen.cachedBlocks * hasher.blockSize,
        promptTokens: prepared.tokenCount,
      });
    }
    return {
      endpoint: chosen.endpoint,
      reservationId,
      policy,
      totalBlocks: scored.totalBlocks,
      tokenCount: prepared.tokenCount,
      blockSize: hasher.blockSize,
      candidates: decision.costs.map((c, i): CandidateCostMsg => ({
        endpoint: c.endpoint,
        cachedBlocks: c.cachedBlocks,
        cachedBlocksByTier: scored.scores[i].blocksByTier,
        uncachedPrefillTokens: c.uncachedPrefillTokens,
        inflightPrefillTokens: String(c.inflightPrefillTokens),
        inflightDecodeBlocks: String(c.inflightDecodeBlocks),
        running: c.running,
        waiting: c.waiting,
        kvUsage: c.kvUsage,
        loadScraped: c.loadScraped,
        prefillTokensPerSecond: c.prefillTokensPerSecond,
        encodeTokens: c.encodeTokens,
        encodeMs: c.encodeMs,
        predictedTtftMs: c.predictedTtftMs,
        cost: c.cost,
        excludedReason: c.excludedReason,
      })),
    };
  }

  /**
   * Records the decision all or nothing: the speculative-entry quota is checked first, then the ledger entry, then
   * the speculative entries (which take the quota, here or on every replica); a failure at a later step undoes the
   * earlier ones.
   */
  private async reserve(
    caller: string,
    keys: BigUint64Array,
    r: Parameters<InflightLedger['reserve']>[0],
  ): Promise<string> {
    const specTtl = this.deps.limits.speculativeTtlMs;
    if (keys.length > 0) this.deps.quota.check(caller, keys.length, 'reserve');
    let id = '';
    try {
      id = (await ledgerCall(() => this.deps.ledger.reserve(r))).id;
      if (keys.length > 0) await this.speculate(caller, r.endpoint, keys, specTtl, 'reserve');
      return id;
    } catch (err) {
      // A cancel that fails too (Redis down) leaves the reservation to its TTL; the caller is told of the first failure.
      if (id) await this.deps.ledger.cancel(id).catch(() => undefined);
      return backendFailure(err);
    }
  }

  /** The endpoint's scraped load when there is a scraper and its figures are fresh. */
  private freshLoad(endpoint: string) {
    const load = this.deps.loads?.get(endpoint);
    return load && !load.stale ? load : undefined;
  }
}

/** A failure of the index (or a shared ledger) backend: UNAVAILABLE, for the picker to retry or fall back. */
function backendFailure(err: unknown): never {
  if (err instanceof ApiError) throw err;
  throw new ApiError('unavailable', '', `index backend failed: ${(err as Error).message}`);
}

function checkPolicy(value: string, fallback: Policy): Policy {
  if (!value) return fallback;
  if (!(POLICIES as readonly string[]).includes(value))
    throw invalid('policy', `"${value.slice(0, 50)}" is not one of ${POLICIES.join(', ')}`);
  return value as Policy;
}

function checkReservationId(value: string): string {
  if (!value) throw invalid('reservation_id', 'is required');
  if (!RESERVATION_ID.test(value)) throw invalid('reservation_id', 'must be the 32 hex digits Select returned');
  return value;
}

function checkCachedTokens(value: string | number): number {
  const n = Number(value);
  try {
    return checkCount('cached_tokens', n);
  } catch (err) {
    throw toApiError(err);
  }
}

function checkPrefillMs(value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    throw invalid('prefill_ms', `must be a finite number ≥ 0, got ${String(value)}`);
  if (value > MAX_PREFILL_MS) throw invalid('prefill_ms', `${value} is absurd (at most ${MAX_PREFILL_MS})`);
  return value;
}

async function ledgerCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toApiError(err);
  }
}

function toApiError(err: unknown): unknown {
  return err instanceof LedgerError ? new ApiError(err.code, err.field, err.message) : err;
}
