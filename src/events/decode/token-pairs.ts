import { FieldError } from './errors.js';
import { fieldPath } from './paths.js';
import { asSafeInt, describe } from './wire-values.js';

/**
 * SGLang with EAGLE-family speculative decoding (EAGLE, EAGLE3, NEXTN/MTP, FROZEN_KV_MTP: SGLang's
 * `SpeculativeAlgorithm.is_eagle()`) keys its radix cache by bigrams, and its KV events publish each page's
 * `token_ids` as pairs: position j of the page is `(raw[j], raw[j+1])` (sgl-project/sglang
 * python/sglang/srt/mem_cache/events.py, `record_store`: "bigram pages expose tuples"; `block_size` is the number of
 * pairs). Pages of one event are contiguous (SGLang coalesces a store only onto the block it names as parent), so
 * the pairs overlap by one token all along: `[[t0,t1],[t1,t2],…,[t(n-1),tn]]`. Dynamo reads them back as the token
 * sequence `t0…tn` (ai-dynamo/dynamo#6872); llm-d-kv-cache#603 documents the same two wire shapes.
 *
 * The page holds the KV of positions `t0…t(n-1)` (the first element of each pair); `tn` is the look-ahead token the
 * engine keyed the last position with. The indexer hashes request keys over the held positions (what a prompt's
 * block covers), so `tokens` is the first elements and `lookahead` the last pair's second element.
 */
export interface TokenPairs {
  tokens: Uint32Array;
  lookahead: number;
}

/** Whether a token_ids list is in the pair form (its first element is a list). */
export function looksLikePairs(value: unknown[]): boolean {
  return (
    value.length > 0 &&
    (Array.isArray(value[0]) || value[0] instanceof Uint32Array || value[0] instanceof BigUint64Array)
  );
}

function tokenOf(value: unknown): number {
  if (typeof value === 'number' && value >>> 0 === value) return value;
  const n = asSafeInt(value);
  return n >= 0 && n <= 0xffffffff ? n : -1;
}

/**
 * Pairs → tokens. Every element must be a list of exactly two uint32 token ids and each pair must start with the
 * token the previous one ended with; anything else rejects the whole event (`bad_token_pairs`, with the element's
 * path): a broken chain means the pairs do not stand for one token sequence, and guessing would index wrong keys.
 */
export function readTokenPairs(value: unknown[], ev: number, name: string): TokenPairs {
  const n = value.length;
  const tokens = new Uint32Array(n);
  let previousSecond = -1;
  for (let j = 0; j < n; j++) {
    const pair: unknown = value[j];
    const isList = Array.isArray(pair) || pair instanceof Uint32Array || pair instanceof BigUint64Array;
    if (!isList || (pair as ArrayLike<unknown>).length !== 2) {
      const got = isList ? `a list of ${(pair as ArrayLike<unknown>).length}` : describe(pair);
      throw new FieldError(
        'bad_token_pairs',
        fieldPath(ev, name, j),
        `expected a [token, next token] pair, got ${got}`,
      );
    }
    const first = tokenOf((pair as ArrayLike<unknown>)[0]);
    const second = tokenOf((pair as ArrayLike<unknown>)[1]);
    if (first < 0 || second < 0) {
      const bad = first < 0 ? (pair as ArrayLike<unknown>)[0] : (pair as ArrayLike<unknown>)[1];
      throw new FieldError(
        'bad_token_pairs',
        fieldPath(ev, name, j),
        `expected uint32 token ids in the pair, got ${describe(bad)}`,
      );
    }
    if (j > 0 && first !== previousSecond) {
      throw new FieldError(
        'bad_token_pairs',
        fieldPath(ev, name, j),
        `pair starts with token ${first} but the previous pair ended with ${previousSecond}: not one token sequence`,
      );
    }
    tokens[j] = first;
    previousSecond = second;
  }
  return { tokens, lookahead: previousSecond };
}
