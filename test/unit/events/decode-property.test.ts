import { encode } from '@msgpack/msgpack';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeEventBatch, DECODE_REASONS, PayloadError, type WireFormat } from '../../../src/events/decode/index.js';
import type { ExtraKeyItem, KvEvent } from '../../../src/events/types.js';

const pack = (value: unknown) => encode(value, { useBigInt64: true });
const U64 = 1n << 64n;

/** A wire hash and the uint64 it must decode to, computed independently of the decoder (hex/modulo, no DataView). */
type HashCase = { wire: unknown; value: bigint };

const hashArb: fc.Arbitrary<HashCase> = fc.oneof(
  fc.bigInt({ min: 0n, max: U64 - 1n }).map((v) => ({ wire: v, value: v })),
  fc.bigInt({ min: -(1n << 63n), max: -1n }).map((v) => ({ wire: v, value: v + U64 })),
  fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }).map((v) => ({ wire: v, value: (BigInt(v) + U64) % U64 })),
  fc.uint8Array({ minLength: 1, maxLength: 32 }).map((b) => ({
    wire: b,
    value: BigInt('0x' + Buffer.from(b.subarray(Math.max(0, b.length - 8))).toString('hex')),
  })),
);

type ItemCase = { wire: unknown; item: ExtraKeyItem };
const itemArb: fc.Arbitrary<ItemCase> = fc.oneof(
  fc.string().map((s) => ({ wire: s, item: { kind: 'string', value: s } as const })),
  fc
    .tuple(fc.string(), fc.integer({ min: -100_000, max: 100_000 }))
    .map(([identifier, offset]) => ({ wire: [identifier, offset], item: { kind: 'mm', identifier, offset } as const })),
  fc.nat(1000).map((id) => ({ wire: id, item: { kind: 'lora-id', id } as const })),
  fc.uint8Array({ minLength: 0, maxLength: 40 }).map((b) => ({
    wire: b,
    item: { kind: 'embeds', hex: Buffer.from(b).toString('hex') } as const,
  })),
);

/** null, an empty list (decodes to null) or a list of items. */
const extraEntryArb = fc.oneof(
  fc.constant({ wire: null as unknown, items: null as ExtraKeyItem[] | null }),
  fc.constant({ wire: [] as unknown, items: null as ExtraKeyItem[] | null }),
  fc
    .array(itemArb, { minLength: 1, maxLength: 4 })
    .map((xs) => ({ wire: xs.map((x) => x.wire) as unknown, items: xs.map((x) => x.item) })),
);

const optString = fc.option(fc.string({ maxLength: 12 }), { nil: null });
const mediumArb = fc.option(fc.constantFrom('GPU', 'cpu', 'Fs', 'STORAGE', 'cpu_pinned'), { nil: null });
/** vLLM ≥ 0.26 locality (case-insensitive on the wire); REMOTE moves the block to `<MEDIUM>_REMOTE`. */
const localityArb = fc.option(fc.constantFrom('LOCAL', 'REMOTE', 'local', 'Remote'), { nil: null });
const tierOf = (medium: string | null, locality: string | null) =>
  (medium ?? 'GPU').toUpperCase() + (locality !== null && locality.toUpperCase() === 'REMOTE' ? '_REMOTE' : '');
/** The optional fields the decoder sets only when the wire carries them (types.ts). */
function placementOf(locality: string | null, ownership: string | null): Record<string, string> {
  const out: Record<string, string> = {};
  if (locality !== null) out.locality = locality.toUpperCase();
  if (ownership !== null) out.ownership = ownership;
  return out;
}

type EventCase = { fields: [string, unknown][]; expected: KvEvent };

const storedArb: fc.Arbitrary<EventCase> = fc
  .record({
    hashes: fc.array(hashArb, { maxLength: 8 }),
    parent: fc.option(hashArb, { nil: null }),
    tokens: fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 40 }),
    blockSize: fc.nat(1024),
    loraId: fc.option(fc.integer(), { nil: null }),
    medium: mediumArb,
    loraName: optString,
    withExtras: fc.boolean(),
    extras: fc.array(extraEntryArb, { minLength: 8, maxLength: 8 }),
    groupIdx: fc.option(fc.nat(8), { nil: null }),
    kind: optString,
    window: fc.option(fc.integer({ min: -1, max: 1 << 20 }), { nil: null }),
    locality: localityArb,
    ownership: optString,
    sessionId: optString,
    // SGLang speculative decoding: token_ids as [token, next] pairs ending in a look-ahead token.
    pairs: fc.option(fc.nat({ max: 0xffffffff }), { nil: null }),
  })
  .map((r) => {
    const extras = r.withExtras ? r.extras.slice(0, r.hashes.length) : null;
    const lookahead = r.pairs !== null && r.tokens.length > 0 ? r.pairs : null;
    const wireTokens =
      lookahead === null
        ? r.tokens
        : r.tokens.map((t, i) => [t, i + 1 < r.tokens.length ? r.tokens[i + 1] : lookahead]);
    return {
      fields: [
        ['type', 'BlockStored'],
        ['block_hashes', r.hashes.map((h) => h.wire)],
        ['parent_block_hash', r.parent === null ? null : r.parent.wire],
        ['token_ids', wireTokens],
        ['block_size', r.blockSize],
        ['lora_id', r.loraId],
        ['medium', r.medium],
        ['lora_name', r.loraName],
        ['extra_keys', extras === null ? null : extras.map((e) => e.wire)],
        ['group_idx', r.groupIdx],
        ['kv_cache_spec_kind', r.kind],
        ['kv_cache_spec_sliding_window', r.window],
        ['locality', r.locality],
        ['ownership', r.ownership],
        ['session_id', r.sessionId],
      ],
      expected: {
        type: 'BlockStored',
        blockHashes: BigUint64Array.from(r.hashes.map((h) => h.value)),
        parentBlockHash: r.parent === null ? null : r.parent.value,
        tokenIds: Uint32Array.from(r.tokens),
        blockSize: r.blockSize,
        loraId: r.loraId,
        medium: tierOf(r.medium, r.locality),
        loraName: r.loraName,
        extraKeys: extras === null ? null : extras.map((e) => e.items),
        groupIdx: r.groupIdx,
        kvCacheSpecKind: r.kind,
        kvCacheSpecSlidingWindow: r.window,
        cacheSalt: null,
        ...placementOf(r.locality, r.ownership),
        ...(lookahead === null ? {} : { bigramLookahead: lookahead }),
      },
    };
  });

const removedArb: fc.Arbitrary<EventCase> = fc
  .record({
    hashes: fc.array(hashArb, { minLength: 1, maxLength: 4 }),
    medium: mediumArb,
    groupIdx: fc.option(fc.nat(8), { nil: null }),
    locality: localityArb,
    ownership: optString,
  })
  .map((r) => ({
    fields: [
      ['type', 'BlockRemoved'],
      ['block_hashes', r.hashes.map((h) => h.wire)],
      ['medium', r.medium],
      ['group_idx', r.groupIdx],
      ['locality', r.locality],
      ['ownership', r.ownership],
    ],
    expected: {
      type: 'BlockRemoved',
      blockHashes: BigUint64Array.from(r.hashes.map((h) => h.value)),
      medium: tierOf(r.medium, r.locality),
      groupIdx: r.groupIdx,
      ...placementOf(r.locality, r.ownership),
    },
  }));

const clearedArb: fc.Arbitrary<EventCase> = fc.constant({
  fields: [['type', 'AllBlocksCleared']],
  expected: { type: 'AllBlocksCleared' },
});

/** The required fields of each event: the first four of BlockStored, the hashes of BlockRemoved. */
const REQUIRED = new Set(['type', 'block_hashes', 'parent_block_hash', 'token_ids', 'block_size']);

/** Encode like one of the vLLM eras: array (optionally without trailing nils) or map (optionally without nils). */
function toWire(event: EventCase, form: 'array' | 'array-trimmed' | 'map' | 'map-omitted'): unknown {
  if (form === 'array' || form === 'array-trimmed') {
    const values = event.fields.map(([, v]) => v);
    if (form === 'array-trimmed') {
      while (
        values.length > 1 &&
        values[values.length - 1] === null &&
        !REQUIRED.has(event.fields[values.length - 1][0])
      )
        values.pop();
    }
    return values;
  }
  const map: Record<string, unknown> = { session_id: 'y', some_future_key: 'x' };
  for (const [k, v] of event.fields) if (form === 'map' || v !== null || REQUIRED.has(k)) map[k] = v;
  return map;
}

const formArb = fc.constantFrom('array', 'array-trimmed', 'map', 'map-omitted') as fc.Arbitrary<
  'array' | 'array-trimmed' | 'map' | 'map-omitted'
>;
const batchArb = fc.record({
  ts: fc.double({ noNaN: true, noDefaultInfinity: true }),
  rank: fc.option(fc.nat(64), { nil: null }),
  batchForm: fc.constantFrom('array', 'map'),
  events: fc.array(fc.tuple(fc.oneof(storedArb, removedArb, clearedArb), formArb), { maxLength: 6 }),
});

type BatchCase = typeof batchArb extends fc.Arbitrary<infer T> ? T : never;

function encodeBatch(b: BatchCase): Uint8Array {
  const events = b.events.map(([e, form]) => toWire(e, form));
  return pack(b.batchForm === 'array' ? [b.ts, events, b.rank] : { ts: b.ts, events, data_parallel_rank: b.rank });
}

describe('decoder properties', () => {
  it('random valid events in array or map form decode back to exactly the generated values', () => {
    fc.assert(
      fc.property(batchArb, (b) => {
        const batch = decodeEventBatch(encodeBatch(b));
        expect(batch.issues).toStrictEqual([]);
        expect(batch.ts).toBe(b.ts === 0 ? 0 : b.ts);
        expect(batch.dataParallelRank).toBe(b.rank);
        expect(batch.events).toStrictEqual(b.events.map(([e]) => e.expected));
      }),
      { numRuns: 400 },
    );
  });

  const assertOnlyPayloadErrors = (payload: Uint8Array, format: WireFormat) => {
    try {
      const batch = decodeEventBatch(payload, format);
      for (const issue of batch.issues) expect(DECODE_REASONS).toContain(issue.reason);
    } catch (err) {
      expect(err).toBeInstanceOf(PayloadError);
      expect(DECODE_REASONS).toContain((err as PayloadError).reason);
    }
  };

  it('random byte mutations never throw anything but PayloadError', () => {
    const mutation = fc.oneof(
      fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: fc.nat(255) }),
      fc.record({ op: fc.constant('cut' as const), at: fc.nat(), byte: fc.constant(0) }),
      fc.record({ op: fc.constant('insert' as const), at: fc.nat(), byte: fc.nat(255) }),
    );
    fc.assert(
      fc.property(
        batchArb,
        fc.array(mutation, { minLength: 1, maxLength: 6 }),
        fc.constantFrom<WireFormat>('vllm', 'sglang'),
        (b, ms, format) => {
          let bytes = encodeBatch(b);
          for (const m of ms) {
            const at = bytes.length === 0 ? 0 : m.at % bytes.length;
            if (m.op === 'set' && bytes.length > 0) bytes[at] = m.byte;
            else if (m.op === 'cut') bytes = bytes.slice(0, at);
            else if (m.op === 'insert')
              bytes = Uint8Array.from([...bytes.subarray(0, at), m.byte, ...bytes.subarray(at)]);
          }
          assertOnlyPayloadErrors(bytes, format);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('arbitrary msgpack values as events or batches never throw anything but PayloadError', () => {
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.constant(null),
        fc.boolean(),
        fc.integer(),
        fc.double(),
        fc.bigInt({ min: -(1n << 63n), max: U64 - 1n }),
        fc.constantFrom('BlockStored', 'BlockRemoved', 'AllBlocksCleared', 'type', 'GPU'),
        fc.string(),
        fc.uint8Array({ maxLength: 40 }),
        fc.array(tie('value'), { maxLength: 14 }),
        fc.dictionary(
          fc.constantFrom(
            'type',
            'block_hashes',
            'parent_block_hash',
            'token_ids',
            'block_size',
            'medium',
            'extra_keys',
            'cache_salt',
            'metadata',
            'x',
          ),
          tie('value'),
          { maxKeys: 8 },
        ),
      ),
    }));
    const eventArb = fc.oneof(
      value,
      fc
        .tuple(fc.constantFrom('BlockStored', 'BlockRemoved', 'AllBlocksCleared'), fc.array(value, { maxLength: 12 }))
        .map(([t, rest]) => [t, ...rest]),
    );
    fc.assert(
      fc.property(
        fc.oneof(value, fc.tuple(fc.double(), fc.array(eventArb, { maxLength: 5 }), value)),
        fc.constantFrom<WireFormat>('vllm', 'sglang'),
        (root, format) => assertOnlyPayloadErrors(pack(root), format),
      ),
      { numRuns: 1500 },
    );
  });
});
