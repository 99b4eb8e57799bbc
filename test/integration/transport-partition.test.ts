import { afterEach, describe, expect, it } from 'vitest';
import type { RunningService } from '../../src/service/start-service.js';
import { EventPipeline, Ingestor } from '../../src/events/index.js';
import type { SimPublisher } from '../../src/sim/publisher/publisher.js';
import { MemoryIndex, TierRegistry } from '../../src/index/index.js';
import { BlockHasher } from '../../src/keys/index.js';
import {
  boundPublisher,
  chatTraffic,
  EMPTY_BATCH,
  MODEL,
  publishAll,
  testService,
  untilApplied,
  untilSubscribed,
} from '../support/transport.js';
import { seqFrame, waitFor } from '../support/zmq.js';

const A = '10.0.0.1:8000';
const B = '10.0.0.2:8000';
const STYLE = { encoding: 'map', hashes: 'int' } as const;
const quiet = { warn: () => undefined, info: () => undefined };

const open: { services: RunningService[]; pubs: SimPublisher[] } = { services: [], pubs: [] };
afterEach(async () => {
  for (const p of open.pubs.splice(0)) await p.close();
  for (const s of open.services.splice(0)) await s.stop();
});

describe('network partition of one endpoint: stale, then cleared after endpoints.clearStaleSeconds', () => {
  it('sweepStale clears an endpoint silent past the limit once per silence, and nothing else', async () => {
    let now = 1_000_000;
    const tiers = new TierRegistry();
    const index = new MemoryIndex({ tiers });
    const ingestor = new Ingestor({ hasher: new BlockHasher({ blockSize: 16, hashSeed: '' }), writer: index, tiers });
    const infos: unknown[] = [];
    const pipeline = new EventPipeline(
      ingestor,
      { ...quiet, info: (o: unknown, m: string) => infos.push([o, m]) },
      { staleMs: 2_000, clearStaleMs: 5_000, clock: () => now },
    );
    const { batches } = chatTraffic(
      [
        { endpoint: A, model: MODEL, gpuBlocks: 60, style: STYLE },
        { endpoint: B, model: MODEL, gpuBlocks: 60, style: STYLE },
      ],
      4,
    );
    for (const b of batches) pipeline.handle([Buffer.from(b.topic), seqFrame(b.seq), b.payload]);
    await pipeline.idle();
    const entriesA = index.entriesOf(A);
    const entriesB = index.entriesOf(B);
    expect(entriesA).toBeGreaterThan(0);
    expect(entriesB).toBeGreaterThan(0);
    const lastB = batches.filter((b) => b.identity === B).at(-1)!.seq;

    now += 5_000;
    expect(pipeline.sweepStale()).toEqual([]); // exactly at the limit: not yet
    now += 1;
    // B spoke meanwhile (an empty batch): only A is past the limit.
    pipeline.handle([Buffer.from(`kv@${B}@${MODEL}`), seqFrame(lastB + 1n), EMPTY_BATCH]);
    await pipeline.idle();
    expect(pipeline.listEndpoints().map((e) => [e.identity, e.state])).toEqual([
      [A, 'stale'],
      [B, 'live'],
    ]);
    expect(pipeline.sweepStale()).toEqual([A]);
    expect([index.entriesOf(A), index.entriesOf(B)]).toEqual([0, entriesB]);
    // Issue 17 bug 3: the cleared identity is forgotten (its endpoints.maxTracked slot and metric series released).
    expect(pipeline.listEndpoints().map((e) => e.identity)).toEqual([B]);
    expect(ingestor.engineKeyCount(A)).toBe(0);
    expect(pipeline.counters.clears).toEqual({ stale: 1 });
    expect(infos).toEqual([[{ endpoint: A, silentSeconds: 5 }, 'stale endpoint cleared']]);
    now += 60_000;
    expect(pipeline.sweepStale()).toEqual([A, B].filter((e) => e === B)); // A stays cleared; B's own silence now counts
    expect(pipeline.counters.clears).toEqual({ stale: 2 });
  });

  it('real sockets: the silent endpoint is cleared while the other keeps its entries; back online, replay rebuilds it exactly', async () => {
    const svc = await testService({
      zmq: { mode: 'bind', addresses: [] },
      endpoints: { staleSeconds: 1, clearStaleSeconds: 1.5 },
    });
    open.services.push(svc);
    const pubs = new Map<string, SimPublisher>();
    for (const endpoint of [A, B]) {
      const { pub, spec } = await boundPublisher(`kv@${endpoint}@${MODEL}`);
      open.pubs.push(pub);
      pubs.set(endpoint, pub);
      await svc.transport.addEndpoint(`${spec};endpoint=${endpoint}`);
      await untilSubscribed(svc, pub);
    }
    const { batches } = chatTraffic(
      [
        { endpoint: A, model: MODEL, gpuBlocks: 60, style: STYLE },
        { endpoint: B, model: MODEL, gpuBlocks: 60, style: STYLE },
      ],
      6,
    );
    await publishAll(batches, pubs);
    for (const endpoint of [A, B]) await untilApplied(svc, endpoint, pubs.get(endpoint)!.seq - 1n);
    const before = { [A]: svc.index.entriesOf(A), [B]: svc.index.entriesOf(B) };
    expect(before[A]).toBeGreaterThan(0);

    // A is cut off; B keeps publishing (empty batches, as a busy pod would publish real ones).
    const heartbeat = setInterval(() => void pubs.get(B)!.publish(EMPTY_BATCH), 100);
    try {
      // (The subscription probes' throw-away streams go silent too, and are cleared as well.)
      await waitFor(() => svc.pipeline.stream(A) === undefined, 'the silent endpoint cleared and forgotten', 10_000);
      expect(svc.pipeline.counters.clears.stale).toBeGreaterThanOrEqual(1);
      expect(svc.index.entriesOf(A)).toBe(0);
      expect(svc.index.entriesOf(B)).toBe(before[B]);
      expect(svc.pipeline.listEndpoints().find((e) => e.identity === B)!.state).toBe('live');

      // The partition heals: A's next batch arrives; its stream rejoins and replays from 0.
      const next = await pubs.get(A)!.publish(EMPTY_BATCH);
      await untilApplied(svc, A, next);
      expect(svc.index.entriesOf(A)).toBe(before[A]);
      const infoA = svc.pipeline.listEndpoints().find((e) => e.identity === A)!;
      expect([infoA.state, infoA.degradedReason, infoA.stats.replays]).toEqual(['live', null, 1]);
      // A is a new stream since it came back (the old one was forgotten); B was never cleared.
      expect([svc.pipeline.stream(A)!.stats.clears, svc.pipeline.stream(B)!.stats.clears]).toEqual([0, 0]);
    } finally {
      clearInterval(heartbeat);
    }
  });
});
