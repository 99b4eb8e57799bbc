import { describe, expect, it } from 'vitest';
import { IMAGE_PLACEHOLDER_TOKEN } from '../../../src/sim/publisher/workload.js';
import { EndpointQueues } from '../../../src/sim/fleet/cost-model.js';
import {
  best,
  createPolicy,
  withinLoadGuard,
  type PolicyOptions,
  type RouteInput,
} from '../../../src/sim/fleet/policies.js';
import { Random, Zipf } from '../../../src/sim/fleet/random.js';
import { chunkHashes, tokenSpelling } from '../../../src/sim/fleet/text-chunks.js';
import { generateWorkload, imageUrl, type SimulatedRequest } from '../../../src/sim/fleet/workloads.js';

/** A request with the given tokens and no images. */
function textRequest(tokens: number[], id = 0): SimulatedRequest {
  return {
    id,
    arrival: 0,
    source: 'multi-turn',
    conversation: `c${id}`,
    prompt: { tokens, items: [], loraName: null },
    imageUrls: [],
    output: [],
  };
}

/** Characters a token list is spelled with, in the approximate router's view. */
function spelledLength(tokens: number[]): number {
  let n = 0;
  for (const t of tokens) tokenSpelling(t, () => n++);
  return n;
}

describe('workload generator', () => {
  it('is a pure function of its seed and options', () => {
    for (const name of ['multi-turn', 'long-doc', 'image-chat', 'hot-spot', 'mixed'] as const) {
      const a = generateWorkload(name, { seed: 7, requests: 120, rate: 20 });
      const b = generateWorkload(name, { seed: 7, requests: 120, rate: 20 });
      const c = generateWorkload(name, { seed: 8, requests: 120, rate: 20 });
      expect(b).toEqual(a);
      expect(c).not.toEqual(a);
      expect(a).toHaveLength(120);
      expect(a.map((r) => r.id)).toEqual(Array.from({ length: 120 }, (_, i) => i));
      for (let i = 1; i < a.length; i++) expect(a[i].arrival).toBeGreaterThanOrEqual(a[i - 1].arrival);
    }
  });

  it('makes the hot-spot workload open 60 % of its requests with one 4,000-token prefix, the rest with 30 others', () => {
    const requests = generateWorkload('hot-spot', { seed: 5, requests: 2000, rate: 20 });
    const hot = requests.filter((r) => r.conversation.startsWith('hot-'));
    const hotPrefix = hot[0].prompt.tokens.slice(0, 4000);
    for (const r of hot) expect(r.prompt.tokens.slice(0, 4000)).toEqual(hotPrefix);
    // Every request is its own: a question of 50–300 tokens after its prefix, no images.
    for (const r of requests) expect(r.prompt.items).toEqual([]);
    expect(hot.every((r) => r.prompt.tokens.length >= 4050 && r.prompt.tokens.length <= 4300)).toBe(true);
    const others = new Set(
      requests.filter((r) => !r.conversation.startsWith('hot-')).map((r) => r.conversation.split('-q')[0]),
    );
    expect(others.size).toBeLessThanOrEqual(30);
    expect(others.size).toBeGreaterThan(20);
    // Seeded draws: the share of hot requests is that of this seed, within a few percent of 60 %.
    expect(Math.abs(hot.length / requests.length - 0.6)).toBeLessThan(0.03);
    expect(new Set(requests.map((r) => r.source))).toEqual(new Set(['hot-spot']));
  });

  it('makes each turn of a chat repeat the previous prompt and reply before its new message', () => {
    const requests = generateWorkload('multi-turn', { seed: 3, requests: 300, rate: 20 });
    const byChat = new Map<string, SimulatedRequest[]>();
    for (const r of requests) byChat.set(r.conversation, [...(byChat.get(r.conversation) ?? []), r]);
    let followUps = 0;
    for (const turns of byChat.values()) {
      for (let i = 1; i < turns.length; i++) {
        const previous = [...turns[i - 1].prompt.tokens, ...turns[i - 1].output];
        expect(turns[i].prompt.tokens.slice(0, previous.length)).toEqual(previous);
        expect(turns[i].prompt.tokens.length).toBeGreaterThan(previous.length);
        followUps++;
      }
    }
    expect(followUps).toBeGreaterThan(100);
  });

  it('fills image items with placeholder tokens and sends them as shared or chat-signed URLs', () => {
    const plain = generateWorkload('image-chat', { seed: 5, requests: 200, rate: 20, signedUrlShare: 0 });
    const signed = generateWorkload('image-chat', { seed: 5, requests: 200, rate: 20, signedUrlShare: 1 });
    for (const r of plain) {
      expect(r.prompt.items.length).toBeGreaterThan(0);
      expect(r.imageUrls).toEqual(r.prompt.items.map((i) => imageUrl(i.identifier)));
      for (const item of r.prompt.items) {
        expect(r.prompt.tokens.slice(item.offset, item.offset + item.length)).toEqual(
          new Array(item.length).fill(IMAGE_PLACEHOLDER_TOKEN),
        );
      }
    }
    // Only the URLs differ: the engine sees the same pixels (same identifiers) either way.
    expect(signed.map((r) => r.prompt)).toEqual(plain.map((r) => r.prompt));
    for (const r of signed)
      for (const url of r.imageUrls)
        expect(url).toMatch(/^https:\/\/images\.example\.com\/img-[0-9a-f]{4}\.jpg\?X-Amz-Signature=sig-\d+$/);
    // A repeated image: the same identifier in chats that started separately.
    const firstImages = new Map<string, Set<string>>();
    for (const r of plain)
      firstImages.set(
        r.prompt.items[0].identifier,
        (firstImages.get(r.prompt.items[0].identifier) ?? new Set()).add(r.conversation),
      );
    expect(Math.max(...[...firstImages.values()].map((s) => s.size))).toBeGreaterThan(5);
  });

  it('mixes all three sources', () => {
    const sources = new Set(generateWorkload('mixed', { seed: 1, requests: 300, rate: 20 }).map((r) => r.source));
    expect([...sources].sort()).toEqual(['image-chat', 'long-doc', 'multi-turn']);
  });

  it('rejects bad options with a clear error', () => {
    expect(() => generateWorkload('long-doc', { seed: 1, requests: 0, rate: 1 })).toThrow(
      'requests must be a positive integer, got 0',
    );
    expect(() => generateWorkload('long-doc', { seed: 1, requests: 5, rate: 0 })).toThrow('rate must be > 0, got 0');
    expect(() => generateWorkload('image-chat', { seed: 1, requests: 5, rate: 1, signedUrlShare: 2 })).toThrow(
      'signedUrlShare must be in [0, 1], got 2',
    );
  });
});

describe('Zipf ranks', () => {
  it('samples by the cumulative 1/(k+1)^s distribution', () => {
    // s = 1, n = 3: P = 6/11, 3/11, 2/11 → CDF 0.545…, 0.818…, 1.
    const zipf = new Zipf(3, 1);
    const at = (u: number) => zipf.sample({ uniform: () => u } as Random);
    expect([at(0), at(0.54), at(0.55), at(0.81), at(0.82), at(0.999)]).toEqual([0, 0, 1, 1, 2, 2]);
    expect(() => new Zipf(0, 1)).toThrow('Zipf needs n ≥ 1, got 0');
  });
});

describe('cost model', () => {
  it('queues prefills first come first served and charges only uncached tokens', () => {
    const q = new EndpointQueues(['a', 'b'], { prefillTokensPerSecond: 1000, overheadSeconds: 0.01 });
    expect(q.dispatch('a', 0, 500)).toEqual({ queueSeconds: 0, serviceSeconds: 0.51, ttftSeconds: 0.51 });
    // Arrives at 0.2 while a is busy until 0.51: waits 0.31, then 0.25 s of prefill.
    const second = q.dispatch('a', 0.2, 240);
    expect(second.queueSeconds).toBeCloseTo(0.31, 12);
    expect(second.ttftSeconds).toBeCloseTo(0.56, 12);
    expect(q.backlog('a', 0.5)).toBeCloseTo(0.26, 12);
    expect(q.backlog('b', 0.5)).toBe(0);
    // A fully cached prompt costs only the overhead.
    expect(q.dispatch('b', 1, 0)).toEqual({ queueSeconds: 0, serviceSeconds: 0.01, ttftSeconds: 0.01 });
    // Work: a 0.51 + 0.25, b 0.01 → busiest over mean = 0.76 / 0.385.
    expect(q.imbalance()).toBeCloseTo(0.76 / 0.385, 12);
    expect([q.requests.get('a'), q.requests.get('b')]).toEqual([2, 1]);
    expect(() => q.dispatch('c', 0, 1)).toThrow('unknown endpoint c');
  });
});

describe('approximate router view', () => {
  it('hashes 64-character chunks whose hashes cover the whole prefix', () => {
    const tokens = new Random(9).tokens(400);
    const a = chunkHashes(textRequest(tokens));
    expect(a).toHaveLength(Math.floor(spelledLength(tokens) / 64));
    const b = chunkHashes(textRequest([...tokens.slice(0, 200), ...new Random(10).tokens(200)]));
    const shared = Math.floor(spelledLength(tokens.slice(0, 200)) / 64);
    expect(b.slice(0, shared)).toEqual(a.slice(0, shared));
    expect(b[shared + 1]).not.toBe(a[shared + 1]);
    expect(chunkHashes(textRequest(tokens), { chunkChars: 64, maxChunks: 5 })).toEqual(a.slice(0, 5));
  });

  it('sees an image as its URL, not its tokens', () => {
    const tokens = new Random(4).tokens(100);
    const withImage = (url: string, length: number): SimulatedRequest => {
      const req = textRequest([
        ...tokens.slice(0, 50),
        ...new Array(length).fill(IMAGE_PLACEHOLDER_TOKEN),
        ...tokens.slice(50),
      ]);
      req.prompt.items.push({ identifier: 'img-0001', offset: 50, length });
      req.imageUrls.push(url);
      return req;
    };
    // The placeholder count does not change the text; another URL for the same image does.
    expect(chunkHashes(withImage(imageUrl('img-0001'), 300))).toEqual(
      chunkHashes(withImage(imageUrl('img-0001'), 900)),
    );
    const head = Math.floor(spelledLength(tokens.slice(0, 50)) / 64);
    const signed = chunkHashes(withImage(imageUrl('img-0001', 'sig-1'), 300));
    const plain = chunkHashes(withImage(imageUrl('img-0001'), 300));
    expect(signed.slice(0, head)).toEqual(plain.slice(0, head));
    expect(signed[head + 1]).not.toBe(plain[head + 1]);
  });
});

describe('routing policies', () => {
  const endpoints = ['e0', 'e1', 'e2'];
  const options: PolicyOptions = {
    seed: 1,
    loadGuardSeconds: 0.5,
    approximateCapacity: 1000,
    approximate: { chunkChars: 64, maxChunks: 256 },
    routerReplicas: 1,
  };
  const input = (
    request: SimulatedRequest,
    backlog: Record<string, number> = {},
    routed: Record<string, number> = {},
  ): RouteInput => ({
    request,
    endpoints,
    backlog: (e) => backlog[e] ?? 0,
    routedTo: (e) => routed[e] ?? 0,
  });
  const noScores = async () => new Map<string, number>();

  it('keeps cache-aware choices within the load guard and breaks ties by load, then by requests sent', () => {
    const i = input(textRequest([1]), { e0: 2, e1: 0.3, e2: 0.9 }, { e1: 5, e2: 1 });
    expect(withinLoadGuard(i, 0.5)).toEqual(['e1']);
    expect(withinLoadGuard(i, 0.7)).toEqual(['e1', 'e2']);
    expect(best(endpoints, () => 0, i)).toBe('e1');
    expect(best(endpoints, (e) => (e === 'e0' ? 3 : 0), i)).toBe('e0');
    expect(best(['e1', 'e2'], () => 0, input(textRequest([1]), {}, { e1: 5, e2: 1 }))).toBe('e2');
  });

  it('precise: the endpoint with the most matched blocks among those within the guard', async () => {
    const policy = createPolicy(
      'precise',
      options,
      async () =>
        new Map([
          ['e0', 9],
          ['e1', 4],
          ['e2', 4],
        ]),
    );
    expect(policy.readsIndex).toBe(true);
    expect(await policy.choose(input(textRequest([1])))).toBe('e0');
    expect(await policy.choose(input(textRequest([1]), { e0: 1 }, { e2: 1 }))).toBe('e1');
  });

  it('approximate: learns only from its own decisions and forgets beyond its LRU capacity', async () => {
    const policy = createPolicy('approximate', { ...options, approximateCapacity: 8 }, noScores);
    const long = textRequest(new Random(2).tokens(400), 1);
    const other = textRequest(new Random(3).tokens(400), 2);
    expect(chunkHashes(long).length).toBeGreaterThan(8);
    expect(await policy.choose(input(long, {}, { e0: 1 }))).toBe('e1');
    policy.routed(long, 'e2');
    // Learned, but the LRU keeps only the last 8 chunks: the prefix is gone, so nothing matches.
    expect(await policy.choose(input(long, {}, { e0: 1, e1: 1 }))).toBe('e2');
    const small = createPolicy('approximate', options, noScores);
    small.routed(long, 'e2');
    expect(await small.choose(input(long, {}, { e2: 9 }))).toBe('e2');
    expect(await small.choose(input(other, {}, { e2: 9 }))).toBe('e0');
  });

  it('approximate with several router replicas: each replica knows only what it routed', async () => {
    const policy = createPolicy('approximate', { ...options, routerReplicas: 2 }, noScores);
    const req = textRequest(new Random(2).tokens(200));
    const busy = { e0: 0.1 };
    expect(await policy.choose(input(req, busy))).toBe('e1'); // replica 0 (empty)
    policy.routed(req, 'e2');
    expect(await policy.choose(input(req, busy))).toBe('e1'); // replica 1 never saw it
    policy.routed(req, 'e1');
    expect(await policy.choose(input(req, busy))).toBe('e2'); // replica 0 remembers e2
  });

  it('round-robin, random and least-loaded', async () => {
    const rr = createPolicy('round-robin', options, noScores);
    const picks = [];
    for (let i = 0; i < 4; i++) picks.push(await rr.choose(input(textRequest([1]))));
    expect(picks).toEqual(['e0', 'e1', 'e2', 'e0']);
    const randomPicks = async () => {
      const p = createPolicy('random', options, noScores);
      const out = [];
      for (let i = 0; i < 20; i++) out.push(await p.choose(input(textRequest([1]))));
      return out;
    };
    const a = await randomPicks();
    expect(await randomPicks()).toEqual(a);
    expect(new Set(a).size).toBe(3);
    const ll = createPolicy('least-loaded', options, noScores);
    expect(await ll.choose(input(textRequest([1]), { e0: 0.2, e1: 0.1, e2: 0.3 }))).toBe('e1');
    expect(await ll.choose(input(textRequest([1]), {}, { e0: 2, e1: 1, e2: 1 }))).toBe('e1');
  });
});

describe('Select-backed policies', () => {
  const options: PolicyOptions = {
    seed: 1,
    loadGuardSeconds: 0.5,
    approximateCapacity: 1000,
    approximate: { chunkChars: 64, maxChunks: 256 },
    routerReplicas: 1,
  };
  const noScores = async () => new Map<string, number>();
  it('choose through Select with their own policy name, and retire each reservation once its prefill is done', async () => {
    const calls: string[] = [];
    const select = {
      async select(request: SimulatedRequest, candidates: readonly string[], policy: 'cache+load' | 'load') {
        calls.push(`select ${request.id} ${policy} ${candidates.join(',')}`);
        return { endpoint: candidates[request.id % candidates.length], reservationId: `r${request.id}` };
      },
      async prefillDone(id: string, cached: number) {
        calls.push(`done ${id} ${cached}`);
      },
    };
    const requests = generateWorkload('hot-spot', { seed: 1, requests: 2, rate: 10 });
    const input = (request: SimulatedRequest): RouteInput => ({
      request,
      endpoints: ['e0', 'e1'],
      backlog: () => 0,
      routedTo: () => 0,
    });
    const policy = createPolicy('cache+load', options, noScores, select);
    expect(policy.readsIndex).toBe(true);
    expect(await policy.choose(input(requests[0]))).toBe('e0');
    expect(await policy.choose(input(requests[1]))).toBe('e1');
    await policy.prefillDone!(requests[1], 4096);
    await policy.prefillDone!(requests[0], 0);
    await expect(policy.prefillDone!(requests[0], 0)).rejects.toThrow('request 0 was not selected by this policy');
    expect(calls).toEqual(['select 0 cache+load e0,e1', 'select 1 cache+load e0,e1', 'done r1 4096', 'done r0 0']);
    expect(() => createPolicy('load', options, noScores)).toThrow("policy load needs the service's Select");
  });
});
