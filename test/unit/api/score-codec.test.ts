import type { ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LOADER_OPTIONS } from '../../../src/api/index.js';
import type { ScoreResponseMsg } from '../../../src/api/messages.js';
import { decodeScoreRequest } from '../../../src/api/wire/score-request.js';
import { encodeScoreResponse } from '../../../src/api/wire/score-response.js';
import { decodeGeneric, UndecodableRequest } from '../../../src/api/wire/undecodable.js';
import { len, varint } from '../../support/protobuf-wire.js';

// The reference: proto-loader's codec (protobufjs) for the same messages, as the server used before.
const def = loadSync('kvindexer/v1/kvindexer.proto', LOADER_OPTIONS);
const score = (def['kvindexer.v1.KvIndexer'] as ServiceDefinition).Score;
const generic = (buf: Buffer) => score.requestDeserialize(buf) as Record<string, unknown>;
const decode = (buf: Buffer) => decodeScoreRequest(buf, generic);
/** proto-loader's answer, its errors as the server now reports them. */
const reference = (buf: Buffer) => decodeGeneric(buf, generic, 'ScoreRequest');

/** The fast decoder's result with token ids as a plain array, for comparison with proto-loader's. */
function plain(msg: unknown): unknown {
  if (msg instanceof UndecodableRequest) return msg;
  const m = msg as { tokens?: { tokenIds: Uint32Array | number[] } | null };
  if (!m.tokens) return m;
  return { ...m, tokens: { ...m.tokens, tokenIds: Array.from(m.tokens.tokenIds) } };
}

// --- protobuf wire helpers (independent of both codecs): test/support/protobuf-wire.ts ------------------------------
const tag = (field: number, wire: number) => varint((field << 3) | wire);
const utf8 = (s: string) => [...Buffer.from(s, 'utf8')];

const uint32 = fc.nat({ max: 0xffffffff });
const tokenId = fc.oneof(fc.nat({ max: 127 }), fc.nat({ max: 151_642 }), uint32);
const text = fc.string({ unit: 'grapheme', maxLength: 12 });
const double = fc.double({ noNaN: true });

/** Random ScoreRequest objects as a client would send them (at most one member of the `input` oneof). */
const scoreRequest = fc
  .record(
    {
      model: text,
      loraName: text,
      cacheSalt: text,
      input: fc.oneof(
        fc.constant(undefined),
        fc.record({ prompt: text }),
        fc.record({
          tokens: fc.record({
            tokenIds: fc.array(tokenId, { maxLength: 80 }),
            items: fc.array(fc.record({ identifier: text, offset: uint32, length: uint32 }), { maxLength: 3 }),
          }),
        }),
        fc.record({
          chat: fc.record(
            { messagesJson: text, addGenerationPrompt: fc.boolean(), continueFinalMessage: fc.boolean() },
            { requiredKeys: ['messagesJson'] },
          ),
        }),
        fc.record({
          blockKeys: fc.record({
            keys: fc.array(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String), { maxLength: 4 }),
          }),
        }),
      ),
      candidates: fc.array(text, { maxLength: 5 }),
      tierWeights: fc.dictionary(fc.constantFrom('GPU', 'CPU', 'DISK', ''), double),
      maxBlocks: uint32,
      speculate: fc.record({ endpoint: text, ttlMs: uint32 }, { requiredKeys: [] }),
      returnBlockKeys: fc.boolean(),
      strict: fc.boolean(),
    },
    { requiredKeys: [] },
  )
  .map(({ input, ...rest }) => ({ ...rest, ...(input ?? {}) }));

/** An unknown field of any wire type, groups (with nested fields) included; field numbers from `from` up. */
const unknownField = (from: number) =>
  fc.oneof(
    fc
      .tuple(fc.integer({ min: from, max: 5000 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }))
      .map(([f, v]) => [...tag(f, 0), ...varint(v)]),
    fc
      .tuple(fc.integer({ min: from, max: 5000 }), fc.uint8Array({ minLength: 8, maxLength: 8 }))
      .map(([f, b]) => [...tag(f, 1), ...b]),
    fc.tuple(fc.integer({ min: from, max: 5000 }), fc.uint8Array({ maxLength: 20 })).map(([f, b]) => len(f, [...b])),
    fc
      .tuple(fc.integer({ min: from, max: 5000 }), fc.uint8Array({ minLength: 4, maxLength: 4 }))
      .map(([f, b]) => [...tag(f, 5), ...b]),
    fc
      .tuple(fc.integer({ min: from, max: 5000 }), fc.nat())
      .map(([f, v]) => [...tag(f, 3), ...tag(1, 0), ...varint(v), ...len(2, [1, 2]), ...tag(f, 4)]),
  );

/** A message's top-level fields as separate byte chunks (repeated fields: one chunk per element). */
function topLevelFields(buf: Buffer): number[][] {
  const chunks: number[][] = [];
  let pos = 0;
  const readVarint = () => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[pos++];
      v |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if (b < 0x80) return v;
    }
  };
  while (pos < buf.length) {
    const start = pos;
    const t = Number(readVarint());
    const wire = t & 7;
    if (wire === 0) readVarint();
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const length = Number(readVarint());
      pos += length;
    }
    chunks.push([...buf.subarray(start, pos)]);
  }
  return chunks;
}

describe('ScoreRequest decoder: equal to proto-loader on every message', () => {
  it('random messages, every field', () => {
    fc.assert(
      fc.property(scoreRequest, (req) => {
        const buf = score.requestSerialize(req) as Buffer;
        expect(plain(decode(buf))).toEqual(generic(buf));
      }),
      { numRuns: 500 },
    );
  });

  it('fields in any order, unknown fields of every wire type anywhere (top level and nested)', () => {
    fc.assert(
      fc.property(
        scoreRequest,
        fc.array(unknownField(14), { maxLength: 4 }),
        fc.array(unknownField(3), { maxLength: 3 }),
        fc.infiniteStream(fc.nat()),
        (req, unknownTop, unknownInTokens, order) => {
          const chunks = topLevelFields(score.requestSerialize(req) as Buffer);
          // Unknown fields inside TokenInput: field 6 re-encoded with them before and after its own fields.
          const rebuilt = chunks.map((c) =>
            c[0] === 0x32
              ? len(6, [...unknownInTokens.slice(0, 1).flat(), ...innerOf(c), ...unknownInTokens.slice(1).flat()])
              : c,
          );
          const all = [...rebuilt, ...unknownTop];
          const it = order[Symbol.iterator]();
          const shuffled = all
            .map((c) => ({ c, k: it.next().value as number }))
            .sort((a, b) => a.k - b.k)
            .map((x) => x.c);
          const buf = Buffer.from(shuffled.flat());
          expect(plain(decode(buf))).toEqual(generic(buf));
        },
      ),
      { numRuns: 500 },
    );
  });

  /** Token-id runs: packed or unpacked, each id possibly encoded over-long (padded to `pads` bytes). */
  const runs = (pads: fc.Arbitrary<number>) => {
    const id = fc.tuple(tokenId, pads);
    return fc.array(
      fc.oneof(
        fc.record({ packed: fc.constant(true), ids: fc.array(id, { maxLength: 30 }) }),
        fc.record({ packed: fc.constant(false), ids: fc.array(id, { minLength: 1, maxLength: 5 }) }),
      ),
      { maxLength: 6 },
    );
  };
  function tokenRequest(runList: { packed: boolean; ids: [number, number][] }[]) {
    const inner: number[] = [];
    const expected: number[] = [];
    for (const r of runList) {
      const encoded = r.ids.map(([v, pad]) => varint(v, pad));
      expected.push(...r.ids.map(([v]) => v));
      if (r.packed) inner.push(...len(1, encoded.flat()));
      else for (const e of encoded) inner.push(...tag(1, 0), ...e);
    }
    return { buf: Buffer.from([...len(1, utf8('m')), ...len(6, inner)]), expected };
  }

  it('token ids packed, unpacked, over-long varints, in any mix of runs', () => {
    // protobufjs reads a varint of 6 to 9 bytes wrongly (it expects 5 or 10): compared with it on 1-5 and 10.
    fc.assert(
      fc.property(runs(fc.constantFrom(0, 2, 3, 4, 5, 10)), (runList) => {
        const { buf, expected } = tokenRequest(runList);
        const fast = plain(decode(buf)) as { tokens: { tokenIds: number[] } };
        expect(fast.tokens.tokenIds).toEqual(expected);
        expect(fast).toEqual(generic(buf));
      }),
      { numRuns: 500 },
    );
  });

  it('token ids as over-long varints of 6 to 9 bytes (valid protobuf that protobufjs misreads)', () => {
    fc.assert(
      fc.property(runs(fc.integer({ min: 6, max: 9 })), (runList) => {
        const { buf, expected } = tokenRequest(runList);
        expect((plain(decode(buf)) as { tokens: { tokenIds: number[] } }).tokens.tokenIds).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });

  it('a varint past 32 bits keeps its low 32 bits, as protobufjs does', () => {
    const buf = Buffer.from([...len(6, [...tag(1, 0), ...varint(2n ** 64n - 1n), ...len(1, varint(2n ** 63n + 7n))])]);
    expect((plain(decode(buf)) as { tokens: { tokenIds: number[] } }).tokens.tokenIds).toEqual([4294967295, 7]);
    expect(plain(decode(buf))).toEqual(generic(buf));
  });

  it('what protobufjs does its own way goes to the generic decoder: two oneof members, a sub-message twice, a known field with another wire type', () => {
    const tokens = len(6, len(1, [1, 2, 3]));
    const cases = [
      [...len(5, utf8('text')), ...tokens],
      [...tokens, ...len(5, utf8('text'))],
      [...tokens, ...len(6, len(1, [4]))],
      [...len(11, len(1, utf8('10.0.0.1:8000'))), ...len(11, [...tag(2, 0), 5])],
      [...tag(1, 0), 7, ...tokens],
      [...tag(10, 2), 1, 5],
    ];
    for (const bytes of cases) {
      const buf = Buffer.from(bytes);
      expect(plain(decode(buf))).toEqual(reference(buf));
    }
    // (the last case is malformed for protobufjs too: it reads field 10 as a varint whatever its wire type)
    expect(reference(Buffer.from(cases[cases.length - 1]))).toBeInstanceOf(UndecodableRequest);
  });

  it('hands over the token ids as a Uint32Array', () => {
    const msg = decode(Buffer.from([...len(1, utf8('m')), ...len(6, len(1, [1, 0x80, 0x01, 0xff, 0xff, 0x03]))]));
    expect(msg).not.toBeInstanceOf(UndecodableRequest);
    const tokens = (msg as { tokens: { tokenIds: unknown } }).tokens.tokenIds;
    expect(tokens).toBeInstanceOf(Uint32Array);
    expect(Array.from(tokens as Uint32Array)).toEqual([1, 128, 65535]);
  });
});

describe('ScoreRequest decoder: malformed input is an UndecodableRequest with a clear message, never a throw', () => {
  const bad: [string, number[], string][] = [
    [
      'truncated varint in packed token ids',
      [...len(6, len(1, [0x81]))],
      'tokens.token_ids: truncated varint at byte 5',
    ],
    [
      'truncated varint at the end of the message',
      [...len(1, utf8('m')), 0x50, 0x80],
      'max_blocks: truncated varint at byte 5',
    ],
    ['truncated tag', [0x80], 'request: truncated varint at byte 1'],
    [
      'a length past the end',
      [...tag(8, 2), 10, 0x61],
      'candidates[0]: length 10 runs past the end of the message (1 bytes left) at byte 2',
    ],
    [
      'a sub-message longer than its parent',
      [...len(6, [0x0a, 0x05, 1])],
      'tokens.token_ids: length 5 runs past the end of the message (1 bytes left) at byte 4',
    ],
    ['wire type 7', [0x0f], 'request: invalid wire type 7 at byte 1'],
    ['field number 0', [0x00, 0x01], 'request: field number 0 at byte 1'],
    ['an unterminated group', [...tag(20, 3), ...tag(1, 0), 5], 'request: unterminated group 20 at byte 4'],
    ['an end group without a start', [...tag(20, 4)], 'request: end group 20 without a start at byte 2'],
    [
      'a varint longer than 10 bytes',
      [0x50, ...Array(10).fill(0x80), 0x01],
      'max_blocks: varint longer than 10 bytes at byte 11',
    ],
    [
      'a truncated double in tier_weights',
      [...len(9, [...len(1, utf8('GPU')), 0x11, 0, 0])],
      'tier_weights: truncated double at byte 8',
    ],
    ['a truncated fixed32 unknown field', [...tag(20, 5), 1, 2], 'request: truncated 32-bit field at byte 2'],
  ];
  for (const [name, bytes, message] of bad) {
    it(name, () => {
      const result = decode(Buffer.from(bytes));
      expect(result).toEqual(new UndecodableRequest(`malformed ScoreRequest: ${message}`));
    });
  }

  it('every truncation of a valid request decodes or is an UndecodableRequest', () => {
    fc.assert(
      fc.property(scoreRequest, fc.nat(), (req, at) => {
        const buf = score.requestSerialize(req) as Buffer;
        const cut = buf.subarray(0, buf.length === 0 ? 0 : at % buf.length);
        const result = decode(cut);
        if (result instanceof UndecodableRequest) expect(result.message).toMatch(/^malformed ScoreRequest: /);
        else expect(typeof result).toBe('object');
      }),
      { numRuns: 500 },
    );
  });

  it('errors of the generic decoder (for what it decodes) are returned too', () => {
    // block_keys (field 7) is decoded by proto-loader; the length of its keys is a truncated varint.
    const result = decode(Buffer.from([0x3a, 0x02, 0x0a, 0x80]));
    expect(result).toEqual(new UndecodableRequest('malformed ScoreRequest: index out of range: 4 + 1 > 4'));
    // chat (field 4) too, but its text fields are read first (UTF-8 check), so the same fault is named precisely.
    expect(decode(Buffer.from([0x22, 0x02, 0x0a, 0x80]))).toEqual(
      new UndecodableRequest('malformed ScoreRequest: chat.messages_json: truncated varint at byte 4'),
    );
  });
});

describe('ScoreResponse encoder: decodes to what proto-loader encodes', () => {
  const tierName = fc.constantFrom('GPU', 'CPU', 'DISK', 'tier-é');
  const response: fc.Arbitrary<ScoreResponseMsg> = fc.record({
    totalBlocks: uint32,
    blockSize: uint32,
    tokenCount: uint32,
    scores: fc.array(
      fc.record({
        endpoint: text,
        matchedBlocks: uint32,
        weighted: fc.double(),
        normalized: fc.double(),
        blocksByTier: fc.dictionary(tierName, uint32),
        speculativeBlocks: uint32,
        imagesSeen: fc.option(uint32, { nil: undefined }),
      }),
      { maxLength: 20 },
    ),
    items: fc.array(
      fc.record({
        offset: uint32,
        length: uint32,
        identifier: fc.string({ unit: 'grapheme', maxLength: 200 }),
        estimated: fc.boolean(),
        identifierSource: fc.constantFrom('', 'uuid', 'caller', 'vllm-mm-hash', 'content-hash'),
        fetchOutcome: fc.constantFrom('', 'fetched', 'cached', 'timeout', 'disabled'),
      }),
      { maxLength: 3 },
    ),
    fingerprint: fc.record({ scheme: text, hashSeed: text, blockSize: uint32 }),
    blockKeys: fc.array(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String), { maxLength: 6 }),
    degraded: fc.boolean(),
    degradedReason: fc.string({ unit: 'grapheme', maxLength: 300 }),
    unknownModel: fc.boolean(),
  });

  it('random responses', () => {
    fc.assert(
      fc.property(response, (msg) => {
        const reference = score.responseDeserialize(score.responseSerialize(msg) as Buffer);
        expect(score.responseDeserialize(encodeScoreResponse(msg))).toEqual(reference);
      }),
      { numRuns: 500 },
    );
  });

  it('a typical response, byte for byte', () => {
    const msg: ScoreResponseMsg = {
      totalBlocks: 64,
      blockSize: 16,
      tokenCount: 1024,
      scores: [
        {
          endpoint: '10.0.0.1:8000',
          matchedBlocks: 3,
          weighted: 2.5,
          normalized: 0.5,
          blocksByTier: { GPU: 2, CPU: 1 },
          speculativeBlocks: 0,
        },
        {
          endpoint: '10.0.0.2:8000',
          matchedBlocks: 0,
          weighted: 0,
          normalized: 0,
          blocksByTier: {},
          speculativeBlocks: 0,
          imagesSeen: 0,
        },
      ],
      items: [],
      fingerprint: { scheme: 'cbor-fnv64a', hashSeed: '', blockSize: 16 },
      blockKeys: ['300'],
      degraded: false,
      degradedReason: '',
      unknownModel: false,
    };
    const d = (v: number) => [...new Uint8Array(new Float64Array([v]).buffer)];
    const first = [
      ...len(1, utf8('10.0.0.1:8000')),
      0x10,
      3,
      0x19,
      ...d(2.5),
      0x21,
      ...d(0.5),
      ...len(5, [...len(1, utf8('GPU')), 0x10, 2]),
      ...len(5, [...len(1, utf8('CPU')), 0x10, 1]),
    ];
    const expected = [
      0x08,
      64,
      0x10,
      16,
      0x18,
      0x80,
      0x08,
      ...len(4, first),
      ...len(4, len(1, utf8('10.0.0.2:8000'))),
      ...len(6, [...len(1, utf8('cbor-fnv64a')), 0x18, 16]),
      ...len(7, [0xac, 0x02]),
    ];
    expect([...encodeScoreResponse(msg)]).toEqual(expected);
  });

  it('images_seen is field 7 of EndpointScore (0x38), left out when 0 or absent', () => {
    const msg: ScoreResponseMsg = {
      totalBlocks: 0,
      blockSize: 0,
      tokenCount: 0,
      scores: [
        {
          endpoint: 'a',
          matchedBlocks: 0,
          weighted: 0,
          normalized: 0,
          blocksByTier: {},
          speculativeBlocks: 0,
          imagesSeen: 2,
        },
        {
          endpoint: 'b',
          matchedBlocks: 0,
          weighted: 0,
          normalized: 0,
          blocksByTier: {},
          speculativeBlocks: 0,
          imagesSeen: 0,
        },
        { endpoint: 'c', matchedBlocks: 0, weighted: 0, normalized: 0, blocksByTier: {}, speculativeBlocks: 0 },
      ],
      items: [],
      fingerprint: undefined as unknown as ScoreResponseMsg['fingerprint'],
      blockKeys: [],
      degraded: false,
      degradedReason: '',
      unknownModel: false,
    };
    expect([...encodeScoreResponse(msg)]).toEqual([
      ...len(4, [...len(1, utf8('a')), 0x38, 2]),
      ...len(4, len(1, utf8('b'))),
      ...len(4, len(1, utf8('c'))),
    ]);
    expect(
      score.responseDeserialize(encodeScoreResponse(msg)).scores.map((s: { imagesSeen: number }) => s.imagesSeen),
    ).toEqual([2, 0, 0]);
  });

  it('an item with its identifier source (field 5) and fetch outcome (field 6), byte for byte', () => {
    const msg: ScoreResponseMsg = {
      totalBlocks: 0,
      blockSize: 0,
      tokenCount: 0,
      scores: [],
      items: [
        {
          offset: 15,
          length: 391,
          identifier: 'ab',
          estimated: true,
          identifierSource: 'vllm-mm-hash',
          fetchOutcome: 'cached',
        },
      ],
      fingerprint: { scheme: '', hashSeed: '', blockSize: 0 },
      blockKeys: [],
      degraded: false,
      degradedReason: '',
      unknownModel: false,
    };
    // ItemInfo: offset (1, varint), length (2, varint 391 = 0x87 0x03), identifier (3), estimated (4), 5 and 6 strings.
    const item = [
      0x08,
      15,
      0x10,
      0x87,
      0x03,
      ...len(3, utf8('ab')),
      0x20,
      1,
      ...len(5, utf8('vllm-mm-hash')),
      ...len(6, utf8('cached')),
    ];
    expect([...encodeScoreResponse(msg)]).toEqual([...len(5, item), ...len(6, [])]);
    // Empty strings are not written (proto3 defaults), as before the fields existed.
    const bare = encodeScoreResponse({
      ...msg,
      fingerprint: undefined as never,
      items: [{ ...msg.items[0], identifierSource: '', fetchOutcome: '' }],
    });
    expect([...bare]).toEqual(len(5, item.slice(0, 11)));
    expect(score.responseDeserialize(encodeScoreResponse(msg)).items[0]).toMatchObject({
      identifierSource: 'vllm-mm-hash',
      fetchOutcome: 'cached',
    });
  });
});

/** The payload of a length-delimited chunk with a one-byte tag. */
function innerOf(chunk: number[]): number[] {
  let pos = 1;
  let length = 0;
  let shift = 0;
  for (;;) {
    const b = chunk[pos++];
    length |= (b & 0x7f) << shift;
    shift += 7;
    if (b < 0x80) break;
  }
  return chunk.slice(pos, pos + length);
}

describe('ScoreResponse.unknown_model (issue 17 hardening)', () => {
  it('is field 10, a varint bool after degraded_reason, omitted when false', () => {
    const base: ScoreResponseMsg = {
      totalBlocks: 1,
      blockSize: 16,
      tokenCount: 16,
      scores: [],
      items: [],
      fingerprint: { scheme: '', hashSeed: '', blockSize: 0 },
      blockKeys: [],
      degraded: true,
      degradedReason: 'x',
      unknownModel: true,
    };
    expect([...encodeScoreResponse(base)]).toEqual([
      0x08,
      1,
      0x10,
      16,
      0x18,
      16,
      ...len(6, []),
      0x40,
      1,
      ...len(9, utf8('x')),
      0x50,
      1,
    ]);
    expect(score.responseDeserialize(encodeScoreResponse(base))).toMatchObject({ unknownModel: true, degraded: true });
    expect([...encodeScoreResponse({ ...base, unknownModel: false })].slice(-2)).toEqual([0x01, 0x78]);
  });
});
