import { decode, encode, ExtData } from '@msgpack/msgpack';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { decodeEventBatch, DECODE_REASONS, PayloadError, type WireFormat } from '../../src/events/decode/index.js';
import { MAX_DEPTH, MsgpackError, readMsgpack, WireExt } from '../../src/events/decode/msgpack-reader.js';
import { encodeBatch, type SimEvent, type WireStyle } from '../../src/sim/publisher/encode.js';
import type { EventBatch } from '../../src/events/types.js';

/**
 * Hostile payloads against the public decode entry point, built from real encoded batches (the simulator's
 * encodeBatch, every wire style). The decoder's contract (decode/batch.ts, decode/errors.ts): it returns a batch
 * whose bad events are skipped, each with one issue, or throws PayloadError (`bad_msgpack`, `bad_batch`) for an
 * unusable payload; nothing else is ever thrown, and nothing of a rejected payload is returned.
 * Not repeated here: exact messages per malformed field (test/unit/events/decode-errors.test.ts) and random msgpack
 * values / single-byte mutations of generated batches (test/unit/events/decode-property.test.ts).
 */

const SEED = 0x4b56_0001;
const pack = (value: unknown) => encode(value, { useBigInt64: true });
const unpack = (bytes: Uint8Array) => decode(bytes, { useBigInt64: true });

// --- real batches from the simulator's encoder ---------------------------------------------------------------------

const U64_MAX = (1n << 64n) - 1n;
const hashBytesArb = fc.oneof(
  fc.uint8Array({ minLength: 32, maxLength: 32 }),
  fc.constant(new Uint8Array(32).fill(0xff)), // 2^64-1 as an int hash
  fc.constant(new Uint8Array(32)), // 0
  fc.constant(Uint8Array.from({ length: 32 }, (_, i) => (i === 24 ? 0x80 : 0))), // 2^63: negative as int64
);
const tokenArb = fc.oneof(fc.nat(200_000), fc.constantFrom(0, 0xffff_ffff, 0x7fff_ffff, 65_535, 65_536));
const extraKeyArb = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.tuple(fc.string({ minLength: 1, maxLength: 12 }), fc.integer({ min: -1000, max: 1000 })),
);

const storedArb: fc.Arbitrary<SimEvent> = fc.integer({ min: 1, max: 4 }).chain((blocks) =>
  fc.record({
    type: fc.constant('BlockStored' as const),
    hashes: fc.array(hashBytesArb, { minLength: blocks, maxLength: blocks }),
    parent: fc.option(hashBytesArb, { nil: null }),
    tokens: fc.array(tokenArb, { minLength: blocks * 4, maxLength: blocks * 4 }),
    blockSize: fc.constant(4),
    medium: fc.constantFrom(null, 'GPU', 'CPU', 'cpu'),
    loraName: fc.option(fc.string({ unit: 'binary', maxLength: 10 }), { nil: null }),
    extraKeys: fc.option(
      fc.array(fc.option(fc.array(extraKeyArb, { minLength: 1, maxLength: 3 }), { nil: null }), {
        minLength: blocks,
        maxLength: blocks,
      }),
      {
        nil: null,
      },
    ),
  }),
);
const removedArb: fc.Arbitrary<SimEvent> = fc.record({
  type: fc.constant('BlockRemoved' as const),
  hashes: fc.array(hashBytesArb, { minLength: 1, maxLength: 4 }),
  medium: fc.constantFrom(null, 'GPU', 'CPU'),
});
const simEventArb = fc.oneof(
  { weight: 4, arbitrary: storedArb },
  { weight: 2, arbitrary: removedArb },
  { weight: 1, arbitrary: fc.constant<SimEvent>({ type: 'AllBlocksCleared' }) },
);
const styleArb: fc.Arbitrary<WireStyle> = fc.record({
  encoding: fc.constantFrom('array', 'map'),
  hashes: fc.constantFrom('int', 'bytes'),
});
const simBatchArb = fc.record({
  ts: fc.double({ min: 0, max: 2e9, noNaN: true }),
  events: fc.array(simEventArb, { minLength: 1, maxLength: 6 }),
  rank: fc.option(fc.nat(7), { nil: null }),
  style: styleArb,
});
type SimBatchCase = typeof simBatchArb extends fc.Arbitrary<infer T> ? T : never;
const encodeSim = (b: SimBatchCase) => encodeBatch(b.ts, b.events, b.rank, b.style);

/** The decoder's result, or the PayloadError it threw; anything else thrown fails the test. */
function outcome(payload: Uint8Array, format: WireFormat = 'vllm'): EventBatch | PayloadError {
  try {
    const batch = decodeEventBatch(payload, format);
    for (const issue of batch.issues) expect(DECODE_REASONS).toContain(issue.reason);
    return batch;
  } catch (err) {
    expect(err).toBeInstanceOf(PayloadError);
    expect(DECODE_REASONS).toContain((err as PayloadError).reason);
    return err as PayloadError;
  }
}

// --- invalid events, each with the one issue it must produce --------------------------------------------------------

type Bad = { wire: unknown; reason: string; field: string };

/** Events that must be skipped in both formats, with their exact reason and field (relative to the event). */
const badEventArb: fc.Arbitrary<Bad> = fc.oneof(
  // whole-event shape
  fc.constantFrom<Bad>(
    { wire: 42, reason: 'bad_event', field: '' },
    { wire: null, reason: 'bad_event', field: '' },
    { wire: new Uint8Array(8), reason: 'bad_event', field: '' },
    { wire: [], reason: 'bad_event', field: '.type' },
    { wire: { block_hashes: [1] }, reason: 'bad_event', field: '.type' },
    { wire: [U64_MAX, [1]], reason: 'bad_event', field: '.type' },
  ),
  fc
    .string({ maxLength: 300 })
    .filter((t) => !['BlockStored', 'BlockRemoved', 'AllBlocksCleared'].includes(t))
    .map((t) => ({ wire: [t, [1]], reason: 'unknown_tag', field: '.type' })),
  // wrong types and out-of-range values at fields, array and map form
  fc
    .tuple(
      fc.constantFrom(
        { name: 'block_hashes', at: 1, value: 'x' as unknown, reason: 'bad_field_type', path: '' },
        { name: 'block_hashes', at: 1, value: { a: 1 }, reason: 'bad_field_type', path: '' },
        { name: 'block_hashes', at: 1, value: [1, U64_MAX + 0n, 'h'], reason: 'bad_hash', path: '[2]' },
        { name: 'block_hashes', at: 1, value: [1.5], reason: 'bad_hash', path: '[0]' },
        { name: 'block_hashes', at: 1, value: [new Uint8Array(33)], reason: 'bad_hash', path: '[0]' },
        { name: 'block_hashes', at: 1, value: [new Uint8Array(0)], reason: 'bad_hash', path: '[0]' },
        { name: 'parent_block_hash', at: 2, value: 'p', reason: 'bad_hash', path: '' },
        { name: 'parent_block_hash', at: 2, value: 2 ** 60, reason: 'bad_hash', path: '' },
        { name: 'token_ids', at: 3, value: [1, 2, U64_MAX], reason: 'bad_token_ids', path: '[2]' },
        { name: 'token_ids', at: 3, value: [-1], reason: 'bad_token_ids', path: '[0]' },
        { name: 'token_ids', at: 3, value: [2 ** 32], reason: 'bad_token_ids', path: '[0]' },
        { name: 'token_ids', at: 3, value: [0.5], reason: 'bad_token_ids', path: '[0]' },
        { name: 'token_ids', at: 3, value: 'tokens', reason: 'bad_field_type', path: '' },
        { name: 'block_size', at: 4, value: U64_MAX, reason: 'bad_field_type', path: '' },
        { name: 'block_size', at: 4, value: -(1n << 63n), reason: 'bad_field_type', path: '' },
        { name: 'block_size', at: 4, value: -16, reason: 'bad_field_type', path: '' },
        { name: 'block_size', at: 4, value: 16.5, reason: 'bad_field_type', path: '' },
        { name: 'block_size', at: 4, value: null, reason: 'bad_field_type', path: '' },
        { name: 'lora_id', at: 5, value: U64_MAX, reason: 'bad_field_type', path: '' },
        { name: 'medium', at: 6, value: 7, reason: 'bad_field_type', path: '' },
      ),
      fc.boolean(),
    )
    .map(([f, asMap]) => {
      const fields: unknown[] = ['BlockStored', [1n, 2n], null, [1, 2, 3, 4, 5, 6, 7, 8], 4, null, null];
      fields[f.at] = f.value;
      const names = ['type', 'block_hashes', 'parent_block_hash', 'token_ids', 'block_size', 'lora_id', 'medium'];
      const wire = asMap ? Object.fromEntries(names.map((n, i) => [n, fields[i]])) : fields;
      return { wire, reason: f.reason, field: `.${f.name}${f.path}` };
    }),
  // required fields missing
  fc.constantFrom<Bad>(
    { wire: ['BlockStored', [1], null, [1, 2, 3, 4]], reason: 'missing_field', field: '.block_size' },
    { wire: ['BlockRemoved'], reason: 'missing_field', field: '.block_hashes' },
    {
      wire: { type: 'BlockStored', block_hashes: [1], token_ids: [], block_size: 0 },
      reason: 'missing_field',
      field: '.parent_block_hash',
    },
  ),
);

/** vLLM only: extra_keys and group_idx are vLLM fields (SGLang ignores those positions and keys). */
const badVllmOnlyArb: fc.Arbitrary<Bad> = fc.constantFrom<Bad>(
  // 2^64-1 and negative values where only a small non-negative int fits
  ...[U64_MAX, -(1n << 63n), -1, 2 ** 53, 1.5].map((v) => ({
    wire: ['BlockRemoved', [1], null, v] as unknown,
    reason: 'bad_field_type',
    field: '.group_idx',
  })),
  {
    wire: ['BlockStored', [1, 2], null, [1, 2, 3, 4, 5, 6, 7, 8], 4, null, null, null, [null]],
    reason: 'bad_extra_keys',
    field: '.extra_keys',
  },
  {
    wire: ['BlockStored', [1], null, [1, 2, 3, 4], 4, null, null, null, [[{}]]],
    reason: 'bad_extra_keys',
    field: '.extra_keys[0][0]',
  },
  {
    wire: ['BlockStored', [1], null, [1, 2, 3, 4], 4, null, null, null, [[['mm', U64_MAX]]]],
    reason: 'bad_extra_keys',
    field: '.extra_keys[0][0][1]',
  },
  {
    wire: ['BlockStored', [1], null, [1, 2, 3, 4], 4, null, null, null, [[U64_MAX]]],
    reason: 'bad_extra_keys',
    field: '.extra_keys[0][0]',
  },
  {
    wire: ['BlockStored', [1], null, [1, 2, 3, 4], 4, null, null, null, 'keys'],
    reason: 'bad_extra_keys',
    field: '.extra_keys',
  },
);

describe('valid events mixed with invalid ones: the batch equals the valid events alone', () => {
  for (const format of ['vllm', 'sglang'] as const) {
    it(`${format}: every invalid event is skipped with exactly its issue; the rest decodes as if alone`, () => {
      const bad =
        format === 'vllm'
          ? fc.oneof({ weight: 4, arbitrary: badEventArb }, { weight: 1, arbitrary: badVllmOnlyArb })
          : badEventArb;
      fc.assert(
        fc.property(simBatchArb, fc.array(fc.tuple(fc.nat(), bad), { minLength: 1, maxLength: 5 }), (b, inserts) => {
          const clean = encodeSim(b);
          const alone = decodeEventBatch(clean, format);
          expect(alone.issues).toStrictEqual([]);
          // Splice the invalid events into the decoded wire tree of the real batch, then re-encode.
          const [ts, events, rank] = unpack(clean) as [number, unknown[], number | null];
          const mixed: unknown[] = [...events];
          const positions: number[] = [];
          for (const [at, e] of inserts) {
            const p = at % (mixed.length + 1);
            mixed.splice(p, 0, e.wire);
            for (let k = 0; k < positions.length; k++) if (positions[k] >= p) positions[k]++;
            positions.push(p);
          }
          const byPosition = inserts.map(([, e], k) => ({ e, p: positions[k] })).sort((x, y) => x.p - y.p);
          const batch = decodeEventBatch(pack([ts, mixed, rank]), format);
          expect(batch.events).toStrictEqual(alone.events);
          expect([batch.ts, batch.dataParallelRank]).toStrictEqual([alone.ts, alone.dataParallelRank]);
          expect(batch.issues.map((i) => [i.eventIndex, i.reason, i.field])).toStrictEqual(
            byPosition.map(({ e, p }) => [p, e.reason, `events[${p}]${e.field}`]),
          );
        }),
        { seed: SEED, numRuns: 300 },
      );
    });
  }

  it('a bad batch envelope rejects the whole payload (PayloadError naming the part), never a part of it', () => {
    const envelope = fc.constantFrom(
      { at: 0, value: 'now' as unknown, field: 'ts' },
      { at: 0, value: null, field: 'ts' },
      { at: 0, value: [1.5], field: 'ts' },
      { at: 1, value: { events: [] }, field: 'events' },
      { at: 1, value: 'events', field: 'events' },
      { at: 1, value: null, field: 'events' },
      { at: 2, value: -1, field: 'data_parallel_rank' },
      { at: 2, value: U64_MAX, field: 'data_parallel_rank' },
      { at: 2, value: -(1n << 63n), field: 'data_parallel_rank' },
      { at: 2, value: 'dp1', field: 'data_parallel_rank' },
      { at: 2, value: 0.5, field: 'data_parallel_rank' },
    );
    fc.assert(
      fc.property(simBatchArb, envelope, fc.boolean(), (b, m, asMap) => {
        const root = unpack(encodeSim(b)) as unknown[];
        root[m.at] = m.value;
        const payload = asMap ? pack({ ts: root[0], events: root[1], data_parallel_rank: root[2] }) : pack(root);
        const r = outcome(payload);
        expect(r).toBeInstanceOf(PayloadError);
        expect([(r as PayloadError).reason, (r as PayloadError).field]).toStrictEqual(['bad_batch', m.field]);
      }),
      { seed: SEED + 1, numRuns: 200 },
    );
  });
});

describe('byte-level mutations of real encoded batches', () => {
  it('every strict prefix of a real batch is bad_msgpack', () => {
    fc.assert(
      fc.property(simBatchArb, fc.nat(), (b, cut) => {
        const bytes = encodeSim(b);
        const r = outcome(bytes.subarray(0, cut % bytes.length));
        expect(r).toBeInstanceOf(PayloadError);
        expect((r as PayloadError).reason).toBe('bad_msgpack');
      }),
      { seed: SEED + 2, numRuns: 500 },
    );
  });

  /** Headers that declare far more than any payload holds, and nesting bombs, spliced in anywhere. */
  const hostile = fc.constantFrom(
    Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff]), // array32 of 2^32-1
    Uint8Array.from([0xdf, 0xff, 0xff, 0xff, 0xff]), // map32 of 2^32-1
    Uint8Array.from([0xdb, 0xff, 0xff, 0xff, 0xff]), // str32 of 4 GiB
    Uint8Array.from([0xc6, 0xff, 0xff, 0xff, 0xff]), // bin32 of 4 GiB
    Uint8Array.from([0xc9, 0xff, 0xff, 0xff, 0xff, 0x01]), // ext32 of 4 GiB
    Uint8Array.from([0xdc, 0xff, 0xff]), // array16 of 65535
    Uint8Array.from([0xde, 0xff, 0xff]), // map16 of 65535
    new Uint8Array(3 * 20_000).map((_, i) => [0xdc, 0x3f, 0xff][i % 3]), // 20k nested array16 of 16383 (a 2.6 GB bomb)
    new Uint8Array(50_000).fill(0x91), // 50k nested one-element arrays
    new Uint8Array(20_000).fill(0x81), // 20k nested one-entry maps (key missing)
    Uint8Array.from([0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // uint64 2^64-1
    Uint8Array.from([0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]), // int64 -2^63
    Uint8Array.from([0xc1]), // never used
  );

  it('hostile headers spliced, overwritten or appended anywhere: only PayloadError, and the decoder stays usable', () => {
    fc.assert(
      fc.property(simBatchArb, hostile, fc.nat(), fc.constantFrom('insert', 'overwrite', 'append'), (b, h, at, how) => {
        const bytes = encodeSim(b);
        const p = at % (bytes.length + 1);
        const out = new Uint8Array(
          how === 'overwrite' ? Math.max(bytes.length, p + h.length) : bytes.length + h.length,
        );
        if (how === 'append') {
          out.set(bytes);
          out.set(h, bytes.length);
        } else {
          out.set(bytes.subarray(0, p));
          out.set(h, p);
          out.set(bytes.subarray(how === 'insert' ? p : Math.min(bytes.length, p + h.length)), p + h.length);
        }
        outcome(out);
        // The shared decoder instance is still in a clean state: the original batch decodes as before.
        expect(decodeEventBatch(bytes).issues).toStrictEqual([]);
      }),
      { seed: SEED + 3, numRuns: 400 },
    );
  });

  it('regression: nested array headers declaring 16k elements each are rejected before anything is allocated', () => {
    // 300 KB of `dc 3f ff`: each header made the decoder allocate `new Array(16383)` (128 KB) → 12.8 GB, a crash.
    const n = 100_000;
    const bomb = new Uint8Array(2 + 3 * n);
    bomb.set([0x92, 0x00]);
    for (let i = 0; i < n; i++) bomb.set([0xdc, 0x3f, 0xff], 2 + 3 * i);
    const heapBefore = process.memoryUsage().heapUsed;
    const r = outcome(bomb);
    const grownMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
    expect(r).toBeInstanceOf(PayloadError);
    // After k headers 16382k + 1 values are owed and 300002 - (2 + 3k) bytes are left: k = 19 is the first that lies.
    expect((r as PayloadError).message).toBe(
      'payload is not one msgpack value: it declares 311259 more values than the 299943 bytes left can hold (at byte 59)',
    );
    expect(grownMb).toBeLessThan(64); // the old decoder needed gigabytes here
    // A well-formed payload of the same shape (each array filled) still decodes: the bound only refuses lies.
    const filled = pack([0, [['BlockRemoved', Array.from({ length: 16_383 }, (_, i) => i)]]]);
    expect(decodeEventBatch(filled).events).toHaveLength(1);
  });

  it('map32 and array32 headers declaring 2^32-1 entries inside an event: PayloadError, not an allocation', () => {
    for (const header of [[0xdd], [0xdf], [0xdb], [0xc6]]) {
      const payload = Uint8Array.from([
        0x92,
        0x00,
        0x91,
        0x92,
        0xac,
        ...Buffer.from('BlockRemoved'),
        ...header,
        0xff,
        0xff,
        0xff,
        0xff,
        0x01,
      ]);
      const r = outcome(payload);
      expect(r).toBeInstanceOf(PayloadError);
      expect((r as PayloadError).reason).toBe('bad_msgpack');
    }
  });
});

describe('the reader against @msgpack/msgpack', () => {
  // The reader (src/events/decode/msgpack-reader.ts) must read every value the reference decoder reads, as the same
  // value; the only difference allowed is its packing of depth-3 lists of unsigned ints into typed arrays.
  const intList = fc.oneof(
    fc.array(fc.nat(), { minLength: 1, maxLength: 50 }),
    fc.array(fc.bigInt({ min: 0n, max: U64_MAX }), { minLength: 1, maxLength: 50 }),
    fc.array(fc.oneof(fc.nat(0xffff_ffff), fc.bigInt({ min: 0n, max: U64_MAX })), { minLength: 1, maxLength: 50 }),
    fc.array(fc.oneof(fc.integer({ min: -200, max: 200 }), fc.bigInt({ min: -(1n << 63n), max: 5n })), {
      minLength: 1,
      maxLength: 20,
    }),
  );
  const { value } = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', maxDepth: 6 },
      fc.constant(null),
      fc.boolean(),
      fc.integer(),
      fc.double(),
      fc.bigInt({ min: -(1n << 63n), max: U64_MAX }),
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }),
      fc.date({ noInvalidDate: true }),
      fc
        .tuple(
          fc.integer({ min: -128, max: 127 }).filter((t) => t !== -1),
          fc.uint8Array({ maxLength: 40 }),
        )
        .map(([type, data]) => new ExtData(type, data)),
      intList,
      fc.array(tie('value'), { maxLength: 40 }),
      fc.dictionary(
        fc.string({ unit: 'binary', maxLength: 8 }).filter((k) => k !== '__proto__'),
        tie('value'),
        { maxKeys: 20 },
      ),
      fc.constantFrom(15, 16, 65_535, 65_536).map((n) => new Array(n).fill(0)), // fixarray / array16 / array32 boundaries
    ),
  }));
  // Shapes that put int lists at depth 3, where the reader packs them: [ts, [event], rank] and {events: [{field}]}.
  const batchLike = fc.oneof(
    fc.tuple(value, fc.array(fc.array(value, { maxLength: 6 }), { maxLength: 4 }), value),
    fc.dictionary(
      fc.constantFrom('ts', 'events', 'x'),
      fc.array(fc.dictionary(fc.constantFrom('a', 'b', 'token_ids'), value), { maxLength: 4 }),
    ),
    value,
  );

  it('reads every value the encoder writes as the reference decoder does; packs exactly the depth-3 unsigned int lists', () => {
    fc.assert(
      fc.property(batchLike, (v) => {
        const bytes = pack(v);
        const ours = readMsgpack(bytes);
        const reference = unpack(bytes);
        const [a, b] = [canonical(ours), canonical(reference)];
        if (!isDeepStrictEqual(a, b)) expect(a).toEqual(b); // vitest's diff only when they differ (its compare is slow)
        expect(misPacked(ours, reference, 0)).toBeNull();
      }),
      { seed: SEED + 7, numRuns: 200 },
    );
  });

  it('on mutated bytes: what the reader accepts the reference reads alike; what it refuses the reference refuses too, but invalid UTF-8', () => {
    // Real batches of every wire style with bytes overwritten, inserted or cut: the reader may be stricter than the
    // reference only on strings that are not UTF-8 (the reference decodes them into U+FFFD).
    const mutated = fc
      .tuple(
        simBatchArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'cut')), {
          minLength: 1,
          maxLength: 4,
        }),
      )
      .map(([batch, edits]) => {
        const bytes = Array.from(encodeSim(batch));
        for (const [at, byte, how] of edits) {
          const i = at % (bytes.length + 1);
          if (how === 'set' && i < bytes.length) bytes[i] = byte;
          else if (how === 'insert') bytes.splice(i, 0, byte);
          else bytes.splice(i, 1);
        }
        return Uint8Array.from(bytes);
      });
    const tryRead = (read: () => unknown) => {
      try {
        return { ok: true as const, value: read() };
      } catch (err) {
        return { ok: false as const, message: (err as Error).message };
      }
    };
    fc.assert(
      fc.property(mutated, (bytes) => {
        const ours = tryRead(() => readMsgpack(bytes));
        const reference = tryRead(() => unpack(bytes));
        if (ours.ok) {
          expect(reference.ok).toBe(true);
          if (reference.ok) expect(canonical(ours.value)).toEqual(canonical(reference.value));
        } else if (!/not valid UTF-8/.test(ours.message)) {
          expect(reference).toMatchObject({ ok: false });
        }
      }),
      { seed: SEED + 8, numRuns: 2_000 },
    );
  });

  it('timestamps of all three sizes become the same Date; other ext values stay ext', () => {
    for (const date of [
      new Date(0),
      new Date(1_700_000_000_000),
      new Date(1_700_000_000_123),
      new Date(-1),
      new Date(2 ** 40 * 1000),
    ]) {
      const bytes = pack(date);
      expect(readMsgpack(bytes)).toEqual(unpack(bytes));
    }
    expect([pack(new Date(0))[0], pack(new Date(1_700_000_000_123))[0], pack(new Date(-1))[0]]).toEqual([
      0xd6, 0xd7, 0xc7,
    ]);
    expect(readMsgpack(Uint8Array.from([0xd4, 0x05, 0x2a]))).toEqual(new WireExt(5, Uint8Array.of(0x2a)));
  });

  it('values nested deeper than MAX_DEPTH are skipped (read as null) but still checked', () => {
    const nest = (depth: number, inner: number[]) => Uint8Array.from([...new Array(depth).fill(0x91), ...inner]);
    expect(readMsgpack(nest(MAX_DEPTH, [0x01]))).toEqual(nestedArrays(MAX_DEPTH, 1));
    expect(readMsgpack(nest(MAX_DEPTH + 1, [0x01]))).toEqual(nestedArrays(MAX_DEPTH + 1, null));
    expect(readMsgpack(nest(MAX_DEPTH + 5, [0x92, 0xa1, 0x61, 0x81, 0xa1, 0x6b, 0xc3]))).toEqual(
      nestedArrays(MAX_DEPTH + 1, null),
    );
    expect(() => readMsgpack(nest(MAX_DEPTH + 5, [0xc1]))).toThrow(new MsgpackError('Unrecognized type byte: 0xc1'));
    expect(() => readMsgpack(nest(MAX_DEPTH + 5, [0xa2, 0xc3, 0x28]))).toThrow(
      new MsgpackError(`it has a string that is not valid UTF-8 (at byte ${MAX_DEPTH + 5})`),
    );
    expect(() => readMsgpack(nest(MAX_DEPTH + 5, [0xdc, 0x00, 0x09, 0x01]))).toThrow(
      new MsgpackError(`it declares 9 more values than the 1 bytes left can hold (at byte ${MAX_DEPTH + 8})`),
    );
    expect(() => readMsgpack(nest(MAX_DEPTH + 5, [0x92, 0x01]))).toThrow(MsgpackError);
  });
});

function nestedArrays(depth: number, inner: unknown): unknown {
  let v = inner;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

/** A form both decoders' values compare equal in: ints as number when safe (else bigint), bytes and lists as plain arrays. */
function canonical(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : v;
  if (typeof v === 'number') return Object.is(v, -0) ? 0 : v;
  if (v instanceof Uint32Array) return Array.from(v);
  if (v instanceof BigUint64Array) return Array.from(v, canonical);
  if (v instanceof Uint8Array) return { bin: Array.from(v) };
  if (v instanceof Date) return { date: v.getTime() };
  if (v instanceof ExtData || v instanceof WireExt) return { ext: v.type, data: Array.from(v.data as Uint8Array) };
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, canonical(x)]));
  return v;
}
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Where a depth-3 non-empty list of unsigned ints is not packed (Uint32Array when the reference read only numbers), or a list elsewhere is; null when none. */
function misPacked(ours: unknown, reference: unknown, depth: number, path = 'root'): string | null {
  if (Array.isArray(reference)) {
    // Numbers off the wire were int encodings up to 32 bits (larger JS numbers are written as float64).
    const unsigned =
      reference.length > 0 &&
      reference.every(
        (x) =>
          (typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 0xffff_ffff) ||
          (typeof x === 'bigint' && x >= 0n),
      );
    if (depth === 3 && unsigned) {
      const want = reference.every((x) => typeof x === 'number') ? Uint32Array : BigUint64Array;
      return ours instanceof want ? null : `${path}: expected ${want.name}`;
    }
    if (!Array.isArray(ours)) return `${path}: expected an Array`;
    for (let i = 0; i < reference.length; i++) {
      const problem = misPacked(ours[i], reference[i], depth + 1, `${path}[${i}]`);
      if (problem) return problem;
    }
  } else if (
    reference !== null &&
    typeof reference === 'object' &&
    Object.getPrototypeOf(reference) === Object.prototype
  ) {
    for (const [k, x] of Object.entries(reference)) {
      const problem = misPacked((ours as Record<string, unknown>)[k], x, depth + 1, `${path}.${k}`);
      if (problem) return problem;
    }
  }
  return null;
}

describe('many bad events in one batch', () => {
  const GOOD = ['BlockRemoved', [7n]];

  it('regression: a million one-byte bad events are rejected as a batch (they took seconds and ~270 MB of issues)', () => {
    const n = 1_000_000;
    const bytes = new Uint8Array(7 + n).fill(0xc0); // [0, [nil × n]]
    bytes.set([0x92, 0x00, 0xdd, (n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
    const heapBefore = process.memoryUsage().heapUsed;
    const r = outcome(bytes);
    expect((process.memoryUsage().heapUsed - heapBefore) / 2 ** 20).toBeLessThan(64);
    expect([(r as PayloadError).reason, (r as PayloadError).field, (r as PayloadError).message]).toStrictEqual([
      'bad_batch',
      'events',
      'more than 1000 malformed events: not a batch a publisher sends',
    ]);
  });

  it('up to 1000 malformed events are skipped one by one; the 1001st rejects the batch', () => {
    fc.assert(
      fc.property(fc.integer({ min: 990, max: 1010 }), fc.array(fc.nat(), { maxLength: 5 }), (bad, goodAt) => {
        const events: unknown[] = Array.from({ length: bad }, (_, i) => (i % 2 === 0 ? 42 : ['BlockRemoved', 'x']));
        for (const at of goodAt) events.splice(at % (events.length + 1), 0, GOOD);
        const r = outcome(pack([0, events]));
        if (bad <= 1000) {
          const batch = r as EventBatch;
          expect([batch.events.length, batch.issues.length, batch.unlistedIssues]).toStrictEqual([
            goodAt.length,
            bad,
            undefined,
          ]);
        } else {
          expect([(r as PayloadError).reason, (r as PayloadError).field]).toStrictEqual(['bad_batch', 'events']);
        }
      }),
      { seed: SEED + 6, numRuns: 30 },
    );
  });

  it('unknown tags (a newer engine) never reject the batch: 1000 listed, the rest counted by reason', () => {
    const events: unknown[] = [
      GOOD,
      ...Array.from({ length: 5000 }, (_, i) => (i % 2 === 0 ? ['BlockInactive', [1]] : { type: 'BlockPinned' })),
      GOOD,
    ];
    const batch = outcome(pack([0, events])) as EventBatch;
    expect([batch.events.length, batch.issues.length, batch.unlistedIssues]).toStrictEqual([
      2,
      1000,
      { unknown_tag: 4000 },
    ]);
    expect(batch.issues[999]).toStrictEqual({
      reason: 'unknown_tag',
      eventIndex: 1000,
      field: 'events[1000].type',
      message: 'unknown event tag "BlockPinned"',
    });
  });
});

describe('strings that are not valid UTF-8', () => {
  /** Byte sequences a strict UTF-8 decoder (msgspec, vLLM's) refuses. */
  const invalidUtf8 = fc.constantFrom(
    [0x80], // lone continuation byte
    [0xff],
    [0xfe],
    [0xc0, 0x80], // overlong NUL
    [0xe0, 0x80, 0xaf], // overlong '/'
    [0xe2, 0x82], // truncated 3-byte sequence
    [0xed, 0xa0, 0x80], // UTF-16 surrogate U+D800 (CESU-8)
    [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
    [0xc3, 0x28], // bad continuation
  );
  /** Which string of a real batch gets the bad bytes (its text is replaced by a same-length marker first). */
  const target = fc.constantFrom('tag', 'medium', 'lora_name', 'mm identifier', 'map key');

  it('anywhere in a real batch: the payload is rejected as bad_msgpack (as msgspec rejects it), nothing is mangled into keys', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 6, unit: 'grapheme-ascii' }),
        invalidUtf8,
        fc.string({ maxLength: 250, unit: 'grapheme-ascii' }),
        target,
        (pre, bad, post, where) => {
          const marker = '\u0007'.repeat(pre.length + bad.length + post.length);
          const ev: Record<string, unknown> = {
            type: 'BlockStored',
            block_hashes: [1n],
            parent_block_hash: null,
            token_ids: [1, 2, 3, 4],
            block_size: 4,
            medium: 'CPU',
            lora_name: 'adapter',
            extra_keys: [[['image-1', 0]]],
          };
          if (where === 'tag') ev.type = marker;
          if (where === 'medium') ev.medium = marker;
          if (where === 'lora_name') ev.lora_name = marker;
          if (where === 'mm identifier') ev.extra_keys = [[[marker, 0]]];
          if (where === 'map key') ev[marker] = 1;
          const bytes = pack([1.5, [ev], null]);
          const at = Buffer.from(bytes).indexOf(Buffer.from(marker));
          expect([at > 0, Buffer.from(bytes).indexOf(Buffer.from(marker), at + 1)]).toStrictEqual([true, -1]);
          bytes.set([...Buffer.from(pre), ...bad, ...Buffer.from(post)], at);
          const r = outcome(bytes);
          expect(r).toBeInstanceOf(PayloadError);
          expect((r as PayloadError).reason).toBe('bad_msgpack');
          expect((r as PayloadError).message).toMatch(
            /^payload is not one msgpack value: it has a string that is not valid UTF-8 \(at byte \d+\)$/,
          );
        },
      ),
      { seed: SEED + 4, numRuns: 300 },
    );
  });

  it('valid UTF-8 of every plane (short and long strings) decodes to exactly the string sent', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 300 }),
        fc.string({ unit: 'grapheme', maxLength: 40 }),
        (lora, id) => {
          const batch = decodeEventBatch(
            pack([
              0,
              [['BlockStored', [1n], null, [1, 2, 3, 4], 4, null, lora || null, lora || null, [[[id, 0]]]]],
              null,
            ]),
          );
          expect(batch.issues).toStrictEqual([]);
          const e = batch.events[0];
          expect(e.type === 'BlockStored' && [e.medium, e.loraName, e.extraKeys]).toStrictEqual([
            lora ? (lora === 'GPU' ? 'GPU' : lora.toUpperCase()) : 'GPU',
            lora || null,
            [[{ kind: 'mm', identifier: id, offset: 0 }]],
          ]);
        },
      ),
      { seed: SEED + 5, numRuns: 300 },
    );
  });
});
