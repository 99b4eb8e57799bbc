import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Publisher } from 'zeromq';
import { backendFollowers, startApi, type RunningApi } from '../../src/service/start-api.js';
import { startService, type RunningService } from '../../src/service/start-service.js';
import { ConfigSchema, createLogger } from '../../src/ops/index.js';
import { grpcClient } from '../support/grpc-client.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { connectedPublisher, kvMessage, tokenRange, waitFor } from '../support/zmq.js';

const MODEL = 'Qwen/Qwen3-8B';
const A = '10.0.0.1:8000';

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

/** The value of an unlabelled sample in Prometheus text, or undefined when the family has no sample. */
function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

/**
 * Issue 17 bug 6: a real redis-server killed mid-run and restarted. Before the fix /metrics answered 500 (one failing
 * gauge failed the whole scrape), GetStats and ListEndpoints answered INTERNAL, and readiness dropped on every replica.
 */
describe('Redis outage: metrics render, RPCs answer UNAVAILABLE, readiness holds under fail-open', () => {
  let redis: RedisServer;
  let service: RunningService;
  let api: RunningApi;
  let kv: ReturnType<typeof grpcClient>;
  let health: ReturnType<typeof grpcClient>;
  let pub: Publisher;

  beforeAll(async () => {
    redis = await startRedis();
    const config = ConfigSchema.parse({
      zmq: { addresses: ['tcp://127.0.0.1:*'] },
      index: { backend: 'redis', redisUrl: redis.url, redisKeyPrefix: 'outage:', redisCommandTimeoutMs: 300 },
      api: { grpcAddress: '127.0.0.1:0', failOpen: true },
      metrics: { host: '127.0.0.1', port: 0 },
      log: { level: 'silent', statsIntervalSeconds: 0 },
    });
    const log = createLogger('silent');
    service = await startService(config, log);
    api = await startApi(service, config, log);
    kv = grpcClient(`127.0.0.1:${api.grpcPort}`, 'kvindexer/v1/kvindexer.proto', 'kvindexer.v1.KvIndexer');
    health = grpcClient(`127.0.0.1:${api.grpcPort}`, 'grpc/health/v1/health.proto', 'grpc.health.v1.Health');
    pub = await connectedPublisher(
      service.subscriber.lastEndpoint!,
      kvMessage(`kv@${A}@${MODEL}`, 0, [0, [['BlockStored', [1n, 2n], null, tokenRange(32), 16, null, null]], null]),
      () => service.pipeline.endpoints().has(A),
    );
    await service.index.flush();
  }, 60_000);

  afterAll(async () => {
    pub?.close();
    kv?.close();
    health?.close();
    await api?.stop();
    await service?.stop();
    await redis?.stop();
  });

  it('keeps /metrics at 200 with index_backend_up 0, answers UNAVAILABLE, stays ready; recovers after restart', async () => {
    const before = await get(api.metricsPort, '/metrics');
    expect(before.status).toBe(200);
    expect(sample(before.body, 'kv_indexer_index_backend_up')).toBe(1);
    expect(sample(before.body, 'kv_indexer_index_entries')).toBe(2);
    expect((await kv.call('ListEndpoints', {})).endpoints.map((e: { endpoint: string }) => e.endpoint)).toEqual([A]);

    await redis.kill();
    await waitFor(() => api.health.get('index') === 'NOT_SERVING', 'index health to drop');
    const during = await get(api.metricsPort, '/metrics');
    expect(during.status).toBe(200);
    expect(sample(during.body, 'kv_indexer_index_backend_up')).toBe(0);
    expect(sample(during.body, 'kv_indexer_index_entries')).toBeNaN(); // unknown, not a stale or zero figure
    // The write path's own figures are still there.
    expect(sample(during.body, 'kv_indexer_messages_received_total')).toBe(1);

    for (const method of ['GetStats', 'ListEndpoints']) {
      const err = await kv.call(method, {}).then(
        () => null,
        (e: { code: number; details: string }) => e,
      );
      expect([method, err?.code]).toEqual([method, status.UNAVAILABLE]);
      expect(err?.details).toMatch(/redis index unavailable/);
    }
    // Score still answers (degraded), so readiness stays: the replicas sharing this Redis are not all taken out.
    const score = await kv.call('Score', { model: MODEL, tokens: { tokenIds: tokenRange(32) }, candidates: [A] });
    expect([score.degraded, score.scores[0].matchedBlocks]).toEqual([true, 0]);
    expect(await health.call('Check', { service: 'index' })).toEqual({ status: 'NOT_SERVING' });
    expect(await health.call('Check', { service: 'readiness' })).toEqual({ status: 'SERVING' });
    expect(await health.call('Check', { service: 'liveness' })).toEqual({ status: 'SERVING' });
    expect((await get(api.metricsPort, '/healthz')).status).toBe(200);

    await redis.restart();
    await waitFor(() => api.health.get('index') === 'SERVING', 'index health to return', 15_000);
    let after = await get(api.metricsPort, '/metrics');
    for (
      const deadline = Date.now() + 5_000;
      sample(after.body, 'kv_indexer_index_backend_up') !== 1 && Date.now() < deadline;
    ) {
      await new Promise((r) => setTimeout(r, 200));
      after = await get(api.metricsPort, '/metrics');
    }
    expect([after.status, sample(after.body, 'kv_indexer_index_backend_up')]).toEqual([200, 1]);
    const stats = await kv.call('GetStats', {});
    expect(stats.indexEntries).toBe('0'); // the restarted server is empty (no persistence)
  });

  it('takes readiness with the backend only when fail-open is off', () => {
    expect(backendFollowers(true)).toEqual(['index']);
    expect(backendFollowers(false)).toEqual(['', 'readiness', 'index']);
  });
});
