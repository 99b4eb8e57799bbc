import type { InflightLoad } from './inflight.js';
import type { ScrapedLoad } from './load-source.js';

/**
 * Select's cost model (docs/api.md, "The cost model"). Prior art, facts only:
 * - llm-d's inference scheduler (llm-d/llm-d-inference-scheduler, pkg/plugins/scorer/) adds weighted scores of
 *   independent scorers: a prefix-cache scorer, `load-aware-scorer` (0.5 for an empty waiting queue, falling to 0 at
 *   a queue threshold, default 128) and `active-request-scorer` (the router's own in-flight requests per endpoint,
 *   added before the request is sent, removed at response end or after a 2-minute timeout).
 * - Dynamo's KV router (ai-dynamo/dynamo, docs/router/kv_cache_routing.md) prices each worker as
 *   `overlap_score_weight × prefill blocks + decode blocks` and takes the lowest; prefill blocks are retired when the
 *   first token comes (mark_prefill_complete), decode blocks when the request is freed; a worker over an active-block
 *   threshold is excluded as busy.
 * Here both become one physical estimate, a predicted time to first token:
 *
 *   queued      = in-flight prefill tokens + waiting × meanPromptTokens   (waiting only from a fresh scrape)
 *   ttft_ms     = (queued + uncached) / prefill tokens per second × 1000
 *               + (running + in-flight decode blocks) × decodePenaltyMs
 *               + encode tokens / encodeTokensPerSecond × 1000
 *
 * `uncached` is the prompt minus the endpoint's cached blocks (policy `load`: the whole prompt). `encode tokens` are
 * the placeholder tokens of the request's images that the endpoint would have to run through its vision encoder: those
 * not inside its cached prefix (a prefix-cache hit skips the encoder) and not seen there recently (encoder residency,
 * src/index/encoder-residency.ts; vLLM's encoder cache keeps an image's output by identifier).
 */

export type Policy = 'cache' | 'load' | 'cache+load';
export const POLICIES: readonly Policy[] = ['cache', 'load', 'cache+load'];
export const DEFAULT_POLICY: Policy = 'cache+load';

export const KV_USAGE_EXCLUSION = 'kv_usage_over_gate';

export interface CostParams {
  blockSize: number;
  /** Milliseconds of TTFT per running request and per in-flight decode block on the endpoint. */
  decodePenaltyMs: number;
  /** Prompt tokens assumed per scraped waiting request. */
  meanPromptTokens: number;
  /** Endpoints whose scraped KV usage is above this are excluded (unless every candidate is). */
  kvUsageGate: number;
  /** Image placeholder tokens the vision encoder runs per second; 0 = images cost nothing to encode. */
  encodeTokensPerSecond: number;
}

/** One image of the request: where its placeholder tokens are, and whether the candidate has seen it recently. */
export interface ImageCost {
  offset: number;
  length: number;
  seen: boolean;
}

export interface CostInput {
  endpoint: string;
  /** Consecutive prompt blocks the endpoint holds, from block 0. */
  cachedBlocks: number;
  inflight: InflightLoad;
  /** The endpoint's scraped load, or undefined when there is none or it is stale. */
  scraped: ScrapedLoad | undefined;
  prefillTokensPerSecond: number;
  /** The request's images as this endpoint would see them; empty for a text prompt. */
  images: readonly ImageCost[];
}

export interface CandidateCost {
  endpoint: string;
  cachedBlocks: number;
  /** Prompt tokens the endpoint would prefill (prompt − cached blocks × block size), whatever the policy. */
  uncachedPrefillTokens: number;
  inflightPrefillTokens: number;
  inflightDecodeBlocks: number;
  running: number;
  waiting: number;
  kvUsage: number;
  /** Whether running, waiting and kvUsage come from a fresh scrape (else they are 0). */
  loadScraped: boolean;
  prefillTokensPerSecond: number;
  /** Image placeholder tokens it would have to encode (not in its cached prefix, not seen there), and their time. */
  encodeTokens: number;
  encodeMs: number;
  /** Under policy `load`, with the whole prompt as uncached. */
  predictedTtftMs: number;
  /** What the policy minimises: `cache` uncached prefill tokens, otherwise predictedTtftMs. */
  cost: number;
  /** '' when the candidate was eligible. */
  excludedReason: string;
  /** Deterministic tie-breaker: lower wins among equal costs. */
  tieBreak: number;
}

export interface Decision {
  /** Index into the candidates of the chosen one (-1 when there is none). */
  chosen: number;
  costs: CandidateCost[];
}

/** Predicted TTFT in milliseconds (the formula above). */
export function predictTtftMs(
  uncachedTokens: number,
  inflight: InflightLoad,
  scraped: ScrapedLoad | undefined,
  tokensPerSecond: number,
  params: CostParams,
): number {
  const queued = inflight.prefillTokens + (scraped ? scraped.waiting * params.meanPromptTokens : 0);
  const prefillMs = ((queued + uncachedTokens) / tokensPerSecond) * 1000;
  const decodeMs = ((scraped ? scraped.running : 0) + inflight.decodeBlocks) * params.decodePenaltyMs;
  return prefillMs + decodeMs;
}

/**
 * Prices every candidate under `policy` and picks the cheapest eligible one; equal costs go to the lowest
 * tieBreak, a hash of (the request, the endpoint), so that ties spread over endpoints instead of always landing on
 * the first candidate, yet the same request and candidates always give the same answer.
 */
export function decide(
  policy: Policy,
  promptTokens: number,
  requestDigest: bigint,
  inputs: readonly CostInput[],
  params: CostParams,
): Decision {
  const costs = inputs.map((c) => {
    const uncached = Math.max(0, promptTokens - c.cachedBlocks * params.blockSize);
    const encodeTokens = imagesToEncode(c.images, policy === 'load' ? 0 : c.cachedBlocks * params.blockSize);
    const encodeMs = params.encodeTokensPerSecond > 0 ? (encodeTokens / params.encodeTokensPerSecond) * 1000 : 0;
    const ttft =
      predictTtftMs(
        policy === 'load' ? promptTokens : uncached,
        c.inflight,
        c.scraped,
        c.prefillTokensPerSecond,
        params,
      ) + encodeMs;
    const over = c.scraped !== undefined && c.scraped.kvUsage > params.kvUsageGate;
    const cost: CandidateCost = {
      endpoint: c.endpoint,
      cachedBlocks: c.cachedBlocks,
      uncachedPrefillTokens: uncached,
      inflightPrefillTokens: c.inflight.prefillTokens,
      inflightDecodeBlocks: c.inflight.decodeBlocks,
      running: c.scraped?.running ?? 0,
      waiting: c.scraped?.waiting ?? 0,
      kvUsage: c.scraped?.kvUsage ?? 0,
      loadScraped: c.scraped !== undefined,
      prefillTokensPerSecond: c.prefillTokensPerSecond,
      encodeTokens,
      encodeMs,
      predictedTtftMs: ttft,
      cost: policy === 'cache' ? uncached : ttft,
      excludedReason: over ? KV_USAGE_EXCLUSION : '',
      tieBreak: tieHash(requestDigest, c.endpoint),
    };
    return cost;
  });
  // Every candidate over the gate: excluding all would route nowhere, so none is excluded.
  if (costs.length > 0 && costs.every((c) => c.excludedReason !== '')) for (const c of costs) c.excludedReason = '';
  let chosen = -1;
  for (let i = 0; i < costs.length; i++) {
    const c = costs[i];
    if (c.excludedReason !== '') continue;
    if (chosen < 0) {
      chosen = i;
      continue;
    }
    const best = costs[chosen];
    if (c.cost < best.cost || (c.cost === best.cost && c.tieBreak < best.tieBreak)) chosen = i;
  }
  return { chosen, costs };
}

/** FNV-1a (32-bit) of the endpoint's UTF-16 code units, seeded with both halves of the request digest. */
export function tieHash(requestDigest: bigint, endpoint: string): number {
  let h = (0x811c9dc5 ^ Number(requestDigest & 0xffffffffn)) >>> 0;
  h = Math.imul(h ^ Number((requestDigest >> 32n) & 0xffffffffn), 0x01000193) >>> 0;
  for (let i = 0; i < endpoint.length; i++) h = Math.imul(h ^ endpoint.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * One number that stands for the whole request: the last block key (it chains over every block before it), else
 * the token count (a prompt shorter than one block).
 */
export function requestDigest(keys: BigUint64Array, tokenCount: number): bigint {
  return keys.length > 0 ? keys[keys.length - 1] : BigInt(tokenCount);
}

/**
 * Placeholder tokens of the images an endpoint would encode: those ending past its cached prefix (an image inside it is
 * a prefix-cache hit: the engine skips its encoder) that it has not seen recently.
 */
export function imagesToEncode(images: readonly ImageCost[], cachedTokens: number): number {
  let tokens = 0;
  for (const image of images) if (!image.seen && image.offset + image.length > cachedTokens) tokens += image.length;
  return tokens;
}
