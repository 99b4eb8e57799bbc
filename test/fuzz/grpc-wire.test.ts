import { credentials, makeGenericClientConstructor, status } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOADER_OPTIONS, PROTO_DIR } from '../../src/api/index.js';
import { startTestService, type TestService } from '../support/service.js';
import { tokenRange } from '../support/zmq.js';

/**
 * Raw bytes against every read and admin method of the real server (demo model loaded): valid requests serialized by
 * proto-loader, then truncated, bit-flipped, spliced with over-long varints and length prefixes, or replaced by random
 * bytes; and hostile chat JSON through the typed client. Invariant: every call answers a caller-facing status —
 * never INTERNAL or UNKNOWN (a server bug) — and the server keeps serving. Not repeated: the codec's in-process
 * properties (test/unit/api/score-codec.test.ts) and its two fixed wire cases (test/integration/grpc-codec.test.ts).
 */

const SEED = 0x4b56_0005;
const MODEL = 'Qwen/Qwen2-VL-2B-Instruct';
const A = '10.0.0.1:8000';
const CALLER_STATUSES = [
  status.OK,
  status.INVALID_ARGUMENT,
  status.RESOURCE_EXHAUSTED,
  status.NOT_FOUND,
  status.FAILED_PRECONDITION,
];

let t: TestService;

beforeAll(async () => {
  t = await startTestService({ demoModel: true, overrides: { api: { maxPromptTokens: 4096 } } });
}, 60_000);

afterAll(async () => {
  await t?.stop();
});

type Raw = { call(bytes: Uint8Array): Promise<{ code: number; details: string }>; close(): void };

function rawClient(path: string): Raw {
  const identity = (b: Buffer) => b;
  const Ctor = makeGenericClientConstructor(
    {
      Call: {
        path,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    'Raw',
  );
  const client = new Ctor(`127.0.0.1:${t.api.grpcPort}`, credentials.createInsecure()) as unknown as {
    Call(req: Buffer, cb: (err: { code: number; details: string } | null) => void): void;
    close(): void;
  };
  return {
    call: (bytes) =>
      new Promise((resolve) =>
        client.Call(Buffer.from(bytes), (err) =>
          resolve(err ? { code: err.code, details: err.details } : { code: status.OK, details: '' }),
        ),
      ),
    close: () => client.close(),
  };
}

const kv = loadSync('kvindexer/v1/kvindexer.proto', { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
const llmd = loadSync('indexer/v1/indexer.proto', { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
type Methods = Record<string, { path: string; requestSerialize(v: object): Buffer }>;
const kvMethods = kv['kvindexer.v1.KvIndexer'] as unknown as Methods;
const llmdMethods = llmd['indexer.v1.IndexerService'] as unknown as Methods;

const chat = JSON.stringify([{ role: 'user', content: [{ type: 'text', text: 'Hello there, what is this?' }] }]);
/** A valid request per method (AddEndpoint left out: it would open sockets to whatever a mutation names). */
const VALID: [Methods[string], object][] = [
  [
    kvMethods.Score,
    {
      model: MODEL,
      tokens: { tokenIds: tokenRange(64), items: [{ identifier: 'img', offset: 16, length: 16 }] },
      candidates: [A, '10.0.0.2:8000'],
      tierWeights: { GPU: 1 },
      cacheSalt: 's',
    },
  ],
  [
    kvMethods.Score,
    { model: MODEL, chat: { messagesJson: chat }, candidates: [A], speculate: { endpoint: A, ttlMs: 100 } },
  ],
  [kvMethods.Score, { model: MODEL, blockKeys: { keys: ['1', '18446744073709551615'] }, returnBlockKeys: true }],
  [kvMethods.ComputeBlockKeys, { model: MODEL, prompt: 'Hello there' }],
  [kvMethods.Render, { model: MODEL, chat: { messagesJson: chat } }],
  [kvMethods.Lookup, { blockKeys: ['1', '2', '3'], candidates: [A] }],
  [kvMethods.Reserve, { endpoint: A, blockKeys: ['5', '6'], ttlMs: 50 }],
  [kvMethods.Release, { endpoint: A, blockKeys: ['5'] }],
  [kvMethods.ListEndpoints, {}],
  [kvMethods.RemoveEndpoint, { endpoint: '10.9.9.9:1' }], // NOT_FOUND: nothing to remove (removing A would clear it)
  [kvMethods.ClearEndpoint, { endpoint: A }],
  [kvMethods.GetInfo, {}],
  [kvMethods.GetStats, {}],
  [llmdMethods.GetPodScores, { prompt: 'Hello there', modelName: MODEL, podIdentifiers: [A] }],
];

const mutation = fc.oneof(
  fc.record({ op: fc.constant('cut' as const), at: fc.nat(), v: fc.constant(0) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), v: fc.nat(255) }),
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), v: fc.nat(7) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), v: fc.nat(255) }),
  // an over-long or maximal varint / length prefix spliced in
  fc.record({ op: fc.constant('varint' as const), at: fc.nat(), v: fc.constantFrom(0, 1, 2, 3, 4) }),
);
const VARINTS = [
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // 2^64-1
  [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], // 12-byte varint
  [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], // field 1, length 2^32-1
  [0x32, 0x80, 0x80, 0x80, 0x80, 0x08], // field 6 (tokens), length 2^31
  [0x0b, 0x0c], // start group / end group wire types
];

function mutate(bytes: Buffer, ms: { op: string; at: number; v: number }[]): Buffer {
  let b = Buffer.from(bytes);
  for (const m of ms) {
    const at = b.length === 0 ? 0 : m.at % (b.length + 1);
    if (m.op === 'cut') b = b.subarray(0, at);
    else if (m.op === 'set' && at < b.length) b[at] = m.v;
    else if (m.op === 'flip' && at < b.length) b[at] ^= 1 << m.v;
    else if (m.op === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from([m.v]), b.subarray(at)]);
    else if (m.op === 'varint') b = Buffer.concat([b.subarray(0, at), Buffer.from(VARINTS[m.v]), b.subarray(at)]);
  }
  return b;
}

describe('raw request bytes on the wire', () => {
  const clients = new Map<string, Raw>();
  const raw = (path: string) => clients.get(path) ?? clients.set(path, rawClient(path)).get(path)!;
  afterAll(() => clients.forEach((c) => c.close()));

  const expectedCode = (m: Methods[string]) => (m === kvMethods.RemoveEndpoint ? status.NOT_FOUND : status.OK);

  it('the valid requests succeed as sent', async () => {
    for (const [m, req] of VALID)
      expect([m.path, (await raw(m.path).call(m.requestSerialize(req))).code]).toStrictEqual([m.path, expectedCode(m)]);
  });

  it('mutated valid requests of every method: a caller-facing status, never INTERNAL or UNKNOWN, and the server goes on', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat(VALID.length - 1),
        fc.array(mutation, { minLength: 1, maxLength: 5 }),
        async (which, ms) => {
          const [m, req] = VALID[which];
          const r = await raw(m.path).call(mutate(m.requestSerialize(req), ms));
          expect(CALLER_STATUSES, `${m.path}: ${r.code} ${r.details}`).toContain(r.code);
        },
      ),
      { seed: SEED, numRuns: 600 },
    );
    for (const [m, req] of VALID)
      expect([m.path, (await raw(m.path).call(m.requestSerialize(req))).code]).toStrictEqual([m.path, expectedCode(m)]);
  });

  it('random bytes to every method: a caller-facing status', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(VALID.length - 1), fc.uint8Array({ maxLength: 200 }), async (which, bytes) => {
        const [m] = VALID[which];
        const r = await raw(m.path).call(bytes);
        expect(CALLER_STATUSES, `${m.path}: ${r.code} ${r.details}`).toContain(r.code);
      }),
      { seed: SEED + 1, numRuns: 300 },
    );
  });
});

/** Long strings print as `label` in counterexamples. */
function named(text: string, label: string): string {
  return Object.assign(new String(text), { [fc.toStringMethod]: () => label }) as unknown as string;
}

describe('hostile chat JSON through the typed client', () => {
  /** Text that is JSON-ish but broken, deeply nested, huge, or of the wrong shape. */
  const messagesJson = fc.oneof(
    fc.nat(chat.length - 1).map((n) => chat.slice(0, n)),
    fc
      .tuple(
        fc.nat(chat.length - 1),
        fc.constantFrom('"', '{', '[', ']', '}', ',', ':', '\\', '\u0000', '\uD800', 'null'),
      )
      .map(([at, c]) => chat.slice(0, at) + c + chat.slice(at + 1)),
    fc.integer({ min: 1_000, max: 200_000 }).map((d) => named('['.repeat(d) + ']'.repeat(d), `[×${d} ]×${d}`)),
    fc
      .integer({ min: 1_000, max: 50_000 })
      .map((d) => named(`[{"role":"user","content":${'['.repeat(d)}"x"${']'.repeat(d)}}]`, `content nested ${d} deep`)),
    fc.constantFrom(
      '[]',
      '{}',
      'null',
      '1',
      '"x"',
      '[null]',
      '[{}]',
      '[{"role":"user"}]',
      '[{"role":"user","content":{"__proto__":{"x":1}}}]',
    ),
    fc
      .integer({ min: 10_000, max: 100_000 })
      .map((n) => named(JSON.stringify([{ role: 'user', content: 'word '.repeat(n) }]), `content "word " × ${n}`)),
    fc.json({ maxDepth: 6 }),
  );

  it('Score and Render: OK or INVALID_ARGUMENT / RESOURCE_EXHAUSTED naming the chat, and the server goes on', async () => {
    await fc.assert(
      fc.asyncProperty(messagesJson, fc.constantFrom('Score', 'Render'), async (json, method) => {
        const text = String(json); // a primitive string again (long ones are String objects that print short)
        const r = await t.kv.call(method, { model: MODEL, chat: { messagesJson: text } }).then(
          () => ({ code: status.OK, details: '' }),
          (e: { code: number; details: string }) => ({ code: e.code, details: e.details }),
        );
        expect(CALLER_STATUSES, `${r.code} ${r.details}`).toContain(r.code);
        if (r.code === status.INVALID_ARGUMENT) expect(r.details).toMatch(/^(chat\.messages_json|messages)/);
        // the API's limit (chat: N tokens) or the model's (messages: prompt has [at least] N tokens)
        if (r.code === status.RESOURCE_EXHAUSTED)
          expect(r.details).toMatch(/^(chat: \d+ tokens|messages: prompt has (at least )?\d+ tokens)/);
      }),
      { seed: SEED + 2, numRuns: 120 },
    );
    // regression: JSON null was answered "give exactly one of messages, prompt, prompt_token_ids", without a field
    await expect(t.kv.call('Score', { model: MODEL, chat: { messagesJson: 'null' } })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: 'chat.messages_json: must be a JSON array of messages, not null',
    });
    const ok = await t.kv.call('Render', { model: MODEL, chat: { messagesJson: chat } });
    expect(ok.tokenIds.length).toBeGreaterThan(0);
  });
});
