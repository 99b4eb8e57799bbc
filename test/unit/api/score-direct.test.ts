import { describe, expect, it, vi } from 'vitest';
import { IndexerApi, type ApiLimits } from '../../../src/api/indexer-api.js';
import type { Fleet } from '../../../src/api/fleet.js';
import type { ScoreRequestMsg } from '../../../src/api/messages.js';
import { encodeScoreResponse } from '../../../src/api/wire/score-response.js';
import { MemoryIndex, type Index } from '../../../src/index/index.js';
import { BlockHasher } from '../../../src/keys/index.js';
import { TierWeights } from '../../../src/scoring/index.js';

// Score's direct path (tokens in, memory index: prepareTokens + Scorer.scoreNow, no promise per step) must answer
// byte for byte as before. EXPECTED holds the encoded responses of the code before the direct path existed (recorded
// from commit fb1a629); the same requests go through the direct path and, with lookupRows hidden as on Redis, through
// the asynchronous path.

const A = '10.0.0.1:8000';
const B = '10.0.0.2:8000';
const C = '10.0.0.3:8000';
const D = '10.0.0.4:8000';
const tokens = Uint32Array.from({ length: 26 }, (_, i) => 1000 + i * 37);

function setup(failOpen = false) {
  const hasher = new BlockHasher({ blockSize: 4, hashSeed: 'seed' });
  const index = new MemoryIndex({ shards: 4, clock: () => 5_000 });
  const k = hasher.keysFor('m', tokens, null);
  index.add(A, 'GPU', k.subarray(0, 4));
  index.add(B, 'CPU', k);
  index.add(B, 'GPU', k.subarray(0, 2));
  index.add(C, 'DISK', k.subarray(0, 3));
  index.add(C, 'OBJ', k.subarray(3, 5));
  index.reserveSync(D, k.subarray(0, 2), 1_000);
  const lora = hasher.keysFor('adapter', tokens, null);
  index.add(A, 'CPU', lora.subarray(0, 6));
  const fleet = { publishes: (model: string) => model !== 'unknown' } as unknown as Fleet;
  const limits: ApiLimits = { maxCandidates: 16, maxPromptTokens: 64, maxItems: 4, speculativeTtlMs: 1_000, failOpen };
  const deps = {
    tiers: index.tiers,
    hasher,
    weights: new TierWeights(),
    prompts: null,
    fleet,
    limits,
    version: 'test',
    ingestStats: () => ({ eventsReceived: 0, blocksStored: 0, blocksRemoved: 0 }),
  };
  // The same index without lookupRows, as the Redis backend is: Score takes the asynchronous path.
  const remote = Object.create(index, { lookupRows: { value: undefined } }) as Index;
  return {
    index,
    direct: new IndexerApi({ ...deps, index }),
    async: new IndexerApi({ ...deps, index: remote }),
  };
}

function request(fields: Partial<ScoreRequestMsg>): ScoreRequestMsg {
  return {
    candidates: [],
    tierWeights: {},
    model: 'm',
    loraName: '',
    cacheSalt: '',
    maxBlocks: 0,
    speculate: null,
    returnBlockKeys: false,
    strict: false,
    input: 'tokens',
    tokens: { tokenIds: tokens, items: [] },
    ...fields,
  };
}

const REQUESTS: Record<string, ScoreRequestMsg> = {
  candidates: request({ candidates: [A, B, C, D] }),
  'no candidates': request({}),
  'repeated and unknown candidates': request({ candidates: [C, '10.0.0.9:1', A, C, '10.0.0.8:1', '10.0.0.9:1'] }),
  'max blocks': request({ candidates: [B, A], maxBlocks: 3 }),
  'tier weights': request({ candidates: [B, C], tierWeights: { CPU: 0.5, disk: 0.9 } }),
  'lora and block keys': request({ candidates: [A, B], loraName: 'adapter', returnBlockKeys: true }),
  'cache salt': request({ candidates: [A, B], cacheSalt: 'salt' }),
  items: request({
    candidates: [A, B],
    tokens: { tokenIds: tokens, items: [{ identifier: 'img-1', offset: 5, length: 6 }] },
  }),
  'unknown model': request({ model: 'unknown', candidates: [A] }),
  'fewer tokens than a block': request({ candidates: [A], tokens: { tokenIds: tokens.subarray(0, 3), items: [] } }),
};

const hex = async (api: IndexerApi, req: ScoreRequestMsg) => encodeScoreResponse(await api.score(req)).toString('hex');

const EXPECTED: Record<string, string> = {
  candidates:
    '08061004181a222c0a0d31302e302e302e313a38303030100419000000000000104021555555555555e53f2a070a03475055100422350a0d31302e302e302e323a38303030100619cccccccccccc144021bbbbbbbbbbbbeb3f2a070a0347505510022a070a03435055100422360a0d31302e302e302e333a38303030100519666666666666f23f21888888888888c83f2a080a044449534b10032a070a034f424a1002222e0a0d31302e302e302e343a38303030100219000000000000004021555555555555d53f2a070a034750551002300232150a0b63626f722d666e763634611204736565641804',
  'no candidates':
    '08061004181a22350a0d31302e302e302e323a38303030100619cccccccccccc144021bbbbbbbbbbbbeb3f2a070a0347505510022a070a034350551004222c0a0d31302e302e302e313a38303030100419000000000000104021555555555555e53f2a070a034750551004222e0a0d31302e302e302e343a38303030100219000000000000004021555555555555d53f2a070a034750551002300222360a0d31302e302e302e333a38303030100519666666666666f23f21888888888888c83f2a080a044449534b10032a070a034f424a100232150a0b63626f722d666e763634611204736565641804',
  'repeated and unknown candidates':
    '08061004181a22360a0d31302e302e302e333a38303030100519666666666666f23f21888888888888c83f2a080a044449534b10032a070a034f424a1002220c0a0a31302e302e302e393a31222c0a0d31302e302e302e313a38303030100419000000000000104021555555555555e53f2a070a034750551004220c0a0a31302e302e302e383a3132150a0b63626f722d666e763634611204736565641804',
  'max blocks':
    '08031004181a22350a0d31302e302e302e323a38303030100319666666666666064021dddddddddddded3f2a070a0347505510022a070a034350551001222c0a0d31302e302e302e313a38303030100319000000000000084021000000000000f03f2a070a03475055100332150a0b63626f722d666e763634611204736565641804',
  'tier weights':
    '08061004181a22350a0d31302e302e302e323a38303030100619000000000000104021555555555555e53f2a070a0347505510022a070a03435055100422360a0d31302e302e302e333a38303030100519cecccccccccc084021898888888888e03f2a080a044449534b10032a070a034f424a100232150a0b63626f722d666e763634611204736565641804',
  'lora and block keys':
    '08061004181a222c0a0d31302e302e302e313a38303030100619333333333333134021999999999999e93f2a070a034350551006220f0a0d31302e302e302e323a3830303032150a0b63626f722d666e7636346112047365656418043a39acb7e6e6a3bee4bea7018efaa3c585f480da76ebaef495ae84cfacb401a69fc8a6a0eab9c95cc1cba8faeb99c6993e8ddae3f8d792a1afec01',
  'cache salt':
    '08061004181a220f0a0d31302e302e302e313a38303030220f0a0d31302e302e302e323a3830303032150a0b63626f722d666e763634611204736565641804',
  items:
    '08061004181a222c0a0d31302e302e302e313a38303030100119000000000000f03f21555555555555c53f2a070a034750551001222c0a0d31302e302e302e323a38303030100119000000000000f03f21555555555555c53f2a070a0347505510012a13080510061a05696d672d312a0663616c6c657232150a0b63626f722d666e763634611204736565641804',
  'unknown model': '08061004181a220f0a0d31302e302e302e313a3830303032150a0b63626f722d666e7636346112047365656418045001',
  'fewer tokens than a block':
    '10041803220f0a0d31302e302e302e313a3830303032150a0b63626f722d666e763634611204736565641804',
};

describe('Score direct path: responses byte for byte as before', () => {
  for (const [name, req] of Object.entries(REQUESTS)) {
    it(name, async () => {
      const { direct, async } = setup();
      const bytes = await hex(direct, req);
      expect(bytes).toBe(EXPECTED[name]);
      expect(await hex(async, req)).toBe(bytes);
    });
  }

  it('takes the direct path only for tokens in without speculation on the memory index', async () => {
    const { index, direct } = setup();
    const rows = vi.spyOn(index, 'lookupRows');
    const lookup = vi.spyOn(index, 'lookup');
    await direct.score(REQUESTS.candidates);
    expect([rows.mock.calls.length, lookup.mock.calls.length]).toEqual([1, 0]);
    await direct.score(request({ candidates: [A], speculate: { endpoint: B, ttlMs: 100 } }));
    // Speculation waits for the index write: the asynchronous path (whose Scorer still reads rows in memory).
    expect([rows.mock.calls.length, lookup.mock.calls.length]).toEqual([2, 0]);
  });

  it('refuses what the asynchronous path refuses, with the same errors', async () => {
    const { direct, async } = setup();
    const bad = [
      request({ model: '' }),
      request({ loraName: 'bad\uFFFD' }),
      request({ candidates: ['not an endpoint'] }),
      request({ candidates: Array.from({ length: 17 }, (_, i) => `10.0.0.${i}:1`) }),
      request({ tokens: { tokenIds: new Uint32Array(65), items: [] } }),
      request({ tokens: { tokenIds: tokens, items: [{ identifier: '', offset: 0, length: 1 }] } }),
      request({ tierWeights: { GPU: -1 } }),
    ];
    for (const req of bad) {
      const [d, a] = await Promise.all([
        direct.score(req).catch((e: Error) => e),
        async.score(req).catch((e: Error) => e),
      ]);
      expect(d).toBeInstanceOf(Error);
      expect([d.constructor, (d as Error).message]).toEqual([a.constructor, (a as Error).message]);
    }
  });

  it('answers a failed index as the asynchronous path does: UNAVAILABLE, or zero scores when fail-open', async () => {
    for (const failOpen of [false, true]) {
      const { index, direct, async } = setup(failOpen);
      await index.close();
      const req = REQUESTS.candidates;
      const d = await direct.score(req).then(
        (r) => encodeScoreResponse(r).toString('hex'),
        (e: Error) => e.message,
      );
      const a = await async.score(req).then(
        (r) => encodeScoreResponse(r).toString('hex'),
        (e: Error) => e.message,
      );
      expect(d).toBe(a);
      if (!failOpen) expect(d).toBe('index backend failed: MemoryIndex is closed');
    }
  });
});
