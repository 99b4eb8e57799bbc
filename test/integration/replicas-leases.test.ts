import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningService } from '../../src/service/start-service.js';
import type { SimPublisher } from '../../src/sim/publisher/publisher.js';
import { expectedView, observedState } from '../support/fixture-check.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import {
  boundPublisher,
  chatTraffic,
  MODEL,
  publishAll,
  testService,
  untilApplied,
  untilSubscribed,
} from '../support/transport.js';
import { waitFor } from '../support/zmq.js';

const A = '10.0.0.1:8000';
const B = '10.0.0.2:8000';
const TTL = 600;

/**
 * Three replicas share one Redis index in connect mode; endpoint leases decide who ingests what. Each endpoint is
 * ingested by exactly one replica; killing an owner (no lease release) hands its endpoint to a survivor after the
 * TTL, which clears it and rebuilds it from the publisher's replay buffer to the same index.
 */
describe('replicas sharing a Redis index, endpoints owned through leases', () => {
  let redis: RedisServer;
  const replicas: RunningService[] = [];
  const pods = new Map<string, { pub: SimPublisher; spec: string }>();

  beforeAll(async () => {
    redis = await startRedis();
    for (const id of [A, B]) {
      const { pub, spec } = await boundPublisher(`kv@${id}@${MODEL}`);
      pods.set(id, { pub, spec: `${spec};endpoint=${id}` });
    }
    for (let i = 0; i < 3; i++) {
      replicas.push(
        await testService({
          zmq: { mode: 'bind', addresses: [] },
          index: { backend: 'redis', redisUrl: redis.url, redisKeyPrefix: 'leases:' },
          endpoints: { static: [pods.get(A)!.spec, pods.get(B)!.spec], leaseTtlMs: TTL },
        }),
      );
    }
  }, 60_000);

  afterAll(async () => {
    for (const r of replicas) await r.stop().catch(() => undefined);
    for (const { pub } of pods.values()) await pub.close();
    await redis?.stop();
  });

  const ownerOf = (id: string, among = replicas) =>
    among.filter((r) => r.ownership!.ownedAddresses().some((a) => pods.get(id)!.spec.startsWith(a)));

  it('ingests each endpoint exactly once, and a survivor takes over a killed owner', async () => {
    const { batches, expected } = chatTraffic(
      [
        { endpoint: A, model: MODEL, gpuBlocks: 64, style: { encoding: 'map', hashes: 'int' } },
        { endpoint: B, model: MODEL, gpuBlocks: 64, cpuBlocks: 32, style: { encoding: 'array', hashes: 'bytes' } },
      ],
      14,
      5,
    );
    // Every endpoint has exactly one owner among the three replicas.
    await waitFor(() => ownerOf(A).length === 1 && ownerOf(B).length === 1, 'one owner per endpoint');
    for (const id of [A, B]) await untilSubscribed(ownerOf(id)[0], pods.get(id)!.pub);

    // All but each endpoint's last batch (held back to follow the takeover).
    const last = new Map([A, B].map((id) => [id, batches.map((b) => b.identity).lastIndexOf(id)]));
    const held = new Set(last.values());
    await publishAll(
      batches.filter((_, i) => !held.has(i)),
      new Map([...pods].map(([id, p]) => [id, p.pub])),
    );
    const lastSeq = (id: string) => BigInt(batches.filter((b) => b.identity === id).length - 1);
    for (const id of [A, B]) await untilApplied(ownerOf(id)[0], id, lastSeq(id) - 1n);

    // Exactly once: replicas that do not own an endpoint applied none of its batches.
    const applied = (r: RunningService, id: string) => r.pipeline.stream(id)?.stats.applied ?? 0;
    for (const id of [A, B]) expect(replicas.filter((r) => applied(r, id) > 0)).toEqual(ownerOf(id));

    // Kill A's owner without releasing its leases (it may own B too).
    const killed = ownerOf(A)[0];
    const takenOver = [A, B].filter((id) => ownerOf(id)[0] === killed);
    await killed.stop({ releaseLeases: false });
    const survivors = replicas.filter((r) => r !== killed);
    for (const id of takenOver)
      await waitFor(() => ownerOf(id, survivors).length === 1, `a survivor to take over ${id}`, 10_000);
    // The held-back batches: a successor joins mid-stream and replays the publisher's buffer from seq 0.
    for (const id of [A, B]) {
      const owner = ownerOf(id, survivors)[0];
      await untilSubscribed(owner, pods.get(id)!.pub);
      await pods.get(id)!.pub.publish(batches[last.get(id)!].payload);
      await untilApplied(owner, id, lastSeq(id));
      await owner.index.flush();
    }
    for (const id of takenOver)
      expect(ownerOf(id, survivors)[0].pipeline.counters.joinedMidStream).toBeGreaterThanOrEqual(1);

    // The shared index equals the ground truth, seen from any surviving replica.
    for (const r of survivors) expect(await observedState(r.index, expected)).toEqual(expectedView(expected));
  });
});
