import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Publisher } from 'zeromq';
import type { HealthService } from '../../src/api/index.js';
import { startApi } from '../../src/service/start-api.js';
import { redactUrl, startService, type RunningService } from '../../src/service/start-service.js';
import { startThreaded } from '../../src/service/start-threaded.js';
import { ConfigSchema, createLogger } from '../../src/ops/index.js';
import { grpcClient } from '../support/grpc-client.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { connectedPublisher, kvMessage, tokenRange, waitFor } from '../support/zmq.js';

const MODEL = 'Qwen/Qwen3-8B';
const A = '10.0.0.1:8000';

/**
 * The service with `index.backend: redis`: two replicas share one real redis-server; events ingested by one are
 * scored by the other; when Redis goes away Score degrades (or fails when strict) and the `index` health drops; it recovers.
 * The second replica runs with `api.indexThread` (its Redis connection and the API's work in the index thread, its
 * health on the main thread following the backend as reported by the thread).
 */
describe('serve with the Redis backend (two replicas, one redis-server)', () => {
  let redis: RedisServer;
  let writer: RunningService;
  const replicas: {
    grpcPort: number;
    health: HealthService;
    kv: ReturnType<typeof grpcClient>;
    stop(): Promise<void>;
  }[] = [];
  let pub: Publisher;

  beforeAll(async () => {
    redis = await startRedis();
    for (const indexThread of [false, true]) {
      const config = ConfigSchema.parse({
        zmq: { addresses: indexThread ? [] : ['tcp://127.0.0.1:*'] },
        index: { backend: 'redis', redisUrl: redis.url, redisKeyPrefix: 'test:', redisCommandTimeoutMs: 300 },
        api: { grpcAddress: '127.0.0.1:0', indexThread },
        metrics: { host: '127.0.0.1', port: 0 },
        log: { level: 'silent', statsIntervalSeconds: 0 },
      });
      const log = createLogger('silent');
      const kv = (port: number) =>
        grpcClient(`127.0.0.1:${port}`, 'kvindexer/v1/kvindexer.proto', 'kvindexer.v1.KvIndexer');
      if (indexThread) {
        const served = await startThreaded(config, log);
        replicas.push({
          grpcPort: served.grpcPort,
          health: served.front.health,
          kv: kv(served.grpcPort),
          stop: () => served.stop(),
        });
      } else {
        const service = await startService(config, log);
        const api = await startApi(service, config, log);
        writer = service;
        replicas.push({
          grpcPort: api.grpcPort,
          health: api.health,
          kv: kv(api.grpcPort),
          stop: async () => {
            await api.stop();
            await service.stop();
          },
        });
      }
    }
    // Only replica 0 receives events (in production, a lease decides which replica ingests an endpoint).
    pub = await connectedPublisher(
      writer.subscriber.lastEndpoint!,
      kvMessage('kv@10.9.9.9:1@probe', 0, [0, [], null]),
      () => writer.pipeline.endpoints().has('10.9.9.9:1'),
    );
  }, 60_000);

  afterAll(async () => {
    pub?.close();
    for (const r of replicas) {
      r.kv.close();
      await r.stop();
    }
    await redis?.stop();
  });

  it('scores on one replica what the other ingested', async () => {
    await pub.send(
      kvMessage(`kv@${A}@${MODEL}`, 0, [
        1,
        [['BlockStored', [1n, 2n, 3n], null, tokenRange(48), 16, null, null]],
        null,
      ]),
    );
    await waitFor(() => writer.pipeline.endpoints().get(A) === 0n, 'the batch applied');
    await writer.index.flush();
    for (const r of replicas) {
      const res = await r.kv.call('Score', { model: MODEL, tokens: { tokenIds: tokenRange(48) }, candidates: [A] });
      expect([res.scores[0].matchedBlocks, res.degraded]).toEqual([3, false]);
    }
    const info = await replicas[1].kv.call('GetInfo', {});
    expect(info.backend).toBe('redis');
  });

  it('speculative entries reserved through one replica are seen by the other', async () => {
    const C = '10.0.0.7:8000';
    await replicas[0].kv.call('Score', {
      model: MODEL,
      tokens: { tokenIds: tokenRange(32, 500) },
      candidates: [C],
      speculate: { endpoint: C, ttlMs: 60_000 },
    });
    const seen = await replicas[1].kv.call('Score', {
      model: MODEL,
      tokens: { tokenIds: tokenRange(32, 500) },
      candidates: [C],
    });
    expect(seen.scores[0]).toMatchObject({ endpoint: C, matchedBlocks: 2, speculativeBlocks: 2 });
    // And the other way: written by the index thread of replica 1, seen by replica 0.
    await replicas[1].kv.call('Score', {
      model: MODEL,
      tokens: { tokenIds: tokenRange(48, 700) },
      candidates: [C],
      speculate: { endpoint: C, ttlMs: 60_000 },
    });
    const back = await replicas[0].kv.call('Score', {
      model: MODEL,
      tokens: { tokenIds: tokenRange(48, 700) },
      candidates: [C],
    });
    expect(back.scores[0]).toMatchObject({ endpoint: C, matchedBlocks: 3, speculativeBlocks: 3 });
  });

  it('degrades when Redis is gone: zero scores flagged, UNAVAILABLE when strict, index not serving; then recovers', async () => {
    const r = replicas[1];
    const health = grpcClient(`127.0.0.1:${r.grpcPort}`, 'grpc/health/v1/health.proto', 'grpc.health.v1.Health');
    try {
      await redis.kill();
      const res = await r.kv.call('Score', { model: MODEL, tokens: { tokenIds: tokenRange(48) }, candidates: [A] });
      expect(res.degraded).toBe(true);
      expect(res.scores[0].matchedBlocks).toBe(0);
      expect(res.degradedReason).toMatch(/^index backend failed/);
      const strict = await r.kv
        .call('Score', { model: MODEL, tokens: { tokenIds: tokenRange(48) }, candidates: [A], strict: true })
        .catch((e) => e);
      expect(strict.code).toBe(status.UNAVAILABLE);
      // Fail-open (the default): `index` drops, readiness holds so that the replicas are not all taken out at once.
      await waitFor(() => r.health.get('index') === 'NOT_SERVING', 'index health to drop');
      expect(await health.call('Check', { service: 'readiness' })).toEqual({ status: 'SERVING' });
      expect(await health.call('Check', { service: 'liveness' })).toEqual({ status: 'SERVING' });

      // Mid-ingest: a batch arrives while Redis is down. The ingesting replica survives; the write fails, the batch
      // does not count as applied (the next one shows the gap) and the endpoint is marked degraded.
      await pub.send(
        kvMessage(`kv@${A}@${MODEL}`, 1, [2, [['BlockStored', [4n], 3n, tokenRange(16, 49), 16, null, null]], null]),
      );
      await waitFor(
        () => writer.pipeline.listEndpoints().find((e) => e.identity === A)?.state === 'degraded',
        'A marked degraded',
      );
      expect(writer.pipeline.counters.applyErrors).toBeGreaterThanOrEqual(1);

      await redis.restart();
      await waitFor(() => r.health.get('index') === 'SERVING', 'index health to return', 15_000);
      const back = await r.kv.call('Score', { model: MODEL, tokens: { tokenIds: tokenRange(48) }, candidates: [A] });
      // The restarted server is empty: answered, not degraded, nothing matched until events arrive again.
      expect([back.degraded, back.scores[0].matchedBlocks]).toEqual([false, 0]);
      // New events are indexed again. The writer learns on its first write that Redis restarted empty and clears and
      // resynchronises A (which may drop that very batch); the events after it land. Scored by the other replica.
      let matched = 0;
      for (let seq = 2; matched === 0 && seq < 8; seq++) {
        const received = writer.pipeline.counters.messages;
        await pub.send(
          kvMessage(`kv@${A}@${MODEL}`, seq, [
            seq,
            [['BlockStored', [21n, 22n], null, tokenRange(32, 900), 16, null, null]],
            null,
          ]),
        );
        // Received and handled: applied, or dropped by the clear + resync (then the stream's sequence state is reset).
        await waitFor(() => writer.pipeline.counters.messages > received, `batch ${seq} received`);
        await writer.pipeline.idle();
        await writer.index.flush().catch(() => undefined);
        // A reader caches unknown endpoint names for up to a second: poll that long for the new registration.
        for (const deadline = Date.now() + 2_000; matched === 0 && Date.now() < deadline;) {
          const fresh = await r.kv.call('Score', {
            model: MODEL,
            tokens: { tokenIds: tokenRange(32, 900) },
            candidates: [A],
          });
          expect(fresh.degraded).toBe(false);
          matched = fresh.scores[0].matchedBlocks;
          if (matched === 0) await new Promise((res) => setTimeout(res, 100));
        }
      }
      expect(matched).toBe(2);
    } finally {
      health.close();
    }
  });

  it('never logs a Redis password', () => {
    expect(redactUrl('redis://user:s3cret@10.0.0.5:6379/0')).toBe('redis://user:***@10.0.0.5:6379/0');
    expect(redactUrl('redis://:s3cret@host:6379')).toBe('redis://:***@host:6379');
    expect(redactUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
  });
});
