import { encode } from '@msgpack/msgpack';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Publisher } from 'zeromq';
import { decodeEventBatch, PayloadError } from '../../src/events/decode/index.js';
import { parseTopic } from '../../src/events/wire/topic.js';
import type { MemoryIndex } from '../../src/index/index.js';
import { BlockHasher } from '../../src/keys/index.js';
import { startTestService, type TestService } from '../support/service.js';
import { connectedPublisher, kvMessage, seqFrame, tokenRange, waitFor } from '../support/zmq.js';

/**
 * Hostile ZMQ traffic through the real service (bind-mode SUB on 127.0.0.1, real PUB sockets, gRPC, metrics):
 * wrong frame counts, empty frames, wrong-length sequence frames, garbage and oversize payloads, garbage and overlong
 * topics, interleaved with valid batches of simulated endpoints (some carrying invalid events). A second service
 * receives only the valid messages (with the invalid events taken out). Invariants: the hostile service keeps serving,
 * counts every bad message under its reason (pipeline counters and /metrics), and its index equals the clean one's.
 * Each run uses its own endpoint identities, so the two long-lived services compare per run as fresh ones would.
 * Not repeated: the fixed malformed-message cases of test/integration/transport-recovery.test.ts.
 */

const SEED = 0x4b56_0002;
const MODEL = 'fuzz/model';
const B = 16;
const LIMITS = { maxTopicBytes: 256, maxPayloadBytes: 8192 };
const hasher = new BlockHasher({ blockSize: B, hashSeed: '' });
const pack = (value: unknown) => Buffer.from(encode(value, { useBigInt64: true }));

/** Token ids of prompt p (4 prompts, 4 blocks each); block b of prompt p of endpoint e has engine hash h(e, p, b). */
const promptTokens = (p: number) => tokenRange(4 * B, 1 + 1000 * p);
const engineHash = (run: number, e: number, p: number, b: number) =>
  BigInt(run) * 1_000_000n + BigInt(e * 10_000 + p * 100 + b + 1);

type Op =
  | { kind: 'store'; p: number; from: number; to: number; medium: 'GPU' | 'CPU' | null }
  | { kind: 'remove'; p: number; b: number; medium: 'GPU' | 'CPU' | null }
  | { kind: 'clear' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('store' as const),
      p: fc.nat(3),
      from: fc.nat(3),
      to: fc.integer({ min: 1, max: 4 }),
      medium: fc.constantFrom('GPU' as const, 'CPU' as const, null),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('remove' as const),
      p: fc.nat(3),
      b: fc.nat(3),
      medium: fc.constantFrom('GPU' as const, 'CPU' as const, null),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'clear' as const }) },
);

/** Events a decodable batch skips, and the decoder reason each one is counted under. */
const BAD_EVENTS: [unknown, string][] = [
  [42, 'bad_event'],
  [['BlockInactive', [1]], 'unknown_tag'],
  [['BlockRemoved', 'x'], 'bad_field_type'],
  [['BlockStored', [1n], null, [-1], B], 'bad_token_ids'],
  [['BlockRemoved', [new Uint8Array(0)]], 'bad_hash'],
  [{ type: 'BlockStored', block_hashes: [1n], token_ids: [], block_size: 0 }, 'missing_field'],
];

function wireEvent(run: number, e: number, op: Op, form: 'array' | 'map'): unknown {
  if (op.kind === 'clear') return form === 'array' ? ['AllBlocksCleared'] : { type: 'AllBlocksCleared' };
  if (op.kind === 'remove') {
    const hashes = [engineHash(run, e, op.p, op.b)];
    return form === 'array'
      ? ['BlockRemoved', hashes, op.medium]
      : { type: 'BlockRemoved', block_hashes: hashes, medium: op.medium };
  }
  const from = Math.min(op.from, op.to - 1);
  const hashes = Array.from({ length: op.to - from }, (_, i) => engineHash(run, e, op.p, from + i));
  const parent = from === 0 ? null : engineHash(run, e, op.p, from - 1);
  const tokens = promptTokens(op.p).slice(from * B, op.to * B);
  return form === 'array'
    ? ['BlockStored', hashes, parent, tokens, B, null, op.medium]
    : {
        type: 'BlockStored',
        block_hashes: hashes,
        parent_block_hash: parent,
        token_ids: tokens,
        block_size: B,
        medium: op.medium,
      };
}

/** One valid message of the simulated fleet: endpoint k's next batch (1–2 events), maybe with invalid events mixed in. */
const validArb = fc.record({
  endpoint: fc.nat(2),
  ops: fc.array(opArb, { minLength: 1, maxLength: 2 }),
  form: fc.constantFrom('array' as const, 'map' as const),
  envelope: fc.constantFrom('array' as const, 'map' as const),
  bad: fc.array(fc.tuple(fc.nat(2), fc.nat(BAD_EVENTS.length - 1)), { maxLength: 2 }),
});

/** What the service must do with a garbage message. */
type Expect = { counted: false } | { counted: true; dropped?: string; decodeError?: string; lost?: boolean };
/** A garbage message for a run whose endpoint k publishes on `validTopic`. */
type Garbage = (validTopic: string) => { frames: Buffer[]; expect: Expect };

const bytesArb = (max: number) => fc.uint8Array({ maxLength: max }).map((b) => Buffer.from(b));
const INVALID_TOPICS = [
  'kv@',
  'kv@@',
  'kv@x@m',
  'kv@10.0.0.1:80',
  'kv@10.0.0.1:80@m@extra',
  'kv@10.0.0.1:123456@m',
  'kv@ho st:1@m',
  'kv@10.0.0.1:80@',
  'kv@[zz]:1@m',
  'kv@10.0.0.1:@m',
];
const VALID_BATCH = pack([1, [['BlockStored', [1n], null, tokenRange(B), B]], null]);

/** A kv@ topic: the run's valid one (null here), a malformed one, or random. */
const anyKvTopic = fc.oneof(
  fc.constant(null),
  fc.constantFrom(...INVALID_TOPICS),
  fc.string({ maxLength: 30 }).map((s) => `kv@${s}`),
);
const seq8 = bytesArb(8).map((b) => Buffer.concat([b, Buffer.alloc(8 - b.length)]));

const garbageArb: fc.Arbitrary<Garbage> = fc.oneof(
  // 1, 2, 4, 5 or 7 frames (ZMQ has no 0-frame message; in process below), first frame a kv@ topic
  fc
    .tuple(anyKvTopic, fc.constantFrom(0, 1, 3, 4, 6), fc.array(bytesArb(40), { minLength: 6, maxLength: 6 }))
    .map(([topic, extra, rest]): Garbage => (valid) => ({
      frames: [Buffer.from(topic ?? valid), ...rest.slice(0, extra)],
      expect: { counted: true, dropped: 'frame_count' },
    })),
  // a sequence frame of the wrong length (empty included)
  fc
    .tuple(anyKvTopic, fc.constantFrom(0, 1, 7, 9, 16), bytesArb(40))
    .map(([topic, n, payload]): Garbage => (valid) => ({
      frames: [Buffer.from(topic ?? valid), Buffer.alloc(n, 1), payload],
      expect: { counted: true, dropped: 'bad_seq' },
    })),
  // a topic that is not kv@<host>:<port>@<model>, or the valid one grown over zmq.maxTopicBytes; the payload is valid
  fc
    .tuple(
      fc.oneof(
        fc.constantFrom(...INVALID_TOPICS),
        fc
          .string({ unit: 'binary', maxLength: 60 })
          .map((s) => `kv@${s}`)
          .filter((t) => !parseTopic(t).ok && Buffer.byteLength(t) <= LIMITS.maxTopicBytes),
        fc.integer({ min: LIMITS.maxTopicBytes + 1, max: 4 * LIMITS.maxTopicBytes }),
      ),
      seq8,
    )
    .map(([topic, seq]): Garbage => (valid) => ({
      frames: [
        Buffer.from(typeof topic === 'string' ? topic : `${valid}${'m'.repeat(topic - valid.length)}`),
        seq,
        VALID_BATCH,
      ],
      expect: { counted: true, dropped: 'bad_topic' },
    })),
  // a payload the decoder rejects, on the valid topic: a lost batch counted under the decoder's reason
  fc
    .tuple(
      fc
        .oneof(
          bytesArb(64),
          fc.constant(Buffer.alloc(0)),
          fc.nat(VALID_BATCH.length - 1).map((n) => VALID_BATCH.subarray(0, n)),
          fc.constantFrom(
            Buffer.from([0x92, 0x00, 0xdd, 0xff, 0xff, 0xff, 0xff]),
            Buffer.from([0x92, 0x00, 0xa2, 0xc3, 0x28]),
            Buffer.alloc(600, 0xdc),
          ),
          fc.constantFrom(
            pack('batch'),
            pack([null, []]),
            pack([1, {}]),
            pack([1, [], -1]),
            pack({ ts: 1 }),
            pack([1, Array.from({ length: 1001 }, () => 42)]),
          ),
        )
        .map((payload: Buffer) => ({ payload, reason: payloadErrorReason(payload) ?? '' }))
        .filter((x) => x.reason !== ''),
      seq8,
    )
    .map(([{ payload, reason }, seq]): Garbage => (valid) => ({
      frames: [Buffer.from(valid), seq, payload],
      expect: { counted: true, decodeError: reason, lost: true },
    })),
  // a payload over zmq.maxPayloadBytes (a valid batch): dropped before decoding, a lost batch
  fc.integer({ min: 1, max: 3 }).map((k): Garbage => {
    const payload = pack([1, [['BlockStored', [1n], null, tokenRange((k * LIMITS.maxPayloadBytes) / 2), B]], null]);
    if (payload.length <= LIMITS.maxPayloadBytes) throw new Error('oversize payload generator is too small');
    return (valid) => ({
      frames: [Buffer.from(valid), seqFrame(0), payload],
      expect: { counted: true, dropped: 'payload_too_large', lost: true },
    });
  }),
  // first frame not starting with kv@ (empty, other case, short): the SUB's prefix filter drops it, uncounted
  fc
    .tuple(fc.constantFrom('', 'KV@10.0.0.1:1@m', 'k', 'kv', 'kv#1'), fc.array(bytesArb(16), { maxLength: 3 }))
    .map(([t, rest]): Garbage => () => ({ frames: [Buffer.from(t), ...rest], expect: { counted: false } })),
);

function payloadErrorReason(payload: Uint8Array): string | null {
  try {
    decodeEventBatch(payload);
    return null;
  } catch (err) {
    if (err instanceof PayloadError) return err.reason;
    throw err;
  }
}

const delta = (after: Record<string, number>, before: Record<string, number>) =>
  Object.fromEntries(
    Object.entries(after)
      .filter(([k, v]) => v !== (before[k] ?? 0))
      .map(([k, v]) => [k, v - (before[k] ?? 0)]),
  );
const add = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);

describe('hostile ZMQ traffic through the real service', () => {
  let hostile: TestService;
  let clean: TestService;
  let toHostile: Publisher;
  let toClean: Publisher;

  /** Publisher connected to `t`, past a sentinel: every probe sent before it has arrived (one connection is FIFO). */
  async function publisherFor(t: TestService): Promise<Publisher> {
    const pub = await connectedPublisher(
      t.service.subscriber.lastEndpoint!,
      kvMessage('kv@10.255.0.1:1@probe', 0, [0, [], null]),
      () => t.service.pipeline.endpoints().has('10.255.0.1:1'),
    );
    await pub.send(kvMessage('kv@10.255.0.2:1@probe', 0, [0, [], null]));
    await waitFor(() => t.service.pipeline.endpoints().has('10.255.0.2:1'), 'sentinel');
    return pub;
  }

  beforeAll(async () => {
    const overrides = { zmq: LIMITS };
    [hostile, clean] = await Promise.all([startTestService({ overrides }), startTestService({ overrides })]);
    [toHostile, toClean] = await Promise.all([publisherFor(hostile), publisherFor(clean)]);
  });

  afterAll(async () => {
    toHostile?.close();
    toClean?.close();
    await Promise.all([hostile?.stop(), clean?.stop()]);
  });

  let run = 0;

  it('garbage interleaved with valid batches: counted by reason, service keeps serving, index equals the valid-only index', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(validArb, { minLength: 1, maxLength: 10 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(2), garbageArb), { maxLength: 12 }),
        async (valid, garbageAt) => {
          run++;
          const ident = (k: number) => `10.${Math.floor(run / 250)}.${run % 250}.${k + 1}:8000`;
          const topic = (k: number) => `kv@${ident(k)}@${MODEL}`;
          const seqs = [0, 0, 0];
          // Valid messages: hostile gets invalid events mixed in; clean gets the batch without them.
          const expectedDecode: Record<string, number> = {};
          const validPairs = valid.map((v) => {
            const events = v.ops.map((op) => wireEvent(run, v.endpoint, op, v.form));
            const mixed = [...events];
            for (const [at, which] of v.bad) {
              mixed.splice(at % (mixed.length + 1), 0, BAD_EVENTS[which][0]);
              add(expectedDecode, BAD_EVENTS[which][1]);
            }
            const env = (evs: unknown[]) =>
              v.envelope === 'array' ? [1.5, evs, null] : { ts: 1.5, events: evs, data_parallel_rank: 0 };
            const seq = seqs[v.endpoint]++;
            return {
              hostile: [Buffer.from(topic(v.endpoint)), seqFrame(seq), pack(env(mixed))],
              clean: [Buffer.from(topic(v.endpoint)), seqFrame(seq), pack(env(events))],
            };
          });
          // Garbage spliced between them (on the topic of one of the run's endpoints where it takes one).
          const garbage = garbageAt.map(([at, k, make]) => ({ at, g: make(topic(k)) }));
          const hostileMsgs: Buffer[][] = validPairs.map((p) => p.hostile);
          const expectedDropped: Record<string, number> = {};
          let counted = validPairs.length;
          let lost = 0;
          for (const { at, g } of garbage) {
            hostileMsgs.splice(at % (hostileMsgs.length + 1), 0, g.frames);
            if (!g.expect.counted) continue;
            counted++;
            if (g.expect.dropped) add(expectedDropped, g.expect.dropped);
            if (g.expect.decodeError) add(expectedDecode, g.expect.decodeError);
            if (g.expect.lost) lost++;
          }

          const h = hostile.service.pipeline;
          const c = clean.service.pipeline;
          const before = {
            messages: h.counters.messages,
            dropped: { ...h.counters.dropped },
            decode: { ...h.counters.decodeErrors },
            lost: h.counters.lostBatches,
          };
          const cleanBefore = c.counters.messages;
          for (const m of hostileMsgs) await toHostile.send(m);
          for (const p of validPairs) await toClean.send(p.clean);
          await waitFor(
            () =>
              h.counters.messages >= before.messages + counted &&
              c.counters.messages >= cleanBefore + validPairs.length,
            'all messages',
          );
          await Promise.all([h.idle(), c.idle()]);

          expect({
            messages: h.counters.messages - before.messages,
            dropped: delta(h.counters.dropped, before.dropped),
            decode: delta(h.counters.decodeErrors, before.decode),
            lost: h.counters.lostBatches - before.lost,
          }).toStrictEqual({ messages: counted, dropped: expectedDropped, decode: expectedDecode, lost });

          // Same endpoints, sequence state and per-tier entries, through gRPC ListEndpoints.
          // skipped_events differs by design: it counts, per endpoint, the malformed events only the hostile side saw.
          type Info = { endpoint: string; lastEventAgeSeconds: number; skippedEvents: Record<string, string> };
          const mine = (r: { endpoints: Info[] }) =>
            r.endpoints.filter((e) => [0, 1, 2].some((k) => e.endpoint === ident(k)));
          const strip = ({ lastEventAgeSeconds: _age, skippedEvents: _skipped, ...rest }: Info) => rest;
          const [hl, cl] = await Promise.all([
            hostile.kv.call('ListEndpoints', {}),
            clean.kv.call('ListEndpoints', {}),
          ]);
          expect(mine(hl).map(strip)).toStrictEqual(mine(cl).map(strip));
          expect(mine(hl).map((e) => e.endpoint)).toStrictEqual(
            [...new Set(valid.map((v) => v.endpoint))].sort().map(ident),
          );
          // Same prefix matches for every prompt, through gRPC Lookup (block keys of the prompt's tokens).
          const candidates = [0, 1, 2].map(ident);
          for (let p = 0; p < 4; p++) {
            const req = { blockKeys: Array.from(hasher.keysFor(MODEL, promptTokens(p)), String), candidates };
            const [hs, cs] = await Promise.all([hostile.kv.call('Lookup', req), clean.kv.call('Lookup', req)]);
            expect(hs).toStrictEqual(cs);
          }
          // And the whole index: the same entries and keys in total (both saw the same valid traffic so far).
          const [hi, ci] = await Promise.all([hostile.service.index.stats(), clean.service.index.stats()]);
          expect([hi.entries, hi.keys]).toStrictEqual([ci.entries, ci.keys]);
        },
      ),
      { seed: SEED, numRuns: 30 },
    );

    // Still serving, and /metrics exports exactly the pipeline's counts.
    expect((await hostile.kv.call('Lookup', { blockKeys: ['1'] })).totalBlocks).toBe(1);
    const text = await (await fetch(`http://127.0.0.1:${hostile.api.metricsPort}/metrics`)).text();
    const t = hostile.service.pipeline.counters;
    expect(text).toContain(`kv_indexer_messages_received_total ${t.messages}\n`);
    expect(Object.keys(t.dropped).sort()).toStrictEqual(['bad_seq', 'bad_topic', 'frame_count', 'payload_too_large']);
    for (const [reason, n] of Object.entries(t.dropped))
      expect(text).toContain(`kv_indexer_messages_dropped_total{reason="${reason}"} ${n}\n`);
    for (const [reason, n] of Object.entries(t.decodeErrors))
      expect(text).toContain(`kv_indexer_decode_errors_total{reason="${reason}"} ${n}\n`);
    expect(text).toContain(`kv_indexer_lost_batches_total ${t.lostBatches}\n`);
  });

  it('a 0-frame message (impossible on the wire) and frames with empty parts, fed in process: counted, never thrown', () => {
    const p = hostile.service.pipeline;
    const before = { ...p.counters.dropped };
    expect(p.handle([])).toBeUndefined();
    expect(p.handle([Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)])).toBeUndefined();
    expect(p.handle([Buffer.alloc(0), seqFrame(0), Buffer.alloc(0)])).toBeUndefined();
    expect(delta(p.counters.dropped, before)).toStrictEqual({ frame_count: 1, bad_seq: 1, bad_topic: 1 });
  });
});

describe('input size limits of the write path (zmq.maxTopicBytes, zmq.maxPayloadBytes, endpoints.maxTracked)', () => {
  let t: TestService;
  let pub: Publisher;

  beforeAll(async () => {
    t = await startTestService({
      overrides: { zmq: { maxTopicBytes: 64, maxPayloadBytes: 2048 }, endpoints: { maxTracked: 4 } },
    });
    pub = await connectedPublisher(
      t.service.subscriber.lastEndpoint!,
      kvMessage('kv@10.255.0.1:1@probe', 0, [0, [], null]),
      () => t.service.pipeline.endpoints().has('10.255.0.1:1'),
    );
    await pub.send(kvMessage('kv@10.255.0.2:1@probe', 0, [0, [], null]));
    await waitFor(() => t.service.pipeline.endpoints().has('10.255.0.2:1'), 'sentinel');
  });

  afterAll(async () => {
    pub?.close();
    await t?.stop();
  });

  const stored = (hash: bigint) => [1, [['BlockStored', [hash], null, tokenRange(B), B]], null];

  it('exactly at each limit is accepted; one over is dropped and counted, and the rest keeps flowing', async () => {
    const p = t.service.pipeline;
    const before = { messages: p.counters.messages, dropped: { ...p.counters.dropped }, lost: p.counters.lostBatches };
    // A topic of exactly 64 bytes is accepted; 65 bytes is bad_topic, listed by its head and length only.
    const at64 = `kv@10.0.0.1:8000@${'m'.repeat(64 - 'kv@10.0.0.1:8000@'.length)}`;
    expect(Buffer.byteLength(at64)).toBe(64);
    await pub.send(kvMessage(at64, 0, stored(1n)));
    await pub.send(kvMessage(`${at64}m`, 0, stored(2n)));
    // A payload of exactly 2048 bytes is accepted (on another endpoint); 2049 bytes is dropped before decoding.
    const withName = (len: number) =>
      pack([1, [['BlockStored', [3n], null, tokenRange(B), B, null, null, 'n'.repeat(len)]], null]);
    let len = 0;
    while (withName(len).length < 2048) len++;
    const at2048 = withName(len);
    expect(at2048.length).toBe(2048);
    await pub.send([Buffer.from('kv@10.0.0.2:8000@m'), seqFrame(0), at2048]);
    await pub.send([Buffer.from('kv@10.0.0.2:8000@m'), seqFrame(1), withName(len + 1)]);
    // Two probes + 10.0.0.1 + 10.0.0.2 = 4 identities: a fifth endpoint is dropped, a known one still applies.
    await pub.send(kvMessage('kv@10.0.0.3:8000@m', 0, stored(4n)));
    await pub.send(kvMessage(at64, 1, [1, [['BlockStored', [5n], null, tokenRange(B, 100), B]], null]));
    await waitFor(() => p.counters.messages >= before.messages + 6, 'six messages');
    await p.idle();
    expect({
      messages: p.counters.messages - before.messages,
      dropped: delta(p.counters.dropped, before.dropped),
      lost: p.counters.lostBatches - before.lost,
    }).toStrictEqual({ messages: 6, dropped: { bad_topic: 1, payload_too_large: 1, too_many_endpoints: 1 }, lost: 1 });
    const index = t.service.index as MemoryIndex;
    expect(['10.0.0.1:8000', '10.0.0.2:8000', '10.0.0.3:8000'].map((e) => index.entriesOf(e))).toStrictEqual([2, 1, 0]);
    expect(p.stream('10.0.0.3:8000')).toBeUndefined();
  });

  it('regression: distinct overlong topics are not kept in full (they were cached and listed whole: memory grew with their length)', async () => {
    const p = t.service.pipeline;
    const before = { messages: p.counters.messages, bad: p.counters.dropped.bad_topic ?? 0 };
    const long = (i: number) => `kv@10.0.0.9:${i}@${'x'.repeat(100_000)}`;
    for (let i = 0; i < 20; i++) await pub.send(kvMessage(long(i), 0, [0, [], null]));
    await waitFor(() => p.counters.messages >= before.messages + 20, 'twenty messages');
    expect((p.counters.dropped.bad_topic ?? 0) - before.bad).toBe(20);
    const listed = [...p.rejectedTopics().keys()].filter((k) => k.startsWith('kv@10.0.0.9:'));
    expect(listed).toStrictEqual(
      Array.from({ length: 20 }, (_, i) => `${long(i).slice(0, 64)}… (${Buffer.byteLength(long(i))} bytes)`),
    );
  });
});
