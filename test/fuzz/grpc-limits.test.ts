import { status } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOADER_OPTIONS, PROTO_DIR } from '../../src/api/index.js';
import { grpcClient } from '../support/grpc-client.js';
import { startTestService, type TestService } from '../support/service.js';
import { tokenRange } from '../support/zmq.js';
import { imageBytes } from '../unit/prompt/helpers.js';

/**
 * Every request limit through a real gRPC client against the real server (the demo model loaded for chat input):
 * exactly at the limit is accepted, one over (and more) answers the limit's status with a message naming the field,
 * and the server keeps serving. Limits are small here so that requests at them stay cheap.
 * Not repeated: the single over-limit cases of test/integration/grpc-api.test.ts.
 */

const SEED = 0x4b56_0004;
const MODEL = 'Qwen/Qwen2-VL-2B-Instruct';
const B = 16;
const LIMITS = { maxMessageBytes: 64 * 1024, maxCandidates: 8, maxPromptTokens: 512, maxItems: 4 };
const MAX_KEYS = LIMITS.maxPromptTokens / B;
const A = '10.0.0.1:8000';

type Failure = { code: number; details: string };

let t: TestService;
let llmd: ReturnType<typeof grpcClient>;

beforeAll(async () => {
  // Host names allowed: this file checks the endpoint grammar (the default refusal of names for Reserve is tested in
  // test/integration/api-hardening.test.ts).
  t = await startTestService({ demoModel: true, overrides: { api: { ...LIMITS, allowHostnameEndpoints: true } } });
  llmd = grpcClient(`127.0.0.1:${t.api.grpcPort}`, 'indexer/v1/indexer.proto', 'indexer.v1.IndexerService');
}, 60_000);

afterAll(async () => {
  llmd?.close();
  await t?.stop();
});

/** The call's failure as {code, details}, or null when it succeeded. */
async function failure(method: string, req: object, client = t.kv): Promise<Failure | null> {
  return client.call(method, req).then(
    () => null,
    (e: Failure) => ({ code: e.code, details: e.details }),
  );
}

const exhausted = (details: string): Failure => ({ code: status.RESOURCE_EXHAUSTED, details });
const invalidArg = (details: string): Failure => ({ code: status.INVALID_ARGUMENT, details });

/** Still serving: a valid Score right after. */
async function stillServing(): Promise<void> {
  const ok = await t.kv.call('Score', { model: MODEL, tokens: { tokenIds: tokenRange(32) }, candidates: [A] });
  expect([ok.totalBlocks, ok.scores.length]).toStrictEqual([2, 1]);
}

/** An offset around a limit: mostly the edge itself (−1, 0, +1), sometimes further off on either side. */
const around = fc.oneof(fc.constantFrom(-1, 0, 0, 1, 1), fc.integer({ min: -5, max: 20 }));

describe('candidates (api.maxCandidates) and their format', () => {
  it('Score, Lookup and GetPodScores: up to the limit accepted, over it RESOURCE_EXHAUSTED naming the list (pod_identifiers for llm-d, was "candidates")', async () => {
    await fc.assert(
      fc.asyncProperty(around, fc.constantFrom('Score', 'Lookup', 'GetPodScores'), async (off, method) => {
        const n = Math.max(1, LIMITS.maxCandidates + off);
        const candidates = Array.from({ length: n }, (_, i) => `10.0.1.${i}:8000`);
        const [client, req, field] =
          method === 'Score'
            ? [t.kv, { model: MODEL, tokens: { tokenIds: tokenRange(32) }, candidates }, 'candidates']
            : method === 'Lookup'
              ? [t.kv, { blockKeys: ['1', '2'], candidates }, 'candidates']
              : [llmd, { prompt: 'hello there', modelName: MODEL, podIdentifiers: candidates }, 'pod_identifiers'];
        const f = await failure(method, req, client);
        expect(f).toStrictEqual(
          n <= LIMITS.maxCandidates ? null : exhausted(`${field}: ${n} candidates, at most ${LIMITS.maxCandidates}`),
        );
      }),
      { seed: SEED, numRuns: 40 },
    );
    await stillServing();
  });

  /** `<host>:<port>[@dp<rank>]` built from its parts; `bad` inserts a character that no part allows. */
  const hostChar = fc.constantFrom(...'abcxyz019.-_ABC');
  const endpointArb = fc.record({
    host: fc.string({ unit: hostChar, minLength: 1, maxLength: 40 }),
    port: fc.oneof(fc.integer({ min: 0, max: 99_999 }), fc.integer({ min: 100_000, max: 9_999_999 })),
    rank: fc.option(fc.integer({ min: 1, max: 99_999 }), { nil: null }),
    bad: fc.option(fc.tuple(fc.nat(), fc.constantFrom(' ', '/', '@', ':', '#', '\u00e9', '\uFFFD', '[', '\n')), {
      nil: null,
    }),
  });
  const shown = (v: string) => (v.length > 80 ? `${v.slice(0, 77)}...` : v);

  it('endpoint strings: <host>:<port>[@dp<rank>] up to 300 characters accepted; other characters, a port outside 1..65535 or 301 characters are INVALID_ARGUMENT naming the element', async () => {
    await fc.assert(
      fc.asyncProperty(endpointArb, fc.nat(3), fc.constantFrom('Score', 'Reserve'), async (e, pos, method) => {
        let value = `${e.host}:${e.port}${e.rank === null ? '' : `@dp${e.rank}`}`;
        if (e.bad) {
          const at = e.bad[0] % e.host.length; // inside the host: no character of the set is allowed there
          value = `${e.host.slice(0, at)}${e.bad[1]}${e.host.slice(at)}:${e.port}`;
        }
        // The port rule of src/common/endpoint-identity.ts (one rule for topics and the API): 1..65535.
        const valid = e.bad === null && e.port >= 1 && e.port <= 65_535;
        const candidates = Array.from({ length: 4 }, (_, i) => (i === pos ? value : `10.0.2.${i}:8000`));
        const [req, field] =
          method === 'Score'
            ? [{ model: MODEL, tokens: { tokenIds: tokenRange(16) }, candidates }, `candidates[${pos}]`]
            : [{ endpoint: value, blockKeys: ['1'], ttlMs: 1 }, 'endpoint'];
        expect(await failure(method, req)).toStrictEqual(
          valid ? null : invalidArg(`${field}: "${shown(value)}" is not <host>:<port>`),
        );
      }),
      { seed: SEED + 1, numRuns: 80 },
    );
    // Length: exactly 300 characters accepted, 301 refused (a valid shape otherwise).
    const ofLength = (n: number) => `${'h'.repeat(n - ':8000'.length)}:8000`;
    expect(
      await failure('Score', { model: MODEL, tokens: { tokenIds: tokenRange(16) }, candidates: [ofLength(300)] }),
    ).toBeNull();
    expect(
      await failure('Score', { model: MODEL, tokens: { tokenIds: tokenRange(16) }, candidates: [ofLength(301)] }),
    ).toStrictEqual(invalidArg(`candidates[0]: "${shown(ofLength(301))}" is not <host>:<port>`));
    expect(await failure('ClearEndpoint', { endpoint: ofLength(301) })).toStrictEqual(
      invalidArg(`endpoint: "${shown(ofLength(301))}" is not <host>:<port>`),
    );
    await stillServing();
  });
});

describe('prompt size (api.maxPromptTokens) and block-key counts', () => {
  it('token ids, block keys (Score, Lookup, Reserve, Release, ComputeBlockKeys): at the limit accepted, over it RESOURCE_EXHAUSTED naming the field', async () => {
    await fc.assert(
      fc.asyncProperty(
        around,
        fc.constantFrom('Score.tokens', 'ComputeBlockKeys.tokens', 'Score.block_keys', 'Lookup', 'Reserve', 'Release'),
        async (off, what) => {
          const tokens = Math.max(1, LIMITS.maxPromptTokens + off * 7);
          const keys = Math.max(1, MAX_KEYS + off);
          const keyList = Array.from({ length: keys }, (_, i) => String(i + 1));
          const cases: Record<string, [string, object, Failure]> = {
            'Score.tokens': [
              'Score',
              { model: MODEL, tokens: { tokenIds: tokenRange(tokens) } },
              exhausted(`tokens.token_ids: ${tokens} tokens, at most ${LIMITS.maxPromptTokens}`),
            ],
            'ComputeBlockKeys.tokens': [
              'ComputeBlockKeys',
              { model: MODEL, tokens: { tokenIds: tokenRange(tokens) } },
              exhausted(`tokens.token_ids: ${tokens} tokens, at most ${LIMITS.maxPromptTokens}`),
            ],
            'Score.block_keys': [
              'Score',
              { model: MODEL, blockKeys: { keys: keyList } },
              exhausted(`block_keys.keys: ${keys} block keys, at most ${MAX_KEYS}`),
            ],
            Lookup: [
              'Lookup',
              { blockKeys: keyList },
              exhausted(`block_keys: ${keys} block keys, at most ${MAX_KEYS}`),
            ],
            Reserve: [
              'Reserve',
              { endpoint: A, blockKeys: keyList, ttlMs: 1 },
              exhausted(`block_keys: ${keys} block keys, at most ${MAX_KEYS}`),
            ],
            Release: [
              'Release',
              { endpoint: A, blockKeys: keyList },
              exhausted(`block_keys: ${keys} block keys, at most ${MAX_KEYS}`),
            ],
          };
          const [method, req, over] = cases[what];
          const size = what.endsWith('tokens') ? tokens : keys;
          const limit = what.endsWith('tokens') ? LIMITS.maxPromptTokens : MAX_KEYS;
          expect(await failure(method, req)).toStrictEqual(size <= limit ? null : over);
        },
      ),
      { seed: SEED + 2, numRuns: 60 },
    );
    await stillServing();
  });

  it('chat and completion prompts: rendered up to the limit accepted, over it RESOURCE_EXHAUSTED naming the input', async () => {
    const frontend = t.prompts!;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 380, max: 560 }), fc.constantFrom('chat', 'prompt'), async (words, input) => {
        const text = Array.from({ length: words }, (_, i) => `w${i % 97}`).join(' ');
        const messages = [{ role: 'user', content: text }];
        // The token count the prompt pipeline gives without the API limit.
        const rendered = await frontend.render(
          MODEL,
          input === 'chat' ? { kind: 'chat', messages, continueFinalMessage: false } : { kind: 'prompt', text },
        );
        const n = rendered.tokenIds.length;
        const req =
          input === 'chat'
            ? { model: MODEL, chat: { messagesJson: JSON.stringify(messages) } }
            : { model: MODEL, prompt: text };
        expect(await failure('Score', req)).toStrictEqual(
          n <= LIMITS.maxPromptTokens ? null : exhausted(`${input}: ${n} tokens, at most ${LIMITS.maxPromptTokens}`),
        );
      }),
      { seed: SEED + 3, numRuns: 30 },
    );
    await stillServing();
  });
});

describe('multimodal items (api.maxItems) and images (the model limit maxImages = 16)', () => {
  const item = (i: number, offset: number, length: number, id = `img-${i}`) => ({ identifier: id, offset, length });

  it('tokens.items: count, identifier length and total coverage at and over their limits', async () => {
    await fc.assert(
      fc.asyncProperty(around, async (off) => {
        const n = Math.max(1, LIMITS.maxItems + off);
        // n items side by side over 512 tokens (each its own 16-token range, wrapping around): never overlapping too much.
        const items = Array.from({ length: n }, (_, i) => item(i, (i * B) % 512, B));
        const f = await failure('Score', { model: MODEL, tokens: { tokenIds: tokenRange(512), items } });
        expect(f).toStrictEqual(
          n <= LIMITS.maxItems ? null : exhausted(`tokens.items: ${n} items, at most ${LIMITS.maxItems}`),
        );
      }),
      { seed: SEED + 4, numRuns: 30 },
    );
    const tokens = { tokenIds: tokenRange(512) };
    expect(
      await failure('Score', { model: MODEL, tokens: { ...tokens, items: [item(0, 0, 16, 'i'.repeat(512))] } }),
    ).toBeNull();
    expect(
      await failure('Score', { model: MODEL, tokens: { ...tokens, items: [item(0, 0, 16, 'i'.repeat(513))] } }),
    ).toStrictEqual(invalidArg('tokens.items[0].identifier: is longer than 512 characters'));
    // Coverage: 32 blocks + 4 items = 36 (block, item) pairs at most. Three whole-prompt items + one block: 97 → refused;
    // one whole-prompt item plus three single blocks (35) → accepted.
    expect(
      await failure('Score', {
        model: MODEL,
        tokens: { ...tokens, items: [item(0, 0, 512), item(1, 0, 512), item(2, 0, 512), item(3, 0, 16)] },
      }),
    ).toStrictEqual(
      exhausted('tokens.items: the items overlap too much: they cover 97 blocks in all, at most 36 (blocks + items)'),
    );
    expect(
      await failure('Score', {
        model: MODEL,
        tokens: { ...tokens, items: [item(0, 0, 512), item(1, 0, 16), item(2, 16, 16), item(3, 32, 16)] },
      }),
    ).toBeNull();
    await stillServing();
  });

  it('regression: many overlapping items no longer hash for minutes (1000 whole-prompt items of a 262144-token prompt took ~40 s of event loop)', async () => {
    // A second service with the default limits (maxPromptTokens 262144, maxItems 64).
    const d = await startTestService();
    try {
      const tokenIds = tokenRange(262_144);
      const many = Array.from({ length: 1000 }, (_, i) => item(i, 0, 262_144));
      expect(await failure('Score', { model: 'm', tokens: { tokenIds, items: many } }, d.kv)).toStrictEqual(
        exhausted('tokens.items: 1000 items, at most 64'),
      );
      const piled = Array.from({ length: 64 }, (_, i) => item(i, 0, 262_144));
      expect(await failure('Score', { model: 'm', tokens: { tokenIds, items: piled } }, d.kv)).toStrictEqual(
        exhausted(
          'tokens.items: the items overlap too much: they cover 1048576 blocks in all, at most 16448 (blocks + items)',
        ),
      );
      const ok = await d.kv.call('Score', { model: 'm', tokens: { tokenIds: tokenRange(64) } });
      expect(ok.totalBlocks).toBe(4);
    } finally {
      await d.stop();
    }
  });

  it('chat images: 16 accepted, 17 RESOURCE_EXHAUSTED naming the 17th image', async () => {
    const url = `data:image/png;base64,${imageBytes('grey-70x70.png').toString('base64')}`;
    for (const n of [15, 16, 17, 20]) {
      const content = [
        ...Array.from({ length: n }, (_, i) => ({ type: 'image_url', image_url: { url }, uuid: `u${i}` })),
        { type: 'text', text: 'compare' },
      ];
      const f = await failure('Score', {
        model: MODEL,
        chat: { messagesJson: JSON.stringify([{ role: 'user', content }]) },
      });
      expect(f).toStrictEqual(
        n <= 16
          ? null
          : exhausted(`messages[0].content[16].image_url: ${n} images, more than the limit of 16 per request`),
      );
    }
    // An image uuid is hashed into every block of the image: 512 characters accepted, 513 refused.
    for (const len of [512, 513]) {
      const content = [{ type: 'image_url', image_url: { url }, uuid: 'u'.repeat(len) }];
      const f = await failure('Score', {
        model: MODEL,
        chat: { messagesJson: JSON.stringify([{ role: 'user', content }]) },
      });
      expect(f).toStrictEqual(
        len <= 512 ? null : invalidArg('messages[0].content[0].uuid: is longer than 512 characters'),
      );
    }
    await stillServing();
  });
});

describe('message size (api.maxMessageBytes)', () => {
  const def = loadSync('kvindexer/v1/kvindexer.proto', { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
  const serialize = (def['kvindexer.v1.KvIndexer'] as Record<string, { requestSerialize(v: object): Buffer }>).Score
    .requestSerialize;

  /** A Score request of exactly `bytes` serialized bytes (a cache salt pads it). */
  function scoreOfSize(bytes: number): object {
    const base = { model: MODEL, tokens: { tokenIds: tokenRange(16) }, candidates: [A] };
    let lo = 0;
    let hi = bytes;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (serialize({ ...base, cacheSalt: 's'.repeat(mid) }).length < bytes) lo = mid + 1;
      else hi = mid;
    }
    const req = { ...base, cacheSalt: 's'.repeat(lo) };
    expect(serialize(req).length).toBe(bytes);
    return req;
  }

  it('a request of exactly maxMessageBytes is served; one byte more is RESOURCE_EXHAUSTED, and the server goes on', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: -2000, max: 2000 })), async (off) => {
        const size = LIMITS.maxMessageBytes + off;
        const f = await failure('Score', scoreOfSize(size));
        expect(f).toStrictEqual(
          size <= LIMITS.maxMessageBytes
            ? null
            : exhausted(`Received message larger than max (${size} vs ${LIMITS.maxMessageBytes})`),
        );
      }),
      { seed: SEED + 5, numRuns: 25 },
    );
    await stillServing();
  });
});
