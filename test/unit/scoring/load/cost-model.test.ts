// The cost model with hand-computed figures: every expected number is worked out in the comment above it.
import { describe, expect, it } from 'vitest';
import {
  decide,
  imagesToEncode,
  predictTtftMs,
  requestDigest,
  tieHash,
  type CostInput,
  type CostParams,
} from '../../../../src/scoring/load/cost-model.js';
import { ThroughputTable } from '../../../../src/scoring/load/throughput.js';

const params: CostParams = {
  blockSize: 16,
  decodePenaltyMs: 2,
  meanPromptTokens: 1000,
  kvUsageGate: 0.95,
  encodeTokensPerSecond: 20_000,
};
const none = { prefillTokens: 0, decodeBlocks: 0, reservations: 0 };

function input(endpoint: string, over: Partial<CostInput> = {}): CostInput {
  return {
    endpoint,
    cachedBlocks: 0,
    inflight: none,
    scraped: undefined,
    prefillTokensPerSecond: 8000,
    images: [],
    ...over,
  };
}

describe('predictTtftMs', () => {
  it('prefill of queued + uncached tokens at the throughput, plus the decode-pressure term', () => {
    // queued = 4000 in flight + 2 waiting × 1000 = 6000; (6000 + 2000) / 8000 tok/s = 1 s = 1000 ms;
    // decode = (3 running + 10 in-flight decode blocks) × 2 ms = 26 ms → 1026 ms.
    const scraped = { running: 3, waiting: 2, kvUsage: 0.5, ageMs: 10, stale: false };
    expect(predictTtftMs(2000, { prefillTokens: 4000, decodeBlocks: 10, reservations: 2 }, scraped, 8000, params)).toBe(
      1026,
    );
  });

  it('without scraped load only the ledger counts', () => {
    // (500 + 300) / 4000 × 1000 = 200 ms; decode = (0 + 5) × 2 = 10 ms → 210 ms.
    expect(predictTtftMs(300, { prefillTokens: 500, decodeBlocks: 5, reservations: 1 }, undefined, 4000, params)).toBe(
      210,
    );
  });
});

describe('decide', () => {
  // A 160-token prompt = 10 blocks of 16.
  it('cache: the most cached blocks win, cost = uncached prefill tokens', () => {
    const d = decide(
      'cache',
      160,
      7n,
      [
        input('a', { cachedBlocks: 2 }),
        input('b', { cachedBlocks: 8, inflight: { prefillTokens: 80_000, decodeBlocks: 0, reservations: 1 } }),
      ],
      params,
    );
    expect(d.chosen).toBe(1);
    // a: 160 − 2×16 = 128; b: 160 − 8×16 = 32 (its 80k queued tokens do not matter to `cache`).
    expect(d.costs.map((c) => c.cost)).toEqual([128, 32]);
    expect(d.costs.map((c) => c.uncachedPrefillTokens)).toEqual([128, 32]);
    // b's predicted TTFT is still reported: (80000 + 32) / 8000 × 1000 = 10004 ms.
    expect(d.costs[1].predictedTtftMs).toBe(10004);
  });

  it('cache+load: a loaded endpoint with the cache loses to an idle one without it', () => {
    // a: uncached 128, idle → 128 / 8000 × 1000 = 16 ms.
    // b: uncached 32, 80000 queued → (80000 + 32) / 8000 × 1000 = 10004 ms.
    const d = decide(
      'cache+load',
      160,
      7n,
      [
        input('a', { cachedBlocks: 2 }),
        input('b', { cachedBlocks: 8, inflight: { prefillTokens: 80_000, decodeBlocks: 0, reservations: 1 } }),
      ],
      params,
    );
    expect(d.chosen).toBe(0);
    expect(d.costs.map((c) => c.cost)).toEqual([16, 10004]);
  });

  it('cache+load: with equal load the cache decides', () => {
    // a: (1600 + 128) / 8000 × 1000 = 216 ms; b: (1600 + 32) / 8000 × 1000 = 204 ms.
    const load = { prefillTokens: 1600, decodeBlocks: 0, reservations: 1 };
    const d = decide(
      'cache+load',
      160,
      7n,
      [input('a', { cachedBlocks: 2, inflight: load }), input('b', { cachedBlocks: 8, inflight: load })],
      params,
    );
    expect(d.chosen).toBe(1);
    expect(d.costs.map((c) => c.cost)).toEqual([216, 204]);
  });

  it('load: ignores the cache (the whole prompt is uncached) and takes the least loaded', () => {
    // a: (0 + 160) / 8000 × 1000 = 20 ms + 3 decode blocks × 2 = 26 ms.
    // b: (0 + 160) / 8000 × 1000 = 20 ms + 1 decode block × 2 = 22 ms — though a holds 9 of the 10 blocks.
    const d = decide(
      'load',
      160,
      7n,
      [
        input('a', { cachedBlocks: 9, inflight: { prefillTokens: 0, decodeBlocks: 3, reservations: 1 } }),
        input('b', { inflight: { prefillTokens: 0, decodeBlocks: 1, reservations: 1 } }),
      ],
      params,
    );
    expect(d.chosen).toBe(1);
    expect(d.costs.map((c) => c.predictedTtftMs)).toEqual([26, 22]);
    // uncached_prefill_tokens stays the fact: a would prefill 160 − 144 = 16 tokens.
    expect(d.costs.map((c) => c.uncachedPrefillTokens)).toEqual([16, 160]);
  });

  it('the learned throughput of an endpoint enters its prediction', () => {
    // a: 160 / 8000 → 20 ms; b: 160 / 16000 → 10 ms.
    const d = decide('cache+load', 160, 7n, [input('a'), input('b', { prefillTokensPerSecond: 16_000 })], params);
    expect(d.chosen).toBe(1);
    expect(d.costs.map((c) => c.cost)).toEqual([20, 10]);
  });

  it('KV-usage gate: an endpoint over it is excluded, with the reason', () => {
    const full = { running: 0, waiting: 0, kvUsage: 0.97, ageMs: 5, stale: false };
    const ok = { running: 0, waiting: 0, kvUsage: 0.5, ageMs: 5, stale: false };
    // a holds everything (0 uncached → 0 ms) but is at 97% KV usage; b: 160 / 8000 → 20 ms.
    const d = decide(
      'cache+load',
      160,
      7n,
      [input('a', { cachedBlocks: 10, scraped: full }), input('b', { scraped: ok })],
      params,
    );
    expect(d.chosen).toBe(1);
    expect(d.costs.map((c) => [c.excludedReason, c.cost, c.kvUsage, c.loadScraped])).toEqual([
      ['kv_usage_over_gate', 0, 0.97, true],
      ['', 20, 0.5, true],
    ]);
  });

  it('KV-usage gate: when every candidate is over it, none is excluded', () => {
    const full = { running: 0, waiting: 0, kvUsage: 0.99, ageMs: 5, stale: false };
    const d = decide(
      'cache+load',
      160,
      7n,
      [input('a', { cachedBlocks: 10, scraped: full }), input('b', { scraped: full })],
      params,
    );
    expect(d.chosen).toBe(0);
    expect(d.costs.map((c) => c.excludedReason)).toEqual(['', '']);
  });

  it('ties go to the lowest hash of (request, endpoint): deterministic, and spread over requests', () => {
    const eps = ['10.0.0.1:8000', '10.0.0.2:8000', '10.0.0.3:8000', '10.0.0.4:8000'];
    const pick = (digest: bigint) =>
      eps[
        decide(
          'cache+load',
          160,
          digest,
          eps.map((e) => input(e)),
          params,
        ).chosen
      ];
    expect(pick(1n)).toBe(pick(1n));
    const winners = new Set<string>();
    for (let d = 1n; d <= 64n; d++) winners.add(pick(d));
    // 64 different requests with equal costs do not all land on one endpoint.
    expect(winners.size).toBe(4);
    // And a winner is the candidate with the lowest tie hash, whatever the candidates' order.
    const byHash = [...eps].sort((a, b) => tieHash(5n, a) - tieHash(5n, b))[0];
    expect(pick(5n)).toBe(byHash);
    const reversed = [...eps].reverse();
    expect(
      reversed[
        decide(
          'cache+load',
          160,
          5n,
          reversed.map((e) => input(e)),
          params,
        ).chosen
      ],
    ).toBe(byHash);
  });

  it('requestDigest: the last block key, else the token count', () => {
    expect(requestDigest(new BigUint64Array([5n, 9n]), 32)).toBe(9n);
    expect(requestDigest(new BigUint64Array(0), 7)).toBe(7n);
  });
});

describe('ThroughputTable', () => {
  it('EWMA from the default: new = alpha × rate + (1 − alpha) × old', () => {
    const t = new ThroughputTable(8000, 0.25);
    expect(t.get('a')).toBe(8000);
    // 4000 tokens in 250 ms = 16000 tok/s; 0.25 × 16000 + 0.75 × 8000 = 10000.
    expect(t.observe('a', 4000, 250)).toBe(10_000);
    // 1000 tokens in 500 ms = 2000 tok/s; 0.25 × 2000 + 0.75 × 10000 = 8000.
    expect(t.observe('a', 1000, 500)).toBe(8000);
    expect(t.get('b')).toBe(8000);
  });

  it('ignores timings that teach nothing (zero tokens, zero or non-finite time)', () => {
    const t = new ThroughputTable(8000, 0.5);
    expect(t.observe('a', 0, 100)).toBe(8000);
    expect(t.observe('a', 100, 0)).toBe(8000);
    expect(t.observe('a', 100, Number.POSITIVE_INFINITY)).toBe(8000);
    expect(t.get('a')).toBe(8000);
  });

  it('forgets the endpoint updated longest ago beyond its bound', () => {
    const t = new ThroughputTable(8000, 1, 2);
    t.observe('a', 1000, 1000);
    t.observe('b', 2000, 1000);
    t.observe('c', 3000, 1000);
    expect([t.get('a'), t.get('b'), t.get('c')]).toEqual([8000, 2000, 3000]);
  });
});

describe('docs/api.md worked example (defaults: 8000 tokens/s, 1 ms decode penalty, 1024 tokens per waiting request)', () => {
  const defaults: CostParams = {
    blockSize: 16,
    decodePenaltyMs: 1,
    meanPromptTokens: 1024,
    kvUsageGate: 0.95,
    encodeTokensPerSecond: 20_000,
  };
  const a = input('A', {
    cachedBlocks: 112,
    inflight: { prefillTokens: 12_000, decodeBlocks: 32, reservations: 3 },
    scraped: { running: 4, waiting: 2, kvUsage: 0.6, ageMs: 50, stale: false },
  });
  const b = input('B', { scraped: { running: 3, waiting: 0, kvUsage: 0.4, ageMs: 50, stale: false } });

  it('cache+load picks B at 259 ms against A at 1824 ms; cache picks A; load picks B', () => {
    const d = decide('cache+load', 2048, 1n, [a, b], defaults);
    expect(d.costs.map((c) => [c.uncachedPrefillTokens, c.predictedTtftMs])).toEqual([
      [256, 1824],
      [2048, 259],
    ]);
    expect(d.chosen).toBe(1);
    expect(decide('cache', 2048, 1n, [a, b], defaults).chosen).toBe(0);
    const load = decide('load', 2048, 1n, [a, b], defaults);
    expect(load.costs.map((c) => c.predictedTtftMs)).toEqual([2048, 259]);
    expect(load.chosen).toBe(1);
  });

  it('with A idle but for 4 running requests, cache+load picks A at 36 ms', () => {
    const idle = {
      ...a,
      inflight: { prefillTokens: 0, decodeBlocks: 0, reservations: 0 },
      scraped: { running: 4, waiting: 0, kvUsage: 0.6, ageMs: 50, stale: false },
    };
    const d = decide('cache+load', 2048, 1n, [idle, b], defaults);
    expect(d.costs.map((c) => c.cost)).toEqual([36, 259]);
    expect(d.chosen).toBe(0);
  });
});

describe('images to encode', () => {
  // Two images: 400 placeholder tokens at 100..499 and 1000 at 800..1799.
  const images = (seen: [boolean, boolean]) => [
    { offset: 100, length: 400, seen: seen[0] },
    { offset: 800, length: 1000, seen: seen[1] },
  ];

  it('counts the images past the cached prefix that the endpoint has not seen', () => {
    expect(imagesToEncode(images([false, false]), 0)).toBe(1400);
    // 512 cached tokens: the first image (ends at 500) is inside the prefix, a hit; the second must be encoded.
    expect(imagesToEncode(images([false, false]), 512)).toBe(1000);
    expect(imagesToEncode(images([false, true]), 0)).toBe(400);
    expect(imagesToEncode(images([true, true]), 0)).toBe(0);
    // An image cut by the prefix's end (ends at 1800 > 1792 cached) is encoded whole.
    expect(imagesToEncode(images([false, false]), 1792)).toBe(1000);
  });

  it('adds their encoding time to the predicted TTFT; policy load ignores the cached prefix for it too', () => {
    // Prompt 2048 tokens (128 blocks); A holds 32 blocks (512 tokens) and has seen neither image, B holds none and has
    // seen both. cache+load: A = (2048 − 512) / 8000 × 1000 + 1000 / 20000 × 1000 = 192 + 50 = 242 ms;
    // B = 2048 / 8000 × 1000 + 0 = 256 ms → A. With B having seen only the first image: B = 256 + 1000 / 20000 × 1000
    // = 306 ms. load: A = 256 + 1400 / 20000 × 1000 = 326 ms, B = 256 ms → B.
    const a = input('A', { cachedBlocks: 32, images: images([false, false]) });
    const b = input('B', { images: images([true, true]) });
    const cacheLoad = decide('cache+load', 2048, 1n, [a, b], params);
    expect(cacheLoad.costs.map((c) => [c.endpoint, c.encodeTokens, c.encodeMs, c.predictedTtftMs])).toEqual([
      ['A', 1000, 50, 242],
      ['B', 0, 0, 256],
    ]);
    expect(cacheLoad.chosen).toBe(0);
    const bSeenFirst = input('B', { images: images([true, false]) });
    expect(decide('cache+load', 2048, 1n, [a, bSeenFirst], params).costs[1].predictedTtftMs).toBe(306);
    const load = decide('load', 2048, 1n, [a, b], params);
    expect(load.costs.map((c) => [c.encodeTokens, c.predictedTtftMs])).toEqual([
      [1400, 326],
      [0, 256],
    ]);
    expect(load.chosen).toBe(1);
    // encodeTokensPerSecond 0: images cost nothing.
    expect(
      decide('cache+load', 2048, 1n, [a, b], { ...params, encodeTokensPerSecond: 0 }).costs[0].predictedTtftMs,
    ).toBe(192);
  });
});
