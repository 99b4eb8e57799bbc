import { afterEach, describe, expect, it } from 'vitest';
import type { RunningService } from '../../src/service/start-service.js';
import { SimPublisher } from '../../src/sim/publisher/publisher.js';
import { expectedView, observedState } from '../support/fixture-check.js';
import {
  boundPublisher,
  chatTraffic,
  endpointsOf,
  MODEL,
  publishAll,
  testService,
  untilApplied,
  untilSubscribed,
} from '../support/transport.js';

const A = '10.0.0.1:8000';
const B = '10.0.0.2:8000';
const topic = (endpoint: string) => `kv@${endpoint}@${MODEL}`;

const open: { services: RunningService[]; pubs: SimPublisher[] } = { services: [], pubs: [] };
afterEach(async () => {
  for (const p of open.pubs.splice(0)) await p.close();
  for (const s of open.services.splice(0)) await s.stop();
});
async function service(settings?: Parameters<typeof testService>[0]) {
  const s = await testService(settings);
  open.services.push(s);
  return s;
}
async function bound(t: string, options?: Parameters<typeof boundPublisher>[1]) {
  const r = await boundPublisher(t, options);
  open.pubs.push(r.pub);
  return r;
}

describe('both shapes at once', () => {
  it('bind-mode and connect-mode publishers both reach the index, which matches the engines', async () => {
    const { batches, expected } = chatTraffic(
      [
        { endpoint: A, model: MODEL, gpuBlocks: 64, cpuBlocks: 64, style: { encoding: 'array', hashes: 'int' } },
        { endpoint: B, model: MODEL, gpuBlocks: 80, style: { encoding: 'map', hashes: 'bytes' } },
      ],
      40,
    );
    const viaConnect = await bound(topic(B), { replay: false });
    const svc = await service({ endpoints: { static: [viaConnect.spec] } });
    // A's pod connects its PUB to our bound SUB (vLLM connects when the address has no '*').
    const viaBind = new SimPublisher({ topic: topic(A), endpoint: svc.subscriber.lastEndpoint! });
    open.pubs.push(viaBind);
    await viaBind.start();
    await untilSubscribed(svc, viaBind);
    await untilSubscribed(svc, viaConnect.pub);
    await publishAll(
      batches,
      new Map([
        [A, viaBind],
        [B, viaConnect.pub],
      ]),
    );
    await untilApplied(svc, A, viaBind.seq - 1n);
    await untilApplied(svc, B, viaConnect.pub.seq - 1n);
    expect(await observedState(svc.index, expected)).toEqual(expectedView(expected));
    const list = endpointsOf(svc);
    expect(list.map((e) => [e.identity, e.source, e.state, e.model])).toEqual([
      [A, 'bind', 'live', MODEL],
      [B, viaConnect.spec, 'live', MODEL].map((x) => (x === viaConnect.spec ? viaConnect.pub.pubAddress : x)),
    ]);
    expect(list[0].blocksByTier).toEqual(expected.endpoints[A]);
    expect(svc.pipeline.counters.sequenceGaps).toBe(0);
  });
});

describe('gap repair by replay', () => {
  it.each(['old', 'new'] as const)(
    'a publisher that drops seqs 5-6 is repaired (%s reply layout): index equals the loss-free run',
    async (layout) => {
      const { batches, expected } = chatTraffic(
        [{ endpoint: A, model: MODEL, gpuBlocks: 48, cpuBlocks: 32, style: { encoding: 'map', hashes: 'int' } }],
        30,
        5,
      );
      const { pub, spec } = await bound(topic(A), { layout });
      const svc = await service({ endpoints: { static: [spec] } });
      await untilSubscribed(svc, pub);
      pub.loseLive.add(5n);
      pub.loseLive.add(6n);
      await publishAll(batches, new Map([[A, pub]]));
      await untilApplied(svc, A, BigInt(batches.length - 1));
      expect(await observedState(svc.index, expected)).toEqual(expectedView(expected));
      const c = svc.pipeline.counters;
      expect([c.sequenceGaps, c.replaysRequested, c.replaysCompleted, c.unrecoverable, c.degraded, c.clears]).toEqual([
        1,
        1,
        1,
        {},
        {},
        {},
      ]);
      const s = svc.pipeline.stream(A)!;
      // Each sequence number applied exactly once, live or replayed.
      expect(s.stats.applied).toBe(batches.length);
      expect(s.stats.replayedBatches).toBeGreaterThanOrEqual(2);
      expect(pub.replayRequests).toBe(1);
      // Live batches that arrived during the replay were dropped as overlap, never counted as duplicates.
      expect(s.stats.duplicates).toBe(0);
    },
  );

  it('joined mid-stream: replays from 0 and ends with the full state', async () => {
    const { batches, expected } = chatTraffic(
      [{ endpoint: A, model: MODEL, gpuBlocks: 48, style: { encoding: 'array', hashes: 'bytes' } }],
      20,
      8,
    );
    const { pub, spec } = await bound(topic(A));
    // Published before anyone subscribed: only the replay buffer has them.
    await publishAll(batches.slice(0, 10), new Map([[A, pub]]));
    const svc = await service({ endpoints: { static: [spec] } });
    await untilSubscribed(svc, pub);
    await publishAll(batches.slice(10), new Map([[A, pub]]));
    await untilApplied(svc, A, BigInt(batches.length - 1));
    expect(await observedState(svc.index, expected)).toEqual(expectedView(expected));
    expect(svc.pipeline.counters.joinedMidStream).toBe(1);
    expect(svc.pipeline.stream(A)!.stats.applied).toBe(batches.length);
    expect(endpointsOf(svc)[0].state).toBe('live');
  });
});
