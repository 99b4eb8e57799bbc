import { encode } from '@msgpack/msgpack';
import { Router } from 'zeromq';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningService } from '../../src/service/start-service.js';
import { SimPublisher, seqBytes } from '../../src/sim/publisher/publisher.js';
import { BlockHasher } from '../../src/keys/index.js';
import {
  boundPublisher,
  endpointsOf,
  MODEL,
  testService,
  untilApplied,
  untilSubscribed,
} from '../support/transport.js';
import { waitFor } from '../support/zmq.js';

const A = '10.0.0.1:8000';
const TOPIC = `kv@${A}@${MODEL}`;
const hasher = new BlockHasher({ blockSize: 16, hashSeed: '' });
const tokens = (n: number, from: number) => Array.from({ length: n }, (_, i) => from + i);

/** One batch storing a fresh chain of `blocks` blocks with engine keys from `hash`, tokens from `from`. */
function chain(ts: number, hash: number, from: number, blocks = 1, events: unknown[] = []): Uint8Array {
  const hashes = Array.from({ length: blocks }, (_, i) => BigInt(hash + i));
  return encode([ts, [['BlockStored', hashes, null, tokens(16 * blocks, from), 16], ...events], null], {
    useBigInt64: true,
  });
}
/** Blocks of the chain starting at token `from` the index holds for A. */
async function held(svc: RunningService, from: number, blocks = 1): Promise<number> {
  const [m] = await svc.index.lookup(hasher.keysFor(MODEL, tokens(16 * blocks, from)), { candidates: [A] });
  return m?.matchedBlocks ?? 0;
}

const open: { services: RunningService[]; pubs: SimPublisher[] } = { services: [], pubs: [] };
afterEach(async () => {
  for (const p of open.pubs.splice(0)) await p.close();
  for (const s of open.services.splice(0)) await s.stop();
});
async function connected(
  options: Parameters<typeof boundPublisher>[1] = {},
  settings: Parameters<typeof testService>[0] = {},
) {
  const { pub, spec } = await boundPublisher(TOPIC, options);
  open.pubs.push(pub);
  const svc = await testService({ ...settings, endpoints: { static: [spec] } });
  open.services.push(svc);
  await untilSubscribed(svc, pub);
  return { pub, svc, spec };
}

describe('replay buffer exhausted', () => {
  it.each([
    ['clear', [0, 0, 1, 1, 1], { buffer_exhausted: 1 }, 'live'],
    ['degrade', [2, 0, 1, 1, 1], { buffer_exhausted: 1 }, 'degraded'],
  ] as const)(
    'policy %s: the hole is counted and the endpoint rebuilt from what remains',
    async (policy, heldAfter, unrecoverable, state) => {
      const { pub, svc } = await connected({ bufferSteps: 2 }, { replay: { onUnrecoverable: policy } });
      await pub.publish(chain(1, 100, 1000, 2)); // seq 0: X (2 blocks), applied live
      await untilApplied(svc, A, 0n);
      for (let i = 1; i <= 4; i++) pub.loseLive.add(BigInt(i));
      for (let i = 1; i <= 4; i++) await pub.publish(chain(1 + i, 200 + i, 2000 + 100 * i)); // seqs 1-4: Y1..Y4, lost
      await pub.publish(chain(6, 300, 3000)); // seq 5: Z; the buffer now holds only seqs 4 and 5
      await untilApplied(svc, A, 5n);
      await pub.publish(chain(7, 400, 4000)); // seq 6: W
      await untilApplied(svc, A, 6n);
      expect([
        await held(svc, 1000, 2),
        await held(svc, 2100),
        await held(svc, 2400),
        await held(svc, 3000),
        await held(svc, 4000),
      ]).toEqual(heldAfter);
      const c = svc.pipeline.counters;
      expect([c.sequenceGaps, c.replaysRequested, c.unrecoverable]).toEqual([1, 1, unrecoverable]);
      expect(c.clears.unrecoverable ?? 0).toBe(policy === 'clear' ? 1 : 0);
      const [info] = endpointsOf(svc);
      expect([info.identity, info.state, info.lastSeq, info.stats.unrecoverable, info.stats.replays]).toEqual([
        A,
        state,
        6n,
        1,
        1,
      ]);
    },
  );
});

describe('publisher restart', () => {
  it('a sequence reset clears the endpoint, then applies the new process', async () => {
    const { pub, svc } = await connected();
    await pub.publish(chain(1, 100, 1000));
    await pub.publish(chain(2, 200, 2000));
    await untilApplied(svc, A, 1n);
    pub.restart();
    await pub.publish(chain(3, 300, 3000)); // seq 0 again, later timestamp
    await waitFor(() => svc.pipeline.counters.restarts === 1 && svc.pipeline.stream(A)!.queued === 0, 'restart');
    await untilApplied(svc, A, 0n);
    expect([await held(svc, 1000), await held(svc, 2000), await held(svc, 3000)]).toEqual([0, 0, 1]);
    expect(svc.pipeline.counters.clears.restart).toBe(1);
    expect(svc.index.entriesOf(A)).toBe(1);
  });

  it('a restart first seen at seq > 0 replays the new process from 0', async () => {
    const { pub, svc } = await connected();
    for (let i = 0; i < 5; i++) await pub.publish(chain(1 + i, 100 + i, 1000 + 100 * i));
    await untilApplied(svc, A, 4n);
    pub.restart();
    pub.loseLive.add(0n);
    pub.loseLive.add(1n);
    await pub.publish(chain(10, 500, 5000));
    await pub.publish(chain(11, 600, 6000));
    await pub.publish(chain(12, 700, 7000)); // seq 2 (< 4, later ts): restart, then join → replay from 0
    await waitFor(() => svc.pipeline.counters.restarts === 1, 'restart');
    await untilApplied(svc, A, 2n);
    expect([await held(svc, 1000), await held(svc, 5000), await held(svc, 6000), await held(svc, 7000)]).toEqual([
      0, 1, 1, 1,
    ]);
    expect([svc.pipeline.counters.joinedMidStream, svc.pipeline.counters.replaysCompleted]).toEqual([1, 1]);
  });
});

describe('publisher restart hidden behind a gap', () => {
  it('is found by the replay anchor (the last applied seq comes back with another timestamp)', async () => {
    const { pub, svc } = await connected();
    await pub.publish(chain(1, 100, 1000));
    await pub.publish(chain(2, 200, 2000));
    await untilApplied(svc, A, 1n);
    pub.restart();
    for (let i = 0; i < 4; i++) pub.loseLive.add(BigInt(i));
    for (let i = 0; i < 5; i++) await pub.publish(chain(10 + i, 500 + i, 5000 + 100 * i)); // seq 4 arrives: looks like a gap
    await untilApplied(svc, A, 4n);
    expect([await held(svc, 1000), await held(svc, 2000)]).toEqual([0, 0]);
    expect(await Promise.all([0, 1, 2, 3, 4].map((i) => held(svc, 5000 + 100 * i)))).toEqual([1, 1, 1, 1, 1]);
    const c = svc.pipeline.counters;
    expect([c.sequenceGaps, c.restarts, c.clears.restart, c.replaysRequested, c.unrecoverable]).toEqual([
      1,
      1,
      1,
      2,
      {},
    ]);
    expect(svc.pipeline.stream(A)!.stats.applied).toBe(2 + 5);
  });
});

describe('malformed input is counted and survived', () => {
  it('2 or 4 frames, short seq, bad topics, garbage payload (a lost batch, unrecoverable from replay)', async () => {
    const { pub, svc } = await connected();
    await pub.publish(chain(1, 100, 1000));
    await untilApplied(svc, A, 0n);
    const before = svc.pipeline.counters.messages;
    await pub.sendRaw([TOPIC, seqBytes(1)]);
    await pub.sendRaw([TOPIC, seqBytes(1), chain(2, 1, 1), 'extra']);
    await pub.sendRaw([TOPIC, Buffer.alloc(7), chain(2, 1, 1)]);
    await pub.sendRaw([`kv@10.0.0.1@${MODEL}`, seqBytes(1), chain(2, 1, 1)]); // ip without port: never guessed
    await pub.sendRaw(['kv@10.0.0.1:8000', seqBytes(1), chain(2, 1, 1)]);
    await pub.publish(Buffer.from([0xc1, 0x00, 0xff])); // seq 1: not msgpack; also in the replay buffer
    await pub.publish(chain(3, 300, 3000)); // seq 2: shows the gap; replay returns the garbage again
    await untilApplied(svc, A, 2n);
    const c = svc.pipeline.counters;
    expect(c.messages - before).toBe(7);
    expect(c.dropped).toEqual({ frame_count: 2, bad_seq: 1, bad_topic: 2 });
    expect(c.decodeErrors).toEqual({ bad_msgpack: 2 });
    expect([c.lostBatches, c.sequenceGaps, c.unrecoverable, c.clears.unrecoverable]).toEqual([
      1,
      1,
      { bad_payload: 1 },
      1,
    ]);
    expect([await held(svc, 1000), await held(svc, 3000)]).toEqual([0, 1]);
    expect([...svc.pipeline.rejectedTopics().keys()]).toEqual([`kv@10.0.0.1@${MODEL}`, 'kv@10.0.0.1:8000']);
  });

  it('without a replay endpoint a lost batch degrades the endpoint until AllBlocksCleared', async () => {
    const { pub, svc } = await connected({ replay: false });
    await pub.publish(chain(1, 100, 1000));
    await pub.publish(Buffer.from('garbage'));
    await pub.publish(chain(3, 300, 3000));
    await untilApplied(svc, A, 2n);
    expect(endpointsOf(svc)[0]).toMatchObject({ state: 'degraded', degradedReason: 'gap_no_replay' });
    expect(svc.pipeline.counters.replaysFailed).toEqual({ no_endpoint: 1 });
    await pub.publish(chain(4, 400, 4000, 1, [['AllBlocksCleared']]));
    await untilApplied(svc, A, 3n);
    expect(endpointsOf(svc)[0]).toMatchObject({ state: 'live', degradedReason: null });
    expect([await held(svc, 1000), await held(svc, 3000), await held(svc, 4000)]).toEqual([0, 0, 0]);
  });
});

describe('replay timeouts, cooldown, and isolation between endpoints', () => {
  it('a replay ROUTER that never answers times out (counted, degraded, cooldown) while other endpoints keep applying', async () => {
    const silent = new Router({ linger: 0 });
    await silent.bind('tcp://127.0.0.1:*');
    const B = '10.0.0.2:8000';
    const a = await boundPublisher(TOPIC, { replay: false });
    const b = await boundPublisher(`kv@${B}@${MODEL}`, { replay: false });
    open.pubs.push(a.pub, b.pub);
    const svc = await testService({
      endpoints: { static: [`${a.spec};replay=${silent.lastEndpoint}`, b.spec] },
      replay: { timeoutMs: 1_500, cooldownMs: 60_000 },
    });
    open.services.push(svc);
    try {
      await untilSubscribed(svc, a.pub);
      await untilSubscribed(svc, b.pub);
      await a.pub.publish(chain(1, 100, 1000));
      await untilApplied(svc, A, 0n);
      a.pub.loseLive.add(1n);
      await a.pub.publish(chain(2, 200, 2000));
      await a.pub.publish(chain(3, 300, 3000)); // gap: A waits on the silent ROUTER
      for (let i = 0; i < 20; i++) await b.pub.publish(chain(1 + i, 1000 + i, 10_000 + 100 * i));
      // B is fully applied while A is still waiting for its replay.
      await waitFor(
        () => svc.pipeline.stream(B)?.last === 19n && svc.pipeline.stream(A)!.replaying,
        'B applied during A replay',
      );
      await waitFor(() => svc.pipeline.counters.replaysFailed.timeout === 1, 'replay timeout');
      await untilApplied(svc, A, 2n);
      expect(endpointsOf(svc).find((e) => e.identity === A)).toMatchObject({
        state: 'degraded',
        degradedReason: 'gap_no_replay',
      });
      expect([await held(svc, 1000), await held(svc, 2000), await held(svc, 3000)]).toEqual([1, 0, 1]);
      // Within the cooldown the next gap is not replayed.
      a.pub.loseLive.add(3n);
      await a.pub.publish(chain(4, 400, 4000));
      await a.pub.publish(chain(5, 500, 5000));
      await untilApplied(svc, A, 4n);
      expect(svc.pipeline.counters.replaysFailed).toEqual({ timeout: 1, cooldown: 1 });
      expect(svc.pipeline.counters.replaysRequested).toBe(1);
    } finally {
      silent.close();
    }
  });
});

describe('a replay cut short (the publisher dropped its tail at the ROUTER high-water mark)', () => {
  it('is resumed from the first missing batch after replay.idleTimeoutMs (not the first-reply timeout), and the hole is filled exactly', async () => {
    // A replay ROUTER serving batches seq 0..5: its first answer stops after seq 2 without the end marker (as a ROUTER
    // that dropped messages past its send high-water mark), later answers are whole.
    const payloads = Array.from({ length: 6 }, (_, i) => chain(1 + i, 100 * (i + 1), 1000 * (i + 1)));
    const router = new Router({ linger: 0 });
    await router.bind('tcp://127.0.0.1:*');
    const requests: bigint[] = [];
    const serving = (async () => {
      for await (const [identity, , start] of router) {
        const from = Buffer.from(start).readBigUInt64BE(0);
        requests.push(from);
        const last = requests.length === 1 ? 2n : 5n;
        for (let seq = from; seq <= last; seq++)
          await router.send([identity, '', TOPIC, seqBytes(seq), payloads[Number(seq)]]);
        if (requests.length > 1) await router.send([identity, '', TOPIC, Buffer.alloc(8, 0xff), '']);
      }
    })().catch(() => undefined);
    const a = await boundPublisher(TOPIC, { replay: false });
    open.pubs.push(a.pub);
    const svc = await testService({
      endpoints: { static: [`${a.spec};replay=${router.lastEndpoint}`] },
      replay: { timeoutMs: 60_000, idleTimeoutMs: 200, cooldownMs: 60_000 },
    });
    open.services.push(svc);
    try {
      await untilSubscribed(svc, a.pub);
      await a.pub.publish(payloads[0]);
      await untilApplied(svc, A, 0n);
      for (const seq of [1n, 2n, 3n, 4n]) a.pub.loseLive.add(seq);
      for (let i = 1; i <= 5; i++) await a.pub.publish(payloads[i]); // only seq 5 arrives live: a gap of 1..4
      await untilApplied(svc, A, 5n);
      // First request from the anchor 0 (answered 0..2, then silence), the resume from the anchor 2.
      expect(requests).toEqual([0n, 2n]);
      const c = svc.pipeline.counters;
      // Replayed: 1, 2 from the first answer; 3, 4, 5 from the resume (so the live seq 5 is an overlap).
      expect([c.replaysRequested, c.replaysCompleted, c.replaysFailed, c.replayedBatches, c.replayOverlap]).toEqual([
        2,
        1,
        { partial: 1 },
        5,
        1,
      ]);
      expect(endpointsOf(svc)[0]).toMatchObject({ state: 'live', degradedReason: null });
      for (let i = 0; i < 6; i++) expect(await held(svc, 1000 * (i + 1))).toBe(1);
    } finally {
      router.close();
      await serving;
    }
  });
});
